import type { Bytes } from '../crypto/index.js';
import { fail } from '../errors.js';

/**
 * The version byte of a padded frame. Envelope v1 starts with 0x01; a padded frame never does, so
 * a node reading its inbox tells a seed-format event (content an Envelope) from a sealed one.
 */
export const PADDED_FRAME_VERSION = 0x80;
const HEADER_BYTES = 5;

/**
 * The only sizes (bytes, before base64) a padded frame comes in, so that a relay learns a
 * message's size class and nothing finer. 1 KiB: a normal text of a few hundred characters, a
 * receipt of a few ids, every control message; 2 KiB: a text of about 1 KB (measured: with 4 KiB
 * next, such texts cost the relay 3.5× their bytes); 4 KiB: a first (pre-key) message or a retry request,
 * sealed (≈2.4–2.5 KB); 16 KiB: a long text, a receipt for up to 256 ids (≈4.3 KB); 70 KiB: the
 * largest message (a 64 KiB text in a sealed pre-key envelope, ≈68 KB), whose base64 (95,576
 * bytes) with the event around it still fits MAX_EVENT_BYTES (98,304).
 */
export const PADDING_BUCKETS: readonly number[] = [1024, 2 * 1024, 4 * 1024, 16 * 1024, 70 * 1024];

/** The most payload a padded frame carries. */
export const MAX_PADDED_PAYLOAD = PADDING_BUCKETS[PADDING_BUCKETS.length - 1]! - HEADER_BYTES;

/** Frame: version (1) || payload length (u32 BE) || payload || zeros up to the smallest bucket it fits. */
export function padFrame(payload: Bytes): Bytes {
  const size = PADDING_BUCKETS.find((b) => b - HEADER_BYTES >= payload.length);
  if (size === undefined) return fail('INVALID_ARGUMENT', `payload of ${payload.length} bytes exceeds the largest padded frame (${MAX_PADDED_PAYLOAD})`);
  const frame = new Uint8Array(size);
  frame[0] = PADDED_FRAME_VERSION;
  new DataView(frame.buffer).setUint32(1, payload.length);
  frame.set(payload, HEADER_BYTES);
  return frame;
}

/** The validating decoder: a bucket's size exactly, this version, a length that fits, zeros after it. */
export function unpadFrame(frame: Bytes): Bytes {
  if (!PADDING_BUCKETS.includes(frame.length)) fail('MALFORMED', `padded frame: ${frame.length} bytes is no padding bucket`);
  if (frame[0] !== PADDED_FRAME_VERSION) fail('UNSUPPORTED_VERSION', `padded frame: version ${frame[0]} is not supported (expected ${PADDED_FRAME_VERSION})`);
  const length = new DataView(frame.buffer, frame.byteOffset, frame.length).getUint32(1);
  if (length > frame.length - HEADER_BYTES) fail('MALFORMED', `padded frame: payload of ${length} bytes exceeds the frame`);
  const end = HEADER_BYTES + length;
  for (let i = end; i < frame.length; i++) if (frame[i] !== 0) fail('MALFORMED', 'padded frame: padding is not zero');
  return frame.slice(HEADER_BYTES, end);
}

/** Whether bytes are (claim to be) a padded frame rather than an Envelope: by the version byte. */
export function isPaddedFrame(bytes: Bytes): boolean {
  return bytes[0] === PADDED_FRAME_VERSION;
}
