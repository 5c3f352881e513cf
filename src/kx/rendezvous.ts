import { type Bytes, type Rng, toHex } from '../crypto/index.js';

/**
 * A rendezvous point: 32 random bytes naming a mailbox where one side drops a message for the other.
 * Random, so that nobody who does not hold the invite (or the sealed reply) can guess where to look.
 */
export type RendezvousPoint = Bytes;

export const RENDEZVOUS_POINT_BYTES = 32;

export function newRendezvousPoint(rng: Rng): RendezvousPoint {
  return rng(RENDEZVOUS_POINT_BYTES);
}

/** The form a transport or a log shows: 64 lowercase hex digits. */
export function rvHex(rv: RendezvousPoint): string {
  return toHex(rv);
}
