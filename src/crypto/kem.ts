import * as nodeCrypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import type { Bytes } from './bytes.js';
import { type Rng, systemRng } from './random.js';

/** A KEM behind one small interface, so a parameter set can change without touching callers. */
export interface Kem {
  readonly name: string;
  readonly publicKeyBytes: number;
  readonly secretKeyBytes: number;
  readonly ciphertextBytes: number;
  keyPair(rng: Rng): { publicKey: Bytes; secretKey: Bytes };
  /** Throws RangeError for a public key that fails the FIPS 203 input checks. */
  encapsulate(publicKey: Bytes, rng: Rng): { ciphertext: Bytes; sharedSecret: Bytes };
  /** Implicit rejection: a wrong ciphertext yields an unrelated secret, not an error. */
  decapsulate(ciphertext: Bytes, secretKey: Bytes): Bytes;
}

/**
 * One ML-KEM-1024 implementation that draws its own randomness (native, WASM). Only used when the
 * caller's Rng is `systemRng`: seeded runs stay on noble, which takes the seed and m from the Rng.
 * Every method throws on an input it refuses; the caller then falls back to noble.
 */
export interface MlKemBackend {
  readonly name: 'native' | 'wasm' | 'noble';
  /** Absent where the backend cannot give the 3168-byte expanded secret key (native gives a seed). */
  readonly keyPair?: () => { publicKey: Bytes; secretKey: Bytes };
  encapsulate(publicKey: Bytes): { ciphertext: Bytes; sharedSecret: Bytes };
  decapsulate(ciphertext: Bytes, secretKey: Bytes): Bytes;
}

export const nobleMlKem: MlKemBackend = {
  name: 'noble',
  keyPair: () => ml_kem1024.keygen(),
  encapsulate(publicKey) {
    const r = ml_kem1024.encapsulate(publicKey);
    return { ciphertext: r.cipherText, sharedSecret: r.sharedSecret };
  },
  decapsulate: (ciphertext, secretKey) => ml_kem1024.decapsulate(ciphertext, secretKey),
};

// DER framing for Node's key import (Node 24.7+ has no raw import of an expanded ML-KEM secret key):
// SPKI and PKCS#8 of id-alg-ml-kem-1024 (2.16.840.1.101.3.4.4.3), the private key in its
// expandedKey form (draft-ietf-lamps-kyber-certificates), so the stored 3168-byte key is imported as is.
const SPKI_PREFIX = Buffer.from('30820632300b06096086480165030404030382062100', 'hex');
const PKCS8_EXPANDED_PREFIX = Buffer.from('30820c78020100300b060960864801650304040304820c6404820c60', 'hex');

// Imports cost more than the operation (~125 µs for a secret key); protocol state is immutable, so a
// key's KeyObject is cached per Uint8Array instance, as for X25519 (see docs/crypto.md).
const publicKeyObjects = new WeakMap<Bytes, KeyObject>();
const secretKeyObjects = new WeakMap<Bytes, KeyObject>();

type NodeKem = {
  encapsulate(key: KeyObject): { sharedKey: Buffer; ciphertext: Buffer };
  decapsulate(key: KeyObject, ciphertext: Bytes): Buffer;
};

function nativeBackend(): (MlKemBackend & { hasCachedKey(key: Bytes): boolean }) | undefined {
  const c = nodeCrypto as unknown as Partial<NodeKem>;
  if (typeof c.encapsulate !== 'function' || typeof c.decapsulate !== 'function') return undefined;
  const { encapsulate, decapsulate } = c as NodeKem;
  try {
    nodeCrypto.generateKeyPairSync('ml-kem-1024' as 'x25519');
  } catch {
    return undefined; // a Node whose OpenSSL lacks ML-KEM
  }
  const publicKeyObject = (pk: Bytes): KeyObject => {
    let k = publicKeyObjects.get(pk);
    if (!k) {
      k = nodeCrypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pk]), format: 'der', type: 'spki' });
      publicKeyObjects.set(pk, k);
    }
    return k;
  };
  const secretKeyObject = (sk: Bytes): KeyObject => {
    let k = secretKeyObjects.get(sk);
    if (!k) {
      const der = Buffer.concat([PKCS8_EXPANDED_PREFIX, sk]);
      // OpenSSL checks H(ek) inside the key, as FIPS 203's decapsulation input check asks.
      k = nodeCrypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      der.fill(0);
      secretKeyObjects.set(sk, k);
    }
    return k;
  };
  return {
    name: 'native',
    encapsulate(publicKey) {
      const r = encapsulate(publicKeyObject(publicKey));
      return { ciphertext: new Uint8Array(r.ciphertext), sharedSecret: new Uint8Array(r.sharedKey) };
    },
    decapsulate: (ciphertext, secretKey) => new Uint8Array(decapsulate(secretKeyObject(secretKey), ciphertext)),
    hasCachedKey: (key) => secretKeyObjects.has(key) || publicKeyObjects.has(key),
  };
}

/** Node's own ML-KEM-1024 (Node ≥ 24.7 with OpenSSL 3.5), or undefined on an older Node. */
export const nativeMlKem = nativeBackend();

let wasm: MlKemBackend | undefined;
let wasmLoading: Promise<MlKemBackend | undefined> | undefined;

/**
 * liboqs through @oqs/liboqs-js. Loaded on first use only (about 2 MB of RSS for the instance, more
 * for the module), asynchronously: until it is ready, callers are served by native or noble.
 * Resolves to undefined where the package is not installed.
 */
export function loadWasmMlKem(): Promise<MlKemBackend | undefined> {
  wasmLoading ??= (async () => {
    try {
      const { createMLKEM1024 } = await import('@oqs/liboqs-js/kem');
      const k = await createMLKEM1024();
      wasm = {
        name: 'wasm',
        keyPair: () => k.generateKeyPair(),
        encapsulate: (publicKey) => k.encapsulate(publicKey),
        decapsulate: (ciphertext, secretKey) => k.decapsulate(ciphertext, secretKey),
      };
      return wasm;
    } catch {
      return undefined;
    }
  })();
  return wasmLoading;
}

export type MlKemChoice = 'auto' | 'native' | 'wasm' | 'noble';

/** `RRELAY_MLKEM=native|wasm|noble` forces one backend (tests, benches); anything else is 'auto'. */
function choiceFromEnv(): MlKemChoice {
  const v = process.env.RRELAY_MLKEM;
  return v === 'native' || v === 'wasm' || v === 'noble' ? v : 'auto';
}
let choice: MlKemChoice = choiceFromEnv();
if (choice === 'native' && !nativeMlKem) throw new Error('RRELAY_MLKEM=native, but this Node has no native ML-KEM');

/** Selects the backends MlKem1024 may use; returns once the WASM one, if selected, is loaded. */
export async function useMlKem(c: MlKemChoice): Promise<void> {
  if (c === 'native' && !nativeMlKem) throw new Error('this Node has no native ML-KEM');
  choice = c;
  if ((c === 'wasm' || c === 'auto') && !(await loadWasmMlKem()) && c === 'wasm') {
    throw new Error('@oqs/liboqs-js cannot be loaded');
  }
}

function wasmNow(): MlKemBackend | undefined {
  if (choice !== 'auto' && choice !== 'wasm') return undefined;
  if (!wasm) void loadWasmMlKem();
  return wasm;
}
const nativeNow = () => (choice === 'auto' || choice === 'native' ? nativeMlKem : undefined);

/** The backend each operation would use now with systemRng, for the bench and tests to report. */
/** As `backendFor` picks: a key met for the first time on WASM where both are loaded. */
function describeReuse(): string {
  const native = nativeNow()?.name;
  const wasm = wasmNow()?.name;
  if (native && wasm) return `${native} for a key met before, ${wasm} for a new one`;
  return native ?? wasm ?? 'noble';
}

export function mlKemBackendsInUse(): { keyPair: string; encapsulate: string; decapsulate: string } {
  return {
    keyPair: wasmNow()?.name ?? 'noble',
    encapsulate: describeReuse(),
    decapsulate: describeReuse(),
  };
}

// A key instance that comes back is a long-lived one (SessionCipher keeps one object per Kyber
// pre-key): from its second use on, the native import pays for itself within a few calls. A key used
// once (a peer's Kyber pre-key from a freshly decoded bundle, a fresh responder's own) goes to WASM:
// in a setup, native import and encapsulation of a new public key cost 3-4% more of the whole setup
// than WASM's encapsulation on Node 24 (in-process A/B, 2 x 2,000 setups).
const seenKeys = new WeakSet<Bytes>();
function seenBefore(key: Bytes): boolean {
  if (seenKeys.has(key)) return true;
  seenKeys.add(key);
  return false;
}

/** Native for a key it holds or has met before, or when there is no WASM; WASM for a key met now. */
function nativeOrWasm(key: Bytes): MlKemBackend | undefined {
  const native = nativeNow();
  const w = wasmNow();
  return native && (native.hasCachedKey(key) || !w || seenBefore(key)) ? native : w;
}

/** ML-KEM-1024 (FIPS 203); see docs/crypto.md for the backends and why this order. */
export const MlKem1024: Kem = {
  name: 'ML-KEM-1024',
  publicKeyBytes: 1568,
  secretKeyBytes: 3168,
  ciphertextBytes: 1568,
  keyPair(rng) {
    // Native keygen cannot hand out the expanded secret key, the stored format; WASM can.
    const fast = rng === systemRng ? wasmNow() : undefined;
    return fast?.keyPair ? fast.keyPair() : ml_kem1024.keygen(rng(64));
  },
  encapsulate(publicKey, rng) {
    if (publicKey.length !== MlKem1024.publicKeyBytes) throw new RangeError('ML-KEM-1024 public key has the wrong length');
    const fast = rng === systemRng ? nativeOrWasm(publicKey) : undefined;
    try {
      if (fast) return fast.encapsulate(publicKey);
      const r = ml_kem1024.encapsulate(publicKey, rng(32));
      return { ciphertext: r.cipherText, sharedSecret: r.sharedSecret };
    } catch {
      throw new RangeError('ML-KEM-1024 public key fails the FIPS 203 input check');
    }
  },
  decapsulate(ciphertext, secretKey) {
    if (ciphertext.length !== MlKem1024.ciphertextBytes) throw new RangeError('ML-KEM-1024 ciphertext has the wrong length');
    // Deterministic, so any backend will do whatever the Rng. Native is fastest once the key is
    // imported; a first import costs more than a WASM decapsulation.
    const fast = nativeOrWasm(secretKey);
    if (fast && secretKey.length === MlKem1024.secretKeyBytes) {
      try {
        return fast.decapsulate(ciphertext, secretKey);
      } catch {
        // A key the backend refuses (H(ek) check): noble gives the same refusal as before.
      }
    }
    return ml_kem1024.decapsulate(ciphertext, secretKey);
  },
};
