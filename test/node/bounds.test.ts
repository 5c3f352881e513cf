import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Event, finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import { HELD_BACK_LIMITS, SEEN_LIMITS } from '../../src/limits.js';
import type { RatchetNode } from '../../src/node/index.js';
import { KIND_MESSAGE } from '../../src/nostr/events.js';
import { decodeEnvelope, encodeEnvelope, type MessageEnvelope } from '../../src/session/index.js';
import { startEvilRelay } from '../support/evil-relay.js';
import { incoming, publish, relays, sentEvents } from '../support/histories.js';
import { eventually, meet, nextEvent, testNodes } from '../support/nodes.js';

// A small MAX_SKIP keeps the history short: a gap of more than 20 messages holds events back.
const SMALL_SKIP = { ratchet: { maxSkip: 20 } };
const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

/** What `node` holds back from senders other than `contact`, in all and from the one that holds most. */
function heldFromOthers(node: RatchetNode, contact: string) {
  const q = (sql: string) => node.store.db.prepare(sql).get(contact) as { n: number; bytes: number | null };
  const all = q('SELECT count(*) AS n, sum(bytes) AS bytes FROM held_back WHERE sender != ?');
  const most = q('SELECT max(n) AS n, max(bytes) AS bytes FROM (SELECT count(*) AS n, sum(bytes) AS bytes FROM held_back WHERE sender != ? GROUP BY sender)');
  return { events: all.n, bytes: all.bytes ?? 0, mostEvents: most.n ?? 0, mostBytes: most.bytes ?? 0 };
}

const rowsOf = (node: RatchetNode, table: string) => (node.store.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

describe('bounds by bytes', () => {
  it('junk from throwaway keys stays within the quota of senders that are no contact, and a contact\'s held-back backlog survives it and is delivered', async (t) => {
    const [meeting, r2] = await relays(t, 2);
    const evil = await startEvilRelay();
    t.after(() => evil.close());
    const nodes = testNodes(t);
    // Seed format: the junk below is made from alice's events, whose content is then a bare envelope.
    const alice = await nodes.open('alice', [meeting!.url], { addressing: 'seed' });
    let bob = await nodes.open('bob', [meeting!.url], SMALL_SKIP);
    await meet(alice, bob);
    const first = nextEvent(bob, 'message');
    alice.messaging.send(bob.whoami().fingerprint, 'first');
    await first;
    await bob.close();
    // While bob is away, alice writes 40 texts, the first one near the size limit; r2 gets only the newest
    // 15, more than MAX_SKIP ahead of bob, so that they are held back.
    const texts = ['x'.repeat(60_000), ...Array.from({ length: 39 }, (_, i) => `m${String(i).padStart(2, '0')}`)];
    for (const text of texts) alice.messaging.send(bob.whoami().fingerprint, text);
    assert.equal(await alice.drain(10_000), 0);
    const events = sentEvents(alice).slice(-40);
    await publish(r2!.url, events.slice(25));
    bob = await nodes.open('bob', [r2!.url, evil.url], SMALL_SKIP);
    await bob.start();
    await eventually(() => (bob.messaging.heldBackCount() === 15 ? true : undefined), "alice's newest 15 held back");

    // The flood: alice's ratchet messages in normal envelopes, signed by throwaway keys, so each is a
    // valid-looking message from a stranger ("no session, retry later"). Big ones from 60 keys, two
    // each; more than its quota from one key; more than the quota's count, one event each from as many keys.
    const normal = (e: Event) => {
      const envelope = decodeEnvelope(Buffer.from(e.content, 'base64'));
      assert.notEqual(envelope.type, 'retry-request');
      return Buffer.from(encodeEnvelope({ type: 'normal', message: (envelope as MessageEnvelope).message })).toString('base64');
    };
    const big = normal(events[0]!);
    const small = normal(events[10]!);
    const now = Math.floor(Date.now() / 1000);
    let n = 0; // a new created_at each, so that events of one key differ
    const junk = (content: string, key = generateSecretKey()) =>
      finalizeEvent({ kind: KIND_MESSAGE, created_at: now - n++, tags: [['p', bob.selfNostr]], content }, key);
    const flood: Event[] = [];
    for (let i = 0; i < 60; i++) {
      const key = generateSecretKey();
      flood.push(junk(big, key), junk(big, key));
    }
    const busy = generateSecretKey();
    for (let i = 0; i < HELD_BACK_LIMITS.strangers.maxEventsPerSender + 50; i++) flood.push(junk(small, busy));
    for (let i = 0; i < HELD_BACK_LIMITS.strangers.maxEvents + 100; i++) flood.push(junk(small));
    const floodBytes = flood.reduce((sum, e) => sum + JSON.stringify(e).length, 0);
    // Each junk event is reported once ("kept for a retry") as it is held back.
    const ids = new Set(flood.map((e) => e.id));
    assert.equal(ids.size, flood.length, 'every junk event is a new one');
    const handled = new Set<string>();
    bob.on('rejected', (r) => r.eventId && ids.has(r.eventId) && handled.add(r.eventId));
    for (const e of flood) evil.push(e as unknown as Record<string, unknown>);
    await eventually(() => (handled.size === flood.length ? true : undefined), 'the flood handled', 30_000);

    const s = HELD_BACK_LIMITS.strangers;
    const held = heldFromOthers(bob, alice.selfNostr);
    assert.ok(floodBytes > 2 * s.maxBytes, `the flood (${floodBytes} bytes) is more than the quota`);
    assert.ok(held.events <= s.maxEvents && held.bytes <= s.maxBytes, `strangers hold ${held.events} events, ${held.bytes} bytes`);
    assert.ok(held.mostEvents <= s.maxEventsPerSender && held.mostBytes <= s.maxBytesPerSender, `one stranger holds ${held.mostEvents} events, ${held.mostBytes} bytes`);
    assert.equal(held.events, s.maxEvents, 'the newest junk is what stays');
    assert.equal(bob.messaging.heldBackCount() - held.events, 15, "alice's held-back events are all still there");

    // The older part of alice's history arrives: all of it is delivered, once.
    await publish(r2!.url, events.slice(0, 25));
    await eventually(() => (incoming(bob).length === 41 ? true : undefined), "alice's whole history", 15_000);
    const got = incoming(bob);
    assert.deepEqual(got.sort((a, b) => a.sentAt - b.sentAt).map((m) => m.body), ['first', ...texts]);
    assert.equal(new Set(got.map((m) => m.id)).size, 41, 'each once');
    assert.equal(bob.messaging.heldBackCount(), held.events, 'only junk is left');
  });

  it('forgets refused ids after a day and the rest after 30 days once every cursor is past them; a delivered event replayed after that is refused, not delivered again', async (t) => {
    const [honest] = await relays(t, 1);
    const evil = await startEvilRelay();
    t.after(() => evil.close());
    const nodes = testNodes(t);
    let offset = 0;
    const alice = await nodes.open('alice', [honest!.url]);
    const bob = await nodes.open('bob', [honest!.url, evil.url], { clock: () => Date.now() + offset });
    await meet(alice, bob);
    const first = nextEvent(bob, 'message');
    alice.messaging.send(bob.whoami().fingerprint, 'the only real message');
    await first;
    await alice.drain(5000);
    const [real] = sentEvents(alice);
    const seen = (id: string) => bob.store.db.prepare('SELECT outcome FROM seen_events WHERE id = ?').get(id) as { outcome: string } | undefined;
    assert.equal(seen(real!.id)?.outcome, 'delivered');

    // Junk that is refused at once (not base64), from throwaway keys.
    const now = Math.floor(Date.now() / 1000);
    const junk = Array.from({ length: 50 }, () =>
      finalizeEvent({ kind: KIND_MESSAGE, created_at: now, tags: [['p', bob.selfNostr]], content: '!!! junk !!!' }, generateSecretKey()),
    );
    for (const e of junk) evil.push(e as unknown as Record<string, unknown>);
    await eventually(() => (seen(junk.at(-1)!.id) ? true : undefined), 'the junk refused');
    assert.match(seen(junk[0]!.id)!.outcome, /^rejected: MALFORMED/);
    const before = rowsOf(bob, 'seen_events');

    // A day later: the refused ids are gone, the delivered one stays.
    offset = SEEN_LIMITS.rejectedMs + HOUR_MS;
    bob.maintain();
    assert.equal(seen(junk[0]!.id), undefined);
    assert.equal(seen(real!.id)?.outcome, 'delivered');
    assert.equal(rowsOf(bob, 'seen_events'), before - junk.length);

    // 31 days later, but one relay (evil, say) was never read to the end: its whole history may come again, so the id stays.
    offset = SEEN_LIMITS.keptMs + DAY_MS;
    const cursors = bob.store.db.prepare('UPDATE relays SET last_seen_at = ? WHERE url = ?');
    cursors.run(null, evil.url);
    bob.maintain();
    assert.equal(seen(real!.id)?.outcome, 'delivered');
    // Every cursor is now past it (as after a month of traffic): it is forgotten, and the table shrinks.
    const later = Math.floor((Date.now() + offset) / 1000);
    for (const url of [honest!.url, evil.url]) cursors.run(later, url);
    bob.maintain();
    assert.equal(seen(real!.id), undefined);
    assert.ok(rowsOf(bob, 'seen_events') < before - junk.length, 'the table shrank');

    // A relay that ignores `since` replays it. The ratchet has used that message's key (DUPLICATE_MESSAGE),
    // so it is refused, and nothing is delivered a second time.
    let delivered = 0;
    bob.on('message', () => delivered++);
    const refused = nextEvent(bob, 'rejected', (r) => r.eventId === real!.id, 5000);
    evil.push(real as unknown as Record<string, unknown>);
    assert.match((await refused)[0].reason, /DUPLICATE_MESSAGE/);
    assert.match(seen(real!.id)!.outcome, /^rejected: DUPLICATE_MESSAGE/);
    assert.equal(delivered, 0);
    assert.equal(incoming(bob).length, 1);
  });
});
