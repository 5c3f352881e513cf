import type { Event } from 'nostr-tools/core';
import { z } from 'zod';
import { type Bytes, fromHex, Secp256k1Schnorr, sha256, systemRng, toHex, utf8 } from '../crypto/index.js';
import { fail, isRatchetRelayError } from '../errors.js';
import { fingerprint } from '../identity/index.js';
import { PRIVACY_LIMITS } from '../limits.js';
import { decodePreKeyBundle, type PreKeyBundle } from '../prekeys/index.js';
import { isPaddedFrame, padFrame, unpadFrame } from './padding.js';

export const KIND_BUNDLE = 30078;
export const BUNDLE_D_TAG = 'radix_prekey_bundle_v1';
export const KIND_MESSAGE = 40001;
/** A payload posted at a rendezvous point: regular (stored) kind, found by its `z` tag. */
export const KIND_RENDEZVOUS = 4401;
export const RENDEZVOUS_TAG = 'z';

/** The `v` tag of bundle events: the version of the ratchet-relay protocol inside. */
export const PROTOCOL_VERSION = '1';
/** An event larger than this, serialized, is dropped before anything parses its content. */
export const MAX_EVENT_BYTES = 96 * 1024;
/** Relays may be a little ahead of us; further in the future than this is a lie. */
const MAX_CLOCK_SKEW_S = 15 * 60;

export type { Event };

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const EventShape = z.object({
  id: hex64,
  pubkey: hex64,
  created_at: z.number().int().nonnegative(),
  kind: z.number().int().min(0).max(65535),
  tags: z.array(z.array(z.string().max(1024)).max(16)).max(64),
  content: z.string(),
  sig: z.string().regex(/^[0-9a-f]{128}$/),
});

/**
 * The gate every incoming event passes before anything else looks at it: size, shape, then id and
 * signature. Returns the reason for a rejection, or null.
 */
export function checkIncomingEvent(raw: unknown, now: number): string | null {
  let size: number;
  try {
    size = JSON.stringify(raw).length;
  } catch {
    return 'not serializable';
  }
  if (size > MAX_EVENT_BYTES) return `event of ${size} bytes exceeds ${MAX_EVENT_BYTES}`;
  const shape = EventShape.safeParse(raw);
  if (!shape.success) return `malformed event: ${shape.error.issues[0]?.message ?? 'bad shape'}`;
  const e = shape.data;
  if (eventId(e) !== e.id || (!isMailboxEvent(e) && !Secp256k1Schnorr.verify(fromHex(e.pubkey), fromHex(e.id), fromHex(e.sig))))
    return 'bad id or signature';
  if (shape.data.created_at > now / 1000 + MAX_CLOCK_SKEW_S) return 'created_at is in the future';
  return null;
}

/** NIP-01's event id: SHA-256 of its serialization. */
function eventId(e: Omit<Event, 'id' | 'sig'>): string {
  return toHex(sha256(utf8(JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content]))));
}

/**
 * A mailbox event's author is a key made for that one event: its signature proves nothing a reader
 * uses, since the ratchet's MAC authenticates the message and a replay is refused by the ratchet. So
 * its Schnorr signature is left to the relays, which must check it, and a reader checks only that
 * the id is the hash of the event, which arrivals and seen marks key on. It was a third of a
 * received message's CPU. Every other event's signature is checked: bundles, seed-format messages
 * and sealed inbox events name their author.
 */
export function isMailboxEvent(e: Pick<Event, 'kind' | 'tags'>): boolean {
  return e.kind === KIND_MESSAGE && e.tags.length === 1 && e.tags[0]!.length === 2 && e.tags[0]![0] === RENDEZVOUS_TAG;
}

/**
 * A signed event (NIP-01), on libsecp256k1: the signature's auxiliary randomness is fresh, as BIP-340
 * recommends. The public key is derived once per secret instance (a node key's is reused).
 */
export function signEvent(kind: number, tags: string[][], content: string, nostrSecret: Bytes, createdAtMs: number): Event {
  const unsigned = { kind, tags, content, created_at: Math.floor(createdAtMs / 1000), pubkey: toHex(Secp256k1Schnorr.publicKeyOf(nostrSecret)) };
  const id = eventId(unsigned);
  return { ...unsigned, id, sig: toHex(Secp256k1Schnorr.sign(nostrSecret, fromHex(id), systemRng)) };
}

/**
 * Most events one key signs with the same created_at second. Relays answer newest first and cap
 * each answer (ours at 1000, common ones at 500, some at 100): past the cap a second's events cannot
 * be paged to, so a sender keeps each second under the smallest common cap.
 */
export const MAX_EVENTS_PER_SECOND = 100;

/** How many events one key has signed in its latest created_at second. */
export interface SecondBudget {
  readonly second: number;
  readonly used: number;
}

/**
 * The created_at (ms, for `signEvent`) of a key's next event: its clock, or the next second once
 * `perSecond` events share this one. A sender faster than that runs ahead of its clock by
 * (rate − perSecond) / perSecond seconds per second, well within relays' future bound at our rates.
 */
export function budgetedCreatedAt(budget: SecondBudget | null, nowMs: number, perSecond = MAX_EVENTS_PER_SECOND): { createdAtMs: number; budget: SecondBudget } {
  const now = Math.floor(nowMs / 1000);
  if (budget === null || budget.second < now) return { createdAtMs: nowMs, budget: { second: now, used: 1 } };
  if (budget.used < perSecond) return { createdAtMs: budget.second * 1000, budget: { second: budget.second, used: budget.used + 1 } };
  return { createdAtMs: (budget.second + 1) * 1000, budget: { second: budget.second + 1, used: 1 } };
}

/** Kind 30078, `d` = radix_prekey_bundle_v1, content the base64 bundle; an empty content unpublishes. */
export function bundleEvent(bundle: Bytes | null, nostrSecret: Bytes, nowMs: number): Event {
  return signEvent(
    KIND_BUNDLE,
    [
      ['d', BUNDLE_D_TAG],
      ['v', PROTOCOL_VERSION],
    ],
    bundle ? Buffer.from(bundle).toString('base64') : '',
    nostrSecret,
    nowMs,
  );
}

/** Kind 40001, `p` = the recipient's Nostr key, content the base64 session envelope. */
export function messageEvent(envelope: Bytes, recipientNostrKey: string, nostrSecret: Bytes, nowMs: number): Event {
  return signEvent(KIND_MESSAGE, [['p', recipientNostrKey]], Buffer.from(envelope).toString('base64'), nostrSecret, nowMs);
}

/** A secp256k1 secret key made for one event and thrown away: no two events are linked by their author. */
export function throwawayKey(rng: (n: number) => Bytes): Bytes {
  let secret: Bytes;
  do secret = rng(32);
  while (!isValidSecret(secret));
  return secret;
}

/**
 * The created_at (ms, for `signEvent`) of a throwaway-signed event: now minus a uniform
 * [0, PRIVACY_LIMITS.createdAtJitterS] seconds, so that its time does not line it up with the
 * sender's activity. In the past only: relays refuse events far in the future, none refuses minutes ago.
 */
export function jitteredCreatedAt(nowMs: number, rng: (n: number) => Bytes): number {
  const span = PRIVACY_LIMITS.createdAtJitterS + 1;
  const b = rng(4);
  const r = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  return nowMs - Math.floor((r / 2 ** 32) * span) * 1000;
}

/** An event signed by a throwaway key, its payload padded (`padFrame`), its created_at jittered. */
export function throwawayEvent(kind: number, tags: string[][], secret: Bytes, payload: Bytes, rng: (n: number) => Bytes, nowMs: number): Event {
  return signEvent(kind, tags, Buffer.from(padFrame(payload)).toString('base64'), secret, jitteredCreatedAt(nowMs, rng));
}

/**
 * An RV payload: signed by a throwaway key, with no `p` tag, so the relay learns neither sender nor
 * recipient; only the two ends know the RV. Padded like every private event.
 */
export function rendezvousEvent(rvHex: string, payload: Bytes, rng: (n: number) => Bytes, nowMs: number): Event {
  return throwawayEvent(KIND_RENDEZVOUS, [[RENDEZVOUS_TAG, rvHex]], throwawayKey(rng), payload, rng, nowMs);
}

/** A message to a mailbox: kind 40001, `z` = the mailbox tag and nothing else, throwaway-signed, padded. */
export function mailboxEvent(tag: string, envelope: Bytes, rng: (n: number) => Bytes, nowMs: number): Event {
  return throwawayEvent(KIND_MESSAGE, [[RENDEZVOUS_TAG, tag]], throwawayKey(rng), envelope, rng, nowMs);
}

/**
 * A sealed envelope to a recipient's inbox: kind 40001, `p` = the recipient's Nostr key,
 * throwaway-signed, padded. `seal` gets the throwaway public key, which the sealed signature covers.
 */
export function inboxEvent(recipientNostrKey: string, seal: (throwawayPubkey: Bytes) => Bytes, rng: (n: number) => Bytes, nowMs: number): Event {
  const secret = throwawayKey(rng);
  return throwawayEvent(KIND_MESSAGE, [['p', recipientNostrKey]], secret, seal(Secp256k1Schnorr.publicKeyOf(secret)), rng, nowMs);
}

function isValidSecret(k: Bytes): boolean {
  // secp256k1 scalars must be in [1, n): a random 32 bytes fails with probability ~2^-128.
  return k.some((b) => b !== 0) && Buffer.from(k).compare(SECP256K1_N) < 0;
}
const SECP256K1_N = Buffer.from('fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141', 'hex');

/** The RV (hex) and payload of a (verified) rendezvous event. */
export function decodeRendezvousEvent(e: Event): { rv: string; payload: Bytes } {
  if (e.kind !== KIND_RENDEZVOUS) fail('MALFORMED', 'not a rendezvous event');
  const rv = tag(e, RENDEZVOUS_TAG);
  if (!rv || !/^[0-9a-f]{64}$/.test(rv)) fail('MALFORMED', 'rendezvous event: missing or malformed z tag');
  return { rv, payload: unpadFrame(decodeBase64Content(e.content, 'rendezvous event')) };
}

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decodeBase64Content(content: string, what: string): Bytes {
  if (!STRICT_BASE64.test(content)) fail('MALFORMED', `${what}: content is not base64`);
  return new Uint8Array(Buffer.from(content, 'base64'));
}

function tag(e: Event, name: string): string | undefined {
  return e.tags.find((t) => t[0] === name)?.[1];
}

export type BundleEventContent =
  | { readonly kind: 'bundle'; readonly bundle: PreKeyBundle; readonly bytes: Bytes; readonly fingerprint: string }
  | { readonly kind: 'unpublished' };

/**
 * The validating decoder of a (verified) bundle event. The bundle's identity must bind the Nostr
 * key that signed the event; a bundle that fails that is someone else's, replayed.
 */
export function decodeBundleEvent(e: Event): BundleEventContent {
  if (e.kind !== KIND_BUNDLE || tag(e, 'd') !== BUNDLE_D_TAG) fail('MALFORMED', 'not a pre-key bundle event');
  const v = tag(e, 'v');
  if (v !== PROTOCOL_VERSION) fail('UNSUPPORTED_VERSION', `bundle event: protocol version ${v ?? 'missing'}`);
  if (e.content === '') return { kind: 'unpublished' };
  const bytes = decodeBase64Content(e.content, 'bundle event');
  const bundle = decodePreKeyBundle(bytes);
  if (toHex(bundle.identity.nostrKey) !== e.pubkey) fail('IDENTITY_MISMATCH', 'bundle identity does not bind the Nostr key that signed the event');
  return { kind: 'bundle', bundle, bytes, fingerprint: fingerprint(bundle.identity) };
}

/** The Nostr key a message event is addressed to (its `p` tag). */
export function recipientOf(e: Event): string | undefined {
  return tag(e, 'p');
}

/**
 * What a (verified) message event carries, by its format: a seed-format event (`p` = us, signed by
 * its sender, content an Envelope v1), a sealed one in our inbox (`p` = us, throwaway-signed,
 * content a padded SealedEnvelope), or a mailbox event (`z` = a mailbox tag, throwaway-signed,
 * content a padded Envelope v1). Who sent it is for the caller to find out (see `Arrivals`).
 */
export type MessageEventContent =
  | { readonly format: 'seed'; readonly envelope: Bytes }
  | { readonly format: 'inbox'; readonly sealed: Bytes }
  | { readonly format: 'mailbox'; readonly tag: string; readonly envelope: Bytes };

/** The validating decoder of a (verified) message event addressed to `self` or to a mailbox. */
export function decodeMessageEvent(e: Event, self: string): MessageEventContent {
  if (e.kind !== KIND_MESSAGE) fail('MALFORMED', 'not a message event');
  const mailbox = tag(e, RENDEZVOUS_TAG);
  const recipient = recipientOf(e);
  if (mailbox !== undefined) {
    if (recipient !== undefined) fail('MALFORMED', 'message event: both a mailbox tag and a recipient');
    if (!/^[0-9a-f]{64}$/.test(mailbox)) fail('MALFORMED', 'message event: malformed mailbox tag');
    return { format: 'mailbox', tag: mailbox, envelope: unpadFrame(decodeBase64Content(e.content, 'message event')) };
  }
  if (recipient !== self) fail('MALFORMED', 'message event is not addressed to us');
  const bytes = decodeBase64Content(e.content, 'message event');
  return isPaddedFrame(bytes) ? { format: 'inbox', sealed: unpadFrame(bytes) } : { format: 'seed', envelope: bytes };
}

/** For logs: the reason without a stack. */
export function reasonOf(e: unknown): string {
  if (isRatchetRelayError(e)) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
