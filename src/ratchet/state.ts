import type { Bytes, KeyPair } from '../crypto/index.js';
import { fail } from '../errors.js';
import { Reader, Writer } from '../wire/codec.js';

/** A message key kept for a message that has not arrived yet, indexed by (header key, n) as in spec section 4. */
export interface SkippedKey {
  readonly headerKey: Bytes;
  readonly n: number;
  readonly messageKey: Bytes;
  readonly createdAt: number;
}

/** Double Ratchet state with header encryption (spec section 4.3). Immutable: transitions return a new object. */
export interface RatchetState {
  readonly dhs: KeyPair;
  readonly dhr: Bytes | null;
  readonly rk: Bytes;
  readonly cks: Bytes | null;
  readonly ckr: Bytes | null;
  readonly ns: number;
  readonly nr: number;
  readonly pn: number;
  readonly hks: Bytes | null;
  readonly hkr: Bytes | null;
  readonly nhks: Bytes;
  readonly nhkr: Bytes;
  readonly skipped: readonly SkippedKey[];
}

export const RATCHET_STATE_VERSION = 1;
const MAX_STORED_SKIPPED = 1 << 16;

const key32 = (w: Writer, k: Bytes) => void w.fixed(k, 32);

function writeSkippedKey(w: Writer, s: SkippedKey): void {
  w.fixed(s.headerKey, 32).u32(s.n).fixed(s.messageKey, 32).u64(s.createdAt);
}

function readSkippedKey(r: Reader): SkippedKey {
  return { headerKey: r.fixed(32), n: r.u32(), messageKey: r.fixed(32), createdAt: r.u64() };
}

// version, 5 keys, 5 optional keys with their flags, 3 counters: exact when all are present, so the
// Writer neither grows nor trims (a state is saved per message).
const CORE_MAX_BYTES = 1 + 5 * 32 + 5 * 33 + 3 * 4;

/** The state without its skipped keys; the store keeps those in their own table. */
export function encodeRatchetCore(s: RatchetState): Bytes {
  return writeCore(new Writer(CORE_MAX_BYTES), s).finish();
}

function writeCore(w: Writer, s: RatchetState): Writer {
  return w
    .u8(RATCHET_STATE_VERSION)
    .fixed(s.dhs.privateKey, 32)
    .fixed(s.dhs.publicKey, 32)
    .optional(s.dhr, key32)
    .fixed(s.rk, 32)
    .optional(s.cks, key32)
    .optional(s.ckr, key32)
    .u32(s.ns)
    .u32(s.nr)
    .u32(s.pn)
    .optional(s.hks, key32)
    .optional(s.hkr, key32)
    .fixed(s.nhks, 32)
    .fixed(s.nhkr, 32);
}

function readCore(r: Reader, skipped: readonly SkippedKey[]): RatchetState {
  r.version(RATCHET_STATE_VERSION);
  const k32 = (x: Reader) => x.fixed(32);
  return {
    // The public half is stored too: deriving it costs more than the rest of the decode.
    dhs: { privateKey: r.fixed(32), publicKey: r.fixed(32) },
    dhr: r.optional(k32),
    rk: r.fixed(32),
    cks: r.optional(k32),
    ckr: r.optional(k32),
    ns: r.u32(),
    nr: r.u32(),
    pn: r.u32(),
    hks: r.optional(k32),
    hkr: r.optional(k32),
    nhks: r.fixed(32),
    nhkr: r.fixed(32),
    skipped,
  };
}

export function decodeRatchetCore(bytes: Bytes, skipped: readonly SkippedKey[]): RatchetState {
  const r = new Reader(bytes, 'ratchet state');
  const s = readCore(r, skipped);
  r.end();
  return s;
}

/** The whole state, skipped keys included, as one versioned blob. */
export function encodeRatchetState(s: RatchetState): Bytes {
  const w = writeCore(new Writer(), s).u32(s.skipped.length);
  for (const k of s.skipped) writeSkippedKey(w, k);
  return w.finish();
}

export function decodeRatchetState(bytes: Bytes): RatchetState {
  const r = new Reader(bytes, 'ratchet state');
  const core = readCore(r, []);
  const n = r.u32();
  if (n > MAX_STORED_SKIPPED) fail('MALFORMED', `ratchet state: ${n} skipped keys exceeds ${MAX_STORED_SKIPPED}`);
  const skipped: SkippedKey[] = [];
  for (let i = 0; i < n; i++) skipped.push(readSkippedKey(r));
  r.end();
  return { ...core, skipped };
}
