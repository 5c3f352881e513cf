import { aes256GcmOpen, aes256GcmSeal, type Bytes, concat, hkdfSha256, type Rng, X25519 } from '../crypto/index.js';
import { fail } from '../errors.js';
import {
  compactPublicIdentity,
  encodePublicIdentity,
  fingerprintBytes,
  type Identity,
  identitySign,
  identityVerify,
  type PublicIdentity,
  readPublicIdentity,
  sameIdentity,
} from '../identity/index.js';
import { Reader, Writer } from '../wire/codec.js';
import { decodeEnvelope, type Envelope } from './envelope.js';

export const SEALED_ENVELOPE_VERSION = 1;
const KEY_INFO = 'ratchet-relay/sealed-envelope/v1';
/** The inner identity signature's own context: it signs nothing else. */
const SENDER_CONTEXT = 'ratchet-relay/sealed-envelope/sender/v1';
const EPHEMERAL_BYTES = 32;
const TAG_BYTES = 16;
/** An inner envelope: a message (≤ 64 KiB of text and its headers) or a retry request. */
const MAX_INNER_BYTES = 1 << 17;

/** What a sealed envelope opens to: the sender's verified identity and the envelope it sealed. */
export interface OpenedSeal {
  readonly sender: PublicIdentity;
  readonly envelopeBytes: Bytes;
  readonly envelope: Envelope;
}

/**
 * Sealed sender for the inbox (after Signal's sealed sender, classical X25519 too): only the
 * recipient learns who sent it. The sender's identity signs (recipient, the throwaway Nostr key
 * that signs the event, the envelope), so a relay cannot re-post the seal under another event, and
 * no one can seal in another's name.
 *
 *   e = fresh X25519 key;  key (32) || nonce (12) = HKDF-SHA256(ikm = X25519(e, recipient.dhKey),
 *       salt = e.pub || recipient.dhKey, info = KEY_INFO, 44)
 *   sealed = version (1) || e.pub (32) || AES-256-GCM(key, nonce, inner, ad = version || e.pub || recipient fingerprint)
 *   inner  = PublicIdentity (compact) || signature (64) || u32 length || envelope
 */
export function sealEnvelope(self: Identity, recipient: PublicIdentity, throwawayPubkey: Bytes, envelope: Bytes, rng: Rng): Bytes {
  const ephemeral = X25519.generate(rng);
  const recipientFp = fingerprintBytes(recipient);
  const signature = identitySign(self, SENDER_CONTEXT, signedMessage(recipientFp, throwawayPubkey, envelope));
  const identity = encodePublicIdentity(compactPublicIdentity(self.public));
  const body = concat(identity, new Writer(envelope.length + 80).fixed(signature, 64).bytes(envelope).finish());
  const { key, nonce } = sealKeys(X25519.dh(ephemeral.privateKey, recipient.dhKey), ephemeral.publicKey, recipient.dhKey);
  const head = new Writer(1 + EPHEMERAL_BYTES).u8(SEALED_ENVELOPE_VERSION).fixed(ephemeral.publicKey, EPHEMERAL_BYTES).finish();
  return concat(head, aes256GcmSeal(key, nonce, body, concat(head, recipientFp)));
}

/**
 * The validating decoder, for the recipient `self`, of a seal that came in an event signed by
 * `throwawayPubkey`: DECRYPT_FAILED when it does not open, BAD_SIGNATURE when the sender's identity
 * did not sign it for us and this event, IDENTITY_MISMATCH when a pre-key envelope inside names
 * another identity than the one sealed. A retry request's own signature is checked by its decoder;
 * a normal message (the first of a session made by key exchange) is the sealed sender's session's to open.
 */
export function openSealedEnvelope(self: Identity, bytes: Bytes, throwawayPubkey: Bytes): OpenedSeal {
  const r = new Reader(bytes, 'sealed envelope');
  r.version(SEALED_ENVELOPE_VERSION);
  const ephemeralPub = r.fixed(EPHEMERAL_BYTES);
  const sealed = bytes.subarray(1 + EPHEMERAL_BYTES);
  if (sealed.length < TAG_BYTES) fail('MALFORMED', 'sealed envelope: truncated');
  let shared: Bytes;
  try {
    shared = X25519.dh(self.dh.privateKey, ephemeralPub);
  } catch {
    return fail('DECRYPT_FAILED', 'sealed envelope: unusable ephemeral key');
  }
  const selfFp = fingerprintBytes(self.public);
  const { key, nonce } = sealKeys(shared, ephemeralPub, self.public.dhKey);
  const body = aes256GcmOpen(key, nonce, sealed, concat(bytes.subarray(0, 1 + EPHEMERAL_BYTES), selfFp));
  if (!body) return fail('DECRYPT_FAILED', 'sealed envelope: does not open');
  const inner = new Reader(body, 'sealed envelope');
  const sender = readPublicIdentity(inner);
  const signature = inner.fixed(64);
  const envelopeBytes = inner.bytes(MAX_INNER_BYTES);
  inner.end();
  if (!identityVerify(sender, SENDER_CONTEXT, signedMessage(selfFp, throwawayPubkey, envelopeBytes), signature))
    fail('BAD_SIGNATURE', 'sealed envelope: the sender identity did not sign it for this recipient and event');
  const envelope = decodeEnvelope(envelopeBytes);
  if (envelope.type === 'prekey' && !sameIdentity(envelope.header.identity, sender))
    fail('IDENTITY_MISMATCH', 'sealed envelope: the pre-key message names an identity other than the sealed one');
  return { sender, envelopeBytes, envelope };
}

function signedMessage(recipientFp: Bytes, throwawayPubkey: Bytes, envelope: Bytes): Bytes {
  return new Writer(envelope.length + 72).fixed(recipientFp, 32).fixed(throwawayPubkey, 32).bytes(envelope).finish();
}

function sealKeys(shared: Bytes, ephemeralPub: Bytes, recipientDhKey: Bytes): { key: Bytes; nonce: Bytes } {
  const okm = hkdfSha256(shared, concat(ephemeralPub, recipientDhKey), KEY_INFO, 44);
  return { key: okm.subarray(0, 32), nonce: okm.subarray(32) };
}
