import { type Bytes, concat, hkdfSha512, type KeyPair, MlKem1024, type Rng, utf8, X25519 } from '../crypto/index.js';
import { fail } from '../errors.js';
import { fingerprintPair, type Identity, type PublicIdentity } from '../identity/index.js';
import type { PreKeyBundle } from '../prekeys/index.js';
import type { PqxdhHeader } from './message.js';

/** PQXDH section 2.2: info = "<protocol>_<curve>_<hash>_<pqkem>". */
export const PQXDH_INFO = 'ratchet-relay_CURVE25519_SHA-512_ML-KEM-1024';
const INFO = utf8(PQXDH_INFO);
// Section 2.2: F is 32 0xFF bytes for X25519, so KM never starts like a valid key; salt is zero-filled.
const F = new Uint8Array(32).fill(0xff);
const SALT = new Uint8Array(64);

export interface PqxdhResult {
  /** SK: the 32-byte shared secret that seeds the Double Ratchet. */
  readonly sharedSecret: Bytes;
  /** AD = Encode(IK_A) || Encode(IK_B), here the two identity fingerprints. */
  readonly associatedData: Bytes;
}

/** KDF(KM) over F ‖ KM, KM being the DH outputs then the KEM secret. */
function kdf(dh: readonly Bytes[], kemSecret: Bytes): Bytes {
  return hkdfSha512(concat(F, ...dh, kemSecret), SALT, INFO, 32);
}

export function associatedData(initiator: PublicIdentity, responder: PublicIdentity): Bytes {
  return fingerprintPair(initiator, responder);
}

/**
 * The initiator's side (section 3.3). `bundle` must come from decodePreKeyBundle, which has already
 * verified its signatures. Picks one of the offered one-time pre-keys at random, or none.
 */
export function pqxdhInitiate(
  self: Identity,
  bundle: PreKeyBundle,
  rng: Rng,
): PqxdhResult & { readonly header: PqxdhHeader } {
  const ek = X25519.generate(rng);
  const otks = bundle.oneTimePreKeys;
  const otk = otks.length > 0 ? otks[rng(1)[0]! % otks.length]! : null;
  let dh: Bytes[];
  let kem: { ciphertext: Bytes; sharedSecret: Bytes };
  try {
    const spk = bundle.signedPreKey.publicKey;
    dh = [X25519.dh(self.dh.privateKey, spk), X25519.dh(ek.privateKey, bundle.identity.dhKey), X25519.dh(ek.privateKey, spk)];
    if (otk) dh.push(X25519.dh(ek.privateKey, otk.publicKey));
    kem = MlKem1024.encapsulate(bundle.kyberPreKey.publicKey, rng);
  } catch (e) {
    return fail('MALFORMED', `pre-key bundle holds an unusable key: ${(e as Error).message}`);
  }
  return {
    sharedSecret: kdf(dh, kem.sharedSecret),
    associatedData: associatedData(self.public, bundle.identity),
    header: {
      identity: self.public,
      ephemeralKey: ek.publicKey,
      signedPreKeyId: bundle.signedPreKey.id,
      kyberPreKeyId: bundle.kyberPreKey.id,
      oneTimePreKeyId: otk ? otk.id : null,
      kemCiphertext: kem.ciphertext,
    },
  };
}

/** The pre-keys the header names, already looked up and checked by the caller. */
export interface ResponderPreKeys {
  readonly signedPreKey: KeyPair;
  readonly kyberPreKey: { readonly privateKey: Bytes };
  readonly oneTimePreKey: KeyPair | null;
}

/** The responder's side (section 3.4). */
export function pqxdhRespond(self: Identity, header: PqxdhHeader, keys: ResponderPreKeys): PqxdhResult {
  if ((header.oneTimePreKeyId === null) !== (keys.oneTimePreKey === null))
    fail('INVALID_ARGUMENT', 'one-time pre-key does not match the header');
  const dh: Bytes[] = [];
  try {
    dh.push(
      X25519.dh(keys.signedPreKey.privateKey, header.identity.dhKey),
      X25519.dh(self.dh.privateKey, header.ephemeralKey),
      X25519.dh(keys.signedPreKey.privateKey, header.ephemeralKey),
    );
    if (keys.oneTimePreKey) dh.push(X25519.dh(keys.oneTimePreKey.privateKey, header.ephemeralKey));
  } catch {
    fail('DECRYPT_FAILED', 'initial message carries an invalid X25519 key');
  }
  const ss = MlKem1024.decapsulate(header.kemCiphertext, keys.kyberPreKey.privateKey);
  return { sharedSecret: kdf(dh, ss), associatedData: associatedData(header.identity, self.public) };
}
