import { createHash, createHmac, hkdfSync } from 'node:crypto';
import type { Bytes } from './bytes.js';

export function sha256(data: Bytes): Bytes {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

export function sha512(data: Bytes): Bytes {
  return new Uint8Array(createHash('sha512').update(data).digest());
}

/** HMAC-SHA256 over the concatenation of `parts`, without building it. */
export function hmacSha256(key: Bytes, ...parts: Bytes[]): Bytes {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** HKDF-SHA-256 (RFC 5869). */
export function hkdfSha256(ikm: Bytes, salt: Bytes, info: Bytes | string, length: number): Bytes {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
}

/** HKDF-SHA-512 (RFC 5869), the KDF hash of PQXDH here. */
export function hkdfSha512(ikm: Bytes, salt: Bytes, info: Bytes | string, length: number): Bytes {
  return new Uint8Array(hkdfSync('sha512', ikm, salt, info, length));
}
