import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import { type Bytes, fromBase64Url, toBase64Url } from './bytes.js';
import type { Rng } from './random.js';

export interface KeyPair {
  readonly publicKey: Bytes;
  readonly privateKey: Bytes;
}

export const X25519_KEY_BYTES = 32;

// Importing raw keys costs more than a DH; cache KeyObjects per Uint8Array instance.
// Protocol state is immutable, so the same instance is reused across many operations.
const privateCache = new WeakMap<Bytes, KeyObject>();
const publicCache = new WeakMap<Bytes, KeyObject>();
// OpenSSL derives the public key from `d` and ignores `x`, but Node requires the field to be present.
const PLACEHOLDER_X = 'A'.repeat(43);

function privateKeyObject(curve: 'X25519' | 'Ed25519', d: Bytes, cache: WeakMap<Bytes, KeyObject>): KeyObject {
  let k = cache.get(d);
  if (!k) {
    if (d.length !== 32) throw new RangeError(`${curve} private key must be 32 bytes`);
    k = createPrivateKey({ key: { kty: 'OKP', crv: curve, d: toBase64Url(d), x: PLACEHOLDER_X }, format: 'jwk' });
    cache.set(d, k);
  }
  return k;
}

function publicKeyObject(curve: 'X25519' | 'Ed25519', x: Bytes, cache: WeakMap<Bytes, KeyObject>): KeyObject {
  let k = cache.get(x);
  if (!k) {
    if (x.length !== 32) throw new RangeError(`${curve} public key must be 32 bytes`);
    k = createPublicKey({ key: { kty: 'OKP', crv: curve, x: toBase64Url(x) }, format: 'jwk' });
    cache.set(x, k);
  }
  return k;
}

/** Shared by X25519 and Ed25519: derive the public half of a 32-byte private key. */
export function okpKeyPair(curve: 'X25519' | 'Ed25519', privateKey: Bytes, cache: WeakMap<Bytes, KeyObject>): KeyPair {
  const priv = privateKeyObject(curve, privateKey, cache);
  const jwk = createPublicKey(priv).export({ format: 'jwk' });
  return { privateKey, publicKey: fromBase64Url(jwk.x as string) };
}

export { privateKeyObject, publicKeyObject };

export const X25519 = {
  /** RFC 7748 clamps inside the scalar multiplication, so any 32 random bytes are a private key. */
  keyPairFromPrivate(privateKey: Bytes): KeyPair {
    return okpKeyPair('X25519', privateKey, privateCache);
  },

  generate(rng: Rng): KeyPair {
    return X25519.keyPairFromPrivate(rng(32));
  },

  /** Fails on a low-order public key (all-zero output), as RFC 7748 section 6.1 allows. */
  dh(privateKey: Bytes, publicKey: Bytes): Bytes {
    const out = diffieHellman({
      privateKey: privateKeyObject('X25519', privateKey, privateCache),
      publicKey: publicKeyObject('X25519', publicKey, publicCache),
    });
    return new Uint8Array(out);
  },
};
