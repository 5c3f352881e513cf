import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import WebSocket from 'ws';
import type { RatchetNode } from '../../src/node/index.js';
import { BUNDLE_D_TAG, KIND_BUNDLE, PROTOCOL_VERSION } from '../../src/nostr/events.js';
import { DEFAULT_RELAY_TIMING } from '../../src/nostr/relay-set.js';
import { refusedUrl, startBrokenEndpoint, startEvilRelay } from '../support/evil-relay.js';
import { eventually, FAST_TIMING, meet, nextEvent, relayAndNodes, testNodes } from '../support/nodes.js';
import { startRelayProxy } from '../support/ok-dropping-proxy.js';
import { startTestRelay } from '../support/relay.js';

useWebSocketImplementation(WebSocket);

function relayStatus(node: RatchetNode, url: string) {
  const status = node.status().relays.find((r) => r.url === url);
  assert.ok(status, `${url} is in the status`);
  return status;
}

/** Alice sends bob a message and it arrives: the node is still serving. */
async function stillServing(alice: RatchetNode, bob: RatchetNode, text: string): Promise<void> {
  const got = nextEvent(bob, 'message', (m) => m.text === text);
  alice.messaging.send(bob.whoami().fingerprint, text);
  await got;
}

describe('hostile relays', () => {
  it('a relay that stalls, closes, resets, answers plain HTTP or cannot be reached never ends the process', async (t) => {
    const uncaught: unknown[] = [];
    const probe = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', probe);
    process.on('unhandledRejection', probe);
    t.after(() => {
      process.off('uncaughtException', probe);
      process.off('unhandledRejection', probe);
    });
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    const bob = await nodes.open('bob', [relay.url], { timing: { ...FAST_TIMING, relay: { ...FAST_TIMING?.relay, connectTimeoutMs: 300 } } });
    await meet(alice, bob);
    const broken = await Promise.all((['tarpit', 'close', 'reset', 'http'] as const).map((mode) => startBrokenEndpoint(mode)));
    t.after(() => Promise.all(broken.map((b) => b.close())));
    const tarpit = broken[0]!;
    const urls = [...broken.map((b) => b.url), await refusedUrl(), 'ws://relay.invalid'];
    // Added to the running node, as `rrelay relays add` does.
    for (const url of urls) assert.ok(bob.addRelay(url));
    // The tarpit fails by the connect timeout, which closes a socket still connecting.
    await eventually(() => urls.every((url) => relayStatus(bob, url).failures >= 3) || undefined, 'three failed connects to each broken relay');
    assert.ok(tarpit.connections() >= 3, 'the tarpit was tried');
    // Removed while a handshake is pending: close() on a socket still connecting.
    const n = tarpit.connections();
    await eventually(() => tarpit.connections() > n || undefined, 'another connect to the tarpit');
    assert.ok(bob.removeRelay(tarpit.url));
    await stillServing(alice, bob, 'still here');
    assert.ok(bob.isConnected());
    assert.deepEqual(uncaught, [], 'no error reached the process');
  });

  it('one oversize event on a relay costs only that event: a fresh node on it still sees the other peers, on one connection', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    const aliceFp = alice.whoami().fingerprint;
    await alice.start();
    await eventually(() => alice.status().published || undefined, 'alice published her bundle');
    // Anyone may post a 1 MB bundle-tagged event, and this relay takes it. Newer than alice's bundle,
    // so a relay answering newest first sends it before hers.
    const poison = finalizeEvent(
      {
        kind: KIND_BUNDLE,
        created_at: Math.floor(Date.now() / 1000) + 1,
        tags: [
          ['d', BUNDLE_D_TAG],
          ['v', PROTOCOL_VERSION],
        ],
        content: 'A'.repeat(1_000_000),
      },
      generateSecretKey(),
    );
    const poster = await Relay.connect(relay.url);
    await poster.publish(poison); // rejects unless the relay accepted it
    poster.close();

    const carol = await nodes.open('carol', [relay.url]);
    let connects = 0;
    carol.on('relay', ({ connected }) => connected && connects++);
    const refused = nextEvent(carol, 'rejected', (r) => /exceeds/.test(r.reason));
    const seesAlice = nextEvent(carol, 'bundle', (b) => b.fingerprint === aliceFp);
    await carol.start();
    await Promise.all([refused, seesAlice]);
    // A peer that comes later is seen live on the same subscription.
    const bob = await nodes.open('bob', [relay.url]);
    const seesBob = nextEvent(carol, 'bundle', (b) => b.fingerprint === bob.whoami().fingerprint);
    await bob.start();
    await seesBob;
    assert.equal(connects, 1, 'one connection: the oversize event did not cost it');
    assert.equal(relayStatus(carol, relay.url).failures, 0);
    assert.ok(carol.status().peers >= 2);
  });

  it('a relay that drops every connection (frames over the cap) backs off across sessions; the other relays serve on', async (t) => {
    const honest = await startTestRelay();
    // Over the WebSocket frame cap: ws ends the connection as soon as its header arrives.
    const huge = `"${'A'.repeat(DEFAULT_RELAY_TIMING.maxMessageBytes)}"`;
    const evil = await startEvilRelay({ onReq: (subId) => [`["EVENT","${subId}",${huge}]`] });
    t.after(async () => {
      await honest.stop();
      await evil.close();
    });
    const nodes = testNodes(t);
    const alice = await nodes.open('alice', [honest.url]);
    const bob = await nodes.open('bob', [honest.url, evil.url]);
    await meet(alice, bob);
    // Each session ends at once; with failures reset on every connect the count would never pass 1.
    await eventually(() => relayStatus(bob, evil.url).failures >= 5 || undefined, 'five failed sessions in a row');
    const failures = relayStatus(bob, evil.url).failures;
    // Two lanes, each with its own backoff; `failures` is the larger of their counts.
    assert.ok(evil.connections() <= 2 * (failures + 1), `${evil.connections()} connections for ${failures} failures: each one backed off`);
    await stillServing(alice, bob, 'through the honest relay');
  });

  it('a relay that only ever hands over events already seen through another still advances its cursor', async (t) => {
    const fast = await startTestRelay();
    const upstream = await startTestRelay();
    const reqs: unknown[][] = [];
    // Every frame from this relay comes a while after the same one from the other.
    const slow = await startRelayProxy(upstream.url, {
      fromRelay: (text, forward) => setTimeout(() => forward(text), 300),
      fromClient: (text) => text.startsWith('["REQ"') && reqs.push(JSON.parse(text) as unknown[]),
    });
    t.after(async () => {
      await slow.close();
      await fast.stop();
      await upstream.stop();
    });
    const nodes = testNodes(t);
    const alice = await nodes.open('alice', [fast.url, upstream.url]);
    const bob = await nodes.open('bob', [fast.url, slow.url]);
    await meet(alice, bob);
    const start = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 5; i++) await stillServing(alice, bob, `message ${i}`);
    // The last message comes through the slow relay too; that moves its cursor to it.
    await eventually(() => ((relayStatus(bob, slow.url).lastSeen ?? 0) >= start ? true : undefined), `the slow relay's cursor at ${start} or later`);
    assert.ok(relayStatus(bob, fast.url).lastSeen! >= start);

    await bob.close();
    const before = reqs.length;
    const bob2 = await nodes.open('bob', [fast.url, slow.url]);
    assert.ok(relayStatus(bob2, slow.url).lastSeen! >= start, 'the cursor was persisted');
    await bob2.start();
    const since = await eventually(() => {
      const req = reqs.slice(before).find((r) => r[1] === 'rr-messages');
      return req && ((req[2] as { since?: number }).since ?? null);
    }, 'the REQ for messages after the restart');
    assert.ok(since !== null && since >= start - DEFAULT_RELAY_TIMING.sinceMarginS, `since ${since}: the slow relay's history is not read again`);
  });
});
