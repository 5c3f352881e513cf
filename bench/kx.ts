// The invite key exchange (KX): the three steps as pure functions on one core, then between
// RatchetNodes through a relay process on loopback (one pair at a time, and many pairs at once),
// and the bytes each step puts on the wire beside PQXDH's. Not a test: nothing here passes or fails
// on time, but every figure is only reported if what it measured worked (both ends have one session
// that carries messages both ways).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Bytes, systemRng } from '../src/crypto/index.js';
import { generateIdentity, type Identity } from '../src/identity/index.js';
import {
  acceptInvite,
  createInvite,
  encodeInvite,
  inviteFromString,
  inviteToString,
  onFullKX,
  onHalfKX,
  rvHex,
} from '../src/kx/index.js';
import { nextEvent, RatchetNode } from '../src/node/index.js';
import { rendezvousEvent } from '../src/nostr/events.js';
import { PREKEY_DEFAULTS } from '../src/limits.js';
import {
  currentBundle,
  decodePreKeyBundle,
  EMPTY_PREKEY_STATE,
  encodePreKeyBundle,
  maintain,
  oneTimePreKeyForUse,
  rotatingPreKeyForUse,
} from '../src/prekeys/index.js';
import { acceptSession, decodeMessageEnvelope, decryptInSession, encryptInSession, initiateSession, type SessionState } from '../src/session/index.js';
import { benchNodeOptions, percentile, startRelayProcess } from './e2e.js';
import { now, nsPerOp } from './timing.js';

export interface KxFigures {
  /**
   * Full KX per second, pure functions, one core: createInvite, the invite to its string and back
   * (decode and signature checks), acceptInvite, onHalfKX, onFullKX, then one 1 KB message each way.
   */
  pureKxPerSec: number;
  /** createInvite + acceptInvite on two fresh started nodes until both `kx` events, through the relay process; median. */
  loopbackKxMs: number;
  loopbackKxMsMax: number;
  loopbackRuns: number;
  /**
   * Every pair of `manyNodes` fresh nodes (one process) does one KX, all at once: `manyNodesKxs` over
   * the time until the last `kx` event; the median round of `manyNodesRounds`.
   */
  kxPerSecManyNodes: number;
  manyNodes: number;
  manyNodesKxs: number;
  manyNodesMs: number;
  manyNodesRounds: number;
  /** Step 1, out of band: the encoded invite, and its `rrinv3…` string. */
  inviteBytes: number;
  inviteStringChars: number;
  /** Steps 2 and 3: the sealed payloads, and the Nostr rendezvous events (JSON) that carry them. */
  halfKxWireBytes: number;
  fullKxWireBytes: number;
  halfKxEventJsonBytes: number;
  fullKxEventJsonBytes: number;
  /** PQXDH for comparison: a default bundle (`pqxdhBundleOneTimeKeys` one-time keys), and the first envelope. */
  pqxdhBundleBytes: number;
  pqxdhBundleOneTimeKeys: number;
  /** The initial (pre-key) envelope carrying an empty plaintext: PQXDH header plus ratchet overhead only. */
  pqxdhInitialMessageBytes: number;
}

const MESSAGE_BYTES = 1024;
const HOUR_MS = 60 * 60 * 1000;
/** A bound on a hang, not a performance check. */
const STALL_MS = 60_000;
const LOOPBACK_RUNS = 10;
/** 28 KXs; more nodes than this on 2 cores would measure the scheduler. */
const MANY_NODES = 8;
const MANY_NODES_ROUNDS = 3;
const rng = systemRng;

function fail(message: string): never {
  throw new Error(`bench: ${message}`);
}

function same(a: Bytes, b: Bytes): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** One KX from invite to both sessions, with no I/O: what each step sends, and the two sessions. */
function pureKx(inviter: Identity, acceptor: Identity, at: number) {
  const { invite, pending } = createInvite(inviter, rng, at, HOUR_MS);
  const inviteString = inviteToString(invite);
  const accepted = acceptInvite(acceptor, inviteFromString(inviteString), rng, at);
  const atInviter = onHalfKX(inviter, pending, accepted.send.payload, rng, at);
  const atAcceptor = onFullKX(acceptor, accepted.pending, atInviter.send.payload, at);
  return { invite, inviteString, half: accepted.send, full: atInviter.send, inviterSession: atInviter.session, acceptorSession: atAcceptor.session };
}

/** The two sessions match: a message the inviter (Alice) sends opens at the acceptor, and the reply opens back. */
function checkSessions(inviterSession: SessionState, acceptorSession: SessionState, plaintext: Bytes, what: string): void {
  const env = { rng, now: 0 };
  const there = encryptInSession(inviterSession, plaintext, rng);
  const opened = decryptInSession(acceptorSession, decodeMessageEnvelope(there.envelope).message, env);
  if (!same(opened.plaintext, plaintext)) fail(`${what}: the acceptor decrypted the wrong plaintext`);
  const back = encryptInSession(opened.state, plaintext, rng);
  if (!same(decryptInSession(there.state, decodeMessageEnvelope(back.envelope).message, env).plaintext, plaintext))
    fail(`${what}: the inviter decrypted the wrong reply`);
}

/** PQXDH's wire sizes, from the real default bundle; the initial message is opened to show it is one. */
function pqxdhBytes(): Pick<KxFigures, 'pqxdhBundleBytes' | 'pqxdhBundleOneTimeKeys' | 'pqxdhInitialMessageBytes'> {
  const at = Date.now();
  const alice = generateIdentity(rng, at);
  const bob = generateIdentity(rng, at);
  const keys = maintain(EMPTY_PREKEY_STATE, bob, at, rng).state;
  const bundle = currentBundle(keys, bob);
  if (bundle.oneTimePreKeys.length !== PREKEY_DEFAULTS.oneTimeKeysPerBundle) fail('the default bundle lacks one-time keys');
  const bundleBytes = encodePreKeyBundle(bundle);
  const { envelope } = encryptInSession(initiateSession(alice, decodePreKeyBundle(bundleBytes), rng, at), new Uint8Array(0), rng);
  const e = decodeMessageEnvelope(envelope);
  if (e.type !== 'prekey') fail('the first PQXDH envelope is not a pre-key message');
  const otkId = e.header.oneTimePreKeyId;
  const opened = acceptSession(
    bob,
    e.header,
    {
      signedPreKey: rotatingPreKeyForUse('signed', keys.signed.find((k) => k.id === e.header.signedPreKeyId), e.header.signedPreKeyId, at),
      kyberPreKey: rotatingPreKeyForUse('Kyber', keys.kyber.find((k) => k.id === e.header.kyberPreKeyId), e.header.kyberPreKeyId, at),
      oneTimePreKey: otkId === null ? null : oneTimePreKeyForUse(keys.oneTime.find((k) => k.id === otkId), otkId),
    },
    e.message,
    { rng, now: at },
  );
  if (opened.plaintext.length !== 0) fail('the first PQXDH envelope decrypted to the wrong plaintext');
  return { pqxdhBundleBytes: bundleBytes.length, pqxdhBundleOneTimeKeys: bundle.oneTimePreKeys.length, pqxdhInitialMessageBytes: envelope.length };
}

/** Nodes in `root`, each with a fresh identity, started and settled; all closed by closeAll(). */
class BenchNodes {
  private readonly opened: RatchetNode[] = [];

  constructor(
    private readonly root: string,
    private readonly relayUrl: string,
  ) {}

  /** Fresh identities, started, caught up with the relay and with their bundles published, so nothing else is in flight. */
  async fresh(names: readonly string[]): Promise<RatchetNode[]> {
    const nodes = await Promise.all(
      names.map(async (name) => {
        const options = benchNodeOptions(this.root, name, this.relayUrl);
        await RatchetNode.init(options);
        const node = await RatchetNode.open(options);
        this.opened.push(node);
        return node;
      }),
    );
    await Promise.all(nodes.map((n) => n.start()));
    for (const n of nodes) {
      if (!(await n.sync(STALL_MS))) fail('a node did not catch up with the relay');
      if ((await n.drain(STALL_MS)) !== 0) fail('a node did not publish its bundle');
    }
    return nodes;
  }

  async close(nodes: readonly RatchetNode[]): Promise<void> {
    for (const n of nodes) await n.close();
  }

  async closeAll(): Promise<void> {
    for (const n of this.opened) await n.close().catch(() => {});
  }
}

/** Starts one KX between started nodes: `inviter` creates the invite, `acceptor` accepts it. Resolves when both ends emitted `kx`. */
function kxBetween(inviter: RatchetNode, acceptor: RatchetNode): Promise<void> {
  const inviterFp = inviter.whoami().fingerprint;
  const acceptorFp = acceptor.whoami().fingerprint;
  const done = Promise.all([
    nextEvent(inviter, 'kx', (k) => k.peer === acceptorFp, STALL_MS),
    nextEvent(acceptor, 'kx', (k) => k.peer === inviterFp, STALL_MS),
  ]);
  const accepted = acceptor.kx.acceptInvite(inviter.kx.createInvite(HOUR_MS).invite);
  if (accepted.peer !== inviterFp) fail(`the invite names ${accepted.peer.slice(0, 12)}, not the inviter`);
  return done.then(([[i], [a]]) => {
    if (i.role !== 'inviter' || a.role !== 'acceptor') fail(`KX roles came out as ${i.role} and ${a.role}`);
  });
}

/** After the KXs: nothing pending, and each pair's session carries a message from the inviter and the reply. */
async function checkNodeSessions(pairs: readonly (readonly [RatchetNode, RatchetNode])[]): Promise<void> {
  for (const [inviter, acceptor] of pairs) {
    const left = inviter.kx.pending().length + acceptor.kx.pending().length;
    if (left !== 0) fail(`${left} key exchanges still pending after both kx events`);
  }
  const say = (from: RatchetNode, to: RatchetNode, text: string) => {
    const fromFp = from.whoami().fingerprint;
    const got = nextEvent(to, 'message', (m) => m.from === fromFp && m.text === text, STALL_MS);
    from.messaging.send(to.whoami().fingerprint, text);
    return got;
  };
  await Promise.all(pairs.map(([inviter, acceptor], i) => say(inviter, acceptor, `after KX ${i}`)));
  await Promise.all(pairs.map(([inviter, acceptor], i) => say(acceptor, inviter, `reply to KX ${i}`)));
}

export async function measureKx(opts: { seconds: number }): Promise<KxFigures> {
  const { seconds } = opts;
  const plaintext = rng(MESSAGE_BYTES);

  // Pure: two identities for the whole run (each KX makes fresh ephemerals, KEM secrets and RVs).
  const at = Date.now();
  const inviter = generateIdentity(rng, at);
  const acceptor = generateIdentity(rng, at);
  const pureNs = await nsPerOp(seconds, (i) => {
    const kx = pureKx(inviter, acceptor, at);
    checkSessions(kx.inviterSession, kx.acceptorSession, plaintext, `pure KX ${i}`);
  });

  // Sizes, from one more KX.
  const sample = pureKx(inviter, acceptor, at);
  checkSessions(sample.inviterSession, sample.acceptorSession, plaintext, 'the sized KX');
  const eventJsonBytes = (send: { rv: Bytes; payload: Bytes }) => JSON.stringify(rendezvousEvent(rvHex(send.rv), send.payload, rng, at)).length;
  const sizes = {
    inviteBytes: encodeInvite(sample.invite).length,
    inviteStringChars: sample.inviteString.length,
    halfKxWireBytes: sample.half.payload.length,
    fullKxWireBytes: sample.full.payload.length,
    halfKxEventJsonBytes: eventJsonBytes(sample.half),
    fullKxEventJsonBytes: eventJsonBytes(sample.full),
    ...pqxdhBytes(),
  };

  const root = mkdtempSync(join(tmpdir(), 'rrelay-bench-kx-'));
  // The relay in its own process, as in bench/e2e.ts: its signature checks are not ours to pay.
  const relay = await startRelayProcess(root);
  const nodes = new BenchNodes(root, relay.url);
  try {
    // One pair at a time, fresh identities each run: a first contact, with nothing else in flight.
    const loopbackMs: number[] = [];
    for (let run = 0; run < LOOPBACK_RUNS; run++) {
      const pair = await nodes.fresh([`inviter-${run}`, `acceptor-${run}`]);
      const [a, b] = pair as [RatchetNode, RatchetNode];
      const start = now();
      await kxBetween(a, b);
      loopbackMs.push(Number(now() - start) / 1e6);
      await checkNodeSessions([[a, b]]);
      await nodes.close(pair);
    }
    loopbackMs.sort((x, y) => x - y);

    // Every pair of MANY_NODES at once; roles alternate so each node invites about as often as it accepts.
    // A round's wall time also waits on fsyncs and the relay process, so it varies: the median of a few.
    const roundsMs: number[] = [];
    let kxsPerRound = 0;
    for (let round = 0; round < MANY_NODES_ROUNDS; round++) {
      const many = await nodes.fresh(Array.from({ length: MANY_NODES }, (_, i) => `many-${round}-${i}`));
      const pairs: [RatchetNode, RatchetNode][] = [];
      for (let i = 0; i < many.length; i++)
        for (let j = i + 1; j < many.length; j++) pairs.push((i + j) % 2 === 0 ? [many[i]!, many[j]!] : [many[j]!, many[i]!]);
      const start = now();
      await Promise.all(pairs.map(([inv, acc]) => kxBetween(inv, acc)));
      roundsMs.push(Number(now() - start) / 1e6);
      await checkNodeSessions(pairs);
      for (const n of many) if (n.contacts.all().length !== MANY_NODES - 1) fail(`a node has ${n.contacts.all().length} contacts, not ${MANY_NODES - 1}`);
      await nodes.close(many);
      kxsPerRound = pairs.length;
    }
    roundsMs.sort((x, y) => x - y);
    const manyNodesMs = percentile(roundsMs, 0.5);

    return {
      pureKxPerSec: 1e9 / pureNs,
      loopbackKxMs: percentile(loopbackMs, 0.5),
      loopbackKxMsMax: loopbackMs[loopbackMs.length - 1]!,
      loopbackRuns: loopbackMs.length,
      kxPerSecManyNodes: (kxsPerRound * 1000) / manyNodesMs,
      manyNodes: MANY_NODES,
      manyNodesKxs: kxsPerRound,
      manyNodesMs,
      manyNodesRounds: roundsMs.length,
      ...sizes,
    };
  } finally {
    await nodes.closeAll();
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--seconds');
  console.log(JSON.stringify(await measureKx({ seconds: i >= 0 ? Number(process.argv[i + 1]) : 1 }), null, 2));
}
