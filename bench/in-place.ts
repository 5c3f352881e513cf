// Where a setup's time goes, primitive by primitive, measured in place: `node dist/bench/in-place.js
// [setups]` wraps the asymmetric primitives (X25519, Ed25519, BIP-340, ML-KEM) with a timer that
// counts only inside the timed region of first-contact setups made as the bench's setups figure
// makes them (fresh Bob and Alice over MemoryProtocolStore). The floor in bench/floor.ts times each
// call in a tight loop; in place, with a fresh party's keys cold in cache and a fresh Bob's Kyber key
// met once, the same calls cost more, and their sum alone bounds the setups per second.
import { Ed25519 } from '../src/crypto/ed25519.js';
import { loadWasmMlKem, MlKem1024, mlKemBackendsInUse } from '../src/crypto/kem.js';
import { Secp256k1Schnorr } from '../src/crypto/secp256k1.js';
import { X25519 } from '../src/crypto/x25519.js';
import { decodePreKeyBundle, encodePreKeyBundle } from '../src/prekeys/index.js';
import { ONE_SETUP_PREKEYS, party } from './ours.js';
import { now } from './timing.js';

const WARM_UP = 200;
const setups = Number(process.argv[2] ?? 2000);
await loadWasmMlKem();

let timing = false;
let depth = 0;
const spent = new Map<string, { calls: number; ns: number }>();
for (const [name, object] of Object.entries({ X25519, Ed25519, Secp256k1Schnorr, MlKem1024 }) as [string, Record<string, unknown>][]) {
  for (const [method, f] of Object.entries(object)) {
    if (typeof f !== 'function') continue;
    // Only the outermost call counts: a primitive built on another is timed once.
    object[method] = (...args: unknown[]) => {
      if (!timing || depth > 0) return f(...args);
      depth++;
      const start = now();
      try {
        return f(...args);
      } finally {
        depth--;
        const row = spent.get(`${name}.${method}`) ?? { calls: 0, ns: 0 };
        row.calls++;
        row.ns += Number(now() - start);
        spent.set(`${name}.${method}`, row);
      }
    };
  }
}

let totalNs = 0;
const plaintext = new Uint8Array(1024);
for (let i = 0; i < WARM_UP + setups; i++) {
  const bob = party('memory', { preKeys: ONE_SETUP_PREKEYS });
  const bundleBytes = encodePreKeyBundle(bob.cipher.bundle());
  const alice = party('memory', { preKeys: null });
  timing = i >= WARM_UP;
  const start = now();
  const bobFp = alice.cipher.startSession(decodePreKeyBundle(bundleBytes));
  if (!bob.cipher.decrypt(alice.cipher.encrypt(bobFp, plaintext)).newSession) throw new Error('bench: a setup did not start a session');
  if (timing) totalNs += Number(now() - start);
  timing = false;
}

const perSetup = (ns: number) => ns / setups / 1000;
const rows = [...spent].sort((a, b) => b[1].ns - a[1].ns);
const primitivesNs = rows.reduce((sum, [, r]) => sum + r.ns, 0);
console.log(`Node ${process.version}, ${setups} setups after ${WARM_UP} warm-up; ML-KEM ${JSON.stringify(mlKemBackendsInUse())}`);
console.table(
  rows.map(([call, r]) => ({ call, 'calls per setup': r.calls / setups, 'µs per call': (r.ns / r.calls / 1000).toFixed(1), 'µs per setup': perSetup(r.ns).toFixed(1) })),
);
console.log(`setup: ${perSetup(totalNs).toFixed(1)} µs (${Math.round((1e9 * setups) / totalNs)}/s); these primitives alone: ${perSetup(primitivesNs).toFixed(1)} µs, a bound of ${Math.round((1e9 * setups) / primitivesNs)} setups/s`);
