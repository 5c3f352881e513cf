import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import WebSocket from 'ws';
import { KIND_MESSAGE } from '../src/nostr/events.js';
import { cliEnv, rrelay, start } from './support/cli.js';
import { eventually, nextEvent, testNodes } from './support/nodes.js';
import { startOkDroppingProxy } from './support/ok-dropping-proxy.js';
import { startTestRelay } from './support/relay.js';

useWebSocketImplementation(WebSocket);

async function messageIds(url: string, author: string): Promise<string[]> {
  const relay = await Relay.connect(url);
  try {
    return await new Promise((resolve) => {
      const ids: string[] = [];
      const sub = relay.subscribe([{ kinds: [KIND_MESSAGE], authors: [author] }], {
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
    const aliceNostr = (init.json[0] as { nostrPubkey: string }).nostrPubkey;

    // The sender publishes through the proxy: the relay stores and forwards the event, the OK never comes back.
    const received = nextEvent(bob, 'message');
    const sender = await start(['send', ...A, bob.whoami().fingerprint, 'survives a crash', '--wait', '60'], /^/, cliEnv());
    const [m] = await received;
    assert.equal(m.text, 'survives a crash');
    assert.equal(await sender.stop('SIGKILL'), null, 'killed before it heard an OK');
    const [original] = await messageIds(r1.url, aliceNostr);
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
      const ids = await messageIds(r2.url, aliceNostr);
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
