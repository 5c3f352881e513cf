/**
 * Every ML-KEM-1024 backend (native node:crypto, liboqs WASM, noble) against known answers, against
 * FIPS 203's implicit-rejection formula, and against each other. A backend this Node lacks is
 * skipped with its reason (native needs Node >= 24.7); run this file under Node 24 to cover it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { sha3_256, shake256 } from '@noble/hashes/sha3.js';
import { fromHex, toHex, type Bytes } from '../src/crypto/index.js';
import { systemRng } from '../src/crypto/random.js';
import {
  loadWasmMlKem,
  MlKem1024,
  mlKemBackendsInUse,
  nativeMlKem,
  nobleMlKem,
  useMlKem,
  type MlKemBackend,
} from '../src/crypto/kem.js';

// The FIPS 203 vectors of test/crypto.test.ts (C2SP/wycheproof; the file records the exact source).
const path = new URL('../../test/vectors/mlkem1024.json', import.meta.url);
const v = JSON.parse(readFileSync(path, 'utf8')) as Record<'seed' | 'ek' | 'dk' | 'm' | 'c' | 'K' | 'ekModulusOverflow', string>;
// NIST ACVP ML-KEM-1024 encapsulation and decapsulation cases; the file says which and from where.
type AcvpCase = { tcId: number; c: string; k: string };
const acvp = JSON.parse(readFileSync(new URL('../../test/vectors/acvp-mlkem1024.json', import.meta.url), 'utf8')) as {
  encapsulation: AcvpCase & { dk: string; m: string };
  decapsulation: { dk: string; tests: Array<AcvpCase & { reason: string }> };
};
const acvpEk = (dk: string): Bytes => fromHex(dk).subarray(1536, 3104);

const wasm = await loadWasmMlKem();
const candidates: Array<[string, MlKemBackend | undefined, string]> = [
  ['noble', nobleMlKem, ''],
  ['native', nativeMlKem, `node:crypto has no ML-KEM on Node ${process.version} (needs >= 24.7)`],
  ['wasm', wasm, '@oqs/liboqs-js cannot be loaded here'],
];
const available = candidates.flatMap(([, b]) => (b ? [b] : []));

function flipBit(b: Bytes, index: number): Bytes {
  const out = new Uint8Array(b);
  out[index] = (out[index] ?? 0) ^ 1;
  return out;
}

/** FIPS 203 Algorithm 18, step 8: a rejected ciphertext gives K̄ = J(z || c) = SHAKE256(z || c, 32). */
const rejectionSecret = (dk: Bytes, c: Bytes): string => toHex(shake256(new Uint8Array([...dk.subarray(3136), ...c]), { dkLen: 32 }));

for (const [name, backend, why] of candidates) {
  describe(`ML-KEM-1024 backend: ${name}`, { skip: backend ? false : why }, () => {
    const b = backend as MlKemBackend;

    it('decapsulates the known ciphertext to the known K with the stored 3168-byte secret key', () => {
      assert.equal(toHex(b.decapsulate(fromHex(v.c), fromHex(v.dk))), v.K);
    });

    it('NIST ACVP decapsulation cases, the implicit-rejection one included', () => {
      const e = acvp.encapsulation;
      assert.equal(toHex(b.decapsulate(fromHex(e.c), fromHex(e.dk))), e.k.toLowerCase(), `tcId ${e.tcId}`);
      const dk = fromHex(acvp.decapsulation.dk);
      assert.ok(acvp.decapsulation.tests.some((t) => t.reason === 'modify ciphertext'));
      for (const t of acvp.decapsulation.tests) assert.equal(toHex(b.decapsulate(fromHex(t.c), dk)), t.k.toLowerCase(), `tcId ${t.tcId}`);
    });

    it('implicit rejection: a modified ciphertext gives J(z || c), not an error', () => {
      const dk = fromHex(v.dk);
      for (const i of [0, 777, 1567]) {
        const c = flipBit(fromHex(v.c), i);
        assert.equal(toHex(b.decapsulate(c, dk)), rejectionSecret(dk, c));
      }
    });

    it('refuses a public key that fails the modulus check, and a secret key whose H(ek) is wrong', () => {
      assert.throws(() => b.encapsulate(fromHex(v.ekModulusOverflow)));
      assert.throws(() => b.decapsulate(fromHex(v.c), flipBit(fromHex(v.dk), 3100)));
    });

    it('encapsulates to the known public keys (Wycheproof, ACVP) so that noble decapsulates it', () => {
      for (const [ek, dk] of [[fromHex(v.ek), v.dk], [acvpEk(acvp.encapsulation.dk), acvp.encapsulation.dk]] as const) {
        const { ciphertext, sharedSecret } = b.encapsulate(ek);
        assert.equal(ciphertext.length, 1568);
        assert.equal(toHex(ml_kem1024.decapsulate(ciphertext, fromHex(dk))), toHex(sharedSecret));
      }
    });

    it('generates keys in the stored format: dk = dk_PKE || ek || H(ek) || z', { skip: b.keyPair ? false : `${name} cannot give the expanded secret key` }, () => {
      const { publicKey, secretKey } = (b.keyPair as NonNullable<MlKemBackend['keyPair']>)();
      assert.equal(publicKey.length, 1568);
      assert.equal(secretKey.length, 3168);
      assert.equal(toHex(secretKey.subarray(1536, 3104)), toHex(publicKey));
      assert.equal(toHex(secretKey.subarray(3104, 3136)), toHex(sha3_256(publicKey)));
      const { cipherText, sharedSecret } = ml_kem1024.encapsulate(publicKey);
      assert.equal(toHex(ml_kem1024.decapsulate(cipherText, secretKey)), toHex(sharedSecret));
    });
  });
}

describe('ML-KEM-1024 backends agree', () => {
  it(`keys from one, encapsulation in another, decapsulation in a third (${available.map((b) => b.name).join(', ')})`, () => {
    const pick = fc.constantFrom(...available);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), pick, pick, fc.integer({ min: 0, max: 1567 }), (seed, enc, dec, i) => {
        const { publicKey, secretKey } = ml_kem1024.keygen(seed);
        const { ciphertext, sharedSecret } = enc.encapsulate(publicKey);
        assert.equal(toHex(dec.decapsulate(ciphertext, secretKey)), toHex(sharedSecret));
        const bad = flipBit(ciphertext, i);
        const rejected = toHex(dec.decapsulate(bad, secretKey));
        assert.equal(rejected, toHex(nobleMlKem.decapsulate(bad, secretKey)));
        assert.equal(rejected, rejectionSecret(secretKey, bad));
      }),
      { numRuns: 40 },
    );
  });

  it('keys generated by a backend with its own randomness work in every other backend', () => {
    for (const gen of available) {
      if (!gen.keyPair) continue;
      const { publicKey, secretKey } = gen.keyPair();
      for (const enc of available) {
        const { ciphertext, sharedSecret } = enc.encapsulate(publicKey);
        for (const dec of available) assert.equal(toHex(dec.decapsulate(ciphertext, secretKey)), toHex(sharedSecret), `${gen.name}/${enc.name}/${dec.name}`);
      }
    }
  });
});

describe('MlKem1024 with a seeded Rng (noble): NIST ACVP encapsulation', () => {
  it('tcId 51: m from the Rng gives the published c and K', () => {
    const e = acvp.encapsulation;
    const { ciphertext, sharedSecret } = MlKem1024.encapsulate(acvpEk(e.dk), () => fromHex(e.m));
    assert.equal(toHex(ciphertext), e.c.toLowerCase());
    assert.equal(toHex(sharedSecret), e.k.toLowerCase());
  });
});

describe('MlKem1024 picks its backend by the Rng', () => {
  it('native where Node has it, else WASM, for systemRng; a seeded Rng stays on noble and deterministic', async () => {
    await useMlKem('auto');
    const inUse = mlKemBackendsInUse();
    // Both loaded (Node 24): a key met for the first time goes to WASM, a key met again to native.
    assert.equal(inUse.encapsulate, nativeMlKem && wasm ? 'native for a key met before, wasm for a new one' : nativeMlKem ? 'native' : wasm ? 'wasm' : 'noble');
    assert.equal(inUse.keyPair, wasm ? 'wasm' : 'noble');
    const seeded = (n: number): Bytes => fromHex(n === 64 ? v.seed : v.m);
    assert.equal(toHex(MlKem1024.keyPair(seeded).secretKey), v.dk);
    const { ciphertext, sharedSecret } = MlKem1024.encapsulate(fromHex(v.ek), seeded);
    assert.equal(toHex(ciphertext), v.c);
    assert.equal(toHex(sharedSecret), v.K);
  });

  for (const c of ['auto', 'native', 'wasm', 'noble'] as const) {
    const missing = (c === 'native' && !nativeMlKem) || (c === 'wasm' && !wasm);
    it(`RRELAY_MLKEM=${c}: round trip with systemRng, implicit rejection, refusals as before`, { skip: missing ? `${c} is not available on Node ${process.version}` : false }, async () => {
      await useMlKem(c);
      try {
        const { publicKey, secretKey } = MlKem1024.keyPair(systemRng);
        const { ciphertext, sharedSecret } = MlKem1024.encapsulate(publicKey, systemRng);
        assert.equal(toHex(MlKem1024.decapsulate(ciphertext, secretKey)), toHex(sharedSecret));
        assert.equal(toHex(MlKem1024.decapsulate(ciphertext, secretKey)), toHex(sharedSecret), 'again, with the key cached');
        assert.equal(toHex(MlKem1024.decapsulate(flipBit(ciphertext, 5), secretKey)), rejectionSecret(secretKey, flipBit(ciphertext, 5)));
        assert.equal(toHex(MlKem1024.decapsulate(fromHex(v.c), fromHex(v.dk))), v.K);
        assert.throws(() => MlKem1024.encapsulate(fromHex(v.ekModulusOverflow), systemRng), RangeError);
        assert.throws(() => MlKem1024.decapsulate(fromHex(v.c), flipBit(fromHex(v.dk), 3100)), /hash check/);
      } finally {
        await useMlKem('auto');
      }
    });
  }
});
