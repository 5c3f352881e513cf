import { concat, type Bytes, sha512 } from '../crypto/index.js';
import { fingerprintBytes, type PublicIdentity } from './identity.js';

const SAFETY_NUMBER_VERSION = new Uint8Array([0, 1]);
// Signal's iteration count: it makes a brute-force search for a colliding identity expensive.
const ITERATIONS = 5200;

/** 30 digits for one side: 6 groups of 5, each a 40-bit chunk mod 100000. */
function displayHalf(p: PublicIdentity): string {
  const key = fingerprintBytes(p);
  let hash: Bytes = sha512(concat(SAFETY_NUMBER_VERSION, key));
  for (let i = 1; i < ITERATIONS; i++) hash = sha512(concat(hash, key));
  let out = '';
  for (let i = 0; i < 30; i += 5) {
    let chunk = 0;
    for (let j = 0; j < 5; j++) chunk = chunk * 256 + hash[i + j]!;
    out += String(chunk % 100000).padStart(5, '0');
  }
  return out;
}

/** The same 60 digits on both sides: the two halves in sorted order. */
export function safetyNumber(a: PublicIdentity, b: PublicIdentity): string {
  const [x, y] = [displayHalf(a), displayHalf(b)].sort();
  return x! + y!;
}

export function formatSafetyNumber(digits: string): string {
  return digits.match(/.{5}/g)!.join(' ');
}
