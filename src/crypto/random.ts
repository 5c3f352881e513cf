import { randomBytes as nodeRandomBytes } from 'node:crypto';
import type { Bytes } from './bytes.js';

/** Randomness as an input: protocol code takes an Rng so that tests can inject a deterministic one. */
export type Rng = (length: number) => Bytes;

export const systemRng: Rng = (length) => new Uint8Array(nodeRandomBytes(length));
