/** The one error type of ratchet-relay. `code` is stable and meant for programs; `message` for people. */
export type ErrorCode =
  | 'MALFORMED' // bytes that do not decode as the named wire format
  | 'UNSUPPORTED_VERSION'
  | 'BAD_SIGNATURE'
  | 'DECRYPT_FAILED' // tampering, wrong key, or garbage: indistinguishable on purpose
  | 'DUPLICATE_MESSAGE' // a replay of a message this session already decrypted
  | 'TOO_MANY_SKIPPED' // a counter jump beyond MAX_SKIP
  | 'UNKNOWN_PREKEY'
  | 'PREKEY_EXPIRED' // a pre-key past its grace period
  | 'ONE_TIME_PREKEY_USED'
  | 'NO_SESSION'
  | 'NOT_FOUND' // what the caller named is not there: a contact, or an identity in a data directory
  | 'IDENTITY_MISMATCH'
  | 'BAD_PASSPHRASE'
  | 'STORE'
  | 'INVALID_ARGUMENT';

export class RatchetRelayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RatchetRelayError';
  }
}

export function fail(code: ErrorCode, message: string): never {
  throw new RatchetRelayError(code, message);
}

export function isRatchetRelayError(e: unknown, code?: ErrorCode): e is RatchetRelayError {
  return e instanceof RatchetRelayError && (code === undefined || e.code === code);
}
