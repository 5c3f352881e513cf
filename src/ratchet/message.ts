import { AES_GCM_NONCE_BYTES, AES_GCM_TAG_BYTES, type Bytes } from '../crypto/index.js';
import { fail } from '../errors.js';
import { Reader, Writer } from '../wire/codec.js';
import { MAC_BYTES, sealedBodyBytes } from './kdf.js';

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

/**
 * On the wire: version || encrypted header || CBC ciphertext || HMAC. Nothing in it is readable
 * without keys. Decoded as views into the frame: a decrypt uses them at once and keeps none.
 */
export interface RatchetMessage {
  readonly encHeader: Bytes;
  /** encrypted header || ciphertext: what the MAC covers after the associated data. */
  readonly authenticated: Bytes;
  readonly ciphertext: Bytes;
  readonly mac: Bytes;
}

export const FRAME_HEADER_AT = 1;
const FRAME_BODY_AT = FRAME_HEADER_AT + ENCRYPTED_HEADER_BYTES;

/** The whole frame, allocated once: the header and body are then encrypted into it in place. */
export function newFrame(plaintextLength: number): { frame: Bytes; bodyAt: number } {
  const frame = new Uint8Array(FRAME_BODY_AT + sealedBodyBytes(plaintextLength));
  frame[0] = RATCHET_MESSAGE_VERSION;
  return { frame, bodyAt: FRAME_BODY_AT };
}

export function decodeRatchetMessage(bytes: Bytes): RatchetMessage {
  new Reader(bytes, 'ratchet message').version(RATCHET_MESSAGE_VERSION);
  if (bytes.length < FRAME_BODY_AT) fail('MALFORMED', 'ratchet message: truncated');
  const bodyLength = bytes.length - FRAME_BODY_AT;
  if (bodyLength < 16 + MAC_BYTES || (bodyLength - MAC_BYTES) % 16 !== 0 || bodyLength > MAX_BODY_BYTES)
    fail('MALFORMED', `ratchet message: body of ${bodyLength} bytes is not a valid ciphertext`);
  const macAt = bytes.length - MAC_BYTES;
  return {
    encHeader: bytes.subarray(FRAME_HEADER_AT, FRAME_BODY_AT),
    authenticated: bytes.subarray(FRAME_HEADER_AT, macAt),
    ciphertext: bytes.subarray(FRAME_BODY_AT, macAt),
    mac: bytes.subarray(macAt),
  };
}
