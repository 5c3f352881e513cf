import { type Bytes, constantTimeEqual, type Rng } from '../crypto/index.js';
import { fail, isRatchetRelayError } from '../errors.js';
import { type Identity, type PublicIdentity } from '../identity/index.js';
import type { PreKeyBundle } from '../prekeys/index.js';
import { type PqxdhHeader, pqxdhInitiate, pqxdhRespond, type ResponderPreKeys } from '../pqxdh/index.js';
import { initAlice, initBob, ratchetDecrypt, type RatchetEnv, ratchetEncrypt, type RatchetState } from '../ratchet/index.js';
import { encodeEnvelope } from './envelope.js';

/**
 * One Double Ratchet session with a peer. The initiator keeps sending the PQXDH header with every
 * message until the first reply proves that the responder has the session (PQXDH section 3.3).
 */
export interface SessionState {
  readonly peer: PublicIdentity;
  readonly associatedData: Bytes;
  /** The initiator's ephemeral key: it names the session on both sides. */
  readonly baseKey: Bytes;
  readonly role: 'initiator' | 'responder';
  readonly pending: PqxdhHeader | null;
  readonly ratchet: RatchetState;
  readonly createdAt: number;
}

export function initiateSession(self: Identity, bundle: PreKeyBundle, rng: Rng, now: number): SessionState {
  const x = pqxdhInitiate(self, bundle, rng);
  return {
    peer: bundle.identity,
    associatedData: x.associatedData,
    baseKey: x.header.ephemeralKey,
    role: 'initiator',
    pending: x.header,
    ratchet: initAlice(x.sharedSecret, bundle.signedPreKey.publicKey, rng),
    createdAt: now,
  };
}

export function encryptInSession(s: SessionState, plaintext: Bytes, rng: Rng): { state: SessionState; envelope: Bytes } {
  const r = ratchetEncrypt(s.ratchet, plaintext, s.associatedData, rng);
  const envelope = s.pending
    ? encodeEnvelope({ type: 'prekey', header: s.pending, message: r.message })
    : encodeEnvelope({ type: 'normal', message: r.message });
  return { state: { ...s, ratchet: r.state }, envelope };
}

/** A message that decrypts in a session proves the peer has it: stop sending the PQXDH header. */
export function decryptInSession(s: SessionState, message: Bytes, env: RatchetEnv): { state: SessionState; plaintext: Bytes } {
  const r = ratchetDecrypt(s.ratchet, message, s.associatedData, env);
  return { state: { ...s, ratchet: r.state, pending: null }, plaintext: r.plaintext };
}

/** The responder builds a session from a PQXDH header and must decrypt the message it came with. */
export function acceptSession(
  self: Identity,
  header: PqxdhHeader,
  keys: ResponderPreKeys,
  message: Bytes,
  env: RatchetEnv,
): { state: SessionState; plaintext: Bytes } {
  return decryptInSession(respondSession(self, header, keys, env.now), message, env);
}

/** The responder's side of a session from a PQXDH header, before any message decrypted in it. */
export function respondSession(self: Identity, header: PqxdhHeader, keys: ResponderPreKeys, now: number): SessionState {
  const x = pqxdhRespond(self, header, keys);
  return {
    peer: header.identity,
    associatedData: x.associatedData,
    baseKey: header.ephemeralKey,
    role: 'responder',
    pending: null,
    ratchet: initBob(x.sharedSecret, keys.signedPreKey),
    createdAt: now,
  };
}

/**
 * Trial-decrypts a normal message across a peer's sessions, newest first (the peer may still be on an
 * older one after crossed initiations). Header encryption means the sessions cannot be told apart otherwise.
 */
export function decryptWithAny(
  sessions: readonly SessionState[],
  message: Bytes,
  env: RatchetEnv,
): { index: number; state: SessionState; plaintext: Bytes } {
  for (let index = 0; index < sessions.length; index++) {
    try {
      return { index, ...decryptInSession(sessions[index]!, message, env) };
    } catch (e) {
      if (!isRatchetRelayError(e, 'DECRYPT_FAILED')) throw e;
    }
  }
  return fail(sessions.length ? 'DECRYPT_FAILED' : 'NO_SESSION', sessions.length ? 'no session with this peer decrypts the message' : 'no session with this peer');
}

export function findByBaseKey(sessions: readonly SessionState[], baseKey: Bytes): number {
  return sessions.findIndex((s) => constantTimeEqual(s.baseKey, baseKey));
}
