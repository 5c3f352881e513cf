import {
  AES_GCM_NONCE_BYTES,
  aes256CbcCiphertextBytes,
  aes256CbcDecrypt,
  aes256CbcEncryptInto,
  aes256GcmOpen,
  aes256GcmSealInto,
  type Bytes,
  constantTimeEqual,
  hkdfSha256,
  hmacSha256,
  hmacSha256Key,
  hmacSha256With,
  type Rng,
  utf8,
} from '../crypto/index.js';

// Double Ratchet spec section 5.2 recommendations, with our own info strings (docs/protocol.md).
const INFO_ROOT = 'ratchet-relay/dr/root/v1';
const INFO_MESSAGE_KEYS = utf8('ratchet-relay/dr/message-keys/v1');
const INFO_INIT = 'ratchet-relay/dr/init/v1';
const ZERO_SALT = new Uint8Array(32);
const CK_MESSAGE = new Uint8Array([0x01]);
const CK_CHAIN = new Uint8Array([0x02]);
export const MAC_BYTES = 32;
const AES_BLOCK = 16;

/** Splits the PQXDH secret into the initial root key and the two shared header keys (spec section 4). */
export function kdfInit(sk: Bytes): { rootKey: Bytes; sharedHka: Bytes; sharedNhkb: Bytes } {
  const out = hkdfSha256(sk, ZERO_SALT, INFO_INIT, 96);
  return { rootKey: out.slice(0, 32), sharedHka: out.slice(32, 64), sharedNhkb: out.slice(64, 96) };
}

/** KDF_RK_HE: HKDF with the root key as salt; returns new root key, chain key and next header key. */
export function kdfRk(rk: Bytes, dhOut: Bytes): { rk: Bytes; ck: Bytes; nhk: Bytes } {
  const out = hkdfSha256(dhOut, rk, INFO_ROOT, 96);
  return { rk: out.slice(0, 32), ck: out.slice(32, 64), nhk: out.slice(64, 96) };
}

/** KDF_CK: HMAC-SHA256 with constants 0x01 (message key) and 0x02 (next chain key), the key's pads computed once. */
export function kdfCk(ck: Bytes): { ck: Bytes; mk: Bytes } {
  const k = hmacSha256Key(ck);
  return { mk: hmacSha256With(k, CK_MESSAGE), ck: hmacSha256With(k, CK_CHAIN) };
}

function messageKeys(mk: Bytes): { encKey: Bytes; authKey: Bytes; iv: Bytes } {
  const out = hkdfSha256(mk, ZERO_SALT, INFO_MESSAGE_KEYS, 80);
  return { encKey: out.subarray(0, 32), authKey: out.subarray(32, 64), iv: out.subarray(64, 80) };
}

/** Bytes of a sealed body: the CBC ciphertext and its MAC. */
export function sealedBodyBytes(plaintextLength: number): number {
  return aes256CbcCiphertextBytes(plaintextLength) + MAC_BYTES;
}

/**
 * ENCRYPT: AES-256-CBC then HMAC-SHA256, written into the frame at out[at..] (sealedBodyBytes long).
 * The MAC covers ad || out[macFrom..at] || ciphertext: the caller puts the encrypted header just
 * before the body, so ad || encrypted header || ciphertext is authenticated without building it.
 * A message key is used once, so the IV may be derived.
 */
export function encryptMessageInto(mk: Bytes, plaintext: Bytes, ad: Bytes, out: Bytes, at: number, macFrom: number): void {
  const { encKey, authKey, iv } = messageKeys(mk);
  aes256CbcEncryptInto(encKey, iv, plaintext, out, at);
  const macAt = at + aes256CbcCiphertextBytes(plaintext.length);
  out.set(hmacSha256(authKey, ad, out.subarray(macFrom, macAt)), macAt);
}

/**
 * DECRYPT: `authenticated` is what the MAC covers after ad (encrypted header || ciphertext), ending
 * with `ciphertext`. Checks the MAC in constant time before touching the ciphertext.
 */
export function decryptMessage(mk: Bytes, ad: Bytes, authenticated: Bytes, ciphertext: Bytes, mac: Bytes): Bytes | null {
  if (ciphertext.length < AES_BLOCK || ciphertext.length % AES_BLOCK !== 0 || mac.length !== MAC_BYTES) return null;
  const { encKey, authKey, iv } = messageKeys(mk);
  if (!constantTimeEqual(hmacSha256(authKey, ad, authenticated), mac)) return null;
  return aes256CbcDecrypt(encKey, iv, ciphertext);
}

/** HENCRYPT into out[at..]: AES-256-GCM with a random nonce, nonce || ciphertext || tag. A header key serves a whole chain, so the nonce cannot be derived. */
export function encryptHeaderInto(hk: Bytes, header: Bytes, ad: Bytes, rng: Rng, out: Bytes, at: number): void {
  const nonce = rng(AES_GCM_NONCE_BYTES);
  out.set(nonce, at);
  aes256GcmSealInto(hk, nonce, header, ad, out, at + AES_GCM_NONCE_BYTES);
}

export function decryptHeader(hk: Bytes, encHeader: Bytes, ad: Bytes): Bytes | null {
  return aes256GcmOpen(hk, encHeader.subarray(0, AES_GCM_NONCE_BYTES), encHeader.subarray(AES_GCM_NONCE_BYTES), ad);
}
