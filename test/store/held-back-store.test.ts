import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { join } from 'node:path';
import { HeldBackStore, openDatabase } from '../../src/store/index.js';
import { TEST_KDF, tempDir } from '../helpers.js';

const BOUNDS = {
  maxEventsPerSender: 3,
  maxBytesPerSender: 1000,
  maxEvents: 5,
  maxBytes: 2000,
  strangers: { maxEventsPerSender: 2, maxBytesPerSender: 250, maxEvents: 3, maxBytes: 400 },
};
const NONE = { events: 0, bytes: 0 };

const row = (eventId: string, sender: string, heldAt: number, bytes = 100) => ({
  eventId,
  sender,
  // Exactly `bytes` long.
  event: JSON.stringify({ id: eventId, pad: 'x'.repeat(bytes - JSON.stringify({ id: eventId, pad: '' }).length) }),
  heldAt,
  reason: 'TOO_MANY_SKIPPED',
});

describe('held-back store', () => {
  it('keeps events across a reopen, with their sender, time and reason; holding one again only updates its reason', (t) => {
    const path = join(tempDir(t), 'db');
    let db = openDatabase({ path, passphrase: 'p', kdf: TEST_KDF });
    let store = new HeldBackStore(db, BOUNDS);
    assert.deepEqual(store.hold(row('e1', 'alice', 10)), []);
    store.hold(row('e2', 'bob', 11));
    store.hold({ ...row('e1', 'alice', 99), reason: 'NO_SESSION' });
    db.close();

    db = openDatabase({ path, passphrase: 'p', kdf: TEST_KDF });
    store = new HeldBackStore(db, BOUNDS);
    t.after(() => db.close());
    assert.deepEqual(
      store.all().map((r) => [r.eventId, r.sender, r.heldAt, r.reason]),
      [
        ['e1', 'alice', 10, 'NO_SESSION'],
        ['e2', 'bob', 11, 'TOO_MANY_SKIPPED'],
      ],
    );
    assert.equal(JSON.parse(store.all()[0]!.event).id, 'e1');
    assert.deepEqual(store.totals(), { events: 2, bytes: 200, strangers: NONE }, 'the totals are read back too');
    store.remove('e1');
    store.remove('e1');
    assert.deepEqual(store.totals(), { events: 1, bytes: 100, strangers: NONE });
  });

  it('drops the oldest of a sender beyond its count or byte bound, and the oldest of anyone beyond the overall bounds', (t) => {
    const db = openDatabase({ path: ':memory:', kdf: TEST_KDF });
    t.after(() => db.close());
    const store = new HeldBackStore(db, BOUNDS);
    for (let i = 0; i < 3; i++) assert.deepEqual(store.hold(row(`a${i}`, 'alice', i)), []);
    assert.deepEqual(store.hold(row('a3', 'alice', 3)), [{ eventId: 'a0', sender: 'alice', why: 'more than 3 held-back events from one sender' }]);
    // Bytes: one big event of alice's pushes out her two oldest.
    assert.deepEqual(
      store.hold(row('a4', 'alice', 4, 850)).map((d) => [d.eventId, d.why]),
      [
        ['a1', 'more than 3 held-back events from one sender'],
        ['a2', 'more than 1000 bytes of held-back events from one sender'],
      ],
    );
    assert.deepEqual(store.all().map((r) => r.eventId), ['a3', 'a4']);
    // Overall: five events at most; bob's newest pushes out the oldest of anyone (alice's).
    for (let i = 0; i < 3; i++) assert.deepEqual(store.hold(row(`b${i}`, 'bob', 10 + i)), []);
    assert.deepEqual(store.hold(row('c0', 'carol', 20)), [{ eventId: 'a3', sender: 'alice', why: 'more than 5 held-back events of contacts in all' }]);
    assert.deepEqual(store.hold(row('c1', 'carol', 21, 900)).map((d) => [d.eventId, d.why]), [
      ['a4', 'more than 5 held-back events of contacts in all'],
    ]);
    assert.deepEqual(store.totals(), { events: 5, bytes: 1300, strangers: NONE });
    assert.deepEqual(store.all().map((r) => r.eventId), ['b0', 'b1', 'b2', 'c0', 'c1']);
    // An event bigger than its sender's byte bound on its own does not stay.
    assert.deepEqual(store.hold(row('d0', 'dave', 30, 1001)), [{ eventId: 'd0', sender: 'dave', why: 'more than 1000 bytes of held-back events from one sender' }]);
    assert.deepEqual(store.totals(), { events: 5, bytes: 1300, strangers: NONE });
    // Overall bytes: 2000 at most.
    assert.deepEqual(store.hold(row('e0', 'erin', 40, 950)).map((d) => [d.eventId, d.why]), [
      ['b0', 'more than 5 held-back events of contacts in all'],
      ['b1', 'more than 2000 bytes of held-back events of contacts in all'],
      ['b2', 'more than 2000 bytes of held-back events of contacts in all'],
    ]);
    assert.deepEqual(store.totals(), { events: 3, bytes: 1950, strangers: NONE });
    assert.deepEqual(store.all().map((r) => r.eventId), ['c0', 'c1', 'e0']);
  });

  it('keeps senders that are no contact in a pool of their own, which never pushes out a contact\'s events; one that becomes a contact moves out of it', (t) => {
    const path = join(tempDir(t), 'db');
    const contacts = new Set(['alice']);
    let db = openDatabase({ path, passphrase: 'p', kdf: TEST_KDF });
    let store = new HeldBackStore(db, BOUNDS, (s) => !contacts.has(s));
    for (let i = 0; i < 5; i++) assert.deepEqual(store.hold(row(`a${i}`, 'alice', i)).length, i < 3 ? 0 : 1);
    // Junk from many throwaway keys: the pool keeps its newest three, alice keeps her three.
    const dropped = [];
    for (let i = 0; i < 20; i++) dropped.push(...store.hold(row(`x${i}`, `key${i}`, 10 + i)));
    assert.deepEqual(new Set(dropped.map((d) => d.why)), new Set(['more than 3 held-back events of senders that are no contact in all']));
    assert.ok(dropped.every((d) => d.sender !== 'alice'));
    assert.deepEqual(store.all().map((r) => r.eventId), ['a2', 'a3', 'a4', 'x17', 'x18', 'x19']);
    assert.deepEqual(store.totals(), { events: 6, bytes: 600, strangers: { events: 3, bytes: 300 } });
    // Per stranger: two events and 250 bytes.
    assert.deepEqual(store.hold(row('y0', 'mallory', 40, 200)), [{ eventId: 'x17', sender: 'key17', why: 'more than 3 held-back events of senders that are no contact in all' }]);
    assert.deepEqual(store.hold(row('y1', 'mallory', 41, 100)), [{ eventId: 'y0', sender: 'mallory', why: 'more than 250 bytes of held-back events from one sender' }]);
    assert.deepEqual(store.totals().strangers, { events: 3, bytes: 300 });

    // key19 becomes a contact (a key exchange): its event joins the contacts' pool, which has room.
    contacts.add('key19');
    assert.deepEqual(store.reclassify('key19'), []);
    assert.deepEqual(store.totals(), { events: 6, bytes: 600, strangers: { events: 2, bytes: 200 } });
    db.close();

    // Read back after a restart, the pools are those of now (key18 became a contact meanwhile); a smaller bound trims the oldest.
    contacts.add('key18');
    db = openDatabase({ path, passphrase: 'p', kdf: TEST_KDF });
    t.after(() => db.close());
    store = new HeldBackStore(db, { ...BOUNDS, maxEvents: 4 }, (s) => !contacts.has(s));
    assert.deepEqual(store.totals(), { events: 6, bytes: 600, strangers: { events: 1, bytes: 100 } });
    assert.deepEqual(store.trim(), [{ eventId: 'a2', sender: 'alice', why: 'more than 4 held-back events of contacts in all' }]);
    assert.deepEqual([...store.ids()].map((r) => r.eventId), ['a3', 'a4', 'x18', 'x19', 'y1']);
  });
});
