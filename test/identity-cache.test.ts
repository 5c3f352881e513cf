import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Bytes, utf8 } from '../src/crypto/index.js';
import { isRatchetRelayError } from '../src/errors.js';
import {
  decodePublicIdentity,
  encodePublicIdentity,
  fingerprintBytes,
  generateIdentity,
  identitySign,
  identityVerifyRepeated,
  type PublicIdentity,
} from '../src/identity/index.js';
import { VerifiedSignatures } from '../src/identity/verified-signatures.js';
import {
  decodePreKeyBundle,
  encodePreKeyBundle,
  generateKyberPreKey,
  generateSignedPreKey,
  type PreKeyBundle,
} from '../src/prekeys/index.js';
import { seededRng } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1);

/** A cache and a verifier that counts its calls and accepts what `good` says. */
function counted(bound: number, good: (parts: readonly Bytes[]) => boolean) {
  const cache = new VerifiedSignatures(bound);
  let calls = 0;
  const check = (kind: string, parts: readonly Bytes[]) =>
    cache.check(kind, parts, () => {
      calls++;
      return good(parts);
    });
  return { cache, check, calls: () => calls };
}

const b = (...xs: number[]) => new Uint8Array(xs);

describe('verified signatures cache', () => {
  it('verifies the same bytes once, and anything else again', () => {
    const c = counted(8, () => true);
    assert.equal(c.check('ed25519', [b(1), b(2), b(3)]), true);
    assert.equal(c.check('ed25519', [b(1), b(2), b(3)]), true);
    assert.equal(c.calls(), 1);
    c.check('ed25519', [b(9), b(2), b(3)]); // another key
    c.check('ed25519', [b(1), b(2), b(4)]); // another signature
    c.check('bip340', [b(1), b(2), b(3)]); // another algorithm
    c.check('ed25519', [b(1, 2), b(3)]); // the same bytes framed otherwise
    assert.equal(c.calls(), 5);
  });

  it('never remembers a failure', () => {
    const c = counted(8, () => false);
    assert.equal(c.check('ed25519', [b(1), b(2), b(3)]), false);
    assert.equal(c.check('ed25519', [b(1), b(2), b(3)]), false);
    assert.equal(c.calls(), 2);
    assert.equal(c.cache.size, 0);
  });

  it('holds at most its bound, least recently used out first', () => {
    const c = counted(3, () => true);
    for (const x of [1, 2, 3]) c.check('k', [b(x)]);
    c.check('k', [b(1)]); // a hit makes 1 the most recent
    c.check('k', [b(4)]); // evicts 2
    assert.equal(c.cache.size, 3);
    const before = c.calls();
    c.check('k', [b(1)]);
    c.check('k', [b(3)]);
    c.check('k', [b(4)]);
    assert.equal(c.calls(), before);
    c.check('k', [b(2)]);
    assert.equal(c.calls(), before + 1);
  });

  it('a success on some input never answers for a different one (property)', () => {
    const input = fc.record({ kind: fc.constantFrom('ed25519', 'bip340'), parts: fc.array(fc.uint8Array({ maxLength: 6 }), { maxLength: 4 }) });
    fc.assert(
      fc.property(input, input, (x, y) => {
        const c = counted(4, (parts) => parts === x.parts);
        assert.equal(c.check(x.kind, x.parts), true);
        const same = x.kind === y.kind && x.parts.length === y.parts.length && x.parts.every((p, i) => Buffer.from(p).equals(y.parts[i]!));
        // Only byte-equal inputs may pass without the verifier, which refuses everything but x.
        assert.equal(c.check(y.kind, y.parts), same);
      }),
      { numRuns: 500 },
    );
  });
});

describe('identity signatures through the cache', () => {
  const rng = seededRng('identity-cache');
  const alice = generateIdentity(rng, T0);
  const mallory = generateIdentity(rng, T0);
  const spk = generateSignedPreKey(alice, 1, T0, rng);
  const kpk = generateKyberPreKey(alice, 1, T0, rng);
  const bundle: PreKeyBundle = {
    identity: alice.public,
    signedPreKey: { id: spk.id, publicKey: spk.publicKey, createdAt: spk.createdAt, signature: spk.signature },
    kyberPreKey: { id: kpk.id, publicKey: kpk.publicKey, createdAt: kpk.createdAt, signature: kpk.signature },
    oneTimePreKeys: [],
  };
  const badSignature = (e: unknown) => isRatchetRelayError(e, 'BAD_SIGNATURE');
  const flipped = (sig: Bytes) => {
    const s = sig.slice();
    s[10]! ^= 1;
    return s;
  };

  it('a bad pre-key signature after a good one still fails', () => {
    decodePreKeyBundle(encodePreKeyBundle(bundle));
    decodePreKeyBundle(encodePreKeyBundle(bundle));
    const badSpk = { ...bundle, signedPreKey: { ...bundle.signedPreKey, signature: flipped(spk.signature) } };
    assert.throws(() => decodePreKeyBundle(encodePreKeyBundle(badSpk)), badSignature);
    const badKyber = { ...bundle, kyberPreKey: { ...bundle.kyberPreKey, signature: flipped(kpk.signature) } };
    assert.throws(() => decodePreKeyBundle(encodePreKeyBundle(badKyber)), badSignature);
    const otherKey = { ...bundle, signedPreKey: { ...bundle.signedPreKey, publicKey: kpk.publicKey.slice(0, 32) } };
    assert.throws(() => decodePreKeyBundle(encodePreKeyBundle(otherKey)), badSignature);
  });

  it("a signature cached under one identity does not pass under another", () => {
    const message = utf8('a signed pre-key');
    const sig = identitySign(alice, 'ctx', message);
    assert.equal(identityVerifyRepeated(alice.public, 'ctx', message, sig), true);
    assert.equal(identityVerifyRepeated(mallory.public, 'ctx', message, sig), false);
    assert.equal(identityVerifyRepeated(alice.public, 'other ctx', message, sig), false);
    // Mallory's bundle carrying Alice's pre-keys and their (cached) signatures.
    const stolen = { ...bundle, identity: mallory.public };
    assert.throws(() => decodePreKeyBundle(encodePreKeyBundle(stolen)), badSignature);
  });

  it('an identity whose signatures were altered fails after the good one decoded', () => {
    const good = encodePublicIdentity(alice.public);
    decodePublicIdentity(good);
    const altered = (p: Partial<PublicIdentity>) => encodePublicIdentity({ ...alice.public, ...p });
    assert.throws(() => decodePublicIdentity(altered({ signature: flipped(alice.public.signature) })), badSignature);
    assert.throws(() => decodePublicIdentity(altered({ nostrBinding: flipped(alice.public.nostrBinding) })), badSignature);
    assert.throws(() => decodePublicIdentity(altered({ signature: mallory.public.signature })), badSignature);
    assert.throws(() => decodePublicIdentity(altered({ createdAt: T0 + 1 })), badSignature);
  });

  it("fingerprints are computed once per identity, and callers get their own copy", () => {
    const f = fingerprintBytes(alice.public);
    f.fill(0);
    assert.notDeepEqual(fingerprintBytes(alice.public), f);
    assert.deepEqual(fingerprintBytes(alice.public), fingerprintBytes({ ...alice.public }));
  });
});
