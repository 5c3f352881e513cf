import { type Bytes, constantTimeEqual, type KeyPair, MlKem1024, X25519, X25519_KEY_BYTES } from '../crypto/index.js';
import { fail } from '../errors.js';
import { decodePublicIdentity, encodePublicIdentity, type PublicIdentity } from '../identity/index.js';
import { Reader, Writer } from '../wire/codec.js';
import { RENDEZVOUS_POINT_BYTES, type RendezvousPoint } from './rendezvous.js';

/**
 * The inviter's side after createInvite: it waits for a half KX at initialRV until expiresAt. The
 * ephemeral KEM secret exists only here: the record is deleted once a half KX is answered (an invite
 * handed out of band is kept, spent, until it expires, to refuse later acceptors; docs/protocol.md).
 */
export interface InviterPendingKX {
  readonly role: 'inviter';
  readonly kemSecret: Bytes; // secret: opens the half KX (the invite carries its public key)
  readonly initialRV: RendezvousPoint;
  readonly resetRV: RendezvousPoint; // ours, announced in the invite
  readonly expiresAt: number; // the invite's
}

/** The acceptor's side after acceptInvite: it waits for the full KX at step3RV. */
export interface AcceptorPendingKX {
  readonly role: 'acceptor';
  readonly ephemeral: KeyPair; // secret: the half KX's ephemeral key, later Bob's first ratchet key pair
  readonly halfSecret: Bytes; // secret: the KEM secret of the sealed half KX, mixed into the session key
  readonly kemSecret: Bytes; // secret: the ephemeral ML-KEM key that opens the full KX, erased with this record
  readonly step3RV: RendezvousPoint;
  readonly resetRV: RendezvousPoint; // ours, announced in the half KX
  readonly inviter: PublicIdentity; // compact form, from the invite: the full KX must be signed by it
  readonly peerResetRV: RendezvousPoint; // the inviter's, from the invite
  readonly expiresAt: number; // the invite's: the inviter produces no full KX after it
}

export type PendingKX = InviterPendingKX | AcceptorPendingKX;

/** Version 2 adds the ephemeral ML-KEM secret to both roles; a version 1 record is refused (docs/protocol.md). */
export const PENDING_KX_VERSION = 2;
const ROLE_INVITER = 1;
const ROLE_ACCEPTOR = 2;
const MAX_IDENTITY_BYTES = 4096;
const KEM_SECRET_BYTES = 32;

/** Private record, for the store only: both forms hold secret keys. */
export function encodePendingKX(p: PendingKX): Bytes {
  const w = new Writer(p.role === 'inviter' ? 3300 : 4096).u8(PENDING_KX_VERSION);
  if (p.role === 'inviter')
    return w
      .u8(ROLE_INVITER)
      .fixed(p.kemSecret, MlKem1024.secretKeyBytes)
      .fixed(p.initialRV, RENDEZVOUS_POINT_BYTES)
      .fixed(p.resetRV, RENDEZVOUS_POINT_BYTES)
      .u64(p.expiresAt)
      .finish();
  return w
    .u8(ROLE_ACCEPTOR)
    .fixed(p.ephemeral.privateKey, X25519_KEY_BYTES)
    .fixed(p.ephemeral.publicKey, X25519_KEY_BYTES)
    .fixed(p.halfSecret, KEM_SECRET_BYTES)
    .fixed(p.kemSecret, MlKem1024.secretKeyBytes)
    .fixed(p.step3RV, RENDEZVOUS_POINT_BYTES)
    .fixed(p.resetRV, RENDEZVOUS_POINT_BYTES)
    .fixed(p.peerResetRV, RENDEZVOUS_POINT_BYTES)
    .u64(p.expiresAt)
    .bytes(encodePublicIdentity(p.inviter))
    .finish();
}

/** The validating decoder: checks the role, that the ephemeral X25519 key pair matches, and the inviter identity. */
export function decodePendingKX(bytes: Bytes): PendingKX {
  const r = new Reader(bytes, 'pending KX');
  r.version(PENDING_KX_VERSION);
  const role = r.u8();
  if (role === ROLE_INVITER) {
    const p: InviterPendingKX = {
      role: 'inviter',
      kemSecret: r.fixed(MlKem1024.secretKeyBytes),
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
  const kemSecret = r.fixed(MlKem1024.secretKeyBytes);
  const step3RV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const resetRV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const peerResetRV = r.fixed(RENDEZVOUS_POINT_BYTES);
  const expiresAt = r.u64();
  const inviter = decodePublicIdentity(r.bytes(MAX_IDENTITY_BYTES));
  r.end();
  // A record is rare and read once; deriving the public half costs little and catches a corrupt key.
  if (!constantTimeEqual(X25519.keyPairFromPrivate(privateKey).publicKey, publicKey))
    fail('MALFORMED', 'pending KX: ephemeral public key does not match its private key');
  return { role: 'acceptor', ephemeral: { privateKey, publicKey }, halfSecret, kemSecret, step3RV, resetRV, inviter, peerResetRV, expiresAt };
}
