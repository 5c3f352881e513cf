// End to end: two RatchetNodes (alice, bob) in temporary data directories talking through the
// embedded relay on 127.0.0.1, all in this one process, beside the Nostr sign+verify ceiling the
// issue compares them with. Not a test: nothing here passes or fails on time, but every figure is
// only reported if what it measured worked (every message arrived, once, with the right text).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { systemRng, toHex } from '../src/crypto/index.js';
import { encodeAppMessage, type NodeOptions, RatchetNode, type ReceivedMessage } from '../src/node/index.js';
import { checkIncomingEvent, KIND_MESSAGE, signEvent } from '../src/nostr/events.js';
import { decodePreKeyBundle, encodePreKeyBundle } from '../src/prekeys/index.js';
import { SessionCipher } from '../src/session/index.js';
import { openDatabase, SqliteProtocolStore } from '../src/store/index.js';
import type { E2eFloorFigures } from './e2e-floor.js';
import { daemonRss, oneNodeRss } from './one-node.js';
import { runSide } from './rounds.js';
import { ratio, type Spread, spread } from './stats.js';
import { now, nsPerOp } from './timing.js';

export interface CatchUpFigures {
  /** Messages queued for bob while he was offline. */
  readonly backlog: number;
  /** From bob's start() until he has every one of the backlog; null if he never got them all. */
  readonly ms: number | null;
  /** How many of the backlog bob stored (each checked against its text); equals `backlog` unless the catch-up failed. */
  readonly received: number;
  /** Why the catch-up did not complete, or null. */
  readonly failure: string | null;
}

export interface EndToEndFigures {
  readonly rounds: number;
  /** Events per second through signEvent then checkIncomingEvent (sign + verify each), one core; one run per round. */
  readonly nostrCeilingPerSec: Spread;
  /** Base64 content of the events in the ceiling: a real 1 KB text message's envelope. */
  readonly ceilingContentBytes: number;
  /**
   * 1 KB messages per second alice → bob through the relay (its own process), both nodes in this
   * one; each round on a fresh relay and a fresh pair, so no round inherits another's tables.
   */
  readonly e2eMsgsPerSec: Spread;
  /** Messages in each round's measured burst. */
  readonly e2eMessages: readonly number[];
  /** Median end to end over median ceiling. */
  readonly e2eVsCeiling: number;
  /**
   * The end-to-end floor (bench/e2e-floor.ts), messages per second, one run per round in a child
   * process: the ratchet's one-way primitives plus the store's raw SQL writes a message needs
   * durably (E2E_FLOOR_COUNTS says which); `floorRuns` has each run's parts.
   */
  readonly e2eFloorPerSec: Spread;
  readonly floorRuns: readonly E2eFloorFigures[];
  /** Median end to end over median floor: how close the node comes to its own floor. */
  readonly e2eVsFloor: number;
  /** Median floor over median ceiling: the most of the ceiling one durable encrypted commit per send allows. */
  readonly floorVsCeiling: number;
  /** One message at a time: alice.messaging.send() until bob's `message` event (on the first catch-up's fresh pair). */
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly latencySamples: number;
  /** Each on a fresh relay and pair. */
  readonly catchUps: readonly CatchUpFigures[];
  /** A child process running one RatchetNode alone (production scrypt cost), started, connected, idle, after a GC; null if it could not run. */
  readonly rssOneNodeIdleMb: number | null;
  /**
   * `rrelay daemon` as the CLI starts it, running and idle (no forced GC): the median of one daemon
   * per round, each on a fresh data directory, as where V8's collector stands at the sample moves
   * one reading by several MB; null if none could run.
   */
  readonly rssDaemonIdleMb: number | null;
  /** Each round's reading, in MB. */
  readonly rssDaemonIdleRuns: readonly number[];
}

const MESSAGE_BYTES = 1024;
const DEFAULT_BACKLOG = 5000;
/** A bound on a hang (no progress for this long), not a performance check. */
const STALL_MS = 60_000;
/** Once the relay has sent everything it stored (EOSE) and nothing new decrypts for this long, the rest is not coming. */
const AFTER_EOSE_MS = 3000;
/** Lower than the production scrypt cost (2^15), as the tests do: opening a store is not what is measured. */
const BENCH_KDF = { N: 1 << 10 };
const LATENCY_SAMPLES = 200;
/** The throughput warm-up lasts at least this long: it sets how many messages the measured burst sends. */
const WARM_UP_MS = 1000;
const MAX_BURST = 50_000;

function fail(message: string): never {
  throw new Error(`bench: ${message}`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/** A 1 KB text that names its batch and index, so every arrival can be checked. */
function text(batch: string, i: number): string {
  const head = `${batch} ${i} `;
  return head + 'x'.repeat(MESSAGE_BYTES - head.length);
}

export function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Waits for exact texts at one node: each must arrive once, from `from`; anything else is an error. */
class Inbox {
  private readonly pending = new Set<string>();
  private readonly problems: string[] = [];
  private lastProgress = Date.now();
  received = 0;
  private wake: (() => void) | undefined;

  constructor(
    node: RatchetNode,
    private readonly from: string,
  ) {
    node.on('message', (m) => this.take(m));
    node.on('rejected', (r) => this.problems.length < 3 && this.problems.push(`rejected ${r.eventId?.slice(0, 12) ?? '?'}: ${r.reason}`));
  }

  private take(m: ReceivedMessage): void {
    if (m.from !== this.from) this.problems.push(`message from ${m.from.slice(0, 12)}, not the sender`);
    else if (!this.pending.delete(m.text)) this.problems.push(`unexpected or duplicate message "${m.text.slice(0, 24)}"`);
    else {
      this.received++;
      this.lastProgress = Date.now();
      if (this.pending.size === 0) this.wake?.();
    }
  }

  expect(texts: Iterable<string>): void {
    for (const t of texts) this.pending.add(t);
    this.lastProgress = Date.now();
  }

  /**
   * Resolves once every expected text arrived; fails after `stallMs` without a new arrival, or after
   * AFTER_EOSE_MS without one once `exhausted()` says nothing more can come.
   */
  async all(what: string, exhausted: () => boolean = () => false, stallMs = STALL_MS): Promise<void> {
    if (this.pending.size > 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setInterval(() => {
          const idle = Date.now() - this.lastProgress;
          if (idle < stallMs && !(idle >= AFTER_EOSE_MS && exhausted())) return;
          clearInterval(timer);
          this.wake = undefined;
          reject(new Error(`bench: ${what}: ${this.pending.size} messages still missing after ${Math.round(idle)} ms without progress (${this.problems.join('; ') || 'nothing rejected'})`));
        }, 100);
        this.wake = () => {
          clearInterval(timer);
          this.wake = undefined;
          resolve();
        };
      });
    }
    if (this.problems.some((p) => !p.startsWith('rejected'))) fail(`${what}: ${this.problems.join('; ')}`);
  }
}

/** Waits until `check` holds, polling; fails after `ms` (a bound on a hang). */
async function until(check: () => boolean, what: string, ms = STALL_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A real 1 KB text message's envelope: an established session's normal message, as a message event carries it. */
export function textEnvelope(): Uint8Array {
  const clock = Date.now;
  const party = () => {
    const store = new SqliteProtocolStore(openDatabase({ path: ':memory:' }), clock);
    store.ensureIdentity(systemRng, clock());
    const cipher = new SessionCipher(store, { rng: systemRng, clock });
    cipher.maintain();
    return { store, cipher };
  };
  const a = party();
  const b = party();
  const bFp = a.cipher.startSession(decodePreKeyBundle(encodePreKeyBundle(b.cipher.bundle())));
  const aFp = b.cipher.decrypt(a.cipher.encrypt(bFp, new Uint8Array(1))).peerFingerprint;
  a.cipher.decrypt(b.cipher.encrypt(aFp, new Uint8Array(1)), { from: bFp });
  const app = encodeAppMessage({ type: 'text', id: toHex(systemRng(16)), sentAt: Date.now(), text: text('ceiling', 0) });
  const envelope = a.cipher.encrypt(bFp, app);
  a.store.db.close();
  b.store.db.close();
  return envelope;
}

async function nostrCeiling(seconds: number, content: string): Promise<number> {
  const secret = systemRng(32);
  const p = toHex(systemRng(32));
  const probe = signEvent(KIND_MESSAGE, [['p', p]], content, secret, Date.now());
  if (checkIncomingEvent({ ...probe, sig: probe.sig.replace(/^./, (c) => (c === '0' ? '1' : '0')) }, Date.now()) === null)
    fail('checkIncomingEvent accepted a forged signature: the ceiling would not measure a verify');
  const ns = await nsPerOp(seconds, (i) => {
    const event = signEvent(KIND_MESSAGE, [['p', p]], content, secret, Date.now());
    const reason = checkIncomingEvent(event, Date.now());
    if (reason !== null) fail(`event ${i} of the ceiling was refused: ${reason}`);
  });
  return 1e9 / ns;
}

/** Sends every text, giving the event loop a turn every 64 sends so the outbox and the relay keep going. */
async function sendAll(node: RatchetNode, to: string, texts: readonly string[]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < texts.length; i++) {
    ids.push(node.messaging.send(to, texts[i]!).id);
    if (i % 64 === 63) await yieldToLoop();
  }
  return ids;
}

/** Two started nodes with a confirmed session (first message and reply), and what the measurements on them share. */
export interface BenchPair {
  readonly alice: RatchetNode;
  readonly bob: RatchetNode;
  readonly aliceFp: string;
  readonly bobFp: string;
  readonly atBob: Inbox;
  /** Lets the receipts of `ids` come back and both outboxes empty, so one phase does not bleed into the next. */
  settle(ids: readonly string[], what: string): Promise<void>;
}

/** Starts both nodes, lets them meet through their relay, and sends the first message and its reply. */
export async function meetAndTalk(alice: RatchetNode, bob: RatchetNode): Promise<BenchPair> {
  const aliceFp = alice.whoami().fingerprint;
  const bobFp = bob.whoami().fingerprint;

  // Meet through the relay: each discovers the other's bundle.
  const seen = { alice: false, bob: false };
  alice.on('bundle', (b) => (seen.alice ||= b.fingerprint === bobFp));
  bob.on('bundle', (b) => (seen.bob ||= b.fingerprint === aliceFp));
  await Promise.all([alice.start(), bob.start()]);
  await until(() => seen.alice && seen.bob, 'both bundles');

  const atBob = new Inbox(bob, aliceFp);
  const atAlice = new Inbox(alice, bobFp);
  const delivered = new Set<string>();
  alice.on('delivered', (d) => d.ids.forEach((id) => delivered.add(id)));
  const settle = async (ids: readonly string[], what: string) => {
    await until(() => ids.every((id) => delivered.has(id)), `receipts of ${what}`);
    for (const n of [alice, bob]) if ((await n.drain(STALL_MS)) !== 0) fail(`${what}: an outbox did not empty`);
  };

  // The session: first message and reply.
  atBob.expect([text('hello', 0)]);
  const first = alice.messaging.send(bobFp, text('hello', 0)).id;
  await atBob.all('the first message');
  atAlice.expect([text('reply', 0)]);
  bob.messaging.send(aliceFp, text('reply', 0));
  await atAlice.all('the reply');
  await settle([first], 'the first message');
  return { alice, bob, aliceFp, bobFp, atBob, settle };
}

/**
 * 1 KB messages per second alice → bob: N sent as fast as the outbox takes them, timed until bob has
 * all N, then their receipts settled. N is calibrated by a warm-up of bursts (100, then doubling)
 * that lasts at least WARM_UP_MS, from the rate of its last burst, to last about `seconds`.
 */
export async function throughput(pair: BenchPair, seconds: number): Promise<{ msgsPerSec: number; messages: number }> {
  const { alice, bobFp, atBob, settle } = pair;
  const burst = async (batch: string, n: number): Promise<bigint> => {
    const texts = Array.from({ length: n }, (_, i) => text(batch, i));
    atBob.expect(texts);
    const start = now();
    const ids = await sendAll(alice, bobFp, texts);
    await atBob.all(batch);
    const ns = now() - start;
    await settle(ids, batch);
    return ns;
  };
  let n = 100;
  let rate = 0;
  for (let warm = 0n, b = 0; warm < BigInt(WARM_UP_MS * 1e6); b++, n *= 2) {
    const ns = await burst(`warm-up ${b}`, n);
    warm += ns;
    rate = (n * 1e9) / Number(ns);
  }
  const messages = Math.max(200, Math.min(MAX_BURST, Math.round(rate * seconds)));
  return { msgsPerSec: (messages * 1e9) / Number(await burst('throughput', messages)), messages };
}

/** A bench node's options: its data directory `root`/`name`, one relay, a cheap store KDF, and `extra`. */
export function benchNodeOptions(root: string, name: string, relayUrl: string, extra: Partial<NodeOptions> = {}): NodeOptions {
  return {
    dataDir: join(root, name),
    passphrase: `passphrase of ${name}`,
    kdf: BENCH_KDF,
    relays: [relayUrl],
    // nostr-tools' keep-alive ping leaves a 20 s timer running after close() (its pingTimeout race is
    // never cleared), which would hold the process open; no ping is due within a bench run.
    timing: { relay: { pingEveryMs: 30 * 60_000 } },
    ...extra,
  };
}

/** `rrelay relay` in a child process on a free port, its data under `root`/relay. */
export async function startRelayProcess(root: string): Promise<{ url: string; close(): Promise<void> }> {
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'relay', '--port', '0', '--json', '--data-dir', join(root, 'relay')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /"relay":"(ws:\/\/[^"]+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`bench: the relay process exited (${code})`)));
  });
  return {
    url,
    async close() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A fresh relay process and a fresh pair (nodes made with `extra` options) that has met and talked,
 * for `fn`; everything is closed and removed after, so no measurement inherits another's tables.
 */
export async function withFreshPair<T>(
  fn: (pair: BenchPair, reopenBob: () => Promise<RatchetNode>) => Promise<T>,
  extra: Partial<NodeOptions> = {},
): Promise<T> {
  const root = mkdtempSync(join(tmpdir(), 'rrelay-bench-'));
  // The relay runs in its own process, as it would in use: its signature checks are not ours to pay.
  const relay = await startRelayProcess(root);
  const options = (name: string) => benchNodeOptions(root, name, relay.url, extra);
  const opened: RatchetNode[] = [];
  const open = async (name: string) => {
    const node = await RatchetNode.open(options(name));
    opened.push(node);
    return node;
  };
  try {
    await RatchetNode.init(options('alice'));
    await RatchetNode.init(options('bob'));
    const pair = await meetAndTalk(await open('alice'), await open('bob'));
    return await fn(pair, () => open('bob'));
  } finally {
    for (const n of opened) await n.close().catch(() => {});
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  }
}

/** One message at a time, up to LATENCY_SAMPLES or about `seconds` (at least 50). */
async function latency(pair: BenchPair, seconds: number): Promise<number[]> {
  const { alice, bobFp, atBob, settle } = pair;
  const latencies: number[] = [];
  const ids: string[] = [];
  const startedAt = Date.now();
  while (latencies.length < LATENCY_SAMPLES && !(latencies.length >= 50 && Date.now() - startedAt > seconds * 1000)) {
    const t = text('latency', latencies.length);
    atBob.expect([t]);
    const start = now();
    ids.push(alice.messaging.send(bobFp, t).id);
    await atBob.all(`latency sample ${latencies.length}`);
    latencies.push(Number(now() - start) / 1e6);
  }
  await settle(ids, 'the latency samples');
  return latencies.sort((a, b) => a - b);
}

/** Bob offline while alice sends the backlog, which the relay accepts; then bob comes back and catches up. */
async function catchUp(pair: BenchPair, reopenBob: () => Promise<RatchetNode>, backlog: number): Promise<CatchUpFigures> {
  const { alice, aliceFp, bobFp } = pair;
  await pair.bob.close();
  const backlogTexts = Array.from({ length: backlog }, (_, i) => text('backlog', i));
  await sendAll(alice, bobFp, backlogTexts);
  const left = await alice.drain(10 * STALL_MS);
  if (left !== 0) fail(`the relay did not accept the backlog: ${left} outbox entries left`);
  const bob = await reopenBob();
  const inbox = new Inbox(bob, aliceFp);
  inbox.expect(backlogTexts);
  const start = now();
  await bob.start();
  // Stored events come before EOSE and are handled at once, so past it only parked retries could still deliver.
  let eosed = false;
  void bob.sync(10 * STALL_MS).then((ok) => (eosed = ok));
  let ms: number | null = null;
  let failure: string | null = null;
  try {
    // A node may take in a whole backlog before the first of it is delivered: the bound on a hang grows with it.
    await inbox.all(`the catch-up of ${backlog}`, () => eosed, STALL_MS * Math.max(1, backlog / DEFAULT_BACKLOG));
    ms = Number(now() - start) / 1e6;
  } catch (e) {
    failure = (e instanceof Error ? e.message : String(e)).replace(/^bench: /, '');
  }
  // What bob stored, not only what he emitted: each backlog text once, incoming.
  const wanted = new Set(backlogTexts);
  let received = 0;
  for (let after = 0, page = bob.messaging.messages(0); page.length > 0; after = page[page.length - 1]!.seq, page = bob.messaging.messages(after)) {
    for (const m of page) if (m.direction === 'in' && wanted.delete(m.body)) received++;
  }
  if (failure === null && received !== backlog) fail(`bob's store holds ${received} of the ${backlog} backlog messages`);
  return { backlog, ms, received, failure };
}

export async function measureEndToEnd(opts: {
  seconds: number;
  rounds: number;
  backlogs?: readonly number[];
  progress?: (what: string) => void;
}): Promise<EndToEndFigures> {
  const { seconds, rounds } = opts;
  const progress = opts.progress ?? (() => {});
  const backlogs = opts.backlogs ?? [DEFAULT_BACKLOG];
  const content = Buffer.from(textEnvelope()).toString('base64');
  const ceiling: number[] = [];
  const runs: { msgsPerSec: number; messages: number }[] = [];
  const floorRuns: E2eFloorFigures[] = [];
  for (let r = 0; r < rounds; r++) {
    progress(`end to end, round ${r + 1} of ${rounds}: the Nostr ceiling, the floor (its own process), then a fresh relay and pair`);
    ceiling.push(await nostrCeiling(seconds, content));
    floorRuns.push((await runSide('floor', 'e2e', seconds)).value as E2eFloorFigures);
    runs.push(await withFreshPair((pair) => throughput(pair, seconds)));
  }
  let latencies: number[] = [];
  const catchUps: CatchUpFigures[] = [];
  for (const [i, backlog] of backlogs.entries()) {
    progress(`catch-up of ${backlog.toLocaleString('en-US')} on a fresh relay and pair${i === 0 ? ', after the latency samples' : ''}`);
    catchUps.push(
      await withFreshPair(async (pair, reopenBob) => {
        if (i === 0) latencies = await latency(pair, seconds);
        return catchUp(pair, reopenBob, backlog);
      }),
    );
  }
  progress('idle RSS: one node alone, then the daemon as the CLI starts it');
  const rssRoot = mkdtempSync(join(tmpdir(), 'rrelay-bench-rss-'));
  const rssRelay = await startRelayProcess(rssRoot);
  let rss;
  try {
    const daemons: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const mb = await daemonRss(join(rssRoot, `daemon-${i}`), rssRelay.url);
      if (mb !== null) daemons.push(mb);
    }
    rss = { oneNode: await oneNodeRss(join(rssRoot, 'one-node'), rssRelay.url), daemons };
  } finally {
    await rssRelay.close();
    rmSync(rssRoot, { recursive: true, force: true });
  }
  const e2e = spread(runs.map((x) => x.msgsPerSec));
  const nostr = spread(ceiling);
  const floor = spread(floorRuns.map((f) => f.perSec));
  return {
    rounds,
    nostrCeilingPerSec: nostr,
    ceilingContentBytes: content.length,
    e2eMsgsPerSec: e2e,
    e2eMessages: runs.map((x) => x.messages),
    e2eVsCeiling: ratio(e2e.median, nostr.median),
    e2eFloorPerSec: floor,
    floorRuns,
    e2eVsFloor: ratio(e2e.median, floor.median),
    floorVsCeiling: ratio(floor.median, nostr.median),
    latencyP50Ms: percentile(latencies, 0.5),
    latencyP99Ms: percentile(latencies, 0.99),
    latencySamples: latencies.length,
    catchUps,
    rssOneNodeIdleMb: rss.oneNode,
    rssDaemonIdleMb: rss.daemons.length === 0 ? null : spread(rss.daemons).median,
    rssDaemonIdleRuns: rss.daemons,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const backlog = arg('--backlog');
  const figures = await measureEndToEnd({ seconds: arg('--seconds') ?? 1, rounds: arg('--rounds') ?? 3, backlogs: backlog === undefined ? undefined : [backlog] });
  console.log(JSON.stringify(figures, null, 2));
}
