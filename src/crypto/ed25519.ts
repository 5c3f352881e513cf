import type { Bytes } from './bytes.js';
import type { Rng } from './random.js';
import { sodium } from './sodium.js';
import type { KeyPair } from './x25519.js';

export const ED25519_SIGNATURE_BYTES = 64;

// libsodium signs with seed ‖ public key; derived once per seed instance (protocol state is immutable,
// so the identity's seed is one object for the life of the process).
const secretKeys = new WeakMap<Bytes, Uint8Array>();

function secretKey(seed: Bytes): Uint8Array {
  let sk = secretKeys.get(seed);
  if (!sk) {
    if (seed.length !== 32) throw new RangeError('Ed25519 private key must be 32 bytes');
    sk = new Uint8Array(64);
    sodium.crypto_sign_seed_keypair(new Uint8Array(32), sk, seed);
    secretKeys.set(seed, sk);
  }
  return sk;
}

/**
 * RFC 8032 Ed25519 on libsodium (sodium-native), not node:crypto: verification is 2.1x faster there
 * (docs/crypto.md), and a PQXDH setup checks four signatures. libsodium also refuses non-canonical
 * and small-order encodings that OpenSSL accepts; no honest signer produces them.
 */
export const Ed25519 = {
  /** The private key is the RFC 8032 32-byte seed. */
  keyPairFromSeed(seed: Bytes): KeyPair {
    return { privateKey: seed, publicKey: secretKey(seed).slice(32) };
  },

  generate(rng: Rng): KeyPair {
    return Ed25519.keyPairFromSeed(rng(32));
  },

  sign(seed: Bytes, message: Bytes): Bytes {
    const signature = new Uint8Array(ED25519_SIGNATURE_BYTES);
    sodium.crypto_sign_detached(signature, message, secretKey(seed));
    return signature;
  },

  /** Returns false, never throws, for a malformed key or signature. */
  verify(publicKey: Bytes, message: Bytes, signature: Bytes): boolean {
    if (publicKey.length !== 32 || signature.length !== ED25519_SIGNATURE_BYTES) return false;
    return sodium.crypto_sign_verify_detached(signature, message, publicKey);
  },
};
