import { fail } from '../errors.js';
import type { Reader, Writer } from '../wire/codec.js';

/** A nickname is 1 to this many Unicode scalar values (so at most 4 × as many UTF-8 bytes on the wire). */
export const MAX_NICKNAME_CHARS = 32;
const MAX_NICKNAME_BYTES = 4 * MAX_NICKNAME_CHARS;

/**
 * Control characters, lone surrogates, line and paragraph separators, and the format characters:
 * bidi marks, embeddings, overrides and isolates (which reorder what a name shows, and the text
 * around it) and invisible ones (a zero-width space makes "al\u200bice" look like "alice"). Only the
 * zero-width (non-)joiner stays, which emoji sequences and some scripts need.
 */
const FORBIDDEN = /[\p{Cc}\p{Cs}\p{Zl}\p{Zp}]|(?![\u200c\u200d])\p{Cf}/u;
/** A name of hex digits could be taken for a fingerprint or a prefix of one (`rrelay send 3fa9…`). */
const HEX_LIKE = /^[0-9a-f]{4,}$/i;

/** Why `nick` is no acceptable nickname, or null when it is one. The same rule for ours and for a peer's. */
export function nicknameProblem(nick: string): string | null {
  const chars = [...nick].length;
  if (chars === 0) return 'a nickname must not be empty';
  if (chars > MAX_NICKNAME_CHARS) return `a nickname is at most ${MAX_NICKNAME_CHARS} characters (this one has ${chars})`;
  if (nick.trim() !== nick) return 'a nickname must not start or end with spaces';
  if (FORBIDDEN.test(nick)) return 'a nickname must not contain control, invisible or text-direction characters';
  if (HEX_LIKE.test(nick)) return 'a nickname must not look like a fingerprint (4 or more hex digits only)';
  return null;
}

/**
 * What two names are compared as, to tell whether a peer's nickname would look like a name already
 * taken: compatibility-normalised, without joiners, case-folded ("Alice", "ａｌｉｃｅ" and "alice" collide).
 */
export function nicknameKey(name: string): string {
  return name.normalize('NFKC').replace(/[\u200c\u200d]/g, '').toLowerCase();
}

/** The user's nickname, checked: INVALID_ARGUMENT with the rule it breaks. */
export function checkNickname(nick: string): string {
  const problem = nicknameProblem(nick);
  if (problem !== null) fail('INVALID_ARGUMENT', problem);
  return nick;
}

/** On the wire: u8 length of the UTF-8 bytes (0: none), then the bytes. */
export function writeNickname(w: Writer, nick: string | null): Writer {
  const bytes = new TextEncoder().encode(nick ?? '');
  if (nick !== null) checkNickname(nick);
  return w.u8(bytes.length).fixed(bytes, bytes.length);
}

/** The validating reader: well-formed UTF-8 and the rule of `nicknameProblem`, else MALFORMED; 0 bytes is none. */
export function readNickname(r: Reader, what: string): string | null {
  const n = r.u8();
  if (n > MAX_NICKNAME_BYTES) fail('MALFORMED', `${what}: nickname of ${n} bytes exceeds the limit of ${MAX_NICKNAME_BYTES}`);
  if (n === 0) return null;
  const bytes = r.fixed(n);
  let nick: string;
  try {
    nick = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return fail('MALFORMED', `${what}: the nickname is not valid UTF-8`);
  }
  const problem = nicknameProblem(nick);
  if (problem !== null) fail('MALFORMED', `${what}: refused nickname: ${problem}`);
  return nick;
}
