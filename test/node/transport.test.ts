import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { PRIVACY_LIMITS } from '../../src/limits.js';
import { validateProxyUrl } from '../../src/nostr/proxy.js';
import { DEFAULT_RELAY_TIMING, proxyAgent } from '../../src/nostr/relay-set.js';
import type { NodeEvents, RatchetNode } from '../../src/node/index.js';
import { eventually, FAST_TIMING, meet, nextEvent, testNodes } from '../support/nodes.js';
import { startRelayProxy } from '../support/ok-dropping-proxy.js';
import { type AcceptedConnection, startTestRelay } from '../support/relay.js';
import { freePort, startMicrosocks } from '../support/socks.js';

const S = 1000;

/** A node's cursor on its only relay: the live one while running, the persisted one once closed. */
const cursor = (node: RatchetNode) => node.status().relays[0]!.lastSeen;

const received = (node: RatchetNode, text: string) => node.messaging.messages(0, 1000).some((m) => m.direction === 'in' && m.body === text) || undefined;

/** The REQ frames of a connection, as parsed arrays. */
const reqs = (c: AcceptedConnection) => c.frames.map((f) => JSON.parse(f) as unknown[]).filter((m) => m[0] === 'REQ');

describe('relay connections: two lanes per relay', () => {
  it('puts the inbox subscription and what the node key signs on the identity lane, and nothing naming the key on the other', async (t) => {
    const relay = await startTestRelay();
    t.after(() => relay.stop());
    const nodes = testNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    const bob = await nodes.open('bob', [relay.url]);
    await meet(alice, bob);
    alice.messaging.send(bob.whoami().fingerprint, 'over the identity lane');
    await eventually(() => received(bob, 'over the identity lane'), 'the message at bob');
    const key = alice.selfNostr;
    // Which connections are alice's: her inbox subscription names her key, her bundle publish is signed by it.
    const inbox = relay.accepted().filter((c) => reqs(c).some((r) => JSON.stringify(r.slice(2)).includes(key)));
    assert.equal(inbox.length, 1, 'one connection subscribes to her inbox');
    const identity = inbox[0]!;
    assert.ok(identity.frames.some((f) => f.startsWith('["EVENT"') && f.includes(`"pubkey":"${key}"`)), 'her signed events go out on it');
    assert.deepEqual(reqs(identity).map((r) => Object.keys(r[2] as object).sort()), [['#p', 'kinds', 'limit']], 'only the inbox is read on it');
    // The anonymous lane: everything else she reads, and nothing that names her key.
    const all = relay.accepted();
    assert.equal(all.length, 4, 'two connections per node');
    // The identity lanes are the two that read an inbox (`#p`); the other two are anonymous.
    const anonymous = all.filter((c) => !reqs(c).some((r) => JSON.stringify(r.slice(2)).includes('"#p"')));
    assert.equal(anonymous.length, 2, 'one anonymous lane per node');
    for (const c of anonymous) assert.ok(reqs(c).some((r) => JSON.stringify(r).includes('"#d"')), 'bundles are read on the anonymous lane');
    for (const c of anonymous) assert.ok(c.frames.every((f) => !f.includes(key)), 'no frame on the anonymous lane names her key');
    assert.ok(anonymous.some((c) => c.frames.some((f) => f.startsWith('["EVENT"') && f.includes(`["p","${bob.selfNostr}"]`))), 'her sealed first message goes out on an anonymous lane');
    assert.deepEqual(alice.status().relays.map((r) => [r.url, r.connected, r.error]), [[relay.url, true, null]], 'one status line per relay');
  });
});

/** Bob and senders that have met him on one relay, each sender with its clock `offsetsMs[i]` off. */
async function bobAndSenders(t: { after(fn: () => Promise<void> | void): void }, offsetsMs: number[]) {
  const relay = await startTestRelay();
  t.after(() => relay.stop());
  const nodes = testNodes(t);
  const bob = await nodes.open('bob', [relay.url]);
  const senders: RatchetNode[] = [];
  for (const [i, offset] of offsetsMs.entries()) {
    const sender = await nodes.open(`sender${i}`, [relay.url], { clock: () => Date.now() + offset });
    await meet(sender, bob);
    senders.push(sender);
  }
  return { bob, bobFp: bob.whoami().fingerprint, senders, reopenBob: () => nodes.open('bob', [relay.url]) };
}

const nowS = () => Math.floor(Date.now() / S);

describe('relay cursors with back-dated and future-dated events', () => {
  it('an event back-dated by the full created_at jitter while we were away still arrives after reconnect', async (t) => {
    assert.ok(DEFAULT_RELAY_TIMING.sinceMarginS > PRIVACY_LIMITS.createdAtJitterS, 'the since margin covers the jitter');
    // Every event alice signs is dated the whole jitter back, as a throwaway-signed one may be.
    const { bob: first, bobFp, senders, reopenBob } = await bobAndSenders(t, [-PRIVACY_LIMITS.createdAtJitterS * S]);
    const [alice] = senders as [RatchetNode];
    // Bob's cursor is as far ahead as it gets: at his clock (his own bundle, read just now).
    await eventually(() => ((cursor(first) ?? 0) >= nowS() - 2 ? true : undefined), 'bob’s cursor at his clock');
    await first.close();
    alice.messaging.send(bobFp, 'back-dated');
    assert.equal(await alice.drain(20_000), 0);
    const bob = await reopenBob();
    await bob.start();
    await eventually(() => received(bob, 'back-dated'), 'the back-dated message after reconnect');
  });

  it('an event dated in the future does not move the cursor past a later ordinary one', async (t) => {
    // Carol's clock is 14 min ahead: inside what relays and our gate take (15 min), past the since margin (10 min).
    const { bob: first, bobFp, senders, reopenBob } = await bobAndSenders(t, [14 * 60 * S, 0]);
    const [carol, alice] = senders as [RatchetNode, RatchetNode];
    carol.messaging.send(bobFp, 'from the future');
    await eventually(() => received(first, 'from the future'), 'the future-dated message');
    assert.ok((cursor(first) ?? 0) <= nowS(), 'the cursor stays at or behind bob’s clock');
    await first.close();
    alice.messaging.send(bobFp, 'ordinary');
    assert.equal(await alice.drain(20_000), 0);
    const bob = await reopenBob();
    assert.ok((cursor(bob) ?? 0) <= nowS(), 'the persisted cursor is not ahead of the clock either');
    await bob.start();
    await eventually(() => received(bob, 'ordinary'), 'the ordinary message after reconnect');
  });
});

describe('the cursor and the two lanes', () => {
  it('does not move while one lane is down, though the other reads on', async (t) => {
    const relay = await startTestRelay();
    t.after(() => relay.stop());
    // Bob reaches the relay through a proxy that can drop his identity lane and keep it out.
    let accepting = true;
    let identityLane: WebSocket | undefined;
    const proxy = await startRelayProxy(relay.url, {
      accept: () => accepting,
      fromClient: (text, client) => {
        if (text.startsWith('["REQ"') && text.includes('"#p"')) identityLane = client;
      },
    });
    t.after(() => proxy.close());
    const nodes = testNodes(t);
    // No margin: a cursor moved past an unread event would lose it. Bob's and carol's clocks are set below.
    let ahead = 0;
    const bob = await nodes.open('bob', [proxy.url], { clock: () => Date.now() + ahead, timing: { ...FAST_TIMING, relay: { ...FAST_TIMING?.relay, sinceMarginS: 0 } } });
    // Seed addressing: her events are not back-dated by the jitter, which a margin of 0 could not catch.
    const alice = await nodes.open('alice', [relay.url], { addressing: 'seed' });
    await meet(alice, bob);
    const before = await eventually(() => cursor(bob) ?? undefined, 'bob’s cursor');
    accepting = false;
    identityLane!.terminate();
    await eventually(() => (bob.status().relays[0]!.connected ? undefined : true), 'bob’s identity lane down');
    alice.messaging.send(bob.whoami().fingerprint, 'while the inbox is away');
    assert.equal(await alice.drain(20_000), 0);
    // Later seconds than alice's message: carol's bundle, read live on bob's anonymous lane.
    ahead = 3 * S;
    const carol = await nodes.open('carol', [relay.url], { clock: () => Date.now() + ahead });
    const seen = nextEvent(bob, 'bundle', (b) => b.fingerprint === carol.whoami().fingerprint);
    await carol.start();
    await seen;
    assert.equal(cursor(bob), before, 'the cursor waits for the identity lane');
    accepting = true;
    await eventually(() => received(bob, 'while the inbox is away'), 'the message once the identity lane is back');
  });
});

describe('relay connections through a SOCKS5 proxy', () => {
  it('validates the proxy URL and gives every connection its own SOCKS credentials', () => {
    assert.equal(validateProxyUrl('socks5h://127.0.0.1:9050'), 'socks5h://127.0.0.1:9050');
    assert.equal(validateProxyUrl('socks5://[::1]:1080/'), 'socks5://[::1]:1080');
    for (const bad of ['http://127.0.0.1:8080', 'socks4://127.0.0.1:1080', 'socks5h://127.0.0.1', 'socks5h://u:p@127.0.0.1:9050', 'socks5h://127.0.0.1:9050/x', '127.0.0.1:9050', 'none'])
      assert.throws(() => validateProxyUrl(bad), /INVALID_ARGUMENT|proxy|SOCKS5/i, bad);
    const [a, b] = [proxyAgent('socks5h://127.0.0.1:9050'), proxyAgent('socks5h://127.0.0.1:9050')];
    for (const x of [a, b]) {
      assert.equal(x.proxy.type, 5);
      assert.equal(x.shouldLookup, false, 'socks5h: relay names are resolved by the proxy');
      assert.match(x.proxy.userId ?? '', /^[0-9a-f]{24}$/);
      assert.match(x.proxy.password ?? '', /^[0-9a-f]{24}$/);
    }
    assert.notEqual(a.proxy.userId, b.proxy.userId);
    assert.notEqual(a.proxy.password, b.proxy.password);
    assert.equal(proxyAgent('socks5://127.0.0.1:1080').shouldLookup, true);
  });

  it('two nodes exchange messages with every relay connection made by the proxy', async (t) => {
    // microsocks connects out from 127.0.0.3: the relay tells its connections from direct ones (127.0.0.1).
    const proxy = await startMicrosocks('127.0.0.3');
    const relay = await startTestRelay();
    t.after(async () => {
      await relay.stop();
      await proxy.stop();
    });
    const nodes = testNodes(t);
    const alice = await nodes.open('alice', [relay.url], { proxy: proxy.url });
    const bob = await nodes.open('bob', [relay.url], { proxy: proxy.url });
    await meet(alice, bob);
    alice.messaging.send(bob.whoami().fingerprint, 'through the proxy');
    await eventually(() => received(bob, 'through the proxy'), 'the message at bob');
    const remotes = relay.accepted().map((c) => c.remoteAddress);
    assert.equal(remotes.length, 4, 'two lanes per node, each its own connection');
    assert.deepEqual([...new Set(remotes)], ['127.0.0.3'], 'every connection came from the proxy');
  });

  it('with the proxy down, never connects directly and says why', async (t) => {
    const relay = await startTestRelay();
    t.after(() => relay.stop());
    const nodes = testNodes(t);
    const down = `socks5h://127.0.0.1:${await freePort()}`;
    const alice = await nodes.open('alice', [relay.url], { proxy: down });
    const told: NodeEvents['relay'][0][] = [];
    alice.on('relay', (e) => told.push(e));
    await alice.start();
    await eventually(() => (alice.status().relays[0]!.failures >= 3 ? true : undefined), 'three failed connects');
    const status = alice.status().relays[0]!;
    assert.equal(status.connected, false);
    assert.match(status.error ?? '', new RegExp(`lane: cannot connect through the proxy ${down.replace(/[.]/g, '\\.')}: .*ECONNREFUSED`));
    // Its followers (the web app) are told why once, and again only when the reason changes: not on every retry.
    assert.ok(told.length >= 1 && told.length <= 2, JSON.stringify(told));
    assert.ok(told.every((e, i) => e.url === relay.url && !e.connected && e.error !== told[i - 1]?.error));
    assert.equal(told.at(-1)!.error, status.error);
    assert.equal(relay.accepted().length, 0, 'the relay saw no connection at all');
  });

  it('refuses a proxy that is not SOCKS5', async (t) => {
    const nodes = testNodes(t);
    await assert.rejects(nodes.open('alice', ['ws://127.0.0.1:1'], { proxy: 'http://127.0.0.1:8080' }), /only SOCKS5 proxies/);
  });
});
