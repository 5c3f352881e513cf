import { randomFillSync } from 'node:crypto';
import type { Bytes } from './bytes.js';

/** Randomness as an input: protocol code takes an Rng so that tests can inject a deterministic one. */
export type Rng = (length: number) => Bytes;

// One system call per 4 KB instead of one per nonce or key; every caller gets its own copy.
const POOL_BYTES = 4096;
let pool = new Uint8Array(0);
let offset = 0;

export const systemRng: Rng = (length) => {
  if (length > POOL_BYTES) return randomFillSync(new Uint8Array(length));
  if (offset + length > pool.length) {
    pool = randomFillSync(new Uint8Array(POOL_BYTES));
    offset = 0;
  }
  const out = pool.slice(offset, offset + length);
  pool.fill(0, offset, offset + length);
  offset += length;
  return out;
};
