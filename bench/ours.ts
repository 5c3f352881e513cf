// Our figures, at the scope bench/libsignal.ts measures libsignal-client: SessionCipher over our
// MemoryProtocolStore (libsignal's side runs its session API over in-memory stores), 1 KB plaintexts,
// every message encrypted and decrypted and checked. The same paths over SqliteProtocolStore on an
// in-memory database (what a node pays: SQL, encoding, a transaction per message) are the `…Sqlite` figures. The bare ratchet
// figures (pure functions on an in-memory state, no store, no envelope) are kept beside them,
// labelled as such. Run one figure per process: `node dist/bench/side.js --side ours --figure …`.
import { randomFillSync } from 'node:crypto';
import { type Bytes, systemRng } from '../src/crypto/index.js';
import { loadWasmMlKem, mlKemBackendsInUse } from '../src/crypto/kem.js';
import { generateIdentity } from '../src/identity/index.js';
import type { PreKeyConfig } from '../src/limits.js';
import {
  decodePreKeyBundle,
  encodePreKeyBundle,
  generateKyberPreKey,
  generateOneTimePreKey,
  generateSignedPreKey,
  type PreKeyBundle,
} from '../src/prekeys/index.js';
import { initAlice, initBob, ratchetDecrypt, ratchetEncrypt, type RatchetState } from '../src/ratchet/index.js';
import { SessionCipher } from '../src/session/index.js';
import { MemoryProtocolStore, openDatabase, SqliteProtocolStore } from '../src/store/index.js';
import { now, nsPerOp, timedRegionPerSec } from './timing.js';

export const OUR_FIGURES = ['oneWay', 'alternating', 'setups', 'oneWaySqlite', 'alternatingSqlite', 'setupsSqlite', 'bareOneWay', 'bareAlternating', 'bundle'] as const;
export type OurFigure = (typeof OUR_FIGURES)[number];

export interface BundleFigures {
  bundleGenerationMs: number;
  bundleSerializationMs: number;
  /** With one one-time pre-key, as libsignal's bundle has. */
  bundleBytes: number;
  /** With the default five one-time pre-keys. */
  bundleBytesDefault: number;
}

const MESSAGE_BYTES = 1024;
const AD = new Uint8Array(64);
const rng = systemRng;

function fail(message: string): never {
  throw new Error(`bench: ${message}`);
}

function stamp(plaintext: Uint8Array, i: number): void {
  plaintext[0] = i & 0xff;
  plaintext[MESSAGE_BYTES - 1] = (i >>> 8) & 0xff;
}

function check(received: Bytes, plaintext: Uint8Array, what: string): void {
  if (received.length !== MESSAGE_BYTES || received[0] !== plaintext[0] || received[MESSAGE_BYTES - 1] !== plaintext[MESSAGE_BYTES - 1])
    fail(`${what} decrypted to the wrong plaintext`);
}

/** A bare ratchet pair past the first round trip, so both sides can send. */
function bareEstablishedPair(): [RatchetState, RatchetState] {
  const sk = rng(32);
  const bobKey = generateOneTimePreKey(1, 0, rng);
  let a = initAlice(sk, bobKey.publicKey, rng);
  let b = initBob(sk, { publicKey: bobKey.publicKey, privateKey: bobKey.privateKey! });
  const m = ratchetEncrypt(a, new Uint8Array(1), AD, rng);
  a = m.state;
  b = ratchetDecrypt(b, m.message, AD, { rng, now: 0 }).state;
  const r = ratchetEncrypt(b, new Uint8Array(1), AD, rng);
  b = r.state;
  a = ratchetDecrypt(a, r.message, AD, { rng, now: 0 }).state;
  return [a, b];
}

function bareSend(states: RatchetState[], from: 0 | 1, plaintext: Uint8Array, i: number): void {
  stamp(plaintext, i);
  const e = ratchetEncrypt(states[from]!, plaintext, AD, rng);
  states[from] = e.state;
  const d = ratchetDecrypt(states[1 - from]!, e.message, AD, { rng, now: 0 });
  states[1 - from] = d.state;
  check(d.plaintext, plaintext, `bare message ${i}`);
}

export type StoreKind = 'memory' | 'sqlite';

/**
 * One party: its own store (in memory, or SQLite on an in-memory database), an identity, the
 * SessionCipher over them, and pre-keys (the defaults unless given; none for a party that is never contacted).
 */
export function party(kind: StoreKind, opts: { preKeys?: Partial<PreKeyConfig> | null } = {}): Party {
  const clock = Date.now;
  let store: MemoryProtocolStore | SqliteProtocolStore;
  if (kind === 'memory') store = MemoryProtocolStore.create(rng, clock());
  else {
    store = new SqliteProtocolStore(openDatabase({ path: ':memory:' }), clock);
    store.ensureIdentity(rng, clock());
  }
  const cipher = new SessionCipher(store, { rng, clock, preKeys: opts.preKeys ?? undefined });
  if (opts.preKeys !== null) cipher.maintain();
  const close = () => (store instanceof SqliteProtocolStore ? store.db.close() : undefined);
  return { store, cipher, close, fingerprint: '' };
}
export interface Party {
  readonly store: MemoryProtocolStore | SqliteProtocolStore;
  readonly cipher: SessionCipher;
  readonly close: () => void;
  fingerprint: string;
}

/** Alice and Bob through their stores, past the first round trip (as libsignal's establishedPair). */
function storedPair(kind: StoreKind): { alice: Party; bob: Party } {
  const alice = party(kind);
  const bob = party(kind);
  bob.fingerprint = alice.cipher.startSession(decodePreKeyBundle(encodePreKeyBundle(bob.cipher.bundle())));
  alice.fingerprint = bob.cipher.decrypt(alice.cipher.encrypt(bob.fingerprint, new Uint8Array(1))).peerFingerprint;
  alice.cipher.decrypt(bob.cipher.encrypt(alice.fingerprint, new Uint8Array(1)), { from: bob.fingerprint });
  return { alice, bob };
}

/** Encrypts message `i` from `from` to `to` through their SessionCiphers, decrypts it, checks it. */
function storedSend(from: Party, to: Party, plaintext: Uint8Array, i: number): void {
  stamp(plaintext, i);
  const envelope = from.cipher.encrypt(to.fingerprint, plaintext);
  check(to.cipher.decrypt(envelope, { from: from.fingerprint }).plaintext, plaintext, `message ${i}`);
}

/** A responder made for one setup: a small one-time pool, since one key is all it will give out. */
export const ONE_SETUP_PREKEYS = { oneTimePoolTarget: 1, oneTimePoolLowWater: 1 };

/**
 * Setups per second, each a first contact: a fresh Bob (his own store, identity, signed and Kyber
 * pre-keys, one one-time key) publishes his bundle as encoded bytes, a fresh Alice (her own store)
 * takes it. A Bob used for many setups would let every Alice after the first skip his identity's
 * two signature checks (src/identity keeps verified identities per process), which a first contact
 * between two nodes never does. Timed: decode + verify the bundle, startSession, the first encrypt,
 * and Bob's decrypt of the pre-key message through his store (his keys read from it, as bytes).
 */
async function setupsPerSec(kind: StoreKind, seconds: number, plaintext: Uint8Array): Promise<number> {
  return timedRegionPerSec(seconds, (i) => {
    const bob = party(kind, { preKeys: ONE_SETUP_PREKEYS });
    const bundleBytes = encodePreKeyBundle(bob.cipher.bundle());
    const alice = party(kind, { preKeys: null });
    stamp(plaintext, i);
    const start = now();
    const bobFp = alice.cipher.startSession(decodePreKeyBundle(bundleBytes));
    const envelope = alice.cipher.encrypt(bobFp, plaintext);
    const received = bob.cipher.decrypt(envelope);
    const elapsed = now() - start;
    if (!received.newSession || !received.consumedOneTimePreKey) fail(`setup ${i} did not start a new session with a one-time key at Bob's`);
    check(received.plaintext, plaintext, `setup ${i}`);
    alice.close();
    bob.close();
    return elapsed;
  });
}

async function bundleFigures(seconds: number): Promise<BundleFigures> {
  const bob = generateIdentity(rng, Date.now());
  const spk = generateSignedPreKey(bob, 1, Date.now(), rng);
  const kpk = generateKyberPreKey(bob, 1, Date.now(), rng);
  const bundleWith = (otks: { id: number; publicKey: Bytes }[]): PreKeyBundle => ({
    identity: bob.public,
    signedPreKey: { id: spk.id, publicKey: spk.publicKey, createdAt: spk.createdAt, signature: spk.signature },
    kyberPreKey: { id: kpk.id, publicKey: kpk.publicKey, createdAt: kpk.createdAt, signature: kpk.signature },
    oneTimePreKeys: otks,
  });
  const generationNs = await nsPerOp(seconds, (i) => {
    generateSignedPreKey(bob, i, 0, rng);
    generateKyberPreKey(bob, i, 0, rng);
    generateOneTimePreKey(i, 0, rng);
  });
  const one = bundleWith([{ id: 1, publicKey: rng(32) }]);
  const bundleBytes = encodePreKeyBundle(one).length;
  const serializationNs = await nsPerOp(seconds, () => {
    if (encodePreKeyBundle(one).length !== bundleBytes) fail('bundle serialization changed size');
  });
  const five = bundleWith([1, 2, 3, 4, 5].map((id) => ({ id, publicKey: rng(32) })));
  return {
    bundleGenerationMs: generationNs / 1e6,
    bundleSerializationMs: serializationNs / 1e6,
    bundleBytes,
    bundleBytesDefault: encodePreKeyBundle(five).length,
  };
}

/** One figure: ops per second (messages or setups), or the bundle figures. */
export async function measureOursFigure(figure: OurFigure, seconds: number): Promise<number | BundleFigures> {
  // A running node has loaded the WASM ML-KEM backend on its first use; a synchronous timing loop never would.
  await loadWasmMlKem();
  const plaintext = randomFillSync(new Uint8Array(MESSAGE_BYTES));
  switch (figure) {
    case 'oneWay':
    case 'oneWaySqlite': {
      const { alice, bob } = storedPair(figure === 'oneWay' ? 'memory' : 'sqlite');
      return 1e9 / (await nsPerOp(seconds, (i) => storedSend(alice, bob, plaintext, i)));
    }
    case 'alternating':
    case 'alternatingSqlite': {
      const { alice, bob } = storedPair(figure === 'alternating' ? 'memory' : 'sqlite');
      return 1e9 / (await nsPerOp(seconds, (i) => (i % 2 === 0 ? storedSend(alice, bob, plaintext, i) : storedSend(bob, alice, plaintext, i))));
    }
    case 'setups':
      return setupsPerSec('memory', seconds, plaintext);
    case 'setupsSqlite':
      return setupsPerSec('sqlite', seconds, plaintext);
    case 'bareOneWay': {
      const pair = bareEstablishedPair();
      return 1e9 / (await nsPerOp(seconds, (i) => bareSend(pair, 0, plaintext, i)));
    }
    case 'bareAlternating': {
      const pair = bareEstablishedPair();
      return 1e9 / (await nsPerOp(seconds, (i) => bareSend(pair, (i % 2) as 0 | 1, plaintext, i)));
    }
    case 'bundle':
      return bundleFigures(seconds);
  }
}

/** The ML-KEM backends our setups use, as `mlKemBackendsInUse` reports them after the run. */
export function ourMlKem(): string {
  const b = mlKemBackendsInUse();
  return `keygen ${b.keyPair}, encapsulate ${b.encapsulate}, decapsulate ${b.decapsulate}${process.env.RRELAY_MLKEM ? ` (RRELAY_MLKEM=${process.env.RRELAY_MLKEM})` : ''}`;
}
