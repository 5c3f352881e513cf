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
// Node 20: OpenSSL derives the public key from `d` and ignores `x`, but Node requires the field to be
// present (and DER import is ten times slower there). Node 24 checks `x` against `d`, and has a raw
// import instead; a Node 24 without it takes PKCS#8 DER, as fast there as raw.
const PLACEHOLDER_X = 'A'.repeat(43);
const PKCS8_PREFIX = { X25519: '302e020100300506032b656e04220420', Ed25519: '302e020100300506032b657004220420' } as const;
// Node 20's type definitions have no 'raw-private' format.
const rawPrivateImport = (curve: 'X25519' | 'Ed25519', d: Bytes): KeyObject =>
  createPrivateKey({ key: d, format: 'raw-private', asymmetricKeyType: curve.toLowerCase() } as unknown as Parameters<typeof createPrivateKey>[0]);
const HAS_RAW_PRIVATE = (() => {
  try {
    rawPrivateImport('X25519', new Uint8Array(32).fill(1));
    return true;
  } catch {
    return false;
  }
})();

function importPrivate(curve: 'X25519' | 'Ed25519', d: Bytes): KeyObject {
  if (HAS_RAW_PRIVATE) return rawPrivateImport(curve, d);
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv: curve, d: toBase64Url(d), x: PLACEHOLDER_X }, format: 'jwk' });
  } catch {
    const der = Buffer.concat([Buffer.from(PKCS8_PREFIX[curve], 'hex'), d]);
    try {
      return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } finally {
      der.fill(0);
    }
  }
}

function privateKeyObject(curve: 'X25519' | 'Ed25519', d: Bytes, cache: WeakMap<Bytes, KeyObject>): KeyObject {
  let k = cache.get(d);
  if (!k) {
    if (d.length !== 32) throw new RangeError(`${curve} private key must be 32 bytes`);
    k = importPrivate(curve, d);
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
