import { type Bytes, constantTimeEqual, MlKem1024, X25519_KEY_BYTES } from '../crypto/index.js';
import { fail } from '../errors.js';
import {
  decodePublicIdentity,
  encodePublicIdentity,
  type Identity,
  identitySign,
  identityVerify,
  type PublicIdentity,
  sameIdentity,
} from '../identity/index.js';
import { Reader, Writer } from '../wire/codec.js';
import { readNickname, writeNickname } from './nickname.js';
import { RENDEZVOUS_POINT_BYTES, type RendezvousPoint } from './rendezvous.js';

export const RMO_HALF_KX_VERSION = 3;
export const RMO_FULL_KX_VERSION = 2;
export const HALF_KX_CONTEXT = 'ratchet-relay/kx/half/v3';
export const FULL_KX_CONTEXT = 'ratchet-relay/kx/full/v2';
/**
 * The refusal's version byte. Its high bit marks a refusal: the acceptor reads either a full KX or a
 * refusal at step3RV, and tells them apart by the first byte (full KX versions stay below 0x80).
 */
export const RMO_KX_REFUSED_VERSION = 0x81;
export const KX_REFUSED_CONTEXT = 'ratchet-relay/kx/refused/v1';
const MAX_IDENTITY_BYTES = 4096;
const SIGNATURE_BYTES = 64;

/**
 * Message 2, the acceptor's answer, sealed to the invite's ephemeral KEM key and dropped at initialRV.
 * initialRV binds it to one invite, so it cannot be replayed against another; the acceptor's identity
 * signs everything else.
 */
export interface RMOHalfKX {
  readonly identity: PublicIdentity; // the acceptor's, full form: its KEM key seals later reset invites
  readonly ephemeralKey: Bytes; // X25519: the acceptor's half of the key exchange and Bob's first ratchet key
  readonly kemKey: Bytes; // ephemeral ML-KEM-1024 public key: the full KX (or a refusal) is sealed to it
  readonly initialRV: RendezvousPoint;
  readonly step3RV: RendezvousPoint; // where the full KX goes
  readonly resetRV: RendezvousPoint; // where the inviter asks the acceptor for a ratchet reset
  readonly nickname: string | null; // the acceptor's chosen name (v3): the inviter's name for it unless taken
  readonly signature: Bytes;
}

/**
 * Message 3, the inviter's answer, sealed to the half KX's ephemeral KEM key and dropped at step3RV.
 * It carries the inviter's full identity (the invite has only the compact one, to stay small), which
 * must be the invite's; the acceptor checks the signature against it. step3RV binds it to one half KX.
 */
export interface RMOFullKX {
  readonly identity: PublicIdentity; // the inviter's, full form
  readonly ephemeralKey: Bytes; // X25519: the inviter's half of the key exchange
  readonly step3RV: RendezvousPoint;
  readonly signature: Bytes;
}

/** Why an inviter refused a half KX. One code so far; a decoder of this version rejects any other. */
export const KX_REFUSAL_REASONS = { 'invite-used': 1 } as const;
export type KXRefusalReason = keyof typeof KX_REFUSAL_REASONS;

/**
 * Message 3 in place of the full KX: the inviter will not answer this half KX (its invite was spent by
 * another acceptor). Sealed to the half KX's ephemeral KEM key, dropped at step3RV, signed by the inviter's
 * identity. step3RV and the half KX's ephemeral key (both fresh for each half KX) bind it to the one
 * half KX it answers, so it cannot be replayed against another exchange.
 */
export interface RMOKXRefused {
  readonly reason: KXRefusalReason;
  readonly step3RV: RendezvousPoint;
  readonly ephemeralKey: Bytes; // E_a of the half KX refused
  readonly signature: Bytes;
}

function writeHalfBody(w: Writer, m: Omit<RMOHalfKX, 'signature'>): Writer {
  if (m.identity.kemKey === null) fail('INVALID_ARGUMENT', 'a half KX must carry the full public identity (with its KEM key)');
  const fields = w
    .u8(RMO_HALF_KX_VERSION)
    .bytes(encodePublicIdentity(m.identity))
    .fixed(m.ephemeralKey, X25519_KEY_BYTES)
    .fixed(m.kemKey, MlKem1024.publicKeyBytes)
    .fixed(m.initialRV, RENDEZVOUS_POINT_BYTES)
    .fixed(m.step3RV, RENDEZVOUS_POINT_BYTES)
    .fixed(m.resetRV, RENDEZVOUS_POINT_BYTES);
  return writeNickname(fields, m.nickname);
}

function writeFullBody(w: Writer, m: Omit<RMOFullKX, 'signature'>): Writer {
  if (m.identity.kemKey === null) fail('INVALID_ARGUMENT', 'a full KX must carry the full public identity (with its KEM key)');
  return w
    .u8(RMO_FULL_KX_VERSION)
    .bytes(encodePublicIdentity(m.identity))
    .fixed(m.ephemeralKey, X25519_KEY_BYTES)
    .fixed(m.step3RV, RENDEZVOUS_POINT_BYTES);
}

function writeRefusedBody(w: Writer, m: Omit<RMOKXRefused, 'signature'>): Writer {
  return w
    .u8(RMO_KX_REFUSED_VERSION)
    .u8(KX_REFUSAL_REASONS[m.reason])
    .fixed(m.step3RV, RENDEZVOUS_POINT_BYTES)
    .fixed(m.ephemeralKey, X25519_KEY_BYTES);
}

export function signHalfKX(self: Identity, m: Omit<RMOHalfKX, 'signature'>): RMOHalfKX {
  return { ...m, signature: identitySign(self, HALF_KX_CONTEXT, writeHalfBody(new Writer(2048), m).finish()) };
}

export function signFullKX(self: Identity, m: Omit<RMOFullKX, 'signature'>): RMOFullKX {
  return { ...m, signature: identitySign(self, FULL_KX_CONTEXT, writeFullBody(new Writer(2048), m).finish()) };
}

export function signKXRefused(self: Identity, m: Omit<RMOKXRefused, 'signature'>): RMOKXRefused {
  return { ...m, signature: identitySign(self, KX_REFUSED_CONTEXT, writeRefusedBody(new Writer(80), m).finish()) };
}

export function encodeRMOHalfKX(m: RMOHalfKX): Bytes {
  return writeHalfBody(new Writer(2048), m).fixed(m.signature, SIGNATURE_BYTES).finish();
}

export function encodeRMOFullKX(m: RMOFullKX): Bytes {
  return writeFullBody(new Writer(2048), m).fixed(m.signature, SIGNATURE_BYTES).finish();
}

export function encodeRMOKXRefused(m: RMOKXRefused): Bytes {
  return writeRefusedBody(new Writer(160), m).fixed(m.signature, SIGNATURE_BYTES).finish();
}

/** True when a step-3 plaintext is a refusal rather than a full KX (by its version byte's high bit). */
export function isKXRefusal(plaintext: Bytes): boolean {
  return plaintext.length > 0 && (plaintext[0]! & 0x80) !== 0;
}

/** The validating decoder: full identity with a good self-signature, three distinct RVs, and its signature over the rest. */
export function decodeRMOHalfKX(bytes: Bytes): RMOHalfKX {
  const r = new Reader(bytes, 'half KX');
  r.version(RMO_HALF_KX_VERSION);
  const identity = decodePublicIdentity(r.bytes(MAX_IDENTITY_BYTES));
  if (identity.kemKey === null) fail('MALFORMED', 'half KX: the identity lacks its KEM key (compact form)');
  const ephemeralKey = r.fixed(X25519_KEY_BYTES);
  const kemKey = r.fixed(MlKem1024.publicKeyBytes);
  const initialRV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const step3RV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const resetRV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const nickname = readNickname(r, 'half KX');
  const signature = r.fixed(SIGNATURE_BYTES);
  r.end();
  // Distinct random points never collide; equal ones would make one side post into a mailbox it reads itself.
  if (constantTimeEqual(initialRV, step3RV) || constantTimeEqual(initialRV, resetRV) || constantTimeEqual(step3RV, resetRV))
    fail('MALFORMED', 'half KX: rendezvous points are not distinct');
  if (!identityVerify(identity, HALF_KX_CONTEXT, bytes.subarray(0, bytes.length - SIGNATURE_BYTES), signature))
    fail('BAD_SIGNATURE', 'half KX: signature does not verify');
  return { identity, ephemeralKey, kemKey, initialRV, step3RV, resetRV, nickname, signature };
}

/**
 * The validating decoder: a full identity with a good self-signature that is the invite's (`inviter`,
 * either form, as the caller knows it), and a signature by it.
 */
export function decodeRMOFullKX(bytes: Bytes, inviter: PublicIdentity): RMOFullKX {
  const r = new Reader(bytes, 'full KX');
  r.version(RMO_FULL_KX_VERSION);
  const identity = decodePublicIdentity(r.bytes(MAX_IDENTITY_BYTES));
  if (identity.kemKey === null) fail('MALFORMED', 'full KX: the identity lacks its KEM key (compact form)');
  const ephemeralKey = r.fixed(X25519_KEY_BYTES);
  const step3RV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const signature = r.fixed(SIGNATURE_BYTES);
  r.end();
  if (!sameIdentity(identity, inviter)) fail('IDENTITY_MISMATCH', 'full KX: the identity is not the inviter\'s');
  if (!identityVerify(identity, FULL_KX_CONTEXT, bytes.subarray(0, bytes.length - SIGNATURE_BYTES), signature))
    fail('BAD_SIGNATURE', 'full KX: signature does not verify against the inviter');
  return { identity, ephemeralKey, step3RV, signature };
}

/** The validating decoder: a known reason, and a signature by `inviter` (the refusal names no signer either). */
export function decodeRMOKXRefused(bytes: Bytes, inviter: PublicIdentity): RMOKXRefused {
  const r = new Reader(bytes, 'KX refusal');
  r.version(RMO_KX_REFUSED_VERSION);
  const code = r.u8();
  const step3RV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const ephemeralKey = r.fixed(X25519_KEY_BYTES);
  const signature = r.fixed(SIGNATURE_BYTES);
  r.end();
  const reason = (Object.keys(KX_REFUSAL_REASONS) as KXRefusalReason[]).find((k) => KX_REFUSAL_REASONS[k] === code);
  if (reason === undefined) return fail('MALFORMED', `KX refusal: unknown reason ${code}`);
  if (!identityVerify(inviter, KX_REFUSED_CONTEXT, bytes.subarray(0, bytes.length - SIGNATURE_BYTES), signature))
    fail('BAD_SIGNATURE', 'KX refusal: signature does not verify against the inviter');
  return { reason, step3RV, ephemeralKey, signature };
}
