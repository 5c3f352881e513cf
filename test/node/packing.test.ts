import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemRng } from '../../src/crypto/index.js';
import type { RatchetNode } from '../../src/node/index.js';
import { decodeBase64Content, type Event, RENDEZVOUS_TAG } from '../../src/nostr/events.js';
import { decodePackedFrame, isPackedMailboxEvent, packedMailboxEvent, packPartId } from '../../src/nostr/pack.js';
import { unpadFrame } from '../../src/nostr/padding.js';
import { startEvilRelay } from '../support/evil-relay.js';
import { incoming, publish, sendEach } from '../support/histories.js';
import { eventually, meet, nextEvent, relayAndNodes } from '../support/nodes.js';
import type { TestRelay } from '../support/relay.js';

type Teardown = { after(fn: () => Promise<void> | void): void };

/** Alice and bob have talked both ways, so alice writes to bob's mailbox. */
async function talking(t: Teardown) {
  const { relay, nodes } = await relayAndNodes(t);
  const alice = await nodes.open('alice', [relay.url]);
  const bob = await nodes.open('bob', [relay.url]);
  await meet(alice, bob);
  const bobFp = bob.whoami().fingerprint;
  const hello = nextEvent(bob, 'message');
  const helloDelivered = nextEvent(alice, 'delivered');
  alice.messaging.send(bobFp, 'hello');
  await hello;
  const reply = nextEvent(alice, 'message');
  const replyDelivered = nextEvent(bob, 'delivered');
  bob.messaging.send(alice.whoami().fingerprint, 'hello alice');
  await reply;
  // Both receipts are in: nothing else of theirs waits in an outbox.
  await Promise.all([helloDelivered, replyDelivered]);
  return { relay, nodes, alice, bob, bobFp };
}

/** The events the relay's clients published, as the relay received them (each once). */
function published(relay: TestRelay): Event[] {
  const byId = new Map<string, Event>();
  for (const c of relay.accepted())
    for (const f of c.frames) {
      if (!f.startsWith('["EVENT"')) continue;
      const e = (JSON.parse(f) as [string, Event])[1];
      byId.set(e.id, e);
    }
  return [...byId.values()];
}

const texts = (n: number, what: string) => Array.from({ length: n }, (_, i) => `${what} ${i}`);

/** Sends every text in one turn of the event loop: the next flush finds them all waiting. */
const sendAll = (alice: RatchetNode, bobFp: string, list: readonly string[]) => list.map((text) => alice.messaging.send(bobFp, text).id);

describe('packing: several envelopes for one mailbox in one event', () => {
  it('a burst arrives complete, once, in order, in fewer events than messages; each message is sent, and sent is emitted for each', async (t) => {
    const { relay, alice, bob, bobFp } = await talking(t);
    const before = new Set(published(relay).map((e) => e.id));
    const burst = texts(40, 'burst');
    const sent = new Set<string>();
    alice.on('sent', (m) => sent.add(m.id));
    const got: string[] = [];
    bob.on('message', (m) => got.push(m.text));
    const ids = sendAll(alice, bobFp, burst);
    await eventually(() => (got.length >= burst.length && ids.every((id) => sent.has(id)) ? true : undefined), 'the burst at bob, and sent at alice');
    assert.deepEqual(got, burst, 'once each, in order');
    for (const id of ids) assert.equal(alice.messaging.outgoing(id)?.state === 'sent' || alice.messaging.outgoing(id)?.state === 'delivered', true);
    const packs = published(relay).filter((e) => !before.has(e.id) && isPackedMailboxEvent(e));
    const carried = packs.reduce((n, e) => n + decodePackedFrame(unpadFrame(decodeBase64Content(e.content, 'test'))).length, 0);
    assert.ok(packs.length > 0 && packs.length < burst.length, `${packs.length} packed events`);
    assert.ok(carried >= burst.length, `the packs carried ${carried} envelopes (texts, and receipts both ways)`);
    assert.equal(incoming(bob).filter((m) => burst.includes(m.body)).length, burst.length, 'stored once each');
  });

  it('a pack with one altered envelope delivers the others; the altered one is refused under its part id and changes nothing; the pack again delivers nothing twice', async (t) => {
    const { relay, nodes, alice, bob, bobFp } = await talking(t);
    await bob.close();
    const before = new Set(published(relay).map((e) => e.id));
    const burst = texts(5, 'packed');
    sendAll(alice, bobFp, burst);
    assert.equal(await alice.drain(20_000), 0);
    const [genuine, ...others] = published(relay).filter((e) => !before.has(e.id) && isPackedMailboxEvent(e));
    assert.ok(genuine && others.length === 0, 'the five went out in one pack');
    const envelopes = decodePackedFrame(unpadFrame(decodeBase64Content(genuine.content, 'test')));
    assert.equal(envelopes.length, burst.length);
    // The relay forgets the genuine pack; it serves a copy whose last envelope has its AEAD tag altered.
    await relay.stop();
    await relay.start();
    const altered = envelopes.map((e) => e.slice());
    altered[4]![altered[4]!.length - 1]! ^= 1;
    const tag = genuine.tags.find((x) => x[0] === RENDEZVOUS_TAG)![1]!;
    const forged = packedMailboxEvent(tag, altered, systemRng, Date.now());
    await publish(relay.url, [forged]);

    const again = await nodes.open('bob', [relay.url]);
    const got: string[] = [];
    again.on('message', (m) => got.push(m.text));
    const rejected: string[] = [];
    again.on('rejected', (r) => r.eventId && rejected.push(r.eventId));
    await again.start();
    await eventually(() => (got.length >= 4 && rejected.includes(packPartId(forged.id, 4)) ? true : undefined), 'four delivered, the fifth refused');
    assert.deepEqual(got, burst.slice(0, 4));
    // Its failed decrypt moved nothing: the genuine fifth still opens; the four already delivered are not delivered again.
    await publish(relay.url, [genuine]);
    await eventually(() => (got.length >= 5 ? true : undefined), 'the genuine fifth');
    assert.deepEqual(got, burst);
    // The same pack once more (a second relay, a retry): nothing is delivered twice.
    await relay.stop();
    await relay.start();
    await publish(relay.url, [genuine]);
    const marker = nextEvent(again, 'message');
    alice.messaging.send(bobFp, 'after the copies');
    assert.equal((await marker)[0].text, 'after the copies');
    assert.deepEqual(got, [...burst, 'after the copies']);
    assert.equal(incoming(again).filter((m) => burst.includes(m.body)).length, burst.length);
  });

  it('the envelopes of a pack that must wait for earlier messages are held back each under its part id, across a restart', async (t) => {
    const { relay, nodes, alice, bob, bobFp } = await talking(t);
    await bob.close();
    const before = new Set(published(relay).map((e) => e.id));
    // More than bob's MAX_SKIP (below) before the pack: it cannot be read before them.
    const earlierTexts = texts(3, 'earlier');
    await sendEach(alice, bobFp, earlierTexts);
    const earlier = published(relay).filter((e) => !before.has(e.id));
    const burst = texts(3, 'later');
    sendAll(alice, bobFp, burst);
    assert.equal(await alice.drain(20_000), 0);
    const [pack, ...others] = published(relay).filter((e) => !before.has(e.id) && isPackedMailboxEvent(e));
    assert.ok(earlier.length === 3 && !earlier.some(isPackedMailboxEvent) && pack && others.length === 0);
    // The relay forgets both, then has only the pack: its three envelopes come after one bob has not read.
    await relay.stop();
    await relay.start();
    await publish(relay.url, [pack]);
    const SMALL_SKIP = { ratchet: { maxSkip: 2 } };
    let again = await nodes.open('bob', [relay.url], SMALL_SKIP);
    await again.start();
    await eventually(() => (again.messaging.heldBackCount() === 3 ? true : undefined), 'three envelopes held back');
    const heldIds = () => (again.store.db.prepare('SELECT event_id FROM held_back ORDER BY event_id').all() as { event_id: string }[]).map((r) => r.event_id);
    assert.deepEqual(heldIds(), [0, 1, 2].map((i) => packPartId(pack.id, i)).sort());
    await again.close();
    again = await nodes.open('bob', [relay.url], SMALL_SKIP);
    assert.equal(again.messaging.heldBackCount(), 3, 'they survived the restart');
    const got: string[] = [];
    again.on('message', (m) => got.push(m.text));
    await again.start();
    await publish(relay.url, earlier);
    await eventually(() => (got.length >= 6 ? true : undefined), 'the earlier messages, then the held-back ones');
    // Each once; in order by the sender's clock (a held-back one may be read before the last of a gap within MAX_SKIP).
    assert.deepEqual([...got].sort(), [...earlierTexts, ...burst].sort());
    assert.deepEqual(
      again.messaging.takeUnread().map((m) => m.text).slice(-6),
      [...earlierTexts, ...burst],
    );
    assert.equal(again.messaging.heldBackCount(), 0);
  });

  it('envelopes queued unsigned survive a restart before the flush, and go out packed', async (t) => {
    const { relay, nodes, alice, bob, bobFp } = await talking(t);
    await relay.stop();
    await eventually(() => (alice.status().relays.every((r) => !r.connected) ? true : undefined), 'alice offline');
    const burst = texts(6, 'queued');
    sendAll(alice, bobFp, burst);
    assert.equal(alice.outbox.pending(), burst.length, 'six envelopes wait, unsigned');
    assert.equal((alice.store.db.prepare('SELECT count(*) AS n FROM outbox_envelopes').get() as { n: number }).n, burst.length);
    await alice.close();
    const before = new Set(published(relay).map((e) => e.id));
    await relay.start();
    const got: string[] = [];
    bob.on('message', (m) => got.push(m.text));
    const reopened = await nodes.open('alice', [relay.url]);
    await reopened.start();
    await eventually(() => (got.length >= burst.length ? true : undefined), 'the queued texts at bob');
    assert.deepEqual(got, burst);
    const packs = published(relay).filter((e) => !before.has(e.id) && isPackedMailboxEvent(e));
    assert.ok(packs.length >= 1, 'sent packed');
    assert.equal(reopened.outbox.pending(), 0);
  });

  it('when every relay refuses a pack for good, each message in it fails with the reason', async (t) => {
    const seen: Event[] = [];
    const refusing = await startEvilRelay({ refuse: 'blocked: members only', onPublish: (e) => seen.push(e as unknown as Event) });
    t.after(() => refusing.close());
    const { relay, alice, bobFp } = await talking(t);
    alice.addRelay(refusing.url);
    alice.removeRelay(relay.url);
    await eventually(() => (alice.status().relays.every((r) => r.url === refusing.url && r.connected) ? true : undefined), 'only the refusing relay');
    const failed: { ids: readonly string[]; reason: string }[] = [];
    alice.on('failed', (f) => failed.push(f));
    const ids = sendAll(alice, bobFp, texts(3, 'refused'));
    await eventually(() => (failed.length >= ids.length ? true : undefined), 'three failures');
    assert.deepEqual(failed.map((f) => f.ids).flat().sort(), [...ids].sort(), 'one failed event per message');
    for (const f of failed) assert.match(f.reason, /every relay refused it .*blocked: members only/);
    for (const id of ids) assert.equal(alice.messaging.outgoing(id)?.state, 'failed');
    assert.ok(seen.some((e) => isPackedMailboxEvent(e)), 'they went in a pack');
    await eventually(() => (alice.outbox.pending() === 0 ? true : undefined), 'given up');
  });
});
