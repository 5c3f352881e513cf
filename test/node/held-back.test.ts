import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { incoming, publish, relays, sendEach, sentEvents } from '../support/histories.js';
import { eventually, meet, nextEvent, testNodes } from '../support/nodes.js';
import type { TestRelay } from '../support/relay.js';

// A small MAX_SKIP keeps the histories short: any gap of more than 20 messages holds events back.
const SMALL_SKIP = { ratchet: { maxSkip: 20 } };

/**
 * Alice and bob meet on `meeting`; bob reads one message and goes away; alice then sends `count`
 * texts that only her relay has. Returns them and their events.
 */
async function historyWhileAway(t: Parameters<typeof testNodes>[0], meeting: TestRelay, count: number) {
  const nodes = testNodes(t);
  const alice = await nodes.open('alice', [meeting.url]);
  const bob = await nodes.open('bob', [meeting.url], SMALL_SKIP);
  await meet(alice, bob);
  const first = nextEvent(bob, 'message');
  const delivered = nextEvent(alice, 'delivered');
  alice.messaging.send(bob.whoami().fingerprint, 'first');
  await first;
  await delivered;
  bob.messaging.takeUnread();
  await bob.close();
  const texts = Array.from({ length: count }, (_, i) => `m${String(i).padStart(3, '0')}`);
  await sendEach(alice, bob.whoami().fingerprint, texts);
  assert.equal(await alice.drain(10_000), 0);
  const events = sentEvents(alice).slice(-count);
  assert.equal(events.length, count);
  return { nodes, texts, events };
}

describe('held-back events', () => {
  it('survive a restart: the newest part of a history held back, the node restarted, the older part arrives, and everything is delivered once, in order', async (t) => {
    const [meeting, r2] = await relays(t, 2);
    const { nodes, texts, events } = await historyWhileAway(t, meeting!, 60);

    // Bob reads only r2, which has the newest 30: more than MAX_SKIP ahead of him, so they are held back.
    await publish(r2!.url, events.slice(30));
    let bob = await nodes.open('bob', [r2!.url], SMALL_SKIP);
    await bob.start();
    await eventually(() => (bob.messaging.heldBackCount() === 30 ? true : undefined), 'the newest 30 held back');
    assert.equal(incoming(bob).length, 1);
    await bob.close();

    // r2 comes back empty: nothing held back before can come from a relay again, only from bob's store.
    await r2!.stop();
    await r2!.start();
    bob = await nodes.open('bob', [r2!.url], SMALL_SKIP);
    assert.equal(bob.messaging.heldBackCount(), 30, 'the held-back events survived the restart');
    await bob.start();
    await publish(r2!.url, events.slice(0, 30));
    await eventually(() => (incoming(bob).length === 61 ? true : undefined), 'the whole history', 15_000);
    assert.deepEqual(bob.messaging.takeUnread().map((m) => m.text), texts, 'each once, in order');
    assert.equal(new Set(incoming(bob).map((m) => m.id)).size, 61);
    assert.equal(bob.messaging.heldBackCount(), 0);
  });

  it('catch up from a relay with only the newest part, then one with all of it, at a cost in decrypts proportional to the events', async (t) => {
    const [meeting, newest, all] = await relays(t, 3);
    const { nodes, texts, events } = await historyWhileAway(t, meeting!, 100);
    await publish(newest!.url, events.slice(60));
    await publish(all!.url, events);

    const bob = await nodes.open('bob', [newest!.url], SMALL_SKIP);
    await bob.start();
    await eventually(() => (bob.messaging.heldBackCount() === 40 ? true : undefined), 'the newest 40 held back');
    const before = bob.messaging.stats.decryptAttempts;
    bob.addRelay(all!.url);
    await eventually(() => (incoming(bob).length === 101 ? true : undefined), 'the whole history', 15_000);
    assert.deepEqual(bob.messaging.takeUnread().map((m) => m.text), texts);
    assert.equal(bob.messaging.heldBackCount(), 0);
    // 100 events, each decrypted once, and a few tries that fail: not one retry of everything held per message.
    const attempts = bob.messaging.stats.decryptAttempts - before;
    assert.ok(attempts <= 2 * events.length, `${attempts} decrypt attempts for ${events.length} events`);
  });
});
