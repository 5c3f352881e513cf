import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Bytes, utf8 } from '../src/crypto/index.js';
import { RatchetRelayError } from '../src/errors.js';
import { decodePreKeyBundle, encodePreKeyBundle } from '../src/prekeys/index.js';
import { makeParty, type Party, TestClock } from './helpers.js';

/** Every row of every table: what a refused input must leave exactly as it was. */
function wholeStore(p: Party): unknown {
  const db = p.store.db;
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
  return tables.map(({ name }) => [name, db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all()]);
}

type Mutation = { kind: 'flip'; at: number; bit: number } | { kind: 'truncate'; at: number } | { kind: 'append'; extra: Uint8Array };

/** Flips a bit, cuts, or appends: the ways a relay or an attacker can change bytes in transit. Never the same bytes. */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
);

function mutate(bytes: Bytes, m: Mutation): Bytes {
  if (m.kind === 'flip') {
    const b = bytes.slice();
    b[m.at % b.length]! ^= 1 << m.bit;
    return b;
  }
  return m.kind === 'truncate' ? bytes.subarray(0, m.at % bytes.length) : new Uint8Array([...bytes, ...m.extra]);
}

describe('a refused input leaves the whole store as it was', () => {
  const clock = new TestClock();
  const alice = makeParty('untouched/alice', clock);
  const bob = makeParty('untouched/bob', clock);
  alice.cipher.startSession(decodePreKeyBundle(encodePreKeyBundle(bob.cipher.bundle())));
  bob.cipher.decrypt(alice.cipher.encrypt(bob.fingerprint, utf8('first')));
  const prekey = makeParty('untouched/carol', clock);
  prekey.cipher.startSession(decodePreKeyBundle(encodePreKeyBundle(bob.cipher.bundle())));
  const inputs = {
    'a pre-key message from a new sender': prekey.cipher.encrypt(bob.fingerprint, utf8('hello from carol')),
    'a normal message of a session': bob.cipher.encrypt(alice.fingerprint, utf8('reply')),
  };

  for (const [name, bytes] of Object.entries(inputs)) {
    const to = name.startsWith('a normal') ? alice : bob;
    const from = name.startsWith('a normal') ? bob.fingerprint : undefined;
    it(`${name}: random bytes and mutations give a typed error and change nothing`, () => {
      const before = wholeStore(to);
      const refusedOrSame = (b: Bytes) => {
        try {
          to.cipher.decrypt(b, { from, deliver: () => assert.fail('a changed message must not be delivered') });
        } catch (e) {
          assert.ok(e instanceof RatchetRelayError, `untyped error: ${String(e)}`);
        }
        assert.deepEqual(wholeStore(to), before);
      };
      fc.assert(fc.property(fc.uint8Array({ maxLength: 4000 }), refusedOrSame), { numRuns: 100 });
      fc.assert(fc.property(mutation, (m) => refusedOrSame(mutate(bytes, m))), { numRuns: 150 });
    });
  }
});
