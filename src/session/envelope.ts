import type { Bytes } from '../crypto/index.js';
import { fail } from '../errors.js';
import { type PqxdhHeader, readPqxdhHeader, writePqxdhHeader } from '../pqxdh/index.js';
import { decodeRatchetMessage } from '../ratchet/index.js';
import { Reader, Writer } from '../wire/codec.js';

export const ENVELOPE_VERSION = 1;
const TYPE_PREKEY = 1;
const TYPE_NORMAL = 2;
const TYPE_RETRY_REQUEST = 3;
const MAX_RETRY_REQUEST_BYTES = 4096;
const MAX_MESSAGE_BYTES = 1 << 20;

/**
 * The session-level wire format: it says explicitly whether it starts a session, or is no message at
 * all but a retry request (see retry-request.ts, whose decoder reads `request`).
 */
export type Envelope =
  | { readonly type: 'prekey'; readonly header: PqxdhHeader; readonly message: Bytes }
  | { readonly type: 'normal'; readonly message: Bytes }
  | { readonly type: 'retry-request'; readonly request: Bytes };

/** An envelope that carries a ratchet message. */
export type MessageEnvelope = Exclude<Envelope, { type: 'retry-request' }>;

// version, type, length prefix; a pre-key header is larger, and the Writer grows once for it.
const ENVELOPE_OVERHEAD = 1 + 1 + 4;

export function encodeEnvelope(e: Envelope): Bytes {
  // Sized for the common case so that a normal message is copied once, not grown and then trimmed.
  const w = new Writer(ENVELOPE_OVERHEAD + (e.type === 'retry-request' ? e.request : e.message).length).u8(ENVELOPE_VERSION);
  if (e.type === 'retry-request') return w.u8(TYPE_RETRY_REQUEST).bytes(e.request).finish();
  if (e.type === 'prekey') writePqxdhHeader(w.u8(TYPE_PREKEY), e.header);
  else w.u8(TYPE_NORMAL);
  return w.bytes(e.message).finish();
}

/** The validating decoder: the ratchet message inside is structurally checked too. */
export function decodeEnvelope(bytes: Bytes): Envelope {
  const r = new Reader(bytes, 'envelope');
  r.version(ENVELOPE_VERSION);
  const type = r.u8();
  let e: Envelope;
  if (type === TYPE_PREKEY) {
    const header = readPqxdhHeader(r);
    e = { type: 'prekey', header, message: r.bytes(MAX_MESSAGE_BYTES) };
  } else if (type === TYPE_NORMAL) e = { type: 'normal', message: r.bytes(MAX_MESSAGE_BYTES) };
  else if (type === TYPE_RETRY_REQUEST) e = { type: 'retry-request', request: r.bytes(MAX_RETRY_REQUEST_BYTES) };
  else return fail('MALFORMED', `envelope: unknown type ${type}`);
  r.end();
  if (e.type !== 'retry-request') decodeRatchetMessage(e.message);
  return e;
}

/** An envelope that must carry a ratchet message (what a session decrypts). */
export function decodeMessageEnvelope(bytes: Bytes): MessageEnvelope {
  const e = decodeEnvelope(bytes);
  if (e.type === 'retry-request') return fail('MALFORMED', 'envelope: a retry request carries no message');
  return e;
}
