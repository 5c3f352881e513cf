import { createHash, createHmac, hash } from 'node:crypto';
import { type Bytes, ownedView } from './bytes.js';
import { sodium } from './sodium.js';

// crypto.hash (every Node the engines field allows) is one native call with no Hash object to build and collect.
const sha256Digest = (data: Bytes): Buffer => hash('sha256', data, 'buffer');

/**
 * Up to this many bytes libsodium's SHA-256 is cheaper per call than OpenSSL's (0.51 vs 0.70 µs at
 * 65-96 bytes here, writing into our buffer instead of a new Buffer); above it OpenSSL's SHA
 * extensions win (docs/crypto.md). Every HMAC of the ratchet's KDFs hashes 65-128 bytes twice.
 */
const SODIUM_SHA256_UP_TO = 128;

function sha256Into(out: Uint8Array, data: Bytes): Uint8Array {
  if (data.length <= SODIUM_SHA256_UP_TO) sodium.crypto_hash_sha256(out, data);
  else out.set(sha256Digest(data));
  return out;
}

export function sha256(data: Bytes): Bytes {
  return data.length <= SODIUM_SHA256_UP_TO ? sha256Into(new Uint8Array(32), data) : ownedView(sha256Digest(data));
}

export function sha512(data: Bytes): Bytes {
  return new Uint8Array(createHash('sha512').update(data).digest());
}

const BLOCK = 64;
/** Above this many message bytes, createHmac's streaming beats copying the message next to the pad. */
const STREAM_ABOVE = 512;

/**
 * An HMAC-SHA256 key prepared once (RFC 2104): its padded blocks K⊕ipad and K⊕opad. A chain key or
 * a PRK serves two or more HMACs, and node:crypto cannot save an HMAC's keyed state.
 */
export interface HmacSha256Key {
  readonly key: Bytes;
  readonly ipad: Bytes;
  readonly opad: Bytes;
}

const IPAD = new Uint8Array(BLOCK).fill(0x36);
const OPAD = new Uint8Array(BLOCK).fill(0x5c);

export function hmacSha256Key(key: Bytes): HmacSha256Key {
  const k = key.length > BLOCK ? sha256(key) : key;
  const ipad = IPAD.slice();
  const opad = OPAD.slice();
  for (let i = 0; i < k.length; i++) {
    ipad[i]! ^= k[i]!;
    opad[i]! ^= k[i]!;
  }
  return { key, ipad, opad };
}

// Reused across calls (everything here is synchronous). Not zeroed after use: that cost 0.35 µs per
// HMAC, and the keys it last held are in the caller's state anyway.
const scratch = new Uint8Array(BLOCK + STREAM_ABOVE);
const outer = new Uint8Array(BLOCK + 32);

/**
 * HMAC-SHA256(K, parts[0] ‖ parts[1] ‖ …) as H(K⊕opad ‖ H(K⊕ipad ‖ m)), two one-shot hashes; the
 * same bytes as createHmac (RFC 4231 vectors and a fast-check test against it).
 */
export function hmacSha256With(k: HmacSha256Key, ...parts: Bytes[]): Bytes {
  let n = 0;
  for (const p of parts) n += p.length;
  if (n > STREAM_ABOVE) {
    const h = createHmac('sha256', k.key);
    for (const p of parts) h.update(p);
    return ownedView(h.digest());
  }
  scratch.set(k.ipad);
  let o = BLOCK;
  for (const p of parts) {
    scratch.set(p, o);
    o += p.length;
  }
  outer.set(k.opad);
  sha256Into(outer.subarray(BLOCK), scratch.subarray(0, o));
  return sha256Into(new Uint8Array(32), outer);
}

/** HMAC-SHA256 over the concatenation of `parts`, without building it. */
export function hmacSha256(key: Bytes, ...parts: Bytes[]): Bytes {
  return hmacSha256With(hmacSha256Key(key), ...parts);
}

const HASH_BYTES = 32;
const UTF8 = new TextEncoder();

/**
 * HKDF-SHA-256 (RFC 5869), extract and expand written out as HMACs: hkdfSync builds two KeyObjects
 * per call and cost more than the rest of a message key's derivation. Same bytes as hkdfSync (RFC
 * 5869 vectors and a fast-check test against it).
 */
export function hkdfSha256(ikm: Bytes, salt: Bytes, info: Bytes | string, length: number): Bytes {
  return hkdf('SHA-256', HASH_BYTES, info, length, () => {
    // An empty salt pads to the same block as RFC 5869's HashLen zero bytes.
    const prk = hmacSha256Key(hmacSha256(salt, ikm));
    return (t, infoBytes, counter) => hmacSha256With(prk, t, infoBytes, counter);
  });
}

/**
 * RFC 5869's expand over the PRK that `extract` prepares: T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i).
 * The length is checked before any work.
 */
function hkdf(name: string, hashBytes: number, info: Bytes | string, length: number, extract: () => (t: Bytes, info: Bytes, counter: Bytes) => Bytes): Bytes {
  if (!Number.isInteger(length) || length < 0 || length > 255 * hashBytes)
    throw new RangeError(`HKDF-${name} output must be 0..${255 * hashBytes} bytes, got ${length}`);
  const infoBytes = typeof info === 'string' ? UTF8.encode(info) : info;
  const expand = extract();
  const out = new Uint8Array(length);
  const counter = new Uint8Array(1);
  let t: Bytes = new Uint8Array(0);
  for (let off = 0, i = 1; off < length; off += hashBytes, i++) {
    counter[0] = i;
    t = expand(t, infoBytes, counter);
    out.set(off + hashBytes <= length ? t : t.subarray(0, length - off), off);
  }
  return out;
}

const SHA512_BLOCK = 128;
const SHA512_BYTES = 64;

/**
 * HMAC-SHA512(K, parts[0] ‖ parts[1] ‖ …) on libsodium's SHA-512, as H(K⊕opad ‖ H(K⊕ipad ‖ m)):
 * for HKDF below. The key is at most one block here (HKDF's salt and PRK).
 */
function hmacSha512(key: Bytes, ...parts: Bytes[]): Uint8Array {
  if (key.length > SHA512_BLOCK) throw new RangeError('HMAC-SHA512 key longer than a block');
  let n = SHA512_BLOCK;
  for (const p of parts) n += p.length;
  const inner = new Uint8Array(n).fill(0x36, 0, SHA512_BLOCK);
  const outer = new Uint8Array(SHA512_BLOCK + SHA512_BYTES).fill(0x5c, 0, SHA512_BLOCK);
  for (let i = 0; i < key.length; i++) {
    inner[i]! ^= key[i]!;
    outer[i]! ^= key[i]!;
  }
  let o = SHA512_BLOCK;
  for (const p of parts) {
    inner.set(p, o);
    o += p.length;
  }
  sodium.crypto_hash_sha512(outer.subarray(SHA512_BLOCK), inner);
  const out = new Uint8Array(SHA512_BYTES);
  sodium.crypto_hash_sha512(out, outer);
  return out;
}

/**
 * HKDF-SHA-512 (RFC 5869), the KDF hash of PQXDH and the invite key exchange here: extract and
 * expand as HMACs on libsodium, 6 µs for PQXDH's 32 bytes against hkdfSync's 11 on Node 20 (two
 * KeyObjects per call; on Node 24 hkdfSync takes 5). The salt is at most one block (128 bytes; ours are 64 zero bytes). Same bytes as
 * hkdfSync (a fast-check test against it).
 */
export function hkdfSha512(ikm: Bytes, salt: Bytes, info: Bytes | string, length: number): Bytes {
  return hkdf('SHA-512', SHA512_BYTES, info, length, () => {
    // An empty salt pads to the same block as RFC 5869's HashLen zero bytes.
    const prk = hmacSha512(salt, ikm);
    return (t, infoBytes, counter) => hmacSha512(prk, t, infoBytes, counter);
  });
}
