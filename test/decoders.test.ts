import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Bytes, utf8 } from '../src/crypto/index.js';
import { RatchetRelayError } from '../src/errors.js';
import {
  compactPublicIdentity,
  decodeIdentity,
  decodePublicIdentity,
  encodeIdentity,
  encodePublicIdentity,
  fingerprint,
  generateIdentity,
} from '../src/identity/index.js';
import { decodePreKeyBundle, encodePreKeyBundle } from '../src/prekeys/index.js';
import { decodeRatchetMessage } from '../src/ratchet/index.js';
import { decodeEnvelope, encodeEnvelope } from '../src/session/index.js';
import { makeParty, seededRng, TestClock } from './helpers.js';

/** Valid encodings of every wire format, from a real conversation. */
function samples(): Record<string, { bytes: Bytes; decode: (b: Bytes) => unknown }> {
  const clock = new TestClock();
  const alice = makeParty('alice', clock);
  const bob = makeParty('bob', clock);
  const bundle = encodePreKeyBundle(bob.cipher.bundle());
  alice.cipher.startSession(decodePreKeyBundle(bundle));
  const prekey = alice.cipher.encrypt(bob.fingerprint, utf8('first'));
  bob.cipher.decrypt(prekey);
  const normal = bob.cipher.encrypt(alice.fingerprint, utf8('reply'));
  const env = decodeEnvelope(normal);
  const identity = alice.store.identity();
  return {
    'public identity (full)': { bytes: encodePublicIdentity(identity.public), decode: decodePublicIdentity },
    'public identity (compact)': { bytes: encodePublicIdentity(compactPublicIdentity(identity.public)), decode: decodePublicIdentity },
    'identity record': { bytes: encodeIdentity(identity), decode: decodeIdentity },
    'pre-key bundle': { bytes: bundle, decode: decodePreKeyBundle },
    'pre-key envelope': { bytes: prekey, decode: decodeEnvelope },
    'normal envelope': { bytes: normal, decode: decodeEnvelope },
    'ratchet message': { bytes: env.message, decode: decodeRatchetMessage },
  };
}

const onlyTypedErrors = (decode: (b: Bytes) => unknown) => (bytes: Bytes) => {
  try {
    decode(bytes);
  } catch (e) {
    assert.ok(e instanceof RatchetRelayError, `untyped error: ${String(e)}`);
  }
};

describe('validating decoders', () => {
  const all = samples();
  for (const [name, { bytes, decode }] of Object.entries(all)) {
    describe(name, () => {
      it('decodes its own encoding', () => {
        assert.doesNotThrow(() => decode(bytes));
      });

      it('throws only typed errors on random bytes', () => {
        fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), onlyTypedErrors(decode)), { numRuns: 200 });
      });

      it('throws only typed errors on mutations of a valid encoding', () => {
        const mutation = fc.oneof(
          fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
          fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
          fc.record({ kind: fc.constant('append' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
        );
        fc.assert(
          fc.property(mutation, (m) => {
            let b: Bytes;
            if (m.kind === 'flip') {
              b = bytes.slice();
              b[m.at % b.length]! ^= 1 << m.bit;
            } else if (m.kind === 'truncate') b = bytes.subarray(0, m.at % bytes.length);
            else b = new Uint8Array([...bytes, ...m.extra]);
            onlyTypedErrors(decode)(b);
          }),
          { numRuns: 200 },
        );
      });

      it('rejects trailing bytes and other versions', () => {
        assert.throws(() => decode(new Uint8Array([...bytes, 0])), (e: unknown) => e instanceof RatchetRelayError && e.code === 'MALFORMED');
        const v = bytes.slice();
        v[0] = 0xee;
        assert.throws(() => decode(v), (e: unknown) => e instanceof RatchetRelayError && e.code === 'UNSUPPORTED_VERSION');
      });
    });
  }

  it('a compact and a full public identity verify under one signature and share a fingerprint', () => {
    const id = generateIdentity(seededRng('compact'), 1);
    const full = decodePublicIdentity(encodePublicIdentity(id.public));
    const compact = decodePublicIdentity(encodePublicIdentity(compactPublicIdentity(id.public)));
    assert.equal(fingerprint(full), fingerprint(compact));
    assert.equal(compact.kemKey, null);
    assert.ok(encodePublicIdentity(compact).length < 250);
  });

  it('refuses a full identity whose KEM key was swapped', () => {
    const a = generateIdentity(seededRng('a'), 1);
    const b = generateIdentity(seededRng('b'), 1);
    const forged = encodePublicIdentity({ ...a.public, kemKey: b.kem.publicKey });
    assert.throws(() => decodePublicIdentity(forged), (e: unknown) => e instanceof RatchetRelayError && e.code === 'BAD_SIGNATURE');
  });

  it('an envelope says what it is: a normal message never parses as a pre-key message', () => {
    const { 'normal envelope': normal } = all;
    const env = decodeEnvelope(normal!.bytes);
    assert.equal(env.type, 'normal');
    const relabelled = normal!.bytes.slice();
    relabelled[1] = 1;
    assert.throws(() => decodeEnvelope(relabelled), RatchetRelayError);
    assert.deepEqual(encodeEnvelope(env), normal!.bytes);
  });
});
