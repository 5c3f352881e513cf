import type { Bytes } from '../crypto/index.js';
import { fail } from '../errors.js';
import { fingerprintBytes, type Identity, identitySign, identityVerify, type PublicIdentity } from '../identity/index.js';
import { decodePreKeyBundle, encodePreKeyBundle, type PreKeyBundle } from '../prekeys/index.js';
import { Reader, Writer } from '../wire/codec.js';

export const RETRY_REQUEST_VERSION = 1;
const RETRY_REQUEST_CONTEXT = 'ratchet-relay/retry-request/v1';
const MAX_BUNDLE_BYTES = 4096;

/** Why the recipient could not read a message; each code names a cause the sender can cure with a new session. */
export const RETRY_REASONS = {
  ONE_TIME_PREKEY_USED: 1,
  UNKNOWN_PREKEY: 2,
  PREKEY_EXPIRED: 3,
  LOST_SESSION: 4,
} as const;
export type RetryReason = keyof typeof RETRY_REASONS;

/** The base key of a session the recipient cannot name (it lost it): the sender's active session is meant. */
export const UNKNOWN_BASE_KEY = new Uint8Array(32);

/**
 * Signal's decryption-error message, for sessions without a server: "I could not read the message
 * that started (or continued) your session `baseKey`; start a new one from this bundle". The bundle
 * carries the requester's current signed and Kyber pre-keys and no one-time key, so a retried session
 * can never collide again. Signed by the requester's identity over the requester's choice of recipient.
 */
export interface RetryRequest {
  readonly baseKey: Bytes;
  readonly reason: RetryReason;
  readonly requestedAt: number;
  readonly bundle: PreKeyBundle;
}

function signedBody(w: Writer, r: RetryRequest): Writer {
  return w
    .u8(RETRY_REQUEST_VERSION)
    .fixed(r.baseKey, 32)
    .u8(RETRY_REASONS[r.reason])
    .u64(r.requestedAt)
    .bytes(encodePreKeyBundle({ ...r.bundle, oneTimePreKeys: [] }));
}

function signedMessage(r: RetryRequest, recipient: PublicIdentity): Bytes {
  return signedBody(new Writer().fixed(fingerprintBytes(recipient), 32), r).finish();
}

export function encodeRetryRequest(self: Identity, r: RetryRequest, recipient: PublicIdentity): Bytes {
  const signature = identitySign(self, RETRY_REQUEST_CONTEXT, signedMessage(r, recipient));
  return signedBody(new Writer(2400), r).fixed(signature, 64).finish();
}

/**
 * The validating decoder: the bundle's own signatures and the request's signature (by the bundle's
 * identity, addressed to `recipient`) are checked here. Whether that identity is the contact who sent
 * it is for the caller to check.
 */
export function decodeRetryRequest(bytes: Bytes, recipient: PublicIdentity): RetryRequest {
  const r = new Reader(bytes, 'retry request');
  r.version(RETRY_REQUEST_VERSION);
  const baseKey = r.fixed(32);
  const code = r.u8();
  const reason = (Object.keys(RETRY_REASONS) as RetryReason[]).find((k) => RETRY_REASONS[k] === code);
  if (!reason) return fail('MALFORMED', `retry request: unknown reason ${code}`);
  const requestedAt = r.u64();
  const bundle = decodePreKeyBundle(r.bytes(MAX_BUNDLE_BYTES));
  if (bundle.oneTimePreKeys.length > 0) fail('MALFORMED', 'retry request: the bundle carries one-time keys');
  const signature = r.fixed(64);
  r.end();
  const request: RetryRequest = { baseKey, reason, requestedAt, bundle };
  if (!identityVerify(bundle.identity, RETRY_REQUEST_CONTEXT, signedMessage(request, recipient), signature))
    fail('BAD_SIGNATURE', 'retry request: signature does not verify');
  return request;
}
