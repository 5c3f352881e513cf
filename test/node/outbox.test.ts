import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import WebSocket from 'ws';
import { KIND_MESSAGE } from '../../src/nostr/events.js';
import { cliEnv, rrelay, start } from '../support/cli.js';
import { eventually, FAST_TIMING, meet, nextEvent, relayAndNodes, testNodes } from '../support/nodes.js';
import { startEvilRelay } from '../support/evil-relay.js';
import { startOkDroppingProxy } from '../support/ok-dropping-proxy.js';
import { startTestRelay } from '../support/relay.js';

useWebSocketImplementation(WebSocket);

/** The ids of the message events on a relay to `recipient`'s inbox (a first message is sealed there, signed by a throwaway key). */
async function messageIds(url: string, recipient: string): Promise<string[]> {
  const relay = await Relay.connect(url);
  try {
    return await new Promise((resolve) => {
      const ids: string[] = [];
      const sub = relay.subscribe([{ kinds: [KIND_MESSAGE], '#p': [recipient] }], {
        onevent: (e) => ids.push(e.id),
        oneose: () => {
          sub.close();
          resolve(ids);
        },
      });
    });
  } finally {
    relay.close();
  }
}

describe('the persistent outbox', () => {
  it('resends after the sender is killed between publishing and the OK, and the receiver delivers once', async (t) => {
    const r1 = await startTestRelay();
    const r2 = await startTestRelay();
    const proxy = await startOkDroppingProxy(r1.url);
    t.after(async () => {
      await proxy.close();
      await r1.stop();
      await r2.stop();
    });
    const nodes = testNodes(t);
    const bob = await nodes.open('bob', [r1.url, r2.url]);
    await bob.start();
    const A = ['--data-dir', nodes.dataDir('alice-cli')];
    const init = await rrelay(['init', ...A, '--relay', proxy.url, '--json']);
    assert.equal(init.code, 0, init.stderr);

    // The sender publishes through the proxy: the relay stores and forwards the event, the OK never comes back.
    const received = nextEvent(bob, 'message');
    const sender = await start(['send', ...A, bob.whoami().fingerprint, 'survives a crash', '--wait', '60'], /^/, cliEnv());
    const [m] = await received;
    assert.equal(m.text, 'survives a crash');
    assert.equal(await sender.stop('SIGKILL'), null, 'killed before it heard an OK');
    const [original] = await messageIds(r1.url, bob.selfNostr);
    assert.ok(original);

    // Restarted against another relay, the sender finds the event still in its outbox and publishes it again.
    assert.equal((await rrelay(['relays', 'rm', ...A, proxy.url])).code, 0);
    assert.equal((await rrelay(['relays', 'add', ...A, r2.url])).code, 0);
    const status = await rrelay(['status', ...A, '--json']);
    // Its bundle and its message: neither was acknowledged.
    assert.equal((status.json[0] as { outboxPending: number }).outboxPending, 2, 'the unacknowledged events survived the kill');
    const daemon = await start(['daemon', ...A, '--json'], /"daemon":"running"/, cliEnv());
    t.after(() => daemon.stop().then(() => {}));
    const resent = await eventually(async () => {
      const ids = await messageIds(r2.url, bob.selfNostr);
      return ids.length > 0 ? ids : undefined;
    }, 'the resend reaching the second relay');
    assert.deepEqual(resent, [original], 'the very same event, same id');
    await eventually(async () => {
      const s = await rrelay(['status', ...A, '--json']);
      return (s.json[0] as { outboxPending: number }).outboxPending === 0 ? true : undefined;
    }, 'the outbox to empty');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(bob.messaging.messages().filter((x) => x.direction === 'in').length, 1, 'bob got it from both relays and delivered it once');
    assert.equal(await daemon.stop(), 0);
  });
});

describe('the outbox and a stalled relay', () => {
  it('holds up nothing: sending and receiving go on through the other relay', async (t) => {
    const { WebSocketServer } = await import('ws');
    // Accepts WebSocket connections and then never says a word: no EOSE, no OK.
    const silent = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => silent.once('listening', () => r()));
    t.after(
      () =>
        new Promise<void>((r) => {
          silent.close(() => r()); // first stop accepting: alice would reconnect at once
          for (const c of silent.clients) c.terminate();
        }),
    );
    const silentUrl = `ws://127.0.0.1:${(silent.address() as { port: number }).port}`;
    const { relay, nodes } = await relayAndNodes(t);
    // Timeouts far beyond the test's own bounded waits: progress can only come from not waiting on the silent relay.
    const patient = { ...FAST_TIMING, relay: { ...FAST_TIMING?.relay, publishTimeoutMs: 600_000, connectTimeoutMs: 600_000 } };
    const alice = await nodes.open('alice', [silentUrl, relay.url], { timing: patient });
    const bob = await nodes.open('bob', [relay.url]);
    await meet(alice, bob);
    assert.equal(silent.clients.size, 1, 'alice is connected to the silent relay');
    const received = nextEvent(bob, 'message');
    const sent = nextEvent(alice, 'sent');
    const m = alice.messaging.send(bob.whoami().fingerprint, 'through the live relay');
    assert.equal((await received)[0].text, 'through the live relay');
    const [s] = await sent;
    assert.equal(s.id, m.id);
    assert.equal(s.state, 'sent');
    const reply = nextEvent(alice, 'message');
    bob.messaging.send(alice.whoami().fingerprint, 'and back');
    assert.equal((await reply)[0].text, 'and back');
  });

  it('a message that every relay refuses for good fails, with the relays\' reason; one that a relay is merely away for stays queued', async (t) => {
    const refusing = await startEvilRelay({ refuse: 'blocked: this relay takes events from paying members only' });
    t.after(() => refusing.close());
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    const bob = await nodes.open('bob', [relay.url]);
    await meet(alice, bob);
    const bobFp = bob.whoami().fingerprint;
    // Alice now writes only to the refusing relay.
    alice.addRelay(refusing.url);
    alice.removeRelay(relay.url);
    await eventually(() => (alice.status().relays.every((r) => r.url === refusing.url && r.connected) ? true : undefined), 'only the refusing relay');
    const failed = nextEvent(alice, 'failed');
    const m = alice.messaging.send(bobFp, 'nobody will carry this');
    const [f] = await failed;
    assert.deepEqual(f.ids, [m.id]);
    assert.equal(f.peer, bobFp);
    assert.match(f.reason, /every relay refused it .*blocked: this relay takes events from paying members only/);
    const stored = alice.messaging.outgoing(m.id)!;
    assert.equal(stored.state, 'failed');
    assert.equal(stored.failure, f.reason);
    await eventually(() => (alice.outbox.pending() === 0 ? true : undefined), 'given up, not retried for ever');

    // A relay that is away (not refusing) keeps the message queued for when it is back.
    await refusing.close();
    const queued = alice.messaging.send(bobFp, 'waits for a relay');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(alice.messaging.outgoing(queued.id)?.state, 'queued');
  });
});
