import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodePublicIdentity, fingerprint } from '../src/identity/index.js';
import { writePqxdhHeader } from '../src/pqxdh/index.js';
import { encodeRatchetCore } from '../src/ratchet/index.js';
import { decodePreKeyBundle, encodePreKeyBundle } from '../src/prekeys/index.js';
import { type ProtocolStore, SessionCipher, type SessionState } from '../src/session/index.js';
import { MemoryProtocolStore } from '../src/store/index.js';
import { Writer } from '../src/wire/codec.js';
import { DAY, makeParty, seededRng, TestClock } from './helpers.js';

interface Side {
  readonly store: ProtocolStore;
  readonly cipher: SessionCipher;
  readonly fingerprint: string;
}

function memoryParty(seed: string, clock: TestClock): Side {
  const rng = seededRng(seed);
  const store = MemoryProtocolStore.create(rng, clock.now);
  const cipher = new SessionCipher(store, { rng, clock: clock.read });
  cipher.maintain();
  return { store, cipher, fingerprint: fingerprint(store.identity().public) };
}

type Step =
  | { op: 'send'; from: 0 | 1 }
  | { op: 'deliver'; pick: number }
  | { op: 'tamper'; pick: number; at: number }
  | { op: 'replay'; pick: number }
  | { op: 'restart' }
  | { op: 'wait'; days: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('send' as const), from: fc.constantFrom(0 as const, 1 as const) }),
  fc.record({ op: fc.constant('deliver' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('tamper' as const), pick: fc.nat(), at: fc.nat() }),
  fc.record({ op: fc.constant('replay' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('restart' as const) }),
  fc.record({ op: fc.constant('wait' as const), days: fc.integer({ min: 1, max: 40 }) }),
);

/** A session as SQLite keeps it: the peer's identity in its stored encoding. */
function stored(s: SessionState): unknown {
  return {
    ...s,
    peer: encodePublicIdentity(s.peer),
    pending: s.pending && writePqxdhHeader(new Writer(), s.pending).finish(),
    ratchet: [encodeRatchetCore(s.ratchet), s.ratchet.skipped],
  };
}

/**
 * Runs one script on a pair and returns everything observable: each envelope's bytes, each outcome
 * (plaintext or error code), and the sessions and pre-keys the stores hold at the end.
 */
function run(make: (seed: string, clock: TestClock) => Side, steps: Step[]): unknown[] {
  const clock = new TestClock();
  const parties = [make('alice', clock), make('bob', clock)] as const;
  const [alice, bob] = parties;
  const seen: unknown[] = [];
  const attempt = (fn: () => unknown) => {
    try {
      seen.push(fn());
    } catch (e) {
      seen.push((e as { code?: string }).code ?? String(e));
    }
  };
  alice.cipher.startSession(decodePreKeyBundle(encodePreKeyBundle(bob.cipher.bundle())));
  const inFlight: { to: Side; from: Side; bytes: Uint8Array }[] = [];
  const delivered: typeof inFlight = [];
  let n = 0;
  for (const s of steps) {
    switch (s.op) {
      case 'send': {
        const from = parties[s.from];
        const to = parties[1 - s.from]!;
        attempt(() => {
          const bytes = from.cipher.encrypt(to.fingerprint, new Uint8Array([n++]));
          inFlight.push({ from, to, bytes });
          return Buffer.from(bytes).toString('hex');
        });
        break;
      }
      case 'deliver':
      case 'tamper': {
        if (inFlight.length === 0) break;
        const [m] = inFlight.splice(s.pick % inFlight.length, 1);
        let bytes = m!.bytes;
        if (s.op === 'tamper') {
          bytes = bytes.slice();
          bytes[s.at % bytes.length]! ^= 1;
          inFlight.push(m!);
        } else delivered.push(m!);
        attempt(() => {
          const d = m!.to.cipher.decrypt(bytes);
          return [d.peerFingerprint, [...d.plaintext], d.newSession];
        });
        break;
      }
      case 'replay': {
        if (delivered.length === 0) break;
        const m = delivered[s.pick % delivered.length]!;
        attempt(() => m.to.cipher.decrypt(m.bytes).plaintext);
        break;
      }
      case 'restart':
        attempt(() => parties.map((p) => p.cipher.maintain()));
        break;
      case 'wait':
        clock.advance(s.days * DAY);
        break;
    }
  }
  for (const p of parties) {
    const other = p === alice ? bob : alice;
    seen.push(p.store.loadSessions(other.fingerprint).map(stored), p.store.loadPreKeyState());
  }
  return seen;
}

describe('MemoryProtocolStore', () => {
  it('behaves as SqliteProtocolStore under any script of sends, deliveries, tampering, replays and time', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
        assert.deepEqual(run(memoryParty, steps), run(makeParty, steps));
      }),
      { numRuns: 40 },
    );
  });

  it('undoes every write of a transaction that throws, and keeps those of one that returns', () => {
    const clock = new TestClock();
    const bob = memoryParty('bob', clock);
    const alice = memoryParty('alice', clock);
    alice.cipher.startSession(decodePreKeyBundle(encodePreKeyBundle(bob.cipher.bundle())));
    const first = alice.cipher.encrypt(bob.fingerprint, new Uint8Array([1]));
    const before = bob.store.loadPreKeyState();
    assert.throws(() =>
      bob.store.transaction(() => {
        bob.cipher.decrypt(first);
        throw new Error('rolled back');
      }),
    );
    assert.deepEqual(bob.store.loadPreKeyState(), before);
    assert.deepEqual(bob.store.loadSessions(alice.fingerprint), []);
    assert.deepEqual([...bob.cipher.decrypt(first).plaintext], [1]);
    assert.equal(bob.store.loadSessions(alice.fingerprint).length, 1);
    assert.equal(bob.store.loadPreKeyState().oneTime.length, before.oneTime.length - 1);
  });
});
