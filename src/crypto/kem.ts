import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import type { Bytes } from './bytes.js';
import type { Rng } from './random.js';

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

/** ML-KEM-1024 (FIPS 203) from @noble/post-quantum; see docs/crypto.md for why this backend. */
export const MlKem1024: Kem = {
  name: 'ML-KEM-1024',
  publicKeyBytes: 1568,
  secretKeyBytes: 3168,
  ciphertextBytes: 1568,
  keyPair(rng) {
    return ml_kem1024.keygen(rng(64));
  },
  encapsulate(publicKey, rng) {
    if (publicKey.length !== MlKem1024.publicKeyBytes) throw new RangeError('ML-KEM-1024 public key has the wrong length');
    let r;
    try {
      r = ml_kem1024.encapsulate(publicKey, rng(32));
    } catch {
      throw new RangeError('ML-KEM-1024 public key fails the FIPS 203 input check');
    }
    return { ciphertext: r.cipherText, sharedSecret: r.sharedSecret };
  },
  decapsulate(ciphertext, secretKey) {
    if (ciphertext.length !== MlKem1024.ciphertextBytes) throw new RangeError('ML-KEM-1024 ciphertext has the wrong length');
    return ml_kem1024.decapsulate(ciphertext, secretKey);
  },
};
