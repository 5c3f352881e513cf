import { type Bytes, constantTimeEqual, type KeyPair, X25519, X25519_KEY_BYTES } from '../crypto/index.js';
import { fail } from '../errors.js';
import { decodePublicIdentity, encodePublicIdentity, type PublicIdentity } from '../identity/index.js';
import { Reader, Writer } from '../wire/codec.js';
import { RENDEZVOUS_POINT_BYTES, type RendezvousPoint } from './rendezvous.js';

/** The inviter's side after createInvite: it waits for a half KX at initialRV until expiresAt. */
export interface InviterPendingKX {
  readonly role: 'inviter';
  readonly initialRV: RendezvousPoint;
  readonly resetRV: RendezvousPoint; // ours, announced in the invite
  readonly expiresAt: number; // the invite's
}

/** The acceptor's side after acceptInvite: it waits for the full KX at step3RV. */
export interface AcceptorPendingKX {
  readonly role: 'acceptor';
  readonly ephemeral: KeyPair; // secret: the half KX's ephemeral key, later Bob's first ratchet key pair
  readonly halfSecret: Bytes; // secret: the KEM secret of the sealed half KX, mixed into the session key
  readonly step3RV: RendezvousPoint;
  readonly resetRV: RendezvousPoint; // ours, announced in the half KX
  readonly inviter: PublicIdentity; // full form, from the invite: the full KX must be signed by it
  readonly peerResetRV: RendezvousPoint; // the inviter's, from the invite
  readonly expiresAt: number; // the invite's: the inviter produces no full KX after it
}

export type PendingKX = InviterPendingKX | AcceptorPendingKX;

export const PENDING_KX_VERSION = 1;
const ROLE_INVITER = 1;
const ROLE_ACCEPTOR = 2;
const MAX_IDENTITY_BYTES = 4096;
const KEM_SECRET_BYTES = 32;

/** Private record, for the store only: the acceptor's form holds a secret key. */
export function encodePendingKX(p: PendingKX): Bytes {
  const w = new Writer(p.role === 'inviter' ? 80 : 2048).u8(PENDING_KX_VERSION);
  if (p.role === 'inviter')
    return w
      .u8(ROLE_INVITER)
      .fixed(p.initialRV, RENDEZVOUS_POINT_BYTES)
      .fixed(p.resetRV, RENDEZVOUS_POINT_BYTES)
      .u64(p.expiresAt)
      .finish();
  if (p.inviter.kemKey === null) fail('INVALID_ARGUMENT', 'pending KX: the inviter identity must be in full form');
  return w
    .u8(ROLE_ACCEPTOR)
    .fixed(p.ephemeral.privateKey, X25519_KEY_BYTES)
    .fixed(p.ephemeral.publicKey, X25519_KEY_BYTES)
    .fixed(p.halfSecret, KEM_SECRET_BYTES)
    .fixed(p.step3RV, RENDEZVOUS_POINT_BYTES)
    .fixed(p.resetRV, RENDEZVOUS_POINT_BYTES)
    .fixed(p.peerResetRV, RENDEZVOUS_POINT_BYTES)
    .u64(p.expiresAt)
    .bytes(encodePublicIdentity(p.inviter))
    .finish();
}

/** The validating decoder: checks the role, that the ephemeral key pair matches, and the inviter identity. */
export function decodePendingKX(bytes: Bytes): PendingKX {
  const r = new Reader(bytes, 'pending KX');
  r.version(PENDING_KX_VERSION);
  const role = r.u8();
  if (role === ROLE_INVITER) {
    const p: InviterPendingKX = {
      role: 'inviter',
      initialRV: r.fixed(RENDEZVOUS_POINT_BYTES),
      resetRV: r.fixed(RENDEZVOUS_POINT_BYTES),
      expiresAt: r.u64(),
    };
    r.end();
    return p;
  }
  if (role !== ROLE_ACCEPTOR) return fail('MALFORMED', `pending KX: unknown role ${role}`);
  const privateKey = r.fixed(X25519_KEY_BYTES);
  const publicKey = r.fixed(X25519_KEY_BYTES);
  const halfSecret = r.fixed(KEM_SECRET_BYTES);
  const step3RV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const resetRV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const peerResetRV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const expiresAt = r.u64();
  const inviter = decodePublicIdentity(r.bytes(MAX_IDENTITY_BYTES));
  r.end();
  if (inviter.kemKey === null) fail('MALFORMED', 'pending KX: the inviter identity lacks its KEM key');
  // A record is rare and read once; deriving the public half costs little and catches a corrupt key.
  if (!constantTimeEqual(X25519.keyPairFromPrivate(privateKey).publicKey, publicKey))
    fail('MALFORMED', 'pending KX: ephemeral public key does not match its private key');
  return { role: 'acceptor', ephemeral: { privateKey, publicKey }, halfSecret, step3RV, resetRV, inviter, peerResetRV, expiresAt };
}
