import { type Bytes, fromHex, sha256, toHex } from '../crypto/index.js';
import { fail } from '../errors.js';
import { decodeBase64Content, type Event, isMailboxEvent, KIND_MESSAGE, RENDEZVOUS_TAG, throwawayEvent, throwawayKey } from './events.js';
import { PADDED_FRAME_VERSION, PADDING_BUCKETS, padFrame, unpadFrame } from './padding.js';

/**
 * The version byte of a packed frame: several envelopes of one mailbox in one event. Envelope v1
 * starts with 0x01 and a padded frame with 0x80, so the first byte of a mailbox event's (unpadded)
 * content tells a pack from a single envelope.
 */
export const PACKED_FRAME_VERSION = 0x81;
/** version (1) || count (1) */
const HEADER_BYTES = 2;
/** Each envelope's length, u16 big-endian, before it. */
const LENGTH_BYTES = 2;

/**
 * Bounds of one pack (docs/protocol.md, "Bounds"). Its frame fits the 16 KiB padding bucket, so the
 * event is about 22 KB serialized: well under the 64 KiB that strict relays take (strfry's default),
 * and under our own MAX_EVENT_BYTES. 64 envelopes: a burst of receipts and short texts still
 * amortizes the signature over many, and a count fits one byte.
 */
export const PACK_LIMITS = {
  minEnvelopes: 2,
  maxEnvelopes: 64,
  /** The packed frame's bytes: the 16 KiB bucket less the padded frame's 5-byte header. */
  maxFrameBytes: PADDING_BUCKETS[3]! - 5,
} as const;

/** The bytes one envelope adds to a packed frame. */
const packedSize = (envelopeBytes: number): number => LENGTH_BYTES + envelopeBytes;

/** Frame: version (1) || count n (1) || n × (length (u16 BE) || envelope). Within PACK_LIMITS. */
export function encodePackedFrame(envelopes: readonly Bytes[]): Bytes {
  const n = envelopes.length;
  if (n < PACK_LIMITS.minEnvelopes || n > PACK_LIMITS.maxEnvelopes) fail('INVALID_ARGUMENT', `a pack holds ${PACK_LIMITS.minEnvelopes} to ${PACK_LIMITS.maxEnvelopes} envelopes, not ${n}`);
  const size = envelopes.reduce((s, e) => s + packedSize(e.length), HEADER_BYTES);
  if (size > PACK_LIMITS.maxFrameBytes) fail('INVALID_ARGUMENT', `a pack of ${size} bytes exceeds ${PACK_LIMITS.maxFrameBytes}`);
  const frame = new Uint8Array(size);
  const view = new DataView(frame.buffer);
  frame[0] = PACKED_FRAME_VERSION;
  frame[1] = n;
  let at = HEADER_BYTES;
  for (const e of envelopes) {
    if (e.length === 0) fail('INVALID_ARGUMENT', 'an empty envelope in a pack');
    view.setUint16(at, e.length);
    frame.set(e, at + LENGTH_BYTES);
    at += packedSize(e.length);
  }
  return frame;
}

/**
 * The validating decoder of a packed frame: this version, a count within bounds, every envelope
 * non-empty and whole, nothing after the last, within the size bound. Throws MALFORMED or
 * UNSUPPORTED_VERSION, nothing else. The envelopes themselves are decoded by their reader.
 */
export function decodePackedFrame(frame: Bytes): Bytes[] {
  if (frame.length < HEADER_BYTES) fail('MALFORMED', `packed frame: ${frame.length} bytes is shorter than its header`);
  if (frame[0] !== PACKED_FRAME_VERSION) fail('UNSUPPORTED_VERSION', `packed frame: version ${frame[0]} is not supported (expected ${PACKED_FRAME_VERSION})`);
  if (frame.length > PACK_LIMITS.maxFrameBytes) fail('MALFORMED', `packed frame: ${frame.length} bytes exceeds ${PACK_LIMITS.maxFrameBytes}`);
  const n = frame[1]!;
  if (n < PACK_LIMITS.minEnvelopes || n > PACK_LIMITS.maxEnvelopes) fail('MALFORMED', `packed frame: ${n} envelopes is outside ${PACK_LIMITS.minEnvelopes}..${PACK_LIMITS.maxEnvelopes}`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
  const envelopes: Bytes[] = [];
  let at = HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    if (at + LENGTH_BYTES > frame.length) fail('MALFORMED', `packed frame: envelope ${i} of ${n} is missing`);
    const length = view.getUint16(at);
    if (length === 0) fail('MALFORMED', `packed frame: envelope ${i} is empty`);
    const start = at + LENGTH_BYTES;
    if (start + length > frame.length) fail('MALFORMED', `packed frame: envelope ${i} of ${length} bytes is cut short`);
    envelopes.push(frame.slice(start, start + length));
    at = start + length;
  }
  if (at !== frame.length) fail('MALFORMED', `packed frame: ${frame.length - at} bytes after the last envelope`);
  return envelopes;
}

/** Several envelopes to one mailbox in one event: kind 40001, `z` = the tag, throwaway-signed, a padded packed frame. */
export function packedMailboxEvent(tag: string, envelopes: readonly Bytes[], rng: (n: number) => Bytes, nowMs: number): Event {
  return throwawayEvent(KIND_MESSAGE, [[RENDEZVOUS_TAG, tag]], throwawayKey(rng), encodePackedFrame(envelopes), rng, nowMs);
}

/**
 * Whether a (checked) event is a packed mailbox event, by a peek at its content's first bytes:
 * the padded frame's version, then, past its length, the packed frame's. Nothing is validated here:
 * `unpackMailboxEvent` does.
 */
export function isPackedMailboxEvent(e: Event): boolean {
  if (!isMailboxEvent(e) || e.content.length < 8) return false;
  // 8 base64 characters are the first 6 bytes: the padded frame's version, its length (4), the payload's first byte.
  const head = Buffer.from(e.content.slice(0, 8), 'base64');
  return head[0] === PADDED_FRAME_VERSION && head[5] === PACKED_FRAME_VERSION;
}

/**
 * A packed mailbox event as one mailbox event per envelope, in order, each read as a single-envelope
 * event is: same kind, tag, author and time, content the envelope's own padded frame, and id the
 * part id `SHA-256(pack id (32 bytes) || index (1 byte))`, on which seen marks, held-back storage and
 * refusals key. Its `sig` is the pack's, which covers the pack only: a reader checks no mailbox
 * event's signature (see `isMailboxEvent`). Throws MALFORMED or UNSUPPORTED_VERSION for the whole
 * pack when the frame does not decode.
 */
export function unpackMailboxEvent(e: Event): Event[] {
  if (!isMailboxEvent(e)) fail('MALFORMED', 'not a mailbox event');
  const envelopes = decodePackedFrame(unpadFrame(decodeBase64Content(e.content, 'packed mailbox event')));
  return envelopes.map((envelope, i) => ({ ...e, id: packPartId(e.id, i), content: Buffer.from(padFrame(envelope)).toString('base64') }));
}

/** The id of the `index`th envelope of the pack `packId` (docs/protocol.md, "Packed frame v1"). */
export function packPartId(packId: string, index: number): string {
  const input = new Uint8Array(33);
  input.set(fromHex(packId));
  input[32] = index;
  return toHex(sha256(input));
}

/**
 * Envelopes waiting for one flush, grouped for packing: by mailbox tag, each tag's in the order
 * given, a group cut where one more envelope would break PACK_LIMITS; groups ordered by their first
 * envelope. An envelope too large to share a frame is a group of its own (sent as a plain event).
 */
export function packGroups<T extends { readonly tag: string; readonly envelope: Bytes }>(items: readonly T[]): T[][] {
  const groups: T[][] = [];
  const open = new Map<string, { items: T[]; bytes: number }>();
  for (const item of items) {
    const size = packedSize(item.envelope.length);
    let group = open.get(item.tag);
    if (!group || group.items.length >= PACK_LIMITS.maxEnvelopes || group.bytes + size > PACK_LIMITS.maxFrameBytes) {
      group = { items: [], bytes: HEADER_BYTES };
      groups.push(group.items);
      open.set(item.tag, group);
    }
    group.items.push(item);
    group.bytes += size;
  }
  return groups;
}
