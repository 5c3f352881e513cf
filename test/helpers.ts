import { createHash } from 'node:crypto';
import type { Rng } from '../src/crypto/index.js';

/** A deterministic Rng for tests: SHA-256 in counter mode over a seed. Never for production. */
export function seededRng(seed: string | number): Rng {
  let counter = 0;
  let pool = new Uint8Array(0);
  return (length) => {
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      if (pool.length === 0) pool = new Uint8Array(createHash('sha256').update(`${seed}/${counter++}`).digest());
      const take = Math.min(pool.length, length - filled);
      out.set(pool.subarray(0, take), filled);
      pool = pool.subarray(take);
      filled += take;
    }
    return out;
  };
}
