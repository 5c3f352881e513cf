// Our figures, measured the way bench/libsignal.ts measures libsignal-client, so the two compare.
import { randomFillSync } from 'node:crypto';
import { type Bytes, systemRng } from '../src/crypto/index.js';
import { generateIdentity } from '../src/identity/index.js';
import {
  decodePreKeyBundle,
  encodePreKeyBundle,
  generateKyberPreKey,
  generateOneTimePreKey,
  generateSignedPreKey,
  type PreKeyBundle,
} from '../src/prekeys/index.js';
import { initAlice, initBob, ratchetDecrypt, ratchetEncrypt, type RatchetState } from '../src/ratchet/index.js';
import { acceptSession, decodeMessageEnvelope, encryptInSession, initiateSession, SessionCipher } from '../src/session/index.js';
import { openDatabase, SqliteProtocolStore } from '../src/store/index.js';
import { now, nsPerOp, timedRegionPerSec } from './timing.js';

export interface OurFigures {
  msgsPerSecOneWay: number;
  msgsPerSecAlternating: number;
  /** One way again, but through SessionCipher on SQLite (in memory): a transaction per message on each side. */
  msgsPerSecOneWayStored: number;
  setupsPerSec: number;
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

/** A pair past the first round trip, so both sides can send. */
function establishedPair(): [RatchetState, RatchetState] {
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

function ratchetSend(states: RatchetState[], from: 0 | 1, plaintext: Uint8Array, i: number): void {
  stamp(plaintext, i);
  const e = ratchetEncrypt(states[from]!, plaintext, AD, rng);
  states[from] = e.state;
  const d = ratchetDecrypt(states[1 - from]!, e.message, AD, { rng, now: 0 });
  states[1 - from] = d.state;
  check(d.plaintext, plaintext, `message ${i}`);
}

function storedPair() {
  const clock = Date.now;
  const party = () => {
    const store = new SqliteProtocolStore(openDatabase({ path: ':memory:' }), clock);
    store.ensureIdentity(rng, clock());
    const cipher = new SessionCipher(store, { rng, clock });
    cipher.maintain();
    return { store, cipher };
  };
  const alice = party();
  const bob = party();
  const bobFp = alice.cipher.startSession(decodePreKeyBundle(encodePreKeyBundle(bob.cipher.bundle())));
  const aliceFp = bob.cipher.decrypt(alice.cipher.encrypt(bobFp, new Uint8Array(1))).peerFingerprint;
  alice.cipher.decrypt(bob.cipher.encrypt(aliceFp, new Uint8Array(1)), { from: bobFp });
  return { alice, bob, aliceFp, bobFp };
}

export async function measureOurs(opts: { seconds: number }): Promise<OurFigures> {
  const { seconds } = opts;
  const plaintext = randomFillSync(new Uint8Array(MESSAGE_BYTES));

  const oneWay = establishedPair();
  const oneWayNs = await nsPerOp(seconds, (i) => ratchetSend(oneWay, 0, plaintext, i));
  const pingPong = establishedPair();
  const alternatingNs = await nsPerOp(seconds, (i) => ratchetSend(pingPong, (i % 2) as 0 | 1, plaintext, i));

  const stored = storedPair();
  const storedNs = await nsPerOp(seconds, (i) => {
    stamp(plaintext, i);
    const envelope = stored.alice.cipher.encrypt(stored.bobFp, plaintext);
    check(stored.bob.cipher.decrypt(envelope, { from: stored.aliceFp }).plaintext, plaintext, `stored message ${i}`);
  });

  // Setups: Bob keeps one identity, signed and Kyber pre-key; each setup gets a fresh Alice and one-time key.
  const bob = generateIdentity(rng, Date.now());
  const spk = generateSignedPreKey(bob, 1, Date.now(), rng);
  const kpk = generateKyberPreKey(bob, 1, Date.now(), rng);
  const bundleWith = (otks: { id: number; publicKey: Bytes }[]): PreKeyBundle => ({
    identity: bob.public,
    signedPreKey: { id: spk.id, publicKey: spk.publicKey, createdAt: spk.createdAt, signature: spk.signature },
    kyberPreKey: { id: kpk.id, publicKey: kpk.publicKey, createdAt: kpk.createdAt, signature: kpk.signature },
    oneTimePreKeys: otks,
  });
  const setups = await timedRegionPerSec(seconds, (i) => {
    const alice = generateIdentity(rng, Date.now());
    const otk = generateOneTimePreKey(i + 1, 0, rng);
    const bundleBytes = encodePreKeyBundle(bundleWith([otk]));
    stamp(plaintext, i);
    // Timed: bundle decode with its three signature checks, PQXDH on both sides, first encrypt and decrypt.
    const start = now();
    const session = initiateSession(alice, decodePreKeyBundle(bundleBytes), rng, 0);
    const { envelope } = encryptInSession(session, plaintext, rng);
    const e = decodeMessageEnvelope(envelope);
    if (e.type !== 'prekey') fail(`setup ${i} did not produce a pre-key message`);
    const keys = {
      signedPreKey: { publicKey: spk.publicKey, privateKey: spk.privateKey! },
      kyberPreKey: { privateKey: kpk.privateKey! },
      oneTimePreKey: { publicKey: otk.publicKey, privateKey: otk.privateKey! },
    };
    const received = acceptSession(bob, e.header, keys, e.message, { rng, now: 0 });
    const elapsed = now() - start;
    check(received.plaintext, plaintext, `setup ${i}`);
    return elapsed;
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
    msgsPerSecOneWay: 1e9 / oneWayNs,
    msgsPerSecAlternating: 1e9 / alternatingNs,
    msgsPerSecOneWayStored: 1e9 / storedNs,
    setupsPerSec: setups,
    bundleGenerationMs: generationNs / 1e6,
    bundleSerializationMs: serializationNs / 1e6,
    bundleBytes,
    bundleBytesDefault: encodePreKeyBundle(five).length,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await measureOurs({ seconds: 1 }), null, 2));
}
