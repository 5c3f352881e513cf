import {
  type Bytes,
  concat,
  constantTimeEqual,
  Ed25519,
  type KeyPair,
  MlKem1024,
  type Rng,
  Secp256k1Schnorr,
  sha256,
  toHex,
  utf8,
  X25519,
} from '../crypto/index.js';
import { fail } from '../errors.js';
import { Reader, Writer } from '../wire/codec.js';
import { VerifiedSignatures } from './verified-signatures.js';

export const PUBLIC_IDENTITY_VERSION = 2;
// Unchanged since v1: the fingerprint hashes this body, so fingerprints stayed the same in v2.
const SIGNING_CONTEXT = utf8('ratchet-relay/public-identity/v1');
const NOSTR_BINDING_CONTEXT = utf8('ratchet-relay/public-identity/nostr-binding/v2');

/**
 * The public half of an identity. The identity's Ed25519 key signs all other keys, the Nostr key
 * included, and the Nostr key signs them back (BIP-340, `nostrBinding`): a Nostr key speaks for
 * this identity and no identity can claim a Nostr key it does not hold. Both signatures sit beside
 * the fingerprinted body, not inside it.
 *
 * The signature covers SHA-256 of the ML-KEM key, not the key itself, so the identity can travel
 * in a compact form (bundles) or a full form (invites) under the same signature. See docs/protocol.md.
 */
export interface PublicIdentity {
  readonly signingKey: Bytes; // Ed25519
  readonly dhKey: Bytes; // X25519
  readonly nostrKey: Bytes; // secp256k1 x-only (BIP-340)
  readonly kemKeyDigest: Bytes; // SHA-256 of the ML-KEM-1024 public key
  readonly kemKey: Bytes | null; // present in the full form only
  readonly createdAt: number;
  readonly signature: Bytes; // Ed25519, by signingKey
  readonly nostrBinding: Bytes; // BIP-340 Schnorr, by nostrKey
}

export interface Identity {
  readonly signing: KeyPair;
  readonly dh: KeyPair;
  readonly kem: { readonly publicKey: Bytes; readonly secretKey: Bytes };
  readonly nostr: KeyPair;
  readonly public: PublicIdentity;
}

function signedBody(p: Omit<PublicIdentity, 'signature' | 'nostrBinding' | 'kemKey'>): Bytes {
  return new Writer()
    .fixed(SIGNING_CONTEXT, SIGNING_CONTEXT.length)
    .fixed(p.signingKey, 32)
    .fixed(p.dhKey, 32)
    .fixed(p.nostrKey, 32)
    .fixed(p.kemKeyDigest, 32)
    .u64(p.createdAt)
    .finish();
}

/** What the Nostr key signs, from the signed body: 32 bytes, as BIP-340 signs a Nostr event id, but under its own context. */
function nostrBindingMessage(body: Bytes): Bytes {
  return sha256(concat(NOSTR_BINDING_CONTEXT, body));
}

/** A new identity. `nostr` binds an existing Nostr key pair instead of a fresh random one. */
export function generateIdentity(rng: Rng, now: number, nostr: KeyPair = Secp256k1Schnorr.generate(rng)): Identity {
  const signing = Ed25519.generate(rng);
  const dh = X25519.generate(rng);
  const kem = MlKem1024.keyPair(rng);
  const unsigned = {
    signingKey: signing.publicKey,
    dhKey: dh.publicKey,
    nostrKey: nostr.publicKey,
    kemKeyDigest: sha256(kem.publicKey),
    createdAt: now,
  };
  const body = signedBody(unsigned);
  const signature = Ed25519.sign(signing.privateKey, body);
  const nostrBinding = Secp256k1Schnorr.sign(nostr.privateKey, nostrBindingMessage(body), rng);
  return { signing, dh, kem, nostr, public: { ...unsigned, kemKey: kem.publicKey, signature, nostrBinding } };
}

// A setup asks for both fingerprints several times (the peer's name, AD, same-identity checks);
// identities are immutable, so each object's is computed once.
const fingerprints = new WeakMap<PublicIdentity, Bytes>();

/** The cached fingerprint itself: for reading only, never handed out. */
function sharedFingerprint(p: PublicIdentity): Bytes {
  let f = fingerprints.get(p);
  if (!f) {
    f = sha256(signedBody(p));
    fingerprints.set(p, f);
  }
  return f;
}

/** 32 bytes that name an identity: SHA-256 of its signed body. Shown as hex. */
export function fingerprintBytes(p: PublicIdentity): Bytes {
  return sharedFingerprint(p).slice();
}

export function fingerprint(p: PublicIdentity): string {
  return toHex(sharedFingerprint(p));
}

export function sameIdentity(a: PublicIdentity, b: PublicIdentity): boolean {
  return constantTimeEqual(sharedFingerprint(a), sharedFingerprint(b));
}

/** Encode(IK_A) ‖ Encode(IK_B) for PQXDH's AD: the two fingerprints, in a new array. */
export function fingerprintPair(a: PublicIdentity, b: PublicIdentity): Bytes {
  return concat(sharedFingerprint(a), sharedFingerprint(b));
}

export function compactPublicIdentity(p: PublicIdentity): PublicIdentity {
  return p.kemKey === null ? p : { ...p, kemKey: null };
}

const FORM_COMPACT = 0;
const FORM_FULL = 1;

export function encodePublicIdentity(p: PublicIdentity): Bytes {
  const w = new Writer()
    .u8(PUBLIC_IDENTITY_VERSION)
    .fixed(p.signingKey, 32)
    .fixed(p.dhKey, 32)
    .fixed(p.nostrKey, 32)
    .u64(p.createdAt);
  if (p.kemKey === null) w.u8(FORM_COMPACT).fixed(p.kemKeyDigest, 32);
  else w.u8(FORM_FULL).fixed(p.kemKey, MlKem1024.publicKeyBytes);
  return w.fixed(p.signature, 64).fixed(p.nostrBinding, 64).finish();
}

export function readPublicIdentity(r: Reader): PublicIdentity {
  const version = r.u8();
  // v1 had no nostrBinding, so nothing proves its Nostr key belongs to it: never accepted.
  if (version === 1) fail('UNSUPPORTED_VERSION', 'public identity: version 1 is not signed by its Nostr key; the peer must upgrade');
  if (version !== PUBLIC_IDENTITY_VERSION)
    fail('UNSUPPORTED_VERSION', `public identity: version ${version} is not supported (expected ${PUBLIC_IDENTITY_VERSION})`);
  const signingKey = r.fixed(32);
  const dhKey = r.fixed(32);
  const nostrKey = r.fixed(32);
  const createdAt = r.u64();
  const form = r.u8();
  let kemKey: Bytes | null = null;
  let kemKeyDigest: Bytes;
  if (form === FORM_COMPACT) kemKeyDigest = r.fixed(32);
  else if (form === FORM_FULL) {
    kemKey = r.fixed(MlKem1024.publicKeyBytes);
    kemKeyDigest = sha256(kemKey);
  } else return fail('MALFORMED', `public identity: unknown form ${form}`);
  const signature = r.fixed(64);
  const nostrBinding = r.fixed(64);
  const p: PublicIdentity = { signingKey, dhKey, nostrKey, kemKeyDigest, kemKey, createdAt, signature, nostrBinding };
  const body = signedBody(p);
  // Every pre-key message and stored session repeats its sender's identity: each is checked once.
  let failure = '';
  const good = verifiedSignatures.check('public-identity', [body, signature, nostrBinding], () => {
    if (!Ed25519.verify(signingKey, body, signature)) failure = 'public identity: self-signature does not verify';
    else if (!Secp256k1Schnorr.verify(nostrKey, nostrBindingMessage(body), nostrBinding))
      failure = 'public identity: the Nostr key does not sign this identity';
    return failure === '';
  });
  if (!good) fail('BAD_SIGNATURE', failure);
  // Its fingerprint is asked for at once (the peer's name, AD): from the body already built.
  fingerprints.set(p, sha256(body));
  return p;
}

// Stored sessions decode their peer's identity on every load; the same bytes always give the same
// verdict, so remember recent good ones instead of decoding them again.
const VERIFIED_CACHE_SIZE = 512;
const verifiedCache = new Map<string, PublicIdentity>();
/** Identity self-signatures and identity signatures over pre-keys that verified (docs/crypto.md, "Caches"). */
export const VERIFIED_SIGNATURES_BOUND = 512;
const verifiedSignatures = new VerifiedSignatures(VERIFIED_SIGNATURES_BOUND);

function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= VERIFIED_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(key, value);
}

/** The validating decoder: a PublicIdentity that comes out of here has a good self-signature and Nostr binding. */
export function decodePublicIdentity(bytes: Bytes): PublicIdentity {
  const key = toHex(bytes);
  const hit = verifiedCache.get(key);
  if (hit) return hit;
  const r = new Reader(bytes, 'public identity');
  const p = readPublicIdentity(r);
  r.end();
  remember(verifiedCache, key, p);
  return p;
}

// Contexts are module constants (a dozen in all): each is encoded once.
const contexts = new Map<string, Bytes>();
function contextBytes(context: string): Bytes {
  let b = contexts.get(context);
  if (!b) contexts.set(context, (b = utf8(context)));
  return b;
}

/** Identity signatures over other structures are domain-separated by context. */
export function identitySign(identity: Identity, context: string, message: Bytes): Bytes {
  return Ed25519.sign(identity.signing.privateKey, concat(contextBytes(context), message));
}

export function identityVerify(p: PublicIdentity, context: string, message: Bytes, signature: Bytes): boolean {
  return Ed25519.verify(p.signingKey, concat(contextBytes(context), message), signature);
}

/**
 * identityVerify for signatures that come back byte for byte, as a bundle's pre-key signatures do
 * with every copy of the bundle: each verifies once. Not for one-off messages (sealed envelopes),
 * which would only fill the cache.
 */
export function identityVerifyRepeated(p: PublicIdentity, context: string, message: Bytes, signature: Bytes): boolean {
  const signed = concat(contextBytes(context), message);
  return verifiedSignatures.check('ed25519', [p.signingKey, signed, signature], () => Ed25519.verify(p.signingKey, signed, signature));
}

export const IDENTITY_RECORD_VERSION = 1;

/** Private record, for the store only. */
export function encodeIdentity(id: Identity): Bytes {
  return new Writer()
    .u8(IDENTITY_RECORD_VERSION)
    .fixed(id.signing.privateKey, 32)
    .fixed(id.dh.privateKey, 32)
    .fixed(id.kem.secretKey, MlKem1024.secretKeyBytes)
    .fixed(id.nostr.privateKey, 32)
    .bytes(encodePublicIdentity(id.public))
    .finish();
}

export function decodeIdentity(bytes: Bytes): Identity {
  const r = new Reader(bytes, 'identity record');
  r.version(IDENTITY_RECORD_VERSION);
  const signing = Ed25519.keyPairFromSeed(r.fixed(32));
  const dh = X25519.keyPairFromPrivate(r.fixed(32));
  const kemSecret = r.fixed(MlKem1024.secretKeyBytes);
  const nostrSecret = r.fixed(32);
  const pub = decodePublicIdentity(r.bytes(4096));
  r.end();
  if (pub.kemKey === null) fail('MALFORMED', 'identity record: public identity lacks its KEM key');
  const nostr = { privateKey: nostrSecret, publicKey: Secp256k1Schnorr.publicKeyOf(nostrSecret) };
  if (
    !constantTimeEqual(signing.publicKey, pub.signingKey) ||
    !constantTimeEqual(dh.publicKey, pub.dhKey) ||
    !constantTimeEqual(nostr.publicKey, pub.nostrKey)
  )
    fail('MALFORMED', 'identity record: private keys do not match the public identity');
  return { signing, dh, kem: { publicKey: pub.kemKey, secretKey: kemSecret }, nostr, public: pub };
}
