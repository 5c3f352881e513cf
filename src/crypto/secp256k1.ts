import { signSchnorr, verifySchnorr, xOnlyPointFromScalar } from 'tiny-secp256k1';
import type { Bytes } from './bytes.js';
import type { Rng } from './random.js';
import type { KeyPair } from './x25519.js';

// A node key signs every bundle and seed-format event: its x-only public key is derived once per
// secret instance (protocol state is immutable), as a scalar multiplication costs half a signature.
const publicKeys = new WeakMap<Bytes, Bytes>();

/**
 * BIP-340 keys, as Nostr uses them, all on libsecp256k1 in WASM (tiny-secp256k1): verification 5.7x
 * noble's pure JS here, signing 2x, key derivation 4x. The secret is random: never derived from
 * public material.
 */
export const Secp256k1Schnorr = {
  generate(rng: Rng): KeyPair {
    for (;;) {
      const sk = rng(32);
      try {
        return { privateKey: sk, publicKey: Secp256k1Schnorr.publicKeyOf(sk) };
      } catch {
        // out of range scalar (probability ~2^-128): draw again
      }
    }
  },
  /** Throws for a secret outside [1, n). */
  publicKeyOf(secretKey: Bytes): Bytes {
    let pk = publicKeys.get(secretKey);
    if (!pk) {
      pk = xOnlyPointFromScalar(secretKey);
      publicKeys.set(secretKey, pk);
    }
    return pk;
  },
  /** BIP-340 signature over a 32-byte message, with injected auxiliary randomness. */
  sign(secretKey: Bytes, message: Bytes, rng: Rng): Bytes {
    return signSchnorr(message, secretKey, rng(32));
  },
  /** False for any bad input: a key that is not on the curve, a malformed signature. */
  verify(publicKey: Bytes, message: Bytes, signature: Bytes): boolean {
    try {
      return verifySchnorr(message, publicKey, signature);
    } catch {
      // tiny-secp256k1 throws on malformed input (wrong length, x not on the curve, r or s out of range).
      return false;
    }
  },
};
