import { type Bytes, concat, constantTimeEqual, fromBase64Url, MlKem1024, sha256, toBase64Url } from '../crypto/index.js';
import { fail } from '../errors.js';
import {
  decodePublicIdentity,
  encodePublicIdentity,
  type Identity,
  identitySign,
  identityVerify,
  type PublicIdentity,
} from '../identity/index.js';
import { Reader, Writer } from '../wire/codec.js';
import { readNickname, writeNickname } from './nickname.js';
import { RENDEZVOUS_POINT_BYTES, type RendezvousPoint } from './rendezvous.js';

export const INVITE_VERSION = 3;
export const INVITE_CONTEXT = 'ratchet-relay/kx/invite/v3';
export const INVITE_STRING_PREFIX = 'rrinv3';
const CHECKSUM_BYTES = 4;
/** A compact public identity is 266 bytes; the bound leaves room without letting input drive allocation. */
const MAX_IDENTITY_BYTES = 4096;
// Far above the 2,828 characters of the longest v3 invite; checked before any decoding.
const MAX_INVITE_STRING_CHARS = 8192;

/**
 * Message 1 of the key exchange, handed over out of band. It names where to answer (initialRV) and
 * where to ask for a ratchet reset later (resetRV), and carries a fresh ML-KEM-1024 key that seals the
 * answer: its secret lives only in the inviter's pending KX and is erased once the answer is opened
 * (forward secrecy). The identity goes in compact form, to keep the invite (and its QR code) small:
 * its ML-KEM key is not needed here, and the full identity comes sealed in the full KX. The inviter's
 * identity signs everything else, its chosen nickname included (v3), which becomes the acceptor's name
 * for it unless taken.
 */
export interface OOBPublicIdentityInvite {
  readonly identity: PublicIdentity; // compact form: kemKey is null
  readonly kemKey: Bytes; // ephemeral ML-KEM-1024 public key: the half KX is sealed to it
  readonly initialRV: RendezvousPoint;
  readonly resetRV: RendezvousPoint;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** The inviter's chosen name (checked by `nicknameProblem`), or null; none in a reset invite. */
  readonly nickname: string | null;
  readonly signature: Bytes;
}

type UnsignedInvite = Omit<OOBPublicIdentityInvite, 'signature'>;

function writeBody(w: Writer, i: UnsignedInvite): Writer {
  if (i.identity.kemKey !== null) fail('INVALID_ARGUMENT', 'an invite carries the compact public identity (without its KEM key)');
  const fields = w
    .u8(INVITE_VERSION)
    .bytes(encodePublicIdentity(i.identity))
    .fixed(i.kemKey, MlKem1024.publicKeyBytes)
    .fixed(i.initialRV, RENDEZVOUS_POINT_BYTES)
    .fixed(i.resetRV, RENDEZVOUS_POINT_BYTES)
    .u64(i.createdAt)
    .u64(i.expiresAt);
  return writeNickname(fields, i.nickname);
}

/** Signs with the identity's Ed25519 key; `self` must own `unsigned.identity`. */
export function signInvite(self: Identity, unsigned: UnsignedInvite): OOBPublicIdentityInvite {
  const body = writeBody(new Writer(2048), unsigned).finish();
  return { ...unsigned, signature: identitySign(self, INVITE_CONTEXT, body) };
}

export function encodeInvite(i: OOBPublicIdentityInvite): Bytes {
  return writeBody(new Writer(2048), i).fixed(i.signature, 64).finish();
}

/**
 * The validating decoder: compact identity with a good self-signature, sane times, distinct RVs, good
 * invite signature. The ephemeral KEM key is checked (FIPS 203) when the acceptor seals to it.
 */
export function decodeInvite(bytes: Bytes): OOBPublicIdentityInvite {
  const r = new Reader(bytes, 'invite');
  r.version(INVITE_VERSION);
  const identity = decodePublicIdentity(r.bytes(MAX_IDENTITY_BYTES));
  if (identity.kemKey !== null) fail('MALFORMED', 'invite: the identity must be in compact form');
  const kemKey = r.fixed(MlKem1024.publicKeyBytes);
  const initialRV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const resetRV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const createdAt = r.u64();
  const expiresAt = r.u64();
  const nickname = readNickname(r, 'invite');
  const signature = r.fixed(64);
  r.end();
  const body = bytes.subarray(0, bytes.length - 64);
  if (expiresAt <= createdAt) fail('MALFORMED', 'invite: expires before it was created');
  if (constantTimeEqual(initialRV, resetRV)) fail('MALFORMED', 'invite: initial and reset rendezvous points are the same');
  if (!identityVerify(identity, INVITE_CONTEXT, body, signature))
    fail('BAD_SIGNATURE', 'invite: signature does not verify');
  return { identity, kemKey, initialRV, resetRV, createdAt, expiresAt, nickname, signature };
}

/** Expired from `expiresAt` on: the inviter answers no half KX from that moment. */
export function isExpired(invite: { readonly expiresAt: number }, now: number): boolean {
  return now >= invite.expiresAt;
}

function checksum(bytes: Bytes): Bytes {
  return sha256(bytes).subarray(0, CHECKSUM_BYTES);
}

/** `rrinv3` || base64url(invite bytes || first 4 bytes of SHA-256(invite bytes)), for copy and paste. */
export function inviteToString(invite: OOBPublicIdentityInvite): string {
  const bytes = encodeInvite(invite);
  return INVITE_STRING_PREFIX + toBase64Url(concat(bytes, checksum(bytes)));
}

/**
 * The string's checksum catches a mistyped or truncated copy before anything else runs, and says so;
 * the invite decoder then validates the bytes. Strict: no whitespace, no padding.
 */
export function inviteFromString(s: string): OOBPublicIdentityInvite {
  if (/^rrinv\d/.test(s) && !s.startsWith(INVITE_STRING_PREFIX))
    fail('MALFORMED', `invite string: made by another version (${s.slice(0, 6)}); this one reads "${INVITE_STRING_PREFIX}" invites: ask for a new invite`);
  if (!s.startsWith(INVITE_STRING_PREFIX)) fail('MALFORMED', `invite string: does not start with "${INVITE_STRING_PREFIX}"`);
  const text = s.slice(INVITE_STRING_PREFIX.length);
  if (text.length > MAX_INVITE_STRING_CHARS) fail('MALFORMED', 'invite string: too long');
  const bad = text.search(/[^A-Za-z0-9_-]/);
  if (bad >= 0) fail('MALFORMED', `invite string: invalid character at position ${INVITE_STRING_PREFIX.length + bad}`);
  const raw = fromBase64Url(text);
  // Node ignores the unused low bits of the last character; a changed last character is a copy error too.
  if (toBase64Url(raw) !== text) fail('MALFORMED', 'invite string: checksum does not match (bad final character)');
  if (raw.length <= CHECKSUM_BYTES) fail('MALFORMED', 'invite string: too short to hold a checksum');
  const bytes = raw.subarray(0, raw.length - CHECKSUM_BYTES);
  if (!constantTimeEqual(checksum(bytes), raw.subarray(raw.length - CHECKSUM_BYTES)))
    fail('MALFORMED', 'invite string: checksum does not match (mistyped or truncated copy?)');
  return decodeInvite(bytes);
}
