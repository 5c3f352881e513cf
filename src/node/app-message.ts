import { type Bytes, fromUtf8, toHex, utf8 } from '../crypto/index.js';
import { fail } from '../errors.js';
import { encodePublicIdentity, type PublicIdentity, readPublicIdentity } from '../identity/index.js';
import { Reader, Writer } from '../wire/codec.js';

export const APP_MESSAGE_VERSION = 1;
export const MAX_TEXT_BYTES = 64 * 1024;
const MAX_RECEIPT_IDS = 256;
const MAX_SEALED_BYTES = 8 * 1024;
const ID_BYTES = 16;
const FINGERPRINT_BYTES = 32;

/**
 * What travels inside the ratchet: a typed, versioned application message. Types 1 and 2 are for
 * people; 16 to 31 are the key-exchange control messages of the invite protocol.
 */
export type AppMessage = { readonly id: string; readonly sentAt: number } & (
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'receipt'; readonly ids: readonly string[] }
  /** The inviter's first message after a key exchange: until one arrives, the acceptor cannot send. */
  | { readonly type: 'kx-hello' }
  /** RMMediateIdentity: the requester asks its mediator for an introduction to `target` (a fingerprint). */
  | { readonly type: 'mediate-identity'; readonly target: string }
  /** RMInvite: the mediator asks the target to invite `requester`. */
  | { readonly type: 'invite-request'; readonly requester: PublicIdentity }
  /** An invite sealed to a third party, carried by a mediator who cannot read it. `peer`: its other end. */
  | { readonly type: 'transitive'; readonly peer: string; readonly sealed: Bytes }
  /** The mediator tells one side of an introduction to expect an invite from `target`. */
  | { readonly type: 'introduced'; readonly target: PublicIdentity }
  /** Group chats: an invitation (the admin's signed member list), a join, a new member list, a message. */
  | { readonly type: 'group-invite'; readonly members: Bytes }
  | { readonly type: 'group-join'; readonly groupId: string }
  | { readonly type: 'group-members'; readonly members: Bytes }
  | { readonly type: 'group-text'; readonly groupId: string; readonly text: string }
  /** Transitive reset: a reset invite sealed to `peer`, for the mediator to pass on, and as passed on (`peer`: its sender). */
  | { readonly type: 'reset-via'; readonly peer: string; readonly sealed: Bytes }
  | { readonly type: 'reset-forwarded'; readonly peer: string; readonly sealed: Bytes }
  /** A control message of ours was refused: its id, its type, and why. Never answered with another refusal. */
  | { readonly type: 'refused'; readonly refusedId: string; readonly refusedType: AppMessageType; readonly reason: string }
);

export type AppMessageType = (typeof TYPES)[number];

const TYPES = [
  'text',
  'receipt',
  'kx-hello',
  'mediate-identity',
  'invite-request',
  'transitive',
  'introduced',
  'group-invite',
  'group-join',
  'group-members',
  'group-text',
  'reset-via',
  'reset-forwarded',
  'refused',
] as const;
const CODES: Record<AppMessage['type'], number> = {
  text: 1,
  receipt: 2,
  'kx-hello': 16,
  'mediate-identity': 17,
  'invite-request': 18,
  transitive: 19,
  introduced: 20,
  'group-invite': 21,
  'group-join': 22,
  'group-members': 23,
  'group-text': 24,
  'reset-via': 25,
  'reset-forwarded': 26,
  refused: 27,
};
const MAX_REASON_BYTES = 256;
const MAX_MEMBERS_BYTES = 16 * 1024;

function writeId(w: Writer, hex: string, bytes = ID_BYTES): void {
  if (!new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(hex)) throw new RangeError(`id must be ${bytes * 2} hex digits`);
  w.fixed(Buffer.from(hex, 'hex'), bytes);
}

export function encodeAppMessage(m: AppMessage): Bytes {
  const w = new Writer(256 + (m.type === 'text' ? m.text.length * 3 : 2048)).u8(APP_MESSAGE_VERSION).u8(CODES[m.type]);
  writeId(w, m.id);
  w.u64(m.sentAt);
  switch (m.type) {
    case 'text':
      writeText(w, m.text);
      break;
    case 'group-text':
      writeId(w, m.groupId);
      writeText(w, m.text);
      break;
    case 'group-invite':
    case 'group-members':
      w.bytes(m.members);
      break;
    case 'group-join':
      writeId(w, m.groupId);
      break;
    case 'receipt':
      if (m.ids.length > MAX_RECEIPT_IDS) throw new RangeError('too many ids in one receipt');
      w.u16(m.ids.length);
      for (const id of m.ids) writeId(w, id);
      break;
    case 'kx-hello':
      break;
    case 'mediate-identity':
      writeId(w, m.target, FINGERPRINT_BYTES);
      break;
    case 'invite-request':
      w.bytes(encodePublicIdentity(m.requester));
      break;
    case 'transitive':
    case 'reset-via':
    case 'reset-forwarded':
      writeId(w, m.peer, FINGERPRINT_BYTES);
      w.bytes(m.sealed);
      break;
    case 'introduced':
      w.bytes(encodePublicIdentity(m.target));
      break;
    case 'refused':
      writeId(w, m.refusedId);
      w.u8(CODES[m.refusedType]);
      w.bytes(utf8(clip(m.reason, MAX_REASON_BYTES)));
      break;
  }
  return w.finish();
}

/** Refuses a text the user gave that cannot be sent (empty, or over MAX_TEXT_BYTES), saying the limit. */
export function assertSendableText(text: string): void {
  if (text.length === 0) fail('INVALID_ARGUMENT', 'refusing to send an empty message');
  const bytes = utf8(text).length;
  if (bytes > MAX_TEXT_BYTES) fail('INVALID_ARGUMENT', `a message is at most ${MAX_TEXT_BYTES} bytes (UTF-8); this one is ${bytes}`);
}

function writeText(w: Writer, text: string): void {
  const body = utf8(text);
  if (body.length > MAX_TEXT_BYTES) throw new RangeError(`text of ${body.length} bytes exceeds ${MAX_TEXT_BYTES}`);
  w.bytes(body);
}

/** The longest prefix of `text` that fits in `max` UTF-8 bytes, cut between characters. */
function clip(text: string, max: number): string {
  let out = '';
  let size = 0;
  for (const ch of text) {
    size += utf8(ch).length;
    if (size > max) break;
    out += ch;
  }
  return out;
}

function typeOf(code: number): AppMessageType {
  return TYPES.find((t) => CODES[t] === code) ?? fail('MALFORMED', `application message: unknown type ${code}`);
}

function readText(r: Reader, max = MAX_TEXT_BYTES): string {
  try {
    return fromUtf8(r.bytes(max));
  } catch (e) {
    if (e instanceof TypeError) return fail('MALFORMED', 'application message: text is not valid UTF-8');
    throw e;
  }
}

function readIdentity(r: Reader): PublicIdentity {
  const inner = new Reader(r.bytes(4096), 'application message identity');
  const p = readPublicIdentity(inner);
  inner.end();
  if (p.kemKey === null) fail('MALFORMED', 'application message: an introduction needs the full identity, with its KEM key');
  return p;
}

/** The validating decoder. */
export function decodeAppMessage(bytes: Bytes): AppMessage {
  const r = new Reader(bytes, 'application message');
  r.version(APP_MESSAGE_VERSION);
  const type = typeOf(r.u8());
  const head = { id: toHex(r.fixed(ID_BYTES)), sentAt: r.u64() };
  let m: AppMessage;
  switch (type) {
    case 'text':
      m = { ...head, type, text: readText(r) };
      break;
    case 'group-text':
      m = { ...head, type, groupId: toHex(r.fixed(ID_BYTES)), text: readText(r) };
      break;
    case 'group-invite':
    case 'group-members':
      m = { ...head, type, members: r.bytes(MAX_MEMBERS_BYTES) };
      break;
    case 'group-join':
      m = { ...head, type, groupId: toHex(r.fixed(ID_BYTES)) };
      break;
    case 'receipt': {
      const n = r.u16();
      if (n > MAX_RECEIPT_IDS) fail('MALFORMED', `application message: receipt for ${n} messages`);
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push(toHex(r.fixed(ID_BYTES)));
      m = { ...head, type, ids };
      break;
    }
    case 'kx-hello':
      m = { ...head, type };
      break;
    case 'mediate-identity':
      m = { ...head, type, target: toHex(r.fixed(FINGERPRINT_BYTES)) };
      break;
    case 'invite-request':
      m = { ...head, type, requester: readIdentity(r) };
      break;
    case 'transitive':
    case 'reset-via':
    case 'reset-forwarded':
      m = { ...head, type, peer: toHex(r.fixed(FINGERPRINT_BYTES)), sealed: r.bytes(MAX_SEALED_BYTES) };
      break;
    case 'introduced':
      m = { ...head, type, target: readIdentity(r) };
      break;
    case 'refused':
      m = { ...head, type, refusedId: toHex(r.fixed(ID_BYTES)), refusedType: typeOf(r.u8()), reason: readText(r, MAX_REASON_BYTES) };
      break;
  }
  r.end();
  return m;
}
