import { AES_GCM_NONCE_BYTES, AES_GCM_TAG_BYTES, type Bytes, concat } from '../crypto/index.js';
import { fail } from '../errors.js';
import { Reader, Writer } from '../wire/codec.js';
import { MAC_BYTES } from './kdf.js';

export const RATCHET_MESSAGE_VERSION = 1;
const HEADER_VERSION = 1;
export const HEADER_BYTES = 1 + 32 + 4 + 4;
export const ENCRYPTED_HEADER_BYTES = AES_GCM_NONCE_BYTES + HEADER_BYTES + AES_GCM_TAG_BYTES;
const MAX_BODY_BYTES = 1 << 20;

/** HEADER(dh, pn, n): the sender's current ratchet public key and its two counters. */
export interface Header {
  readonly dh: Bytes;
  readonly pn: number;
  readonly n: number;
}

export function encodeHeader(h: Header): Bytes {
  return new Writer(HEADER_BYTES).u8(HEADER_VERSION).fixed(h.dh, 32).u32(h.pn).u32(h.n).finish();
}

/** Only ever sees bytes that passed AEAD authentication, but still validates them. */
export function decodeHeader(bytes: Bytes): Header {
  const r = new Reader(bytes, 'ratchet header');
  r.version(HEADER_VERSION);
  const h = { dh: r.fixed(32), pn: r.u32(), n: r.u32() };
  r.end();
  return h;
}

/** On the wire: version || encrypted header || CBC ciphertext || HMAC. Nothing in it is readable without keys. */
export interface RatchetMessage {
  readonly encHeader: Bytes;
  readonly body: Bytes;
}

export function encodeRatchetMessage(m: RatchetMessage): Bytes {
  return concat(new Uint8Array([RATCHET_MESSAGE_VERSION]), m.encHeader, m.body);
}

export function decodeRatchetMessage(bytes: Bytes): RatchetMessage {
  const r = new Reader(bytes, 'ratchet message');
  r.version(RATCHET_MESSAGE_VERSION);
  const encHeader = r.fixed(ENCRYPTED_HEADER_BYTES);
  const bodyLength = bytes.length - 1 - ENCRYPTED_HEADER_BYTES;
  if (bodyLength < 16 + MAC_BYTES || (bodyLength - MAC_BYTES) % 16 !== 0 || bodyLength > MAX_BODY_BYTES)
    fail('MALFORMED', `ratchet message: body of ${bodyLength} bytes is not a valid ciphertext`);
  const body = r.fixed(bodyLength);
  r.end();
  return { encHeader, body };
}
