import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fromUtf8, utf8 } from '../src/crypto/index.js';
import { isRatchetRelayError, RatchetRelayError } from '../src/errors.js';
import { formatSafetyNumber, safetyNumber } from '../src/identity/index.js';
import { decodePreKeyBundle, encodePreKeyBundle, type PreKeyBundle } from '../src/prekeys/index.js';
import { SESSION_LIMITS } from '../src/limits.js';
import { MIGRATIONS } from '../src/store/migrations.js';
import { migrate, openDatabase } from '../src/store/index.js';
import { DAY, makeParty, type Party, TestClock, tempDir } from './helpers.js';

function rejects(fn: () => unknown, code: RatchetRelayError['code'], message?: RegExp): void {
  assert.throws(fn, (e: unknown) => isRatchetRelayError(e, code) && (!message || message.test((e as Error).message)), `expected ${code}`);
}

/** What a peer gets from a relay: the bundle's bytes, decoded by the validating decoder. */
function fetchBundle(p: Party): PreKeyBundle {
  return decodePreKeyBundle(encodePreKeyBundle(p.cipher.bundle()));
}

/** Everything observable about a party's persistent state, for "nothing changed" assertions. */
function snapshot(p: Party): unknown {
  const db = p.store.db;
  return ['sessions', 'skipped_keys', 'one_time_prekeys', 'signed_prekeys', 'kyber_prekeys', 'bundle_meta', 'accepted_first_messages'].map((t) =>
    db.prepare(`SELECT * FROM ${t} ORDER BY rowid`).all(),
  );
}

function countSkipped(p: Party): number {
  return (p.store.db.prepare('SELECT count(*) AS n FROM skipped_keys').get() as { n: number }).n;
}

function converse(a: Party, b: Party, rounds = 3): void {
  for (let i = 0; i < rounds; i++) {
    const toB = a.cipher.encrypt(b.fingerprint, utf8(`a->b ${i}`));
    assert.equal(fromUtf8(b.cipher.decrypt(toB, { from: a.fingerprint }).plaintext), `a->b ${i}`);
    const toA = b.cipher.encrypt(a.fingerprint, utf8(`b->a ${i}`));
    assert.equal(fromUtf8(a.cipher.decrypt(toA, { from: b.fingerprint }).plaintext), `b->a ${i}`);
  }
}

describe('PQXDH sessions from pre-key bundles', () => {
  it('starts a session from a bundle with a one-time pre-key, consuming it', () => {
    const clock = new TestClock();
    const alice = makeParty('alice', clock);
    const bob = makeParty('bob', clock);
    const bundle = fetchBundle(bob);
    assert.equal(bundle.oneTimePreKeys.length, 5);
    alice.cipher.startSession(bundle);
    const first = alice.cipher.encrypt(bob.fingerprint, utf8('hello Bob'));
    const d = bob.cipher.decrypt(first);
    assert.equal(fromUtf8(d.plaintext), 'hello Bob');
    assert.equal(d.peerFingerprint, alice.fingerprint);
    assert.ok(d.newSession && d.consumedOneTimePreKey);
    assert.equal(bob.store.loadPreKeyState().oneTime.length, 99);
    converse(alice, bob);
  });

  it('starts a session from a bundle without one-time pre-keys', () => {
    const clock = new TestClock();
    const alice = makeParty('alice', clock);
    const bob = makeParty('bob', clock, { preKeys: { oneTimeKeysPerBundle: 0 } });
    const bundle = fetchBundle(bob);
    assert.equal(bundle.oneTimePreKeys.length, 0);
    alice.cipher.startSession(bundle);
    const d = bob.cipher.decrypt(alice.cipher.encrypt(bob.fingerprint, utf8('no one-time key')));
    assert.equal(fromUtf8(d.plaintext), 'no one-time key');
    assert.equal(d.consumedOneTimePreKey, false);
    assert.equal(bob.store.loadPreKeyState().oneTime.length, 100);
    converse(alice, bob);
  });

  it('rejects a bundle whose signatures do not verify', () => {
    const clock = new TestClock();
    const bob = makeParty('bob', clock);
    const bytes = encodePreKeyBundle(bob.cipher.bundle());
    const spkSignatureAt = bytes.length - 1 - 5 * 36 - 64 - 8 - 1568 - 4 - 64 + 10;
    const kpkSignatureAt = bytes.length - 1 - 5 * 36 - 64 + 10;
    const identityAt = 10;
    for (const [at, message] of [
      [spkSignatureAt, /signed pre-key/],
      [kpkSignatureAt, /Kyber pre-key/],
      [identityAt, /self-signature/],
    ] as const) {
      const bad = bytes.slice();
      bad[at]! ^= 0x04;
      rejects(() => decodePreKeyBundle(bad), 'BAD_SIGNATURE', message);
    }
  });

  it('consumes a one-time pre-key exactly once: a second initial message that uses it is rejected, with nothing changed', () => {
    const clock = new TestClock();
    const bob = makeParty('bob', clock, { preKeys: { oneTimeKeysPerBundle: 1 } });
    const alice = makeParty('alice', clock);
    const carol = makeParty('carol', clock);
    const bundle = fetchBundle(bob); // both read the same bundle: one one-time key on offer
    alice.cipher.startSession(bundle);
    carol.cipher.startSession(bundle);
    bob.cipher.decrypt(alice.cipher.encrypt(bob.fingerprint, utf8('from alice')));
    const before = snapshot(bob);
    rejects(() => bob.cipher.decrypt(carol.cipher.encrypt(bob.fingerprint, utf8('from carol'))), 'ONE_TIME_PREKEY_USED');
    assert.deepEqual(snapshot(bob), before);
  });

  it('keeps accepting the initiator header until the responder replies, and rejects a replayed initial message', () => {
    const clock = new TestClock();
    const alice = makeParty('alice', clock);
    const bob = makeParty('bob', clock);
    alice.cipher.startSession(fetchBundle(bob));
    const m1 = alice.cipher.encrypt(bob.fingerprint, utf8('one'));
    const m2 = alice.cipher.encrypt(bob.fingerprint, utf8('two'));
    assert.equal(fromUtf8(bob.cipher.decrypt(m2).plaintext), 'two');
    const d1 = bob.cipher.decrypt(m1);
    assert.equal(fromUtf8(d1.plaintext), 'one');
    assert.equal(d1.newSession, false, 'the second initial message joins the session of the first');
    const before = snapshot(bob);
    assert.throws(() => bob.cipher.decrypt(m1), RatchetRelayError);
    assert.deepEqual(snapshot(bob), before);
  });

  it('refuses a replayed initial message without a one-time key after newer sessions evicted its own', () => {
    const clock = new TestClock();
    const alice = makeParty('alice', clock);
    const bob = makeParty('bob', clock, { preKeys: { oneTimeKeysPerBundle: 0 } });
    const bundle = fetchBundle(bob);
    alice.cipher.startSession(bundle);
    const first = alice.cipher.encrypt(bob.fingerprint, utf8('first'));
    bob.cipher.decrypt(first);
    for (let i = 0; i < SESSION_LIMITS.maxSessionsPerPeer; i++) {
      clock.advance(1000);
      alice.cipher.startSession(bundle);
      assert.equal(bob.cipher.decrypt(alice.cipher.encrypt(bob.fingerprint, utf8(`newer ${i}`))).newSession, true);
    }
    assert.equal(bob.store.loadSessions(alice.fingerprint).length, SESSION_LIMITS.maxSessionsPerPeer, 'the first session was evicted');
    const before = snapshot(bob);
    assert.equal(bob.cipher.peekInitialPosition(first), null);
    rejects(() => bob.cipher.decrypt(first), 'DUPLICATE_MESSAGE');
    assert.deepEqual(snapshot(bob), before, 'nothing changed: the stale session did not come back');
    converse(alice, bob, 1);
  });

  it('settles crossed initiations: both start sessions at once and conversation still works', () => {
    const clock = new TestClock();
    const alice = makeParty('alice', clock);
    const bob = makeParty('bob', clock);
    alice.cipher.startSession(fetchBundle(bob));
    bob.cipher.startSession(fetchBundle(alice));
    const fromAlice = alice.cipher.encrypt(bob.fingerprint, utf8('alice first'));
    const fromBob = bob.cipher.encrypt(alice.fingerprint, utf8('bob first'));
    assert.equal(fromUtf8(bob.cipher.decrypt(fromAlice).plaintext), 'alice first');
    assert.equal(fromUtf8(alice.cipher.decrypt(fromBob).plaintext), 'bob first');
    converse(alice, bob, 4);
  });

  it('rejects a tampered initial message without consuming anything', () => {
    const clock = new TestClock();
    const alice = makeParty('alice', clock);
    const bob = makeParty('bob', clock);
    alice.cipher.startSession(fetchBundle(bob));
    const first = alice.cipher.encrypt(bob.fingerprint, utf8('hello'));
    const before = snapshot(bob);
    for (let i = 0; i < first.length; i++) {
      const bad = first.slice();
      bad[i]! ^= 0x20;
      assert.throws(() => bob.cipher.decrypt(bad), RatchetRelayError, `byte ${i}`);
    }
    assert.deepEqual(snapshot(bob), before);
    assert.equal(fromUtf8(bob.cipher.decrypt(first).plaintext), 'hello');
  });

  it('commits the decrypt, the ratchet advance, the one-time key and the delivery together', () => {
    const clock = new TestClock();
    const alice = makeParty('alice', clock);
    const bob = makeParty('bob', clock);
    alice.cipher.startSession(fetchBundle(bob));
    const first = alice.cipher.encrypt(bob.fingerprint, utf8('atomic'));
    const before = snapshot(bob);
    assert.throws(
      () =>
        bob.cipher.decrypt(first, {
          deliver: () => {
            throw new Error('crash while delivering');
          },
        }),
      /crash while delivering/,
    );
    assert.deepEqual(snapshot(bob), before, 'a failed delivery rolls back the ratchet and the one-time key');
    const delivered: string[] = [];
    bob.cipher.decrypt(first, { deliver: (d) => delivered.push(fromUtf8(d.plaintext)) });
    assert.deepEqual(delivered, ['atomic']);
  });

  it('gives both sides the same 60-digit safety number', () => {
    const clock = new TestClock();
    const alice = makeParty('alice', clock);
    const bob = makeParty('bob', clock);
    const carol = makeParty('carol', clock);
    const a = alice.store.identity().public;
    const b = bob.store.identity().public;
    const n = safetyNumber(a, b);
    assert.match(n, /^\d{60}$/);
    assert.equal(safetyNumber(b, a), n);
    assert.notEqual(safetyNumber(a, carol.store.identity().public), n);
    assert.match(formatSafetyNumber(n), /^(\d{5} ){11}\d{5}$/);
  });
});

describe('pre-key rotation timeline (injected clock)', () => {
  it('accepts an initial message that uses a signed pre-key rotated 1 day ago, and rejects one past the grace period', () => {
    const clock = new TestClock();
    const config = { signedPreKeyRotationMs: 7 * DAY, kyberPreKeyRotationMs: 30 * DAY, replacedKeyGraceMs: 14 * DAY };
    const bob = makeParty('bob', clock, { preKeys: config });
    const alice = makeParty('alice', clock);
    const carol = makeParty('carol', clock);
    const oldBundle = fetchBundle(bob);
    alice.cipher.startSession(oldBundle);
    carol.cipher.startSession(oldBundle);
    const late = alice.cipher.encrypt(bob.fingerprint, utf8('sent from a week-old bundle'));
    const tooLate = carol.cipher.encrypt(bob.fingerprint, utf8('sent from a three-week-old bundle'));

    clock.advance(7 * DAY);
    const report = bob.cipher.maintain();
    assert.ok(report.rotatedSignedPreKey, 'the signed pre-key rotates after 7 days');
    assert.equal(report.rotatedKyberPreKey, false, 'the Kyber pre-key rotates on its own schedule');
    assert.notEqual(fetchBundle(bob).signedPreKey.id, oldBundle.signedPreKey.id, 'bundles carry the newest key');

    clock.advance(1 * DAY);
    assert.equal(fromUtf8(bob.cipher.decrypt(late).plaintext), 'sent from a week-old bundle');

    clock.advance(14 * DAY); // 15 days after the replacement, 22 after creation
    const before = snapshot(bob);
    rejects(() => bob.cipher.decrypt(tooLate), 'PREKEY_EXPIRED', /signed pre-key \d+ was replaced .* grace period is over/);
    assert.deepEqual(snapshot(bob), before);
    const accepted = () => bob.store.db.prepare('SELECT signed_prekey_id AS id FROM accepted_first_messages').all();
    assert.deepEqual(accepted(), [{ id: oldBundle.signedPreKey.id }], 'the accepted first message is remembered');
    const expiry = bob.cipher.maintain();
    assert.deepEqual(expiry.expiredSignedPreKeyIds, [oldBundle.signedPreKey.id]);
    assert.deepEqual(accepted(), [], 'and forgotten with the signed pre-key it named');
    rejects(() => bob.cipher.decrypt(tooLate), 'PREKEY_EXPIRED');
  });

  it('counts the grace period from the replacement, not the creation', () => {
    const clock = new TestClock();
    // The signed pre-key outlives its rotation period by far before maintenance next runs.
    const bob = makeParty('bob', clock, { preKeys: { replacedKeyGraceMs: 2 * DAY } });
    const alice = makeParty('alice', clock);
    alice.cipher.startSession(fetchBundle(bob));
    const m = alice.cipher.encrypt(bob.fingerprint, utf8('old keys'));
    clock.advance(30 * DAY);
    assert.ok(bob.cipher.maintain().rotatedSignedPreKey);
    assert.deepEqual(bob.cipher.maintain().expiredSignedPreKeyIds, [], 'not deleted in the pass that rotated it');
    clock.advance(1 * DAY);
    assert.equal(fromUtf8(bob.cipher.decrypt(m).plaintext), 'old keys');
  });

  it('rotates the Kyber pre-key independently and enforces its grace period', () => {
    const clock = new TestClock();
    const bob = makeParty('bob', clock, {
      preKeys: { signedPreKeyRotationMs: 30 * DAY, kyberPreKeyRotationMs: 7 * DAY, replacedKeyGraceMs: 3 * DAY },
    });
    const alice = makeParty('alice', clock);
    const carol = makeParty('carol', clock);
    const bundle = fetchBundle(bob);
    alice.cipher.startSession(bundle);
    carol.cipher.startSession(bundle);
    const ok = alice.cipher.encrypt(bob.fingerprint, utf8('kyber, one day after rotation'));
    const expired = carol.cipher.encrypt(bob.fingerprint, utf8('kyber, past grace'));
    clock.advance(7 * DAY);
    const report = bob.cipher.maintain();
    assert.ok(report.rotatedKyberPreKey);
    assert.equal(report.rotatedSignedPreKey, false);
    clock.advance(1 * DAY);
    assert.equal(fromUtf8(bob.cipher.decrypt(ok).plaintext), 'kyber, one day after rotation');
    clock.advance(3 * DAY);
    rejects(() => bob.cipher.decrypt(expired), 'PREKEY_EXPIRED', /Kyber pre-key/);
  });

  it('refills the one-time pool at 49 keys, not at 50', () => {
    const clock = new TestClock();
    const bob = makeParty('bob', clock);
    const consume = (n: number) => {
      const ids = bob.store.loadPreKeyState().oneTime.slice(0, n).map((k) => k.id);
      bob.store.transaction(() => ids.forEach((id) => bob.store.consumeOneTimePreKey(id, clock.now)));
    };
    consume(50);
    assert.equal(bob.store.loadPreKeyState().oneTime.length, 50);
    assert.equal(bob.cipher.maintain().addedOneTimePreKeys, 0);
    consume(1);
    assert.equal(bob.store.loadPreKeyState().oneTime.length, 49);
    assert.equal(bob.cipher.maintain().addedOneTimePreKeys, 51);
    assert.equal(bob.store.loadPreKeyState().oneTime.length, 100);
  });

  it('asks to republish only when the bundle would change', () => {
    const clock = new TestClock();
    const bob = makeParty('bob', clock);
    const alice = makeParty('alice', clock);
    assert.ok(bob.cipher.maintain().shouldPublish, 'never published');
    bob.cipher.markPublished(bob.cipher.bundle());
    assert.equal(bob.cipher.maintain().shouldPublish, false, 'nothing changed');
    clock.advance(3 * DAY);
    assert.equal(bob.cipher.maintain().shouldPublish, false, 'still nothing changed');
    alice.cipher.startSession(fetchBundle(bob));
    const d = bob.cipher.decrypt(alice.cipher.encrypt(bob.fingerprint, utf8('uses a one-time key')));
    assert.ok(d.consumedOneTimePreKey);
    assert.ok(bob.cipher.maintain().shouldPublish, 'a published one-time key was used');
    bob.cipher.markPublished(bob.cipher.bundle());
    clock.advance(7 * DAY);
    assert.ok(bob.cipher.maintain().shouldPublish, 'rotation');
  });
});

describe('SQLite store', () => {
  it('migrates a new database to the latest schema, and refuses one from a newer program', (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'm.db');
    let db = openDatabase({ path });
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    assert.equal(migrate(db), MIGRATIONS.length, 'migrating again changes nothing');
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    rejects(() => openDatabase({ path }), 'STORE', /newer than this program/);
    db = openDatabase({ path: ':memory:' });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    for (const name of ['identity', 'signed_prekeys', 'kyber_prekeys', 'one_time_prekeys', 'bundle_meta', 'sessions', 'skipped_keys', 'contacts', 'discovered_bundles'])
      assert.ok(tables.some((x) => x.name === name), name);
    db.close();
  });

  it('reopens with the same identity, sessions and pool', (t) => {
    const dir = tempDir(t);
    const clock = new TestClock();
    const path = join(dir, 'bob.db');
    const options = { path, passphrase: 'correct horse battery staple' };
    const alice = makeParty('alice', clock);
    let bob = makeParty('bob', clock, options);
    alice.cipher.startSession(fetchBundle(bob));
    bob.cipher.decrypt(alice.cipher.encrypt(bob.fingerprint, utf8('before restart')));
    const fingerprint = bob.fingerprint;
    const pool = bob.store.loadPreKeyState();
    const sessions = bob.store.loadSessions(alice.fingerprint);
    bob.store.db.close();

    bob = makeParty('bob, second run', clock, options);
    assert.equal(bob.fingerprint, fingerprint);
    assert.deepEqual(bob.store.loadPreKeyState(), pool);
    assert.deepEqual(bob.store.loadSessions(alice.fingerprint), sessions);
    const reply = bob.cipher.encrypt(alice.fingerprint, utf8('after restart'));
    assert.equal(fromUtf8(alice.cipher.decrypt(reply, { from: bob.fingerprint }).plaintext), 'after restart');
    bob.store.db.close();
  });

  it('encrypts the database file and refuses a wrong passphrase', async (t) => {
    const { readFileSync } = await import('node:fs');
    const dir = tempDir(t);
    const clock = new TestClock();
    const path = join(dir, 'store.db');
    const p = makeParty('p', clock, { path, passphrase: 'right' });
    const fingerprint = p.fingerprint;
    p.store.db.close();
    const raw = readFileSync(path);
    assert.equal(raw.subarray(0, 16).toString('latin1').startsWith('SQLite format 3'), false, 'no plaintext SQLite header');
    assert.equal(raw.includes(Buffer.from(fingerprint)), false);
    rejects(() => makeParty('p', clock, { path, passphrase: 'wrong' }), 'BAD_PASSPHRASE');
  });

  it('keeps skipped message keys across a restart', (t) => {
    const dir = tempDir(t);
    const clock = new TestClock();
    const path = join(dir, 'bob.db');
    const alice = makeParty('alice', clock);
    let bob = makeParty('bob', clock, { path });
    alice.cipher.startSession(fetchBundle(bob));
    const m = [0, 1, 2, 3].map((i) => alice.cipher.encrypt(bob.fingerprint, utf8(`m${i}`)));
    bob.cipher.decrypt(m[3]!);
    assert.equal(countSkipped(bob), 3);
    bob.store.db.close();
    bob = makeParty('bob, second run', clock, { path });
    assert.deepEqual(
      [m[1]!, m[0]!, m[2]!].map((x) => fromUtf8(bob.cipher.decrypt(x).plaintext)),
      ['m1', 'm0', 'm2'],
    );
    assert.equal(countSkipped(bob), 0, 'used keys are deleted');
    bob.store.db.close();
  });
});
