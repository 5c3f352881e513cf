import { hash } from 'node:crypto';
import type { Bytes } from '../crypto/index.js';

/**
 * Signature checks that passed, remembered so that the same bytes are not verified again: a peer's
 * bundle repeats the same pre-key signatures each time it is fetched and decoded, and every stored
 * session and pre-key message repeats its sender's identity. Only successes are kept, and a hit needs
 * the very bytes that were verified (the key, the message and the signature, under a kind that names
 * the algorithm): the entry is found by a hash of them and then compared byte for byte. At most
 * `bound` entries, least recently used out first (docs/crypto.md, "Caches").
 */
export class VerifiedSignatures {
  private readonly entries = new Map<string, Buffer>();

  constructor(private readonly bound: number) {}

  /** Whether `verify` accepts these parts, asking it only when they did not pass before. */
  check(kind: string, parts: readonly Bytes[], verify: () => boolean): boolean {
    const input = framed(kind, parts);
    const key = hash('sha256', input, 'base64');
    const hit = this.entries.get(key);
    if (hit && hit.equals(input)) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return true;
    }
    if (!verify()) return false;
    if (this.entries.size >= this.bound) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, input);
    return true;
  }

  get size(): number {
    return this.entries.size;
  }
}

/** The kind and every part, each behind its length, so that no two different inputs frame alike. */
function framed(kind: string, parts: readonly Bytes[]): Buffer {
  const k = Buffer.from(kind, 'utf8');
  let n = 4 + k.length;
  for (const p of parts) n += 4 + p.length;
  const out = Buffer.allocUnsafe(n);
  let o = out.writeUInt32BE(k.length, 0);
  o += k.copy(out, o);
  for (const p of parts) {
    o = out.writeUInt32BE(p.length, o);
    out.set(p, o);
    o += p.length;
  }
  return out;
}
