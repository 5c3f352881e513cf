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
import { type AppMessage, decodeAppMessage, encodeAppMessage } from '../src/node/app-message.js';
import { decodeGroupMembers, encodeGroupMembers, signGroupMembers } from '../src/node/group-members.js';
import { decodePreKeyBundle, encodePreKeyBundle } from '../src/prekeys/index.js';
import { decodeRatchetMessage } from '../src/ratchet/index.js';
import { decodeEnvelope, decodeMessageEnvelope, decodeRetryRequest, encodeEnvelope, encodeRetryRequest, type RetryRequest } from '../src/session/index.js';
import { decodeSaltFile, DEFAULT_KDF, encodeSaltFile } from '../src/store/index.js';
import { makeParty, seededRng, TestClock } from './helpers.js';

const ID = '0f'.repeat(16);
const FP = 'ab'.repeat(32);

/** One application message of every type. */
function appMessages(): AppMessage[] {
  const identity = generateIdentity(seededRng('app'), 1).public;
  const head = { id: ID, sentAt: 1_767_225_600_000 };
  const sealed = new Uint8Array(300).fill(7);
  const members = new Uint8Array(120).fill(3);
  return [
    { ...head, type: 'text', text: 'héllo 👋' },
    { ...head, type: 'receipt', ids: [ID, 'aa'.repeat(16)] },
    { ...head, type: 'kx-hello' },
    { ...head, type: 'mediate-identity', target: FP },
    { ...head, type: 'invite-request', requester: identity },
    { ...head, type: 'transitive', peer: FP, sealed },
    { ...head, type: 'introduced', target: identity },
    { ...head, type: 'group-invite', members },
    { ...head, type: 'group-join', groupId: ID },
    { ...head, type: 'group-members', members },
    { ...head, type: 'group-text', groupId: ID, text: 'to the group' },
    { ...head, type: 'reset-via', peer: FP, sealed },
    { ...head, type: 'reset-forwarded', peer: FP, sealed },
    { ...head, type: 'refused', refusedId: ID, refusedType: 'reset-via', reason: 'asked to pass a reset to someone we do not know' },
  ];
}

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
  const env = decodeMessageEnvelope(normal);
  const identity = alice.store.identity();
  const retry = encodeRetryRequest(bob.store.identity(), retryRequestOf(bob.cipher.bundle()), identity.public);
  const group = signGroupMembers(identity, { groupId: ID, name: 'friends', version: 2, members: [alice.fingerprint, bob.fingerprint] });
  const apps = Object.fromEntries(appMessages().map((m) => [`application message (${m.type})`, { bytes: encodeAppMessage(m), decode: decodeAppMessage }]));
  return {
    ...apps,
    'group members': { bytes: encodeGroupMembers(group), decode: (b: Bytes) => decodeGroupMembers(b, identity.public) },
    'public identity (full)': { bytes: encodePublicIdentity(identity.public), decode: decodePublicIdentity },
    'public identity (compact)': { bytes: encodePublicIdentity(compactPublicIdentity(identity.public)), decode: decodePublicIdentity },
    'identity record': { bytes: encodeIdentity(identity), decode: decodeIdentity },
    'pre-key bundle': { bytes: bundle, decode: decodePreKeyBundle },
    'pre-key envelope': { bytes: prekey, decode: decodeEnvelope },
    'normal envelope': { bytes: normal, decode: decodeEnvelope },
    'ratchet message': { bytes: env.message, decode: decodeRatchetMessage },
    'salt file': { bytes: encodeSaltFile({ salt: new Uint8Array(16).fill(7), kdf: DEFAULT_KDF }), decode: decodeSaltFile },
    'retry request': { bytes: retry, decode: (b: Bytes) => decodeRetryRequest(b, identity.public) },
    'retry-request envelope': { bytes: encodeEnvelope({ type: 'retry-request', request: retry }), decode: decodeEnvelope },
  };
}

function retryRequestOf(bundle: RetryRequest['bundle']): RetryRequest {
  return { baseKey: new Uint8Array(32).fill(9), reason: 'ONE_TIME_PREKEY_USED', requestedAt: 1_767_225_600_000, bundle };
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
    assert.equal(encodePublicIdentity(compact).length, 266);
    assert.equal(encodePublicIdentity(full).length, 1802);
  });

  it('refuses a public identity, full or compact, whose Nostr binding was changed anywhere, and a v1 identity', () => {
    const id = generateIdentity(seededRng('binding'), 1);
    const other = generateIdentity(seededRng('other'), 1);
    const notSigned = (e: unknown) => e instanceof RatchetRelayError && e.code === 'BAD_SIGNATURE' && /the Nostr key does not sign/.test(e.message);
    for (const p of [id.public, compactPublicIdentity(id.public)]) {
      const bytes = encodePublicIdentity(p);
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 7 }), (at, bit) => {
          const b = bytes.slice();
          b[b.length - 64 + at]! ^= 1 << bit; // the binding is the last 64 bytes
          assert.throws(() => decodePublicIdentity(b), notSigned);
        }),
        { numRuns: 100 },
      );
      // A genuine binding, by another identity's Nostr key, over another body.
      assert.throws(() => decodePublicIdentity(encodePublicIdentity({ ...p, nostrBinding: other.public.nostrBinding })), notSigned);
      const v1 = bytes.slice(0, -64);
      v1[0] = 1;
      assert.throws(() => decodePublicIdentity(v1), (e: unknown) => e instanceof RatchetRelayError && e.code === 'UNSUPPORTED_VERSION' && /Nostr key/.test(e.message));
    }
  });

  it('refuses a full identity whose KEM key was swapped', () => {
    const a = generateIdentity(seededRng('a'), 1);
    const b = generateIdentity(seededRng('b'), 1);
    const forged = encodePublicIdentity({ ...a.public, kemKey: b.kem.publicKey });
    assert.throws(() => decodePublicIdentity(forged), (e: unknown) => e instanceof RatchetRelayError && e.code === 'BAD_SIGNATURE');
  });

  it('an application message of every type decodes to what was encoded', () => {
    for (const m of appMessages()) assert.deepEqual(decodeAppMessage(encodeAppMessage(m)), m, m.type);
  });

  it('texts and refusal reasons of any content round-trip; a reason is cut to 256 bytes between characters', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 400 }), fc.constantFrom(...appMessages().map((m) => m.type)), (text, refusedType) => {
        const head = { id: ID, sentAt: 5 };
        assert.equal((decodeAppMessage(encodeAppMessage({ ...head, type: 'text', text })) as { text: string }).text, text);
        const r = decodeAppMessage(encodeAppMessage({ ...head, type: 'refused', refusedId: ID, refusedType, reason: text })) as Extract<AppMessage, { type: 'refused' }>;
        assert.equal(r.refusedType, refusedType);
        assert.ok(utf8(r.reason).length <= 256);
        assert.ok(text.startsWith(r.reason));
        if (utf8(text).length <= 256) assert.equal(r.reason, text);
      }),
      { numRuns: 200 },
    );
  });

  it('a retry request round-trips, and verifies only for the recipient it was signed for and without one-time keys', () => {
    const clock = new TestClock();
    const [alice, bob, eve] = ['alice', 'bob', 'eve'].map((n) => makeParty(n, clock));
    const request = retryRequestOf(bob!.cipher.bundle());
    const bytes = encodeRetryRequest(bob!.store.identity(), request, alice!.store.identity().public);
    const back = decodeRetryRequest(bytes, alice!.store.identity().public);
    assert.deepEqual({ ...back, bundle: null }, { ...request, bundle: null });
    assert.equal(back.bundle.oneTimePreKeys.length, 0, 'the one-time keys are left out');
    assert.equal(fingerprint(back.bundle.identity), bob!.fingerprint);
    assert.throws(() => decodeRetryRequest(bytes, eve!.store.identity().public), (e: unknown) => e instanceof RatchetRelayError && e.code === 'BAD_SIGNATURE');
    assert.throws(() => decodeMessageEnvelope(encodeEnvelope({ type: 'retry-request', request: bytes })), RatchetRelayError);
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
