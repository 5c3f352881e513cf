import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RatchetNode, ReceivedMessage } from '../../src/node/index.js';
import { cpSync, rmSync } from 'node:fs';
import { RETRY_LIMITS } from '../../src/limits.js';
import { eventually, meet, nextEvent, relayAndNodes } from '../support/nodes.js';

const SENDERS = 20;
const PER_SENDER = 3;

function collect(node: RatchetNode): ReceivedMessage[] {
  const got: ReceivedMessage[] = [];
  node.on('message', (m) => got.push(m));
  return got;
}

describe('retry requests (a first message the recipient cannot decrypt)', () => {
  it(`${SENDERS} new senders start sessions from one published bundle at the same moment: every session works, every message arrives once`, async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const bob = await nodes.open('bob', [relay.url]);
    await bob.start();
    const bobFp = bob.whoami().fingerprint;
    const senders: RatchetNode[] = [];
    for (let i = 0; i < SENDERS; i++) senders.push(await nodes.open(`sender-${i}`, [relay.url]));
    // Every sender holds the same bundle (five one-time keys) before anyone sends.
    await Promise.all(senders.map((s) => Promise.all([nextEvent(s, 'bundle', (b) => b.fingerprint === bobFp, 60_000), s.start()])));
    const atBob = collect(bob);
    const sent = new Map<string, string>();
    for (const [i, s] of senders.entries())
      for (let k = 0; k < PER_SENDER; k++) sent.set(s.messaging.send(bobFp, `from ${i}: ${k}`).id, `from ${i}: ${k}`);

    await eventually(() => (atBob.length >= sent.size ? true : undefined), `${sent.size} messages at bob`, 90_000);
    // Anything still in flight would show up now as a duplicate.
    for (const s of senders) await s.drain(10_000);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(atBob.length, sent.size, 'each message exactly once');
    assert.deepEqual(new Set(atBob.map((m) => m.text)), new Set(sent.values()));
    const stored = bob.messaging.messages(0, 10_000).filter((m) => m.direction === 'in');
    assert.equal(stored.length, sent.size, 'stored exactly once');
    const retried = senders.filter((s) => s.messaging.retryStats.sessionsRetried > 0).length;
    t.diagnostic(`${retried} of ${SENDERS} senders were asked to retry (their one-time key was taken)`);
    assert.ok(retried > 0, 'with 5 one-time keys offered to 20 senders, some collide (the case under test)');

    // Every session works both ways, and every sender sees its messages delivered.
    const replies = senders.map((s) => nextEvent(s, 'message', (m) => m.from === bobFp, 60_000));
    for (const s of senders) bob.messaging.send(s.whoami().fingerprint, 'welcome');
    for (const [m] of await Promise.all(replies)) assert.equal(m.text, 'welcome');
    for (const s of senders)
      await eventually(() => ([...sent.keys()].every((id) => s.messaging.outgoing(id)?.state !== 'sent' && s.messaging.outgoing(id)?.state !== 'queued') ? true : undefined), 'receipts', 30_000);
    for (const s of senders) for (const id of sent.keys()) {
      const m = s.messaging.outgoing(id);
      if (m) assert.equal(m.state, 'delivered', `${id} delivered`);
    }
  });

  it('a recipient restored from a backup (its session lost) asks for a new one, and what it could not read arrives once', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    let offset = 0;
    const bobOptions = { clock: () => Date.now() + offset };
    const alice = await nodes.open('alice', [relay.url]);
    let bob = await nodes.open('bob', [relay.url], bobOptions);
    await meet(alice, bob);
    const bobFp = bob.whoami().fingerprint;
    const aliceFp = alice.whoami().fingerprint;
    const exchange = async (text: string) => {
      const atBob = nextEvent(bob, 'message', (m) => m.text === text);
      alice.messaging.send(bobFp, text);
      await atBob;
      const atAlice = nextEvent(alice, 'message', (m) => m.text === `re: ${text}`);
      bob.messaging.send(aliceFp, `re: ${text}`);
      await atAlice;
    };
    await exchange('before the backup');
    await bob.close();
    const backup = `${nodes.dataDir('bob')}.backup`;
    cpSync(nodes.dataDir('bob'), backup, { recursive: true });
    bob = await nodes.open('bob', [relay.url], bobOptions);
    await bob.start();
    await exchange('after the backup'); // both ratchets step past what the backup holds
    await bob.close();
    rmSync(nodes.dataDir('bob'), { recursive: true });
    cpSync(backup, nodes.dataDir('bob'), { recursive: true });
    bob = await nodes.open('bob', [relay.url], bobOptions);
    const atBob = collect(bob);
    await bob.start();
    const lost = alice.messaging.send(bobFp, 'into the lost session');
    await eventually(() => (bob.messaging.heldBackCount() > 0 ? true : undefined), 'the unreadable message held back');
    assert.ok(!atBob.some((m) => m.text === 'into the lost session'));

    offset = RETRY_LIMITS.lostSessionAfterMs + 1000;
    bob.maintain();
    assert.equal(bob.messaging.retryStats.requestsSent, 1);
    assert.equal(bob.messaging.heldBackCount(), 0, 'the unreadable events are dropped: their content comes again');
    await eventually(() => (atBob.some((m) => m.text === 'into the lost session') ? true : undefined), 'the message, sent again in a new session', 30_000);
    await eventually(() => (alice.messaging.outgoing(lost.id)?.state === 'delivered' ? true : undefined), 'its receipt', 30_000);
    assert.equal(alice.messaging.retryStats.sessionsRetried, 1);
    assert.equal(atBob.filter((m) => m.text === 'into the lost session').length, 1);
    // The new session works both ways.
    const reply = nextEvent(alice, 'message', (m) => m.text === 'back again');
    bob.messaging.send(aliceFp, 'back again');
    await reply;
    bob.maintain();
    assert.equal(bob.messaging.retryStats.requestsSent, 1, 'asked once');
  });
});
