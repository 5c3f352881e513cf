import {
  AES_GCM_NONCE_BYTES,
  aes256CbcDecrypt,
  aes256CbcEncrypt,
  aes256GcmOpen,
  aes256GcmSeal,
  type Bytes,
  concat,
  constantTimeEqual,
  hkdfSha256,
  hmacSha256,
  type Rng,
} from '../crypto/index.js';

// Double Ratchet spec section 5.2 recommendations, with our own info strings (docs/protocol.md).
const INFO_ROOT = 'ratchet-relay/dr/root/v1';
const INFO_MESSAGE_KEYS = 'ratchet-relay/dr/message-keys/v1';
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

/** KDF_CK: HMAC-SHA256 with constants 0x01 (message key) and 0x02 (next chain key). */
export function kdfCk(ck: Bytes): { ck: Bytes; mk: Bytes } {
  return { mk: hmacSha256(ck, CK_MESSAGE), ck: hmacSha256(ck, CK_CHAIN) };
}

function messageKeys(mk: Bytes): { encKey: Bytes; authKey: Bytes; iv: Bytes } {
  const out = hkdfSha256(mk, ZERO_SALT, INFO_MESSAGE_KEYS, 80);
  return { encKey: out.subarray(0, 32), authKey: out.subarray(32, 64), iv: out.subarray(64, 80) };
}

/** ENCRYPT: AES-256-CBC then HMAC-SHA256 over ad || ciphertext. A message key is used once, so the IV may be derived. */
export function encryptMessage(mk: Bytes, plaintext: Bytes, ad: Bytes): Bytes {
  const { encKey, authKey, iv } = messageKeys(mk);
  const ct = aes256CbcEncrypt(encKey, iv, plaintext);
  return concat(ct, hmacSha256(authKey, ad, ct));
}

/** DECRYPT: checks the MAC in constant time before touching the ciphertext. */
export function decryptMessage(mk: Bytes, sealed: Bytes, ad: Bytes): Bytes | null {
  if (sealed.length < AES_BLOCK + MAC_BYTES || (sealed.length - MAC_BYTES) % AES_BLOCK !== 0) return null;
  const { encKey, authKey, iv } = messageKeys(mk);
  const ct = sealed.subarray(0, sealed.length - MAC_BYTES);
  const mac = sealed.subarray(sealed.length - MAC_BYTES);
  if (!constantTimeEqual(hmacSha256(authKey, ad, ct), mac)) return null;
  return aes256CbcDecrypt(encKey, iv, ct);
}

/** HENCRYPT: AES-256-GCM with a random nonce; a header key serves a whole chain, so the nonce cannot be derived. */
export function encryptHeader(hk: Bytes, header: Bytes, ad: Bytes, rng: Rng): Bytes {
  const nonce = rng(AES_GCM_NONCE_BYTES);
  return concat(nonce, aes256GcmSeal(hk, nonce, header, ad));
}

export function decryptHeader(hk: Bytes, encHeader: Bytes, ad: Bytes): Bytes | null {
  return aes256GcmOpen(hk, encHeader.subarray(0, AES_GCM_NONCE_BYTES), encHeader.subarray(AES_GCM_NONCE_BYTES), ad);
}
