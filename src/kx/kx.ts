import { type Bytes, concat, constantTimeEqual, hkdfSha512, MlKem1024, type Rng, X25519 } from '../crypto/index.js';
import { fail } from '../errors.js';
import { compactPublicIdentity, type Identity, type PublicIdentity, sameIdentity } from '../identity/index.js';
import { associatedData } from '../pqxdh/index.js';
import { initAlice, initBob } from '../ratchet/index.js';
import type { SessionState } from '../session/index.js';
import { isExpired, type OOBPublicIdentityInvite, signInvite } from './invite.js';
import {
  decodeRMOFullKX,
  decodeRMOHalfKX,
  decodeRMOKXRefused,
  encodeRMOFullKX,
  encodeRMOHalfKX,
  encodeRMOKXRefused,
  isKXRefusal,
  type KXRefusalReason,
  type RMOHalfKX,
  signFullKX,
  signHalfKX,
  signKXRefused,
} from './messages.js';
import type { AcceptorPendingKX, InviterPendingKX, PendingKX } from './pending.js';
import { newRendezvousPoint, type RendezvousPoint } from './rendezvous.js';
import { openWithSecret, sealWithSecret } from './seal.js';

/**
 * The invite key exchange (Bison Relay's OOBPublicIdentityInvite → RMOHalfKX → RMOFullKX), pure:
 * every function takes state, clock and randomness and returns new state and what to send. Nothing
 * here mutates its inputs, so a function that throws leaves the caller holding what it had.
 * Wire formats and the reasons behind them: docs/protocol.md.
 */

/** Same shape as the PQXDH info string (PQXDH section 2.2), with `_KX` naming this protocol. */
export const KX_INFO = 'ratchet-relay_KX_CURVE25519_SHA-512_ML-KEM-1024';
// As in PQXDH: F = 32 0xFF bytes so the key material never starts like a valid key; salt zero-filled.
const F = new Uint8Array(32).fill(0xff);
const SALT = new Uint8Array(64);

/** A message for a rendezvous point. */
export interface KXSend {
  readonly rv: RendezvousPoint;
  readonly payload: Bytes;
}

/** What both sides keep once the exchange is done: the session and the two reset mailboxes. */
export interface KXComplete {
  readonly session: SessionState;
  /** The inviter learns the acceptor's nickname here (from the half KX); the acceptor had the inviter's in the invite. */
  readonly peerNickname?: string | null;
  readonly resetRV: RendezvousPoint; // ours: listen here for the peer's reset requests
  readonly peerResetRV: RendezvousPoint; // the peer's: send our reset requests here
}

/**
 * SK = HKDF-SHA-512(F || DH(Ei, Ea) || DH(IKi, Ea) || DH(Ei, IKa) || SS_half || SS_full), i = inviter,
 * a = acceptor, SS the ML-KEM secrets of the two sealed messages. The identity DHs make SK depend on
 * both identity keys (as in X3DH); the KEM secrets keep it secret against a quantum adversary who
 * recorded the exchange (as in PQXDH), not only the sealed messages. Both KEM keys are ephemeral and
 * erased once used, so stealing an identity later opens neither; the identity ML-KEM keys are not used
 * here at all (docs/crypto.md says why).
 */
function deriveSK(dh1: Bytes, dh2: Bytes, dh3: Bytes, ssHalf: Bytes, ssFull: Bytes): Bytes {
  return hkdfSha512(concat(F, dh1, dh2, dh3, ssHalf, ssFull), SALT, KX_INFO, 32);
}

function requireFull(p: PublicIdentity, who: string): Bytes {
  if (p.kemKey === null) return fail('INVALID_ARGUMENT', `${who} identity must be in full form (with its KEM key)`);
  return p.kemKey;
}

/** Message 1. The invite goes out of band; the pending waits for a half KX at invite.initialRV. `nickname`: ours, to tell. */
export function createInvite(
  self: Identity,
  rng: Rng,
  now: number,
  ttlMs: number,
  nickname: string | null = null,
): { invite: OOBPublicIdentityInvite; pending: InviterPendingKX } {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) fail('INVALID_ARGUMENT', `invite lifetime must be a positive number of ms, got ${ttlMs}`);
  requireFull(self.public, 'our');
  const kem = MlKem1024.keyPair(rng);
  const initialRV = newRendezvousPoint(rng);
  const resetRV = newRendezvousPoint(rng);
  const expiresAt = now + ttlMs;
  const invite = signInvite(self, {
    identity: compactPublicIdentity(self.public),
    kemKey: kem.publicKey,
    initialRV,
    resetRV,
    createdAt: now,
    expiresAt,
    nickname,
  });
  return { invite, pending: { role: 'inviter', kemSecret: kem.secretKey, initialRV, resetRV, expiresAt } };
}

/**
 * Message 2. `invite` must come from decodeInvite / inviteFromString (signatures already checked).
 * Refuses an expired invite and one from our own identity. `nickname`: ours, to tell the inviter.
 */
export function acceptInvite(
  self: Identity,
  invite: OOBPublicIdentityInvite,
  rng: Rng,
  now: number,
  nickname: string | null = null,
): { pending: AcceptorPendingKX; send: KXSend } {
  if (isExpired(invite, now)) fail('INVALID_ARGUMENT', `invite expired at ${new Date(invite.expiresAt).toISOString()}`);
  if (sameIdentity(invite.identity, self.public)) fail('INVALID_ARGUMENT', 'invite is from our own identity');
  requireFull(self.public, 'our');
  const ephemeral = X25519.generate(rng);
  const kem = MlKem1024.keyPair(rng);
  // Try the DH with the inviter's identity key now: a bad key fails here, not after a round trip.
  try {
    X25519.dh(ephemeral.privateKey, invite.identity.dhKey);
  } catch {
    fail('MALFORMED', 'invite carries an unusable X25519 identity key');
  }
  const step3RV = newRendezvousPoint(rng);
  const resetRV = newRendezvousPoint(rng);
  const half = signHalfKX(self, {
    identity: self.public,
    ephemeralKey: ephemeral.publicKey,
    kemKey: kem.publicKey,
    initialRV: invite.initialRV,
    step3RV,
    resetRV,
    nickname,
  });
  const sealed = sealWithSecret(invite.kemKey, encodeRMOHalfKX(half), rng);
  return {
    pending: {
      role: 'acceptor',
      ephemeral,
      halfSecret: sealed.secret,
      kemSecret: kem.secretKey,
      step3RV,
      resetRV,
      inviter: invite.identity,
      peerResetRV: invite.resetRV,
      expiresAt: invite.expiresAt,
    },
    send: { rv: invite.initialRV, payload: sealed.sealed },
  };
}

/**
 * The inviter receives message 2 at initialRV and answers with message 3. The inviter becomes Alice:
 * it can send at once, the acceptor only after its first message. One invite makes one session: the
 * caller drops the pending once this succeeds, so a replayed half KX finds nothing to answer.
 */
export function onHalfKX(
  self: Identity,
  pending: PendingKX,
  payload: Bytes,
  rng: Rng,
  now: number,
): KXComplete & { send: KXSend } {
  const { half, secret } = openHalfKX(self, pending, payload, now);
  if (constantTimeEqual(half.step3RV, pending.resetRV) || constantTimeEqual(half.resetRV, pending.resetRV))
    fail('MALFORMED', 'half KX reuses our reset rendezvous point');
  const ei = X25519.generate(rng);
  const full = signFullKX(self, { identity: self.public, ephemeralKey: ei.publicKey, step3RV: half.step3RV });
  const sealedFull = sealWithSecret(half.kemKey, encodeRMOFullKX(full), rng);
  let sk: Bytes;
  try {
    sk = deriveSK(
      X25519.dh(ei.privateKey, half.ephemeralKey),
      X25519.dh(self.dh.privateKey, half.ephemeralKey),
      X25519.dh(ei.privateKey, half.identity.dhKey),
      secret,
      sealedFull.secret,
    );
  } catch {
    return fail('MALFORMED', 'half KX carries an unusable X25519 key');
  }
  const session: SessionState = {
    peer: half.identity,
    associatedData: associatedData(self.public, half.identity),
    baseKey: ei.publicKey,
    role: 'initiator',
    pending: null,
    ratchet: initAlice(sk, half.ephemeralKey, rng),
    createdAt: now,
  };
  return {
    session,
    peerNickname: half.nickname,
    resetRV: pending.resetRV,
    peerResetRV: half.resetRV,
    send: { rv: half.step3RV, payload: sealedFull.sealed },
  };
}

/**
 * Opens, decodes and verifies a half KX for the invite of `pending` (the inviter's), before it
 * expires: what onHalfKX answers, and what an inviter whose invite is spent refuses (refuseHalfKX).
 */
export function openHalfKX(self: Identity, pending: PendingKX, payload: Bytes, now: number): { half: RMOHalfKX; secret: Bytes } {
  if (pending.role !== 'inviter') fail('INVALID_ARGUMENT', 'a half KX answers an invite: this pending KX is not an inviter\'s');
  if (isExpired(pending, now)) fail('INVALID_ARGUMENT', `invite expired at ${new Date(pending.expiresAt).toISOString()}: late half KX refused`);
  const opened = openWithSecret(pending.kemSecret, payload);
  const half = decodeRMOHalfKX(opened.plaintext);
  if (!constantTimeEqual(half.initialRV, pending.initialRV))
    fail('INVALID_ARGUMENT', 'half KX answers another invite: a reply that does not match the pending KX is rejected');
  if (sameIdentity(half.identity, self.public)) fail('INVALID_ARGUMENT', 'half KX is from our own identity');
  return { half, secret: opened.secret };
}

/**
 * The inviter will not answer `half` (from openHalfKX): a signed refusal, sealed to the acceptor and
 * sent to its step3RV, so that the acceptor stops waiting and can say why.
 */
export function refuseHalfKX(self: Identity, half: RMOHalfKX, reason: KXRefusalReason, rng: Rng): KXSend {
  const refusal = signKXRefused(self, { reason, step3RV: half.step3RV, ephemeralKey: half.ephemeralKey });
  return { rv: half.step3RV, payload: sealWithSecret(half.kemKey, encodeRMOKXRefused(refusal), rng).sealed };
}

/** What the acceptor gets at step3RV instead of a full KX: the inviter refused its half KX. */
export interface KXRefused {
  readonly refused: KXRefusalReason;
}

/**
 * The acceptor receives message 3 at step3RV. No clock check: the inviter only answers before the
 * invite expires, so a full KX that arrives late was still made in time, and its signature and step3RV
 * tie it to this exchange.
 */
export function onFullKX(self: Identity, pending: PendingKX, payload: Bytes, now: number): KXComplete {
  const { acceptor, opened } = openStep3(pending, payload);
  return completeAcceptor(self, acceptor, opened, now);
}

/**
 * The acceptor receives at step3RV either message 3 (→ onFullKX's session) or the inviter's refusal of
 * its half KX, which must be signed by the inviter and name this half KX's step3RV and E_a.
 */
export function onStep3(self: Identity, pending: PendingKX, payload: Bytes, now: number): KXComplete | KXRefused {
  const { acceptor, opened } = openStep3(pending, payload);
  if (!isKXRefusal(opened.plaintext)) return completeAcceptor(self, acceptor, opened, now);
  const refusal = decodeRMOKXRefused(opened.plaintext, acceptor.inviter);
  if (!constantTimeEqual(refusal.step3RV, acceptor.step3RV) || !constantTimeEqual(refusal.ephemeralKey, acceptor.ephemeral.publicKey))
    fail('INVALID_ARGUMENT', 'KX refusal answers another half KX: a reply that does not match the pending KX is rejected');
  return { refused: refusal.reason };
}

function openStep3(pending: PendingKX, payload: Bytes): { acceptor: AcceptorPendingKX; opened: { plaintext: Bytes; secret: Bytes } } {
  if (pending.role !== 'acceptor') fail('INVALID_ARGUMENT', 'a full KX answers a half KX: this pending KX is not an acceptor\'s');
  return { acceptor: pending, opened: openWithSecret(pending.kemSecret, payload) };
}

function completeAcceptor(self: Identity, pending: AcceptorPendingKX, opened: { plaintext: Bytes; secret: Bytes }, now: number): KXComplete {
  const full = decodeRMOFullKX(opened.plaintext, pending.inviter);
  if (!constantTimeEqual(full.step3RV, pending.step3RV))
    fail('INVALID_ARGUMENT', 'full KX answers another half KX: a reply that does not match the pending KX is rejected');
  let sk: Bytes;
  try {
    sk = deriveSK(
      X25519.dh(pending.ephemeral.privateKey, full.ephemeralKey),
      X25519.dh(pending.ephemeral.privateKey, pending.inviter.dhKey),
      X25519.dh(self.dh.privateKey, full.ephemeralKey),
      pending.halfSecret,
      opened.secret,
    );
  } catch {
    return fail('MALFORMED', 'full KX carries an unusable X25519 key');
  }
  const session: SessionState = {
    peer: full.identity,
    associatedData: associatedData(full.identity, self.public),
    baseKey: full.ephemeralKey,
    role: 'responder',
    pending: null,
    ratchet: initBob(sk, pending.ephemeral),
    createdAt: now,
  };
  return { session, resetRV: pending.resetRV, peerResetRV: pending.peerResetRV };
}
