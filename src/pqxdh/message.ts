import { type Bytes, MlKem1024 } from '../crypto/index.js';
import {
  compactPublicIdentity,
  encodePublicIdentity,
  type PublicIdentity,
  readPublicIdentity,
} from '../identity/index.js';
import { Reader, Writer } from '../wire/codec.js';

export const PQXDH_HEADER_VERSION = 1;

/**
 * What the initiator sends with its first messages (PQXDH section 3.3): its identity, its
 * ephemeral key, the KEM ciphertext, and the identifiers of the pre-keys it used.
 */
export interface PqxdhHeader {
  readonly identity: PublicIdentity;
  readonly ephemeralKey: Bytes;
  readonly signedPreKeyId: number;
  readonly kyberPreKeyId: number;
  readonly oneTimePreKeyId: number | null;
  readonly kemCiphertext: Bytes;
}

export function writePqxdhHeader(w: Writer, h: PqxdhHeader): Writer {
  return w
    .u8(PQXDH_HEADER_VERSION)
    .bytes(encodePublicIdentity(compactPublicIdentity(h.identity)))
    .fixed(h.ephemeralKey, 32)
    .u32(h.signedPreKeyId)
    .u32(h.kyberPreKeyId)
    .optional(h.oneTimePreKeyId, (x, id) => x.u32(id))
    .fixed(h.kemCiphertext, MlKem1024.ciphertextBytes);
}

/** Validates the sender identity's self-signature on the way in. */
export function readPqxdhHeader(r: Reader): PqxdhHeader {
  r.version(PQXDH_HEADER_VERSION);
  const idReader = new Reader(r.bytes(4096), 'PQXDH header identity');
  const identity = readPublicIdentity(idReader);
  idReader.end();
  return {
    identity,
    ephemeralKey: r.fixed(32),
    signedPreKeyId: r.u32(),
    kyberPreKeyId: r.u32(),
    oneTimePreKeyId: r.optional((x) => x.u32()),
    kemCiphertext: r.fixed(MlKem1024.ciphertextBytes),
  };
}
