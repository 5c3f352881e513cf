import { createCipheriv, createDecipheriv } from 'node:crypto';
import { type Bytes, ownedView } from './bytes.js';

export const AES_GCM_NONCE_BYTES = 12;
export const AES_GCM_TAG_BYTES = 16;
const AES_BLOCK = 16;


/** CBC with PKCS#7 always adds 1 to 16 bytes of padding. */
export function aes256CbcCiphertextBytes(plaintextLength: number): number {
  return (Math.floor(plaintextLength / AES_BLOCK) + 1) * AES_BLOCK;
}

/** AES-256-CBC with PKCS#7 padding into out[at..], aes256CbcCiphertextBytes long. Only ever used under an HMAC. */
export function aes256CbcEncryptInto(key: Bytes, iv: Bytes, plaintext: Bytes, out: Bytes, at: number): void {
  const c = createCipheriv('aes-256-cbc', key, iv);
  const head = c.update(plaintext);
  out.set(head, at);
  out.set(c.final(), at + head.length);
}

export function aes256CbcEncrypt(key: Bytes, iv: Bytes, plaintext: Bytes): Bytes {
  const out = new Uint8Array(aes256CbcCiphertextBytes(plaintext.length));
  aes256CbcEncryptInto(key, iv, plaintext, out, 0);
  return out;
}

/**
 * Returns null on bad padding; callers have already checked the MAC, so this only guards bugs. The
 * padding is stripped here rather than by OpenSSL, so the plaintext is a view of the one buffer
 * decryption produced instead of a concatenation of two.
 */
export function aes256CbcDecrypt(key: Bytes, iv: Bytes, ciphertext: Bytes): Bytes | null {
  if (ciphertext.length === 0 || ciphertext.length % AES_BLOCK !== 0) return null;
  const d = createDecipheriv('aes-256-cbc', key, iv).setAutoPadding(false);
  const padded = d.update(ciphertext);
  d.final();
  const pad = padded[padded.length - 1]!;
  if (pad < 1 || pad > AES_BLOCK) return null;
  for (let i = padded.length - pad; i < padded.length; i++) if (padded[i] !== pad) return null;
  return ownedView(padded, padded.length - pad);
}

/** AES-256-GCM into out[at..]: ciphertext then the 16-byte tag. */
export function aes256GcmSealInto(key: Bytes, nonce: Bytes, plaintext: Bytes, ad: Bytes, out: Bytes, at: number): void {
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: AES_GCM_TAG_BYTES });
  c.setAAD(ad);
  const body = c.update(plaintext);
  out.set(body, at);
  c.final(); // GCM is a stream mode: nothing is held back
  out.set(c.getAuthTag(), at + body.length);
}

/** AES-256-GCM: returns ciphertext || 16-byte tag. */
export function aes256GcmSeal(key: Bytes, nonce: Bytes, plaintext: Bytes, ad: Bytes): Bytes {
  const out = new Uint8Array(plaintext.length + AES_GCM_TAG_BYTES);
  aes256GcmSealInto(key, nonce, plaintext, ad, out, 0);
  return out;
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
    const opened = d.update(body);
    d.final(); // throws unless the tag verifies; GCM holds nothing back
    return ownedView(opened);
  } catch {
    return null;
  }
}
