import { timingSafeEqual } from 'node:crypto';

export type Bytes = Uint8Array;

export function concat(...parts: readonly Bytes[]): Bytes {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Constant-time equality for secrets and MACs. Unequal lengths return false at once: lengths are public. */
export function constantTimeEqual(a: Bytes, b: Bytes): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * A node:crypto output (digest, cipher update/final, auth tag) as Bytes without a copy: those Buffers
 * own their ArrayBuffers (Node allocates them outside the pool), so the view shares memory with
 * nothing else.
 */
export function ownedView(b: Buffer, length = b.length): Bytes {
  return new Uint8Array(b.buffer, b.byteOffset, length);
}

/** Bytes as a Buffer over the same memory, for APIs that insist on Buffers: no copy. */
export function bufferView(b: Bytes): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.length);
}

export function toHex(b: Bytes): string {
  return bufferView(b).toString('hex');
}

export function fromHex(s: string): Bytes {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(s)) throw new TypeError('not a hex string');
  return new Uint8Array(Buffer.from(s, 'hex'));
}

export function toBase64Url(b: Bytes): string {
  return bufferView(b).toString('base64url');
}

export function fromBase64Url(s: string): Bytes {
  return new Uint8Array(Buffer.from(s, 'base64url'));
}

const UTF8 = new TextEncoder();
const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true });

export function utf8(s: string): Bytes {
  return UTF8.encode(s);
}

/** Strict UTF-8 decoding: invalid sequences throw instead of turning into U+FFFD. */
export function fromUtf8(b: Bytes): string {
  return UTF8_STRICT.decode(b);
}
