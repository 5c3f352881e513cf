import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { type Bytes, concat, hkdfSha512, MlKem1024, type Rng } from '../crypto/index.js';
import { fail } from '../errors.js';

/**
 * The seed's `c || secretbox(msg, k)` with ML-KEM-1024 in place of sntrup4591761 (see docs/protocol.md):
 *
 *   (c, ss) = ML-KEM-1024.Encaps(recipient KEM key)
 *   k       = HKDF-SHA-512(ikm = ss, salt = 64 zero bytes, info = SEAL_INFO, 32)
 *   sealed  = c (1568) || nonce (24, random) || XSalsa20-Poly1305(k, nonce, msg)   (tag 16 || ciphertext)
 *
 * Every seal encapsulates afresh, so k is used once; the random nonce is belt and braces.
 */
export const SEAL_INFO = 'ratchet-relay/kx/seal/v1';
export const SEAL_NONCE_BYTES = 24;
export const SEAL_TAG_BYTES = 16;
/** Bytes a sealed message adds to its plaintext: 1568 + 24 + 16 = 1608. */
export const SEAL_OVERHEAD_BYTES = MlKem1024.ciphertextBytes + SEAL_NONCE_BYTES + SEAL_TAG_BYTES;

const SALT = new Uint8Array(64);

function sealKey(sharedSecret: Bytes): Bytes {
  return hkdfSha512(sharedSecret, SALT, SEAL_INFO, 32);
}

/**
 * Seals and also returns the KEM shared secret, which the key exchange mixes into the session key
 * so that it stays secret against a quantum adversary. The key exchange seals to ephemeral keys only
 * (forward secrecy, docs/protocol.md); the node seals reset and introduction invites to identity keys.
 * Throws MALFORMED when the recipient's KEM key fails the FIPS 203 input check (an invite or a half
 * KX can carry one: their signatures do not prove the key valid).
 */
export function sealWithSecret(recipientKemPublicKey: Bytes, plaintext: Bytes, rng: Rng): { sealed: Bytes; secret: Bytes } {
  let kem;
  try {
    kem = MlKem1024.encapsulate(recipientKemPublicKey, rng);
  } catch (e) {
    return fail('MALFORMED', `recipient KEM key is unusable: ${(e as Error).message}`);
  }
  const nonce = rng(SEAL_NONCE_BYTES);
  const box = xsalsa20poly1305(sealKey(kem.sharedSecret), nonce).encrypt(plaintext);
  return { sealed: concat(kem.ciphertext, nonce, box), secret: kem.sharedSecret };
}

export function seal(recipientKemPublicKey: Bytes, plaintext: Bytes, rng: Rng): Bytes {
  return sealWithSecret(recipientKemPublicKey, plaintext, rng).sealed;
}

/**
 * Opens a sealed message. A wrong key, a changed byte anywhere, or a truncation all end as
 * DECRYPT_FAILED: ML-KEM's implicit rejection turns a changed ciphertext into an unrelated key, and
 * Poly1305 then refuses.
 */
export function openWithSecret(kemSecretKey: Bytes, sealed: Bytes): { plaintext: Bytes; secret: Bytes } {
  if (sealed.length < SEAL_OVERHEAD_BYTES) fail('DECRYPT_FAILED', 'sealed message is too short');
  const c = sealed.subarray(0, MlKem1024.ciphertextBytes);
  const nonce = sealed.subarray(MlKem1024.ciphertextBytes, MlKem1024.ciphertextBytes + SEAL_NONCE_BYTES);
  const box = sealed.subarray(MlKem1024.ciphertextBytes + SEAL_NONCE_BYTES);
  try {
    const secret = MlKem1024.decapsulate(c, kemSecretKey);
    return { plaintext: new Uint8Array(xsalsa20poly1305(sealKey(secret), nonce).decrypt(box)), secret };
  } catch {
    return fail('DECRYPT_FAILED', 'sealed message does not open');
  }
}

export function open(kemSecretKey: Bytes, sealed: Bytes): Bytes {
  return openWithSecret(kemSecretKey, sealed).plaintext;
}
