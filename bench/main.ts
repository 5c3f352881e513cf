// `npm run bench [-- --json] [-- --seconds N] [-- --rounds N] [-- --catch-up-20k] [-- --node24 PATH]`: our figures beside
// libsignal-client and the primitive floor, each side in its own processes, interleaved over rounds
// (medians, with min–max); end to end through the embedded relay on fresh pairs; catch-up; idle RSS;
// and the targets, each measured in this run. Not a test: nothing here passes or fails on
// time, but a phase that lost or garbled messages fails the run.
import { cpus, loadavg, totalmem, type as osType, release } from 'node:os';
import { FLOOR_PRIMITIVES, type FloorPrimitive } from './floor.js';
import { measureEndToEnd } from './e2e.js';
import { E2E_FLOOR_COUNTS, type E2eFloorFigures } from './e2e-floor.js';
import { measureKx } from './kx.js';
import { measurePrimitives } from './primitives.js';
import { measureAddressingThroughput, measurePrivateSigning } from './privacy.js';
import { measureRounds, type PathFigures } from './rounds.js';
import { median, ratio, type Spread } from './stats.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const numberArg = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const seconds = numberArg('--seconds', 1);
const rounds = numberArg('--rounds', 5);
const catchUp20k = args.includes('--catch-up-20k');
const node24i = args.indexOf('--node24');
/** A Node 24 binary: setups are measured under it too, in the same rounds (native ML-KEM). */
const node24 = node24i >= 0 ? args[node24i + 1] : undefined;
if (!(seconds > 0) || !Number.isInteger(rounds) || rounds < 1 || (node24i >= 0 && !node24)) {
  console.error('bench: --seconds needs a positive number, --rounds a positive integer, --node24 the path of a node binary');
  process.exit(2);
}

const nodeMajor = Number(process.versions.node.split('.')[0]);
const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  os: `${osType()} ${release()}`,
  node: process.version,
  /** 1-minute load average when the run began and when it ended: above the core count, other work shared the CPUs. */
  load: { atStart: Math.round(loadavg()[0]! * 100) / 100, atEnd: 0 },
};

const progress = (what: string) => {
  if (!json) process.stderr.write(`measuring ${what}…\n`);
};
const paths = await measureRounds({ seconds, rounds, otherNode: node24, progress });
progress('end to end through the embedded relay, catch-up, idle RSS');
const endToEnd = await measureEndToEnd({ seconds, rounds, backlogs: catchUp20k ? [5000, 20_000] : [5000], progress });
progress('primitives per backend');
const primitives = await measurePrimitives({ seconds: seconds / 2 });
progress('the invite key exchange (pure, then nodes through a relay process)');
const kx = await measureKx({ seconds });
progress('private addressing: per-message signing, then end to end in both modes');
const privacy = { signing: await measurePrivateSigning({ seconds: seconds / 2 }), throughput: await measureAddressingThroughput({ seconds }) };

machine.load.atEnd = Math.round(loadavg()[0]! * 100) / 100;
const catchUpMs = (backlog: number) => endToEnd.catchUps.find((c) => c.backlog === backlog)?.ms ?? null;
const setupsTarget = nodeMajor >= 24 ? 1.5 : 1;
const rssDaemon = endToEnd.rssDaemonIdleMb ?? endToEnd.rssOneNodeIdleMb;
// The "Targets" table, each figure from this run; `met` is for reading, nothing acts on it.
const targets = {
  setups: { ratio: paths.setups.ratio, sqliteRatio: paths.setups.sqliteRatio, target: setupsTarget, node: nodeMajor, met: paths.setups.ratio >= setupsTarget },
  setupsNode24: paths.setupsOtherRuntime && {
    node: paths.setupsOtherRuntime.node,
    ratio: paths.setupsOtherRuntime.ratio,
    oursVsFloor: paths.setupsOtherRuntime.oursVsFloor,
    libsignalVsFloor: paths.setupsOtherRuntime.libsignalVsFloor,
    target: 1.5,
    met: paths.setupsOtherRuntime.ratio >= 1.5,
  },
  oneWay: {
    ratio: paths.oneWay.ratio,
    sqliteRatio: paths.oneWay.sqliteRatio,
    target: 4,
    vsFloor: paths.oneWay.oursVsFloor,
    /** The ratchet alone over the same floor: the per-message CPU the floor speaks of, without SQLite. */
    bareVsFloor: paths.oneWay.bareVsFloor,
    floorTarget: 1.3,
    met: paths.oneWay.ratio >= 4 && paths.oneWay.oursVsFloor <= 1.3,
  },
  alternating: { ratio: paths.alternating.ratio, sqliteRatio: paths.alternating.sqliteRatio, target: 2, met: paths.alternating.ratio >= 2 },
  e2e: {
    ratioOfCeiling: endToEnd.e2eVsCeiling,
    /** The end-to-end floor (msgs/s, ratchet primitives + the store's durable writes) and end to end over it. */
    floorPerSec: endToEnd.e2eFloorPerSec.median,
    ratioOfFloor: endToEnd.e2eVsFloor,
    /** The floor over the ceiling: above it, the 0.6 target cannot be met with one durable commit per send. */
    floorRatioOfCeiling: endToEnd.floorVsCeiling,
    target: 0.6,
    stretch: 0.8,
    met: endToEnd.e2eVsCeiling >= 0.6,
  },
  catchUp5k: { ms: catchUpMs(5000), target: 4000, met: (catchUpMs(5000) ?? Infinity) < 4000 },
  catchUp20k: { ms: catchUpMs(20_000), measured: catchUp20k },
  idleRss: { mb: rssDaemon, daemonMb: endToEnd.rssDaemonIdleMb, oneNodeMb: endToEnd.rssOneNodeIdleMb, target: 80, met: rssDaemon !== null && rssDaemon < 80 },
};

if (json) {
  console.log(JSON.stringify({ machine, seconds, rounds, targets, paths, endToEnd, primitives, kx, privacy }, null, 2));
} else {
  const n = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3));
  const sp = (s: Spread) => `${n(s.median)} (${n(s.min)}–${n(s.max)})`;
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}; load average ${machine.load.atStart} at the start, ${machine.load.atEnd} at the end`);
  console.log(`ML-KEM: ours ${paths.mlKem.ours}; libsignal ${paths.mlKem.libsignal}; floor ${paths.mlKem.floor}`);
  console.log(`each figure: median of ${rounds} rounds (min–max), each side in its own process, sides interleaved, ${seconds} s per run\n`);

  console.log('ratchet-relay vs @signalapp/libsignal-client and the primitive floor (ops/s; ratio = ours / libsignal; vs floor = time per op / the floor\'s)');
  const pathRow = (figure: string, p: PathFigures) => ({
    figure,
    'ratchet-relay': sp(p.ours),
    libsignal: sp(p.libsignal),
    ratio: p.ratio,
    [`floor`]: `${sp(p.floor)}, ${p.floorCalls} calls`,
    'ours vs floor': p.oursVsFloor,
    'libsignal vs floor': p.libsignalVsFloor,
  });
  console.table([
    pathRow('1 KB msgs/s, one way: SessionCipher over in-memory stores', paths.oneWay),
    pathRow('1 KB msgs/s, alternating', paths.alternating),
    pathRow('setups/s, first contact: bundle bytes → decode+verify → initiate → first 1 KB → decrypt, both through stores', paths.setups),
    ...(paths.setupsOtherRuntime
      ? [pathRow(`  the same setups under Node ${paths.setupsOtherRuntime.node} (ML-KEM: ours ${paths.setupsOtherRuntime.mlKem.ours}; floor ${paths.setupsOtherRuntime.mlKem.floor})`, { ...paths.setupsOtherRuntime, oursSqlite: paths.setupsOtherRuntime.ours, sqliteRatio: 0 })]
      : []),
  ]);
  console.log('the same paths over SqliteProtocolStore (in-memory database), what a node pays for its store, beside libsignal over its in-memory stores');
  console.table(
    (['oneWay', 'alternating', 'setups'] as const).map((k) => ({
      figure: k,
      'ratchet-relay, SQLite': sp(paths[k].oursSqlite),
      libsignal: sp(paths[k].libsignal),
      ratio: paths[k].sqliteRatio,
    })),
  );
  console.table([
    { figure: '1 KB msgs/s, one way, bare ratchet (no store, no envelope)', 'ratchet-relay': sp(paths.oneWay.bareRatchet), 'vs floor': paths.oneWay.bareVsFloor },
    { figure: '1 KB msgs/s, alternating, bare ratchet (no store, no envelope)', 'ratchet-relay': sp(paths.alternating.bareRatchet), 'vs floor': paths.alternating.bareVsFloor },
  ]);
  const b = paths.bundle;
  console.table([
    { figure: 'bundle generation (ms)', 'ratchet-relay': n(b.ours.bundleGenerationMs), libsignal: n(b.libsignal.bundleGenerationMs), ratio: ratio(b.ours.bundleGenerationMs, b.libsignal.bundleGenerationMs) },
    { figure: 'bundle serialization (ms)', 'ratchet-relay': n(b.ours.bundleSerializationMs), libsignal: n(b.libsignal.bundleSerializationMs), ratio: ratio(b.ours.bundleSerializationMs, b.libsignal.bundleSerializationMs) },
    { figure: 'bundle bytes, 1 one-time key', 'ratchet-relay': n(b.ours.bundleBytes), libsignal: n(b.libsignal.bundleBytes), ratio: ratio(b.ours.bundleBytes, b.libsignal.bundleBytes) },
    { figure: 'bundle bytes, 5 one-time keys (default)', 'ratchet-relay': n(b.ours.bundleBytesDefault), libsignal: '', ratio: '' },
  ]);

  console.log('\nthe floor\'s primitives (µs per call, node:crypto unless named; median of the rounds)');
  console.table(
    (Object.entries(paths.primitivesNs) as [FloorPrimitive, Spread][]).map(([k, s]) => ({
      primitive: FLOOR_PRIMITIVES[k],
      'µs': `${(s.median / 1e3).toFixed(2)} (${(s.min / 1e3).toFixed(2)}–${(s.max / 1e3).toFixed(2)})`,
    })),
  );

  console.log('\nprimitives per backend (ops/s, one run)');
  console.table(primitives.map((p) => ({ primitive: p.primitive, backend: p.backend, 'ops/s': n(p.opsPerSec) })));

  const e = endToEnd;
  const floorPart = (part: (f: E2eFloorFigures) => number) => median(e.floorRuns.map(part));
  const floorParts = ([(f) => f.ratchetNs, (f) => f.store.sendNs, (f) => f.store.packNs, (f) => f.store.receiveNs] as ((f: E2eFloorFigures) => number)[])
    .map((p) => n(floorPart(p) / 1000))
    .join(' + ');
  console.log(`\nend to end through the embedded relay (loopback, default addressing; the relay in its own process, alice and bob in this one; a fresh relay and pair each round)`);
  console.table([
    { figure: `Nostr sign+verify ceiling (events/s, ${e.ceilingContentBytes} B content, one core)`, value: sp(e.nostrCeilingPerSec) },
    { figure: `1 KB msgs/s alice → bob (${e.e2eMessages.map(n).join(', ')} msgs)`, value: sp(e.e2eMsgsPerSec) },
    { figure: 'end to end / Nostr ceiling (medians)', value: e.e2eVsCeiling },
    { figure: 'e2e floor msgs/s: ratchet one-way primitives + the store\'s durable writes (raw SQL; what it counts: below)', value: sp(e.e2eFloorPerSec) },
    { figure: `  of which µs per message: ratchet, send commit (${floorPart((f) => f.store.sendPages).toFixed(1)} WAL pages), pack delete, receive`, value: floorParts },
    { figure: 'e2e / floor (medians)', value: e.e2eVsFloor },
    { figure: 'floor / Nostr ceiling (medians): the most one durable encrypted commit per send allows', value: e.floorVsCeiling },
    { figure: `latency p50, one at a time (ms, ${e.latencySamples} samples)`, value: n(e.latencyP50Ms) },
    { figure: 'latency p99 (ms)', value: n(e.latencyP99Ms) },
    ...e.catchUps.map((c) => ({
      figure: `catch-up of ${n(c.backlog)} queued msgs (ms, start() to last)`,
      value: c.ms === null ? `FAILED: ${c.received} of ${c.backlog} arrived` : n(c.ms),
    })),
    { figure: 'RSS idle, one RatchetNode alone in a child process, after a GC (MB)', value: e.rssOneNodeIdleMb === null ? 'not measured' : n(e.rssOneNodeIdleMb) },
    {
      figure: `RSS idle, \`rrelay daemon\` as the CLI starts it (MB, median of ${e.rssDaemonIdleRuns.length})`,
      value: e.rssDaemonIdleMb === null ? 'not measured' : `${n(e.rssDaemonIdleMb)} (${e.rssDaemonIdleRuns.map(n).join(', ')})`,
    },
  ]);
  console.log(`the e2e floor counts, ${E2E_FLOOR_COUNTS}`);

  console.log('\ninvite key exchange (KX) beside PQXDH: the KX nodes in this process, the relay in its own');
  const kxRow = (figure: string, kxValue: number | string, pqxdh: number | string = '', r: number | string = '') => ({
    figure,
    KX: typeof kxValue === 'number' ? n(kxValue) : kxValue,
    PQXDH: typeof pqxdh === 'number' ? n(pqxdh) : pqxdh,
    ratio: r,
  });
  const kxTotal = kx.inviteBytes + kx.halfKxWireBytes + kx.fullKxWireBytes;
  const pqxdhTotal = kx.pqxdhBundleBytes + kx.pqxdhInitialMessageBytes;
  console.table([
    // Not one scope: KX here is the pure functions, PQXDH runs through both stores; hence no ratio.
    kxRow('setups/s, one core (KX: 3 steps, pure functions, 1 KB each way; PQXDH: bundle to first 1 KB decrypt through the stores)', kx.pureKxPerSec, paths.setups.ours.median),
    kxRow(`KX between two fresh nodes, loopback (ms, median of ${kx.loopbackRuns}; max ${n(kx.loopbackKxMsMax)})`, kx.loopbackKxMs),
    kxRow(`KXs/s, ${kx.manyNodes} nodes, every pair at once (${kx.manyNodesKxs} KXs in ${n(kx.manyNodesMs)} ms, median of ${kx.manyNodesRounds} rounds)`, kx.kxPerSecManyNodes),
    kxRow('step 1 bytes: invite (out of band) / PQXDH bundle', kx.inviteBytes, kx.pqxdhBundleBytes),
    kxRow('step 1 invite string (chars)', kx.inviteStringChars),
    kxRow('step 2 bytes: sealed half KX / PQXDH initial message (empty plaintext)', kx.halfKxWireBytes, kx.pqxdhInitialMessageBytes),
    kxRow('step 3 bytes: sealed full KX', kx.fullKxWireBytes),
    kxRow('bytes in all (KX: invite + half + full; PQXDH: bundle + initial message)', kxTotal, pqxdhTotal, ratio(kxTotal, pqxdhTotal)),
    kxRow('rendezvous event JSON, half KX / full KX (bytes)', `${n(kx.halfKxEventJsonBytes)} / ${n(kx.fullKxEventJsonBytes)}`),
  ]);

  const { signing: sg, throughput: tp } = privacy;
  console.log('\nprivate addressing (the default) beside the seed format: a 1 KB text message event, one core (ratio = private / seed)');
  const pRow = (figure: string, priv: number | string, seedValue: number | string = '', r: number | string = '') => ({
    figure,
    private: typeof priv === 'number' ? n(priv) : priv,
    seed: typeof seedValue === 'number' ? n(seedValue) : seedValue,
    ratio: r,
  });
  console.table([
    pRow('µs per message event (private: throwaway key + padding + jittered created_at + signature; seed: node key)', sg.privateUs, sg.nodeKeyUs, sg.ratio),
    pRow('  of which: the throwaway key, a random scalar (µs; its public key is derived at signing, ~0.1 ms, where the node key’s is derived once)', sg.throwawayKeyUs),
    pRow('  of which: padding and base64 (µs)', sg.paddingUs),
    pRow('  of which: the jittered created_at (µs)', sg.jitterUs),
    pRow('floor: one BIP-340 signature, an empty event (µs)', sg.schnorrFloorUs, sg.schnorrFloorUs),
    pRow('content (base64 chars)', sg.privateContentChars, sg.seedContentChars, ratio(sg.privateContentChars, sg.seedContentChars)),
    pRow(`1 KB msgs/s alice → bob, end to end (median of ${tp.rounds} rounds each, ${n(tp.privateMessages)} / ${n(tp.seedMessages)} msgs)`, tp.privateMsgsPerSec, tp.seedMsgsPerSec, tp.ratio),
  ]);

  const met = (m: boolean) => (m ? 'met' : 'not met');
  console.log(`\ntargets (issue 12), each measured in this run`);
  const t = targets;
  console.table([
    { figure: `setups, ours / libsignal (Node ${nodeMajor})`, value: t.setups.ratio, target: `≥ ${t.setups.target}`, '': met(t.setups.met) },
    ...(t.setupsNode24 ? [{ figure: `setups, ours / libsignal (Node ${t.setupsNode24.node}, --node24)`, value: t.setupsNode24.ratio, target: '≥ 1.5', '': met(t.setupsNode24.met) }] : []),
    { figure: 'one-way messages, ours / libsignal', value: t.oneWay.ratio, target: '≥ 4', '': met(t.oneWay.ratio >= 4) },
    { figure: 'one-way messages, ours / floor (time per message)', value: t.oneWay.vsFloor, target: '≤ 1.3', '': met(t.oneWay.vsFloor <= 1.3) },
    { figure: '  the same, bare ratchet / floor (no store)', value: t.oneWay.bareVsFloor, target: '≤ 1.3', '': met(t.oneWay.bareVsFloor <= 1.3) },
    { figure: 'alternating messages, ours / libsignal', value: t.alternating.ratio, target: '≥ 2', '': met(t.alternating.met) },
    { figure: 'end to end / Nostr ceiling', value: t.e2e.ratioOfCeiling, target: '≥ 0.6 (stretch 0.8)', '': met(t.e2e.met) },
    { figure: '  the e2e floor / Nostr ceiling (the most reachable)', value: t.e2e.floorRatioOfCeiling, target: '', '': '' },
    { figure: '  end to end / the e2e floor', value: t.e2e.ratioOfFloor, target: '', '': '' },
    { figure: '5,000-message catch-up (ms)', value: t.catchUp5k.ms === null ? 'FAILED' : n(t.catchUp5k.ms), target: '< 4,000', '': met(t.catchUp5k.met) },
    {
      figure: '20,000-message catch-up (ms)',
      value: t.catchUp20k.ms === null ? (catchUp20k ? 'FAILED' : 'not run (--catch-up-20k)') : n(t.catchUp20k.ms),
      target: 'reported',
      '': '',
    },
    { figure: `idle RSS of one daemon (MB${endToEnd.rssDaemonIdleMb === null ? ', one node: the daemon did not run' : ''})`, value: rssDaemon === null ? 'not measured' : n(rssDaemon), target: '< 80', '': met(t.idleRss.met) },
  ]);
}

// What a benchmark measured must have worked: a catch-up that lost messages fails the run (after printing).
for (const c of endToEnd.catchUps) {
  if (c.failure !== null) {
    console.error(`bench: the end-to-end catch-up of ${c.backlog} did not complete: ${c.failure}`);
    process.exitCode = 1;
  }
}
