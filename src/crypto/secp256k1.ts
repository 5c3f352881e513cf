// libsecp256k1 itself, not bcrypto's entry point: `bcrypto/lib/schnorr` turns into pure JS under
// NODE_BACKEND=js and `bcrypto/lib/native/schnorr` into libtorsion under BCRYPTO_FORCE_TORSION=1.
// A missing native binding throws here, at import.
import schnorr from 'bcrypto/lib/native/schnorr-libsecp256k1.js';
import { type Bytes, bufferView, ownedView } from './bytes.js';
import type { Rng } from './random.js';
import type { KeyPair } from './x25519.js';

// A node key signs every bundle and seed-format event: its x-only public key is derived once per
// secret instance (protocol state is immutable), as a scalar multiplication costs half a signature.
const publicKeys = new WeakMap<Bytes, Bytes>();

/**
 * BIP-340 keys, as Nostr uses them, on native libsecp256k1 (bcrypto, N-API): verification 48 µs
 * here against 222 µs on libsecp256k1 in WASM (tiny-secp256k1) and ~1.3 ms in noble's pure JS,
 * signing 54 µs against 197, and +5.4 MiB of RSS against +11 to +13.5 (docs/crypto.md). Messages
 * are 32 bytes (our digests and event ids), as bcrypto's binding requires. The secret is random:
 * never derived from public material.
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
      // N-API's output Buffers own their memory (never the pool): the view shares it with nothing.
      pk = ownedView(schnorr.publicKeyCreate(bufferView(secretKey)));
      publicKeys.set(secretKey, pk);
    }
    return pk;
  },
  /** BIP-340 signature over a 32-byte message, with injected auxiliary randomness. Throws for any other length. */
  sign(secretKey: Bytes, message: Bytes, rng: Rng): Bytes {
    return ownedView(schnorr.sign(bufferView(message), bufferView(secretKey), bufferView(rng(32))));
  },
  /** False for any bad input: a message that is not 32 bytes, a key not on the curve, a malformed signature. */
  verify(publicKey: Bytes, message: Bytes, signature: Bytes): boolean {
    return schnorr.verify(bufferView(message), bufferView(signature), bufferView(publicKey));
  },
};

// A binding that loaded but computes something else (another build, another backend) fails here,
// at import: BIP-340 test vector 0's key pair.
if (Buffer.from(Secp256k1Schnorr.publicKeyOf(new Uint8Array(32).fill(3, 31))).toString('hex') !== 'f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9')
  throw new Error('bcrypto: native libsecp256k1 gave the wrong BIP-340 public key');
