import { fail } from '../errors.js';
import type { Bytes } from '../crypto/index.js';

/**
 * The binary layout every wire format and stored record uses: big-endian integers, fixed-size
 * fields, and length-prefixed variable fields with an explicit upper bound.
 */
export class Writer {
  private buf: Uint8Array;
  private len = 0;

  /** `capacity` is a hint: the exact size when known avoids growing and copying. */
  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(v: number): this {
    this.reserve(1);
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.reserve(2);
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 out of range: ${v}`);
    this.reserve(4);
    new DataView(this.buf.buffer).setUint32(this.len, v);
    this.len += 4;
    return this;
  }

  /** Milliseconds since the epoch, or any non-negative integer below 2^53. */
  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64 out of range: ${v}`);
    this.u32(Math.floor(v / 2 ** 32));
    return this.u32(v % 2 ** 32);
  }

  /** A fixed-size field: the reader knows the length. */
  fixed(b: Bytes, length: number): this {
    if (b.length !== length) throw new RangeError(`field must be ${length} bytes, got ${b.length}`);
    this.reserve(length);
    this.buf.set(b, this.len);
    this.len += length;
    return this;
  }

  /** A variable field with a u32 length prefix. */
  bytes(b: Bytes): this {
    this.u32(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  optional<T>(v: T | null | undefined, write: (w: this, v: T) => void): this {
    if (v === null || v === undefined) return this.u8(0);
    this.u8(1);
    write(this, v);
    return this;
  }

  finish(): Bytes {
    return this.len === this.buf.length ? this.buf : this.buf.slice(0, this.len);
  }
}

export class Reader {
  private off = 0;

  constructor(
    private readonly b: Bytes,
    private readonly what: string,
  ) {}

  private need(n: number): void {
    if (this.off + n > this.b.length) fail('MALFORMED', `${this.what}: truncated`);
  }

  u8(): number {
    this.need(1);
    return this.b[this.off++]!;
  }

  u16(): number {
    this.need(2);
    const v = (this.b[this.off]! << 8) | this.b[this.off + 1]!;
    this.off += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = new DataView(this.b.buffer, this.b.byteOffset).getUint32(this.off);
    this.off += 4;
    return v;
  }

  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    if (hi >= 2 ** 21) fail('MALFORMED', `${this.what}: integer beyond 2^53`);
    return hi * 2 ** 32 + lo;
  }

  /** Copies, so that decoded values never alias (and pin) the input buffer. */
  fixed(length: number): Bytes {
    this.need(length);
    const out = this.b.slice(this.off, this.off + length);
    this.off += length;
    return out;
  }

  bytes(max: number): Bytes {
    const n = this.u32();
    if (n > max) fail('MALFORMED', `${this.what}: field of ${n} bytes exceeds the limit of ${max}`);
    return this.fixed(n);
  }

  optional<T>(read: (r: this) => T): T | null {
    const tag = this.u8();
    if (tag === 0) return null;
    if (tag !== 1) fail('MALFORMED', `${this.what}: bad presence flag ${tag}`);
    return read(this);
  }

  /** Decoders end with this: trailing bytes mean the input is not what it claims to be. */
  end(): void {
    if (this.off !== this.b.length) fail('MALFORMED', `${this.what}: ${this.b.length - this.off} trailing bytes`);
  }

  /** Reads the leading version byte and rejects any other version. */
  version(expected: number): void {
    const v = this.u8();
    if (v !== expected) fail('UNSUPPORTED_VERSION', `${this.what}: version ${v} is not supported (expected ${expected})`);
  }
}
