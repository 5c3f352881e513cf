import { type Bytes, hkdfSha256, toHex } from '../crypto/index.js';
import type { RatchetState } from './state.js';

const MAILBOX_INFO = 'ratchet-relay mailbox v1';
const ZERO_SALT = new Uint8Array(32);

/**
 * The mailbox tag of a header key: hex(HKDF-SHA256(ikm = header key, salt = 32 zero bytes,
 * info = "ratchet-relay mailbox v1", 32)). Both ends hold the header key, so both derive the tag;
 * a relay, which holds neither, cannot link two tags or a tag to a key.
 */
export function mailboxTag(headerKey: Bytes): string {
  return toHex(hkdfSha256(headerKey, ZERO_SALT, MAILBOX_INFO, 32));
}

/** The tag a message sent now goes to: that of the sending header key, or null before this side can send. */
export function sendTag(s: RatchetState): string | null {
  return s.hks === null ? null : mailboxTag(s.hks);
}

/**
 * The tags messages to this state can still arrive on: the current and the next receiving header
 * keys (the peer's present chain and the one after its next DH step), and the header key of every
 * skipped message key kept. Once a skipped key is used or expires its tag goes with it.
 */
export function receiveTags(s: RatchetState): string[] {
  const keys = new Map<string, Bytes>();
  for (const k of [s.hkr, s.nhkr, ...s.skipped.map((x) => x.headerKey)]) if (k !== null) keys.set(toHex(k), k);
  return [...keys.values()].map(mailboxTag);
}
