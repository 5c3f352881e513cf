import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RatchetNode } from '../../src/node/index.js';
import { budgetedCreatedAt, MAX_EVENTS_PER_SECOND, type SecondBudget } from '../../src/nostr/events.js';
import { startCappedRelay } from '../support/capped-relay.js';
import { startTestRelay } from '../support/relay.js';
import { eventually, FAST_TIMING, meet, testNodes } from '../support/nodes.js';

/** The cursor is exact: no margin hides a cursor moved past unread events. */
const NO_MARGIN = { timing: { ...FAST_TIMING, relay: { ...FAST_TIMING?.relay, sinceMarginS: 0 } } };

/**
 * Bob meets alice and goes offline; she sends him `count` messages. With `perSecond` the test sets
 * her clock while she sends, `perSecond` messages in each second, so every second of the backlog
 * fills a relay answer of that size; without, she sends as fast as she can.
 */
async function offlineBacklog(t: { after(fn: () => Promise<void> | void): void }, relayUrl: string, count: number, perSecond: number | null) {
  const nodes = testNodes(t);
  let frozen: number | null = null;
  let offset = 0;
  // The seed format: its created_at is the sender's clock, budgeted per second, which these tests set
  // (and check with no `since` margin); private addressing jitters it (test/node/private-addressing.test.ts).
  const alice = await nodes.open('alice', [relayUrl], { clock: () => frozen ?? Date.now() + offset, addressing: 'seed' });
  const bob = await nodes.open('bob', [relayUrl], NO_MARGIN);
  await meet(alice, bob);
  const bobFp = bob.whoami().fingerprint;
  await bob.close();
  const firstSecond = Math.floor(Date.now() / 1000) + 1;
  const texts: string[] = [];
  for (let i = 0; i < count; i++) {
    if (perSecond !== null) frozen = (firstSecond + Math.floor(i / perSecond)) * 1000;
    texts.push(`backlog ${i}`);
    alice.messaging.send(bobFp, texts[i]!);
    if (i % (perSecond ?? 64) === (perSecond ?? 64) - 1) await new Promise((r) => setImmediate(r));
  }
  // Back to a running clock, never behind the last send.
  if (frozen !== null) offset = frozen + 1000 - Date.now();
  frozen = null;
  assert.equal(await alice.drain(120_000), 0, 'the relay accepted the whole backlog');
  return { texts, firstSecond, reopenBob: () => nodes.open('bob', [relayUrl], NO_MARGIN) };
}

/** Every text exactly once, in send order; stored oldest second first. */
async function assertAllArrived(bob: RatchetNode, texts: readonly string[], storedBySecond = true): Promise<void> {
  const incoming = () => bob.messaging.messages(0, 100_000).filter((m) => m.direction === 'in');
  await eventually(() => (incoming().length >= texts.length ? true : undefined), `${texts.length} messages at bob`, Math.max(60_000, 10 * texts.length));
  const got = incoming();
  assert.equal(got.length, texts.length, 'each message exactly once');
  // Stored (seq order) as sent: relays hand a backlog over newest first and only per second, and the
  // held-back events put each sender's messages in chain order before the ratchet would skip.
  assert.deepEqual(
    got.map((m) => m.body),
    texts,
    'stored in send order',
  );
  // The transport hands a backlog over oldest first: no message is stored before one from an earlier
  // second. (Only where sentAt and created_at share their second, as with a clock set by the test.)
  if (storedBySecond) for (let i = 1; i < got.length; i++) {
    assert.ok(Math.floor(got[i]!.sentAt / 1000) >= Math.floor(got[i - 1]!.sentAt / 1000), `message ${got[i]!.body} stored after a later second`);
  }
}

/** Bob's cursor on the relay: the live one while running, the persisted one while not started. */
function cursor(bob: RatchetNode): number | null {
  return bob.status().relays[0]!.lastSeen;
}

describe('catch-up through a relay that caps its answers', () => {
  it('a sender keeps each created_at second within its budget', () => {
    let budget: SecondBudget | null = null;
    const seconds: number[] = [];
    for (let i = 0; i < 2.5 * MAX_EVENTS_PER_SECOND; i++) {
      const next = budgetedCreatedAt(budget, 10_000_500);
      budget = next.budget;
      seconds.push(Math.floor(next.createdAtMs / 1000));
    }
    const per = (s: number) => seconds.filter((x) => x === s).length;
    assert.deepEqual([per(10_000), per(10_001), per(10_002)], [MAX_EVENTS_PER_SECOND, MAX_EVENTS_PER_SECOND, MAX_EVENTS_PER_SECOND / 2]);
    assert.deepEqual(seconds, [...seconds].sort((a, b) => a - b), 'never earlier than the event before');
    // Once the clock passes the budget's second, events take the clock again.
    assert.equal(budgetedCreatedAt(budget, 10_005_250).createdAtMs, 10_005_250);
    assert.equal(budgetedCreatedAt(null, 7_123).createdAtMs, 7_123);
  });

  it('delivers a backlog that fills a whole relay answer in every second completely, once and in order', async (t) => {
    const relay = await startCappedRelay(50);
    t.after(() => relay.stop());
    const { texts, reopenBob } = await offlineBacklog(t, relay.url, 3000, relay.cap);
    const before = relay.cappedAnswers();
    const bob = await reopenBob();
    await bob.start();
    await assertAllArrived(bob, texts);
    assert.ok(relay.cappedAnswers() - before >= texts.length / relay.cap, 'the catch-up paged through capped answers');
  });

  it('never moves the cursor past an unread backlog: a connection lost and a receiver closed mid-catch-up lose nothing', async (t) => {
    const relay = await startCappedRelay(50);
    t.after(() => relay.stop());
    // Fewer per second than the cap: paging alone gets this backlog; what is tested is the cursor.
    const { texts, firstSecond, reopenBob } = await offlineBacklog(t, relay.url, 2000, 40);

    // The relay drops bob's connection in the middle of his first catch-up, and bob closes in the
    // middle of the one after he reconnects.
    let bob = await reopenBob();
    const before = cursor(bob);
    assert.ok(before !== null && before < firstSecond);
    const atDrop: (number | null)[] = [];
    bob.on('relay', ({ connected }) => connected || atDrop.length > 0 || atDrop.push(cursor(bob)));
    const start = relay.cappedAnswers();
    void relay.at(start + 8, () => relay.dropClients());
    let closed = false;
    void relay.at(start + 30, async () => {
      await bob.close();
      closed = true;
    });
    await bob.start();
    await eventually(() => closed || undefined, 'bob closed mid-catch-up');
    assert.equal(atDrop.length, 1, 'the connection was dropped');
    assert.ok(atDrop[0]! < firstSecond, `cursor ${atDrop[0]} moved into the unread backlog (from ${firstSecond})`);

    bob = await reopenBob();
    const persisted = cursor(bob);
    assert.ok(persisted !== null && persisted < firstSecond, `cursor ${persisted} moved into the unread backlog (from ${firstSecond})`);
    await bob.start();
    await assertAllArrived(bob, texts);
  });

  it('delivers a large backlog sent at full speed to an offline receiver through an independent relay', async (t) => {
    // By hand on 2 cores, 20,000 arrive complete: 104 s to send (snstr sorts its whole store on each
    // event) and 28 s to catch up. The suite runs a smaller one.
    const relay = await startTestRelay();
    t.after(() => relay.stop());
    const { texts, reopenBob } = await offlineBacklog(t, relay.url, 3000, null);
    const bob = await reopenBob();
    await bob.start();
    await assertAllArrived(bob, texts, false);
  });
});

