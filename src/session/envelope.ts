import type { Bytes } from '../crypto/index.js';
import { fail } from '../errors.js';
import { type PqxdhHeader, readPqxdhHeader, writePqxdhHeader } from '../pqxdh/index.js';
import { decodeRatchetMessage } from '../ratchet/index.js';
import { Reader, Writer } from '../wire/codec.js';

export const ENVELOPE_VERSION = 1;
const TYPE_PREKEY = 1;
const TYPE_NORMAL = 2;
const MAX_MESSAGE_BYTES = 1 << 20;

/** The session-level wire format: it says explicitly whether it starts a session. */
export type Envelope =
  | { readonly type: 'prekey'; readonly header: PqxdhHeader; readonly message: Bytes }
  | { readonly type: 'normal'; readonly message: Bytes };

export function encodeEnvelope(e: Envelope): Bytes {
  const w = new Writer().u8(ENVELOPE_VERSION);
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
  else return fail('MALFORMED', `envelope: unknown type ${type}`);
  r.end();
  decodeRatchetMessage(e.message);
  return e;
}
