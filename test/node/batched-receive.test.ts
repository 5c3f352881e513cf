import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemRng } from '../../src/crypto/index.js';
import type { RatchetNode } from '../../src/node/index.js';
import { decodeBase64Content, type Event, KIND_MESSAGE, RENDEZVOUS_TAG, signEvent, throwawayKey } from '../../src/nostr/events.js';
import { padFrame, unpadFrame } from '../../src/nostr/padding.js';
import { incoming, publish, sendEach, sentEvents } from '../support/histories.js';
import { eventually, meet, nextEvent, relayAndNodes } from '../support/nodes.js';

const BACKLOG = 150;

/** Alice and bob have talked both ways (so alice writes to bob's mailbox), then bob is away while she sends `count` texts. */
async function backlogWhileAway(t: { after(fn: () => Promise<void> | void): void }, count: number) {
  const { relay, nodes } = await relayAndNodes(t);
  const alice = await nodes.open('alice', [relay.url]);
  let bob: RatchetNode = await nodes.open('bob', [relay.url]);
  await meet(alice, bob);
  const bobFp = bob.whoami().fingerprint;
  const hello = nextEvent(bob, 'message');
  alice.messaging.send(bobFp, 'hello');
  await hello;
  const reply = nextEvent(alice, 'message');
  bob.messaging.send(alice.whoami().fingerprint, 'hello alice');
  await reply;
  await bob.close();
  const before = sentEvents(alice).length;
  const texts = Array.from({ length: count }, (_, i) => `away ${i}`);
  // One event each: the test is of a backlog of events that the relay hands over by created_at.
  await sendEach(alice, bobFp, texts);
  assert.equal(await alice.drain(60_000), 0, 'the relay accepted the backlog');
  const events = sentEvents(alice).slice(before);
  assert.equal(events.length, count);
  return { relay, texts, events, reopenBob: async () => (bob = await nodes.open('bob', [relay.url])) };
}

/** A copy of a mailbox event whose envelope has its last byte (the body's AEAD tag) altered: its header still opens. */
function forgedCopy(event: Event, createdAtS: number): Event {
  const envelope = unpadFrame(decodeBase64Content(event.content, 'test'));
  envelope[envelope.length - 1]! ^= 1;
  const tag = event.tags.find((x) => x[0] === RENDEZVOUS_TAG)!;
  return signEvent(KIND_MESSAGE, [tag], Buffer.from(padFrame(envelope)).toString('base64'), throwawayKey(systemRng), createdAtS * 1000);
}

describe('incoming events handled in batches', () => {
  it('a backlog handed over by created_at, which private addressing jitters, is decrypted in chain order: every message once, none held back', async (t) => {
    const { texts, reopenBob } = await backlogWhileAway(t, BACKLOG);
    const bob = await reopenBob();
    await bob.start();
    await eventually(() => (incoming(bob).length >= BACKLOG + 1 ? true : undefined), 'the backlog at bob', 60_000);
    // In created_at order (jittered by minutes) nearly every message would wait for earlier ones.
    assert.equal(bob.messaging.stats.heldBack, 0, 'no message waited: the batch went in chain order');
    assert.deepEqual(bob.messaging.takeUnread().map((m) => m.text).slice(1), texts);
    // The backlog, and perhaps alice's receipt for bob's reply: each decrypted once.
    assert.ok(bob.messaging.stats.decryptAttempts <= BACKLOG + 1, `${bob.messaging.stats.decryptAttempts} decrypts for ${BACKLOG} messages`);
  });

  it('in one batch, an altered copy of a message, handled first, is refused and changes nothing: the genuine one and all the others are delivered', async (t) => {
    const { relay, texts, events, reopenBob } = await backlogWhileAway(t, BACKLOG);
    // Older than every genuine event: the relay hands it over first, and it takes the genuine first message's place in the chain.
    const oldest = Math.min(...events.map((e) => e.created_at));
    const forged = forgedCopy(events[0]!, oldest - 1);
    await publish(relay.url, [forged]);
    const bob = await reopenBob();
    const rejected: string[] = [];
    bob.on('rejected', (r) => r.eventId && rejected.push(r.eventId));
    await bob.start();
    await eventually(() => (incoming(bob).length >= BACKLOG + 1 ? true : undefined), 'the backlog at bob', 60_000);
    await eventually(() => (rejected.includes(forged.id) ? true : undefined), 'the altered copy refused');
    // Had its failed decrypt moved the ratchet, the genuine first message (same position) could not open.
    assert.deepEqual(bob.messaging.takeUnread().map((m) => m.text).slice(1), texts);
    assert.equal(incoming(bob).filter((m) => m.body === texts[0]).length, 1);
    assert.ok(!rejected.some((id) => events.some((e) => e.id === id)), 'no genuine event was refused');
  });

  it('one receipt acknowledges a burst: every message of it becomes delivered', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    const bob = await nodes.open('bob', [relay.url]);
    await meet(alice, bob);
    const bobFp = bob.whoami().fingerprint;
    const delivered = new Set<string>();
    let largest = 0;
    alice.on('delivered', (d) => {
      d.ids.forEach((id) => delivered.add(id));
      largest = Math.max(largest, d.ids.length);
    });
    const ids = Array.from({ length: 40 }, (_, i) => alice.messaging.send(bobFp, `burst ${i}`).id);
    await eventually(() => (ids.every((id) => delivered.has(id)) ? true : undefined), 'every receipt at alice', 30_000);
    for (const id of ids) assert.equal(alice.messaging.outgoing(id)?.state, 'delivered');
    const receipts = (bob.store.db.prepare("SELECT count(*) AS n FROM outbox WHERE purpose = 'receipt'").get() as { n: number }).n;
    assert.ok(receipts < ids.length, `${receipts} receipt events for ${ids.length} messages`);
    assert.ok(largest > 1, 'one receipt named several messages');
  });
});
