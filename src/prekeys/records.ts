import { type Bytes, type KeyPair, MlKem1024, type Rng, X25519 } from '../crypto/index.js';
import { type Identity, identitySign } from '../identity/index.js';
import { Writer } from '../wire/codec.js';

export const SIGNED_PREKEY_CONTEXT = 'ratchet-relay/signed-prekey/v1';
export const KYBER_PREKEY_CONTEXT = 'ratchet-relay/kyber-prekey/v1';

/**
 * A medium-term pre-key: the signed pre-key (X25519) and the Kyber pre-key (ML-KEM-1024, PQXDH's
 * last-resort PQ pre-key, whose private key is the decapsulation key) share this shape and lifecycle.
 * `replacedAt` is set when a newer key takes over; the grace period counts from then. `privateKey`
 * becomes null when the grace period ends: the row stays as a tombstone so that a late initial
 * message gets "expired", not "unknown".
 */
export interface RotatingPreKey {
  readonly id: number;
  readonly publicKey: Bytes;
  readonly privateKey: Bytes | null;
  readonly createdAt: number;
  readonly replacedAt: number | null;
  readonly signature: Bytes;
}

export type SignedPreKey = RotatingPreKey;
export type KyberPreKey = RotatingPreKey;

/** Used once. `consumedAt` set means used: its private key is gone and a second use is refused. */
export interface OneTimePreKey {
  readonly id: number;
  readonly publicKey: Bytes;
  readonly privateKey: Bytes | null;
  readonly createdAt: number;
  readonly consumedAt: number | null;
}

export function signedPreKeyMessage(id: number, publicKey: Bytes, createdAt: number): Bytes {
  return new Writer().u32(id).fixed(publicKey, 32).u64(createdAt).finish();
}

export function kyberPreKeyMessage(id: number, publicKey: Bytes, createdAt: number): Bytes {
  return new Writer().u32(id).fixed(publicKey, MlKem1024.publicKeyBytes).u64(createdAt).finish();
}

export function generateSignedPreKey(identity: Identity, id: number, now: number, rng: Rng): SignedPreKey {
  const kp: KeyPair = X25519.generate(rng);
  const signature = identitySign(identity, SIGNED_PREKEY_CONTEXT, signedPreKeyMessage(id, kp.publicKey, now));
  return { id, publicKey: kp.publicKey, privateKey: kp.privateKey, createdAt: now, replacedAt: null, signature };
}

export function generateKyberPreKey(identity: Identity, id: number, now: number, rng: Rng): KyberPreKey {
  const kp = MlKem1024.keyPair(rng);
  const signature = identitySign(identity, KYBER_PREKEY_CONTEXT, kyberPreKeyMessage(id, kp.publicKey, now));
  return { id, publicKey: kp.publicKey, privateKey: kp.secretKey, createdAt: now, replacedAt: null, signature };
}

export function generateOneTimePreKey(id: number, now: number, rng: Rng): OneTimePreKey {
  const kp = X25519.generate(rng);
  return { id, publicKey: kp.publicKey, privateKey: kp.privateKey, createdAt: now, consumedAt: null };
}
