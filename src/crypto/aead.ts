import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { Bytes } from './bytes.js';

export const AES_GCM_NONCE_BYTES = 12;
export const AES_GCM_TAG_BYTES = 16;

// Buffer.concat allocates from Node's shared pool: copy, so that no result shares memory with another.
function u8(b: Buffer): Bytes {
  return new Uint8Array(b);
}

/** AES-256-CBC with PKCS#7 padding. Only ever used under an HMAC (encrypt-then-MAC). */
export function aes256CbcEncrypt(key: Bytes, iv: Bytes, plaintext: Bytes): Bytes {
  const c = createCipheriv('aes-256-cbc', key, iv);
  return u8(Buffer.concat([c.update(plaintext), c.final()]));
}

/** Returns null on bad padding; callers have already checked the MAC, so this only guards bugs. */
export function aes256CbcDecrypt(key: Bytes, iv: Bytes, ciphertext: Bytes): Bytes | null {
  try {
    const d = createDecipheriv('aes-256-cbc', key, iv);
    return u8(Buffer.concat([d.update(ciphertext), d.final()]));
  } catch {
    return null;
  }
}

/** AES-256-GCM: returns ciphertext || 16-byte tag. */
export function aes256GcmSeal(key: Bytes, nonce: Bytes, plaintext: Bytes, ad: Bytes): Bytes {
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: AES_GCM_TAG_BYTES });
  c.setAAD(ad);
  return u8(Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]));
}

/** Returns null when authentication fails. */
export function aes256GcmOpen(key: Bytes, nonce: Bytes, sealed: Bytes, ad: Bytes): Bytes | null {
  if (sealed.length < AES_GCM_TAG_BYTES) return null;
  const body = sealed.subarray(0, sealed.length - AES_GCM_TAG_BYTES);
  const tag = sealed.subarray(sealed.length - AES_GCM_TAG_BYTES);
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: AES_GCM_TAG_BYTES });
    d.setAAD(ad);
    d.setAuthTag(tag);
    return u8(Buffer.concat([d.update(body), d.final()]));
  } catch {
    return null;
  }
}
