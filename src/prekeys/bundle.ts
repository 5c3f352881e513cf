import { type Bytes, MlKem1024 } from '../crypto/index.js';
import { fail } from '../errors.js';
import {
  compactPublicIdentity,
  encodePublicIdentity,
  identityVerifyRepeated,
  type PublicIdentity,
  readPublicIdentity,
} from '../identity/index.js';
import { WIRE_LIMITS } from '../limits.js';
import { Reader, Writer } from '../wire/codec.js';
import { KYBER_PREKEY_CONTEXT, kyberPreKeyMessage, SIGNED_PREKEY_CONTEXT, signedPreKeyMessage } from './records.js';

export const PREKEY_BUNDLE_VERSION = 1;

export interface BundleSignedPreKey {
  readonly id: number;
  readonly publicKey: Bytes;
  readonly createdAt: number;
  readonly signature: Bytes;
}

export interface BundleOneTimePreKey {
  readonly id: number;
  readonly publicKey: Bytes;
}

/** What a node publishes so that peers can start PQXDH without a round trip. */
export interface PreKeyBundle {
  readonly identity: PublicIdentity;
  readonly signedPreKey: BundleSignedPreKey;
  readonly kyberPreKey: BundleSignedPreKey;
  readonly oneTimePreKeys: readonly BundleOneTimePreKey[];
}

export function encodePreKeyBundle(b: PreKeyBundle): Bytes {
  const w = new Writer(2048 + 36 * b.oneTimePreKeys.length)
    .u8(PREKEY_BUNDLE_VERSION)
    .bytes(encodePublicIdentity(compactPublicIdentity(b.identity)))
    .u32(b.signedPreKey.id)
    .fixed(b.signedPreKey.publicKey, 32)
    .u64(b.signedPreKey.createdAt)
    .fixed(b.signedPreKey.signature, 64)
    .u32(b.kyberPreKey.id)
    .fixed(b.kyberPreKey.publicKey, MlKem1024.publicKeyBytes)
    .u64(b.kyberPreKey.createdAt)
    .fixed(b.kyberPreKey.signature, 64)
    .u8(b.oneTimePreKeys.length);
  for (const k of b.oneTimePreKeys) w.u32(k.id).fixed(k.publicKey, 32);
  return w.finish();
}

/** The validating decoder: the identity's self-signature and both pre-key signatures are checked here. */
export function decodePreKeyBundle(bytes: Bytes): PreKeyBundle {
  const r = new Reader(bytes, 'pre-key bundle');
  r.version(PREKEY_BUNDLE_VERSION);
  const idReader = new Reader(r.bytes(4096), 'pre-key bundle identity');
  const identity = readPublicIdentity(idReader);
  idReader.end();
  const signedPreKey = { id: r.u32(), publicKey: r.fixed(32), createdAt: r.u64(), signature: r.fixed(64) };
  const kyberPreKey = {
    id: r.u32(),
    publicKey: r.fixed(MlKem1024.publicKeyBytes),
    createdAt: r.u64(),
    signature: r.fixed(64),
  };
  const count = r.u8();
  if (count > WIRE_LIMITS.maxBundleOneTimeKeys) fail('MALFORMED', `pre-key bundle: ${count} one-time keys is too many`);
  const oneTimePreKeys: BundleOneTimePreKey[] = [];
  for (let i = 0; i < count; i++) oneTimePreKeys.push({ id: r.u32(), publicKey: r.fixed(32) });
  r.end();
  const spkMessage = signedPreKeyMessage(signedPreKey.id, signedPreKey.publicKey, signedPreKey.createdAt);
  if (!identityVerifyRepeated(identity, SIGNED_PREKEY_CONTEXT, spkMessage, signedPreKey.signature))
    fail('BAD_SIGNATURE', 'pre-key bundle: signed pre-key signature does not verify');
  const kpkMessage = kyberPreKeyMessage(kyberPreKey.id, kyberPreKey.publicKey, kyberPreKey.createdAt);
  if (!identityVerifyRepeated(identity, KYBER_PREKEY_CONTEXT, kpkMessage, kyberPreKey.signature))
    fail('BAD_SIGNATURE', 'pre-key bundle: Kyber pre-key signature does not verify');
  return { identity, signedPreKey, kyberPreKey, oneTimePreKeys };
}
