import type { Bytes } from '../crypto/index.js';
import { fail } from '../errors.js';
import { fromUtf8, toHex, utf8 } from '../crypto/index.js';
import { Reader, Writer } from '../wire/codec.js';

export const APP_MESSAGE_VERSION = 1;
const TYPE_TEXT = 1;
const TYPE_RECEIPT = 2;
// Types 16..31 are the key-exchange control messages of the invite protocol.
const TYPE_KX_HELLO = 16;
export const MAX_TEXT_BYTES = 64 * 1024;
const MAX_RECEIPT_IDS = 256;
const ID_BYTES = 16;

/** What travels inside the ratchet: a typed, versioned application message. */
export type AppMessage =
  | { readonly type: 'text'; readonly id: string; readonly sentAt: number; readonly text: string }
  | { readonly type: 'receipt'; readonly id: string; readonly sentAt: number; readonly ids: readonly string[] }
  /** The inviter's first message after a key exchange: until one arrives, the acceptor cannot send. */
  | { readonly type: 'kx-hello'; readonly id: string; readonly sentAt: number };

function writeId(w: Writer, hex: string): void {
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new RangeError('message id must be 32 hex digits');
  w.fixed(Buffer.from(hex, 'hex'), ID_BYTES);
}

export function encodeAppMessage(m: AppMessage): Bytes {
  const w = new Writer(64 + (m.type === 'text' ? m.text.length * 3 : m.type === 'receipt' ? m.ids.length * ID_BYTES : 0)).u8(APP_MESSAGE_VERSION);
  w.u8(m.type === 'text' ? TYPE_TEXT : m.type === 'receipt' ? TYPE_RECEIPT : TYPE_KX_HELLO);
  writeId(w, m.id);
  w.u64(m.sentAt);
  if (m.type === 'kx-hello') return w.finish();
  if (m.type === 'text') {
    const body = utf8(m.text);
    if (body.length > MAX_TEXT_BYTES) throw new RangeError(`text of ${body.length} bytes exceeds ${MAX_TEXT_BYTES}`);
    w.bytes(body);
  } else {
    if (m.ids.length > MAX_RECEIPT_IDS) throw new RangeError('too many ids in one receipt');
    w.u16(m.ids.length);
    for (const id of m.ids) writeId(w, id);
  }
  return w.finish();
}

/** The validating decoder. */
export function decodeAppMessage(bytes: Bytes): AppMessage {
  const r = new Reader(bytes, 'application message');
  r.version(APP_MESSAGE_VERSION);
  const type = r.u8();
  const id = toHex(r.fixed(ID_BYTES));
  const sentAt = r.u64();
  let m: AppMessage;
  if (type === TYPE_TEXT) {
    let text: string;
    try {
      text = fromUtf8(r.bytes(MAX_TEXT_BYTES));
    } catch (e) {
      if (e instanceof TypeError) return fail('MALFORMED', 'application message: text is not valid UTF-8');
      throw e;
    }
    m = { type: 'text', id, sentAt, text };
  } else if (type === TYPE_RECEIPT) {
    const n = r.u16();
    if (n > MAX_RECEIPT_IDS) fail('MALFORMED', `application message: receipt for ${n} messages`);
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(toHex(r.fixed(ID_BYTES)));
    m = { type: 'receipt', id, sentAt, ids };
  } else if (type === TYPE_KX_HELLO) m = { type: 'kx-hello', id, sentAt };
  else return fail('MALFORMED', `application message: unknown type ${type}`);
  r.end();
  return m;
}
