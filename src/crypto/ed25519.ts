import { sign, verify, type KeyObject } from 'node:crypto';
import type { Bytes } from './bytes.js';
import type { Rng } from './random.js';
import { type KeyPair, okpKeyPair, privateKeyObject, publicKeyObject } from './x25519.js';

const privateCache = new WeakMap<Bytes, KeyObject>();
const publicCache = new WeakMap<Bytes, KeyObject>();

export const ED25519_SIGNATURE_BYTES = 64;

export const Ed25519 = {
  /** The private key is the RFC 8032 32-byte seed. */
  keyPairFromSeed(seed: Bytes): KeyPair {
    return okpKeyPair('Ed25519', seed, privateCache);
  },

  generate(rng: Rng): KeyPair {
    return Ed25519.keyPairFromSeed(rng(32));
  },

  sign(seed: Bytes, message: Bytes): Bytes {
    return new Uint8Array(sign(null, message, privateKeyObject('Ed25519', seed, privateCache)));
  },

  /** Returns false, never throws, for a malformed key or signature. */
  verify(publicKey: Bytes, message: Bytes, signature: Bytes): boolean {
    if (publicKey.length !== 32 || signature.length !== ED25519_SIGNATURE_BYTES) return false;
    try {
      return verify(null, message, publicKeyObject('Ed25519', publicKey, publicCache), signature);
    } catch {
      return false;
    }
  },
};
