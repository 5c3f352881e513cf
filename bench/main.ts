// `npm run bench [-- --json] [-- --seconds N]`: our figures beside libsignal-client and the raw primitives, and end to end through the embedded relay,
// all measured in this one run on this machine. Not a test: nothing here passes or fails on time.
import { cpus, totalmem, type as osType, release } from 'node:os';
import { measureEndToEnd } from './e2e.js';
import { measureKx } from './kx.js';
import { measureLibsignal } from './libsignal.js';
import { measureOurs } from './ours.js';
import { measurePrimitives } from './primitives.js';
import { measureAddressingThroughput, measurePrivateSigning } from './privacy.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const secondsArg = args.indexOf('--seconds');
const seconds = secondsArg >= 0 ? Number(args[secondsArg + 1]) : 1;
if (!(seconds > 0)) {
  console.error('bench: --seconds needs a positive number');
  process.exit(2);
}

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  os: `${osType()} ${release()}`,
  node: process.version,
};

const progress = (what: string) => {
  if (!json) process.stderr.write(`measuring ${what}…\n`);
};
// First, so that its RSS figures hold the relay and two nodes, not what the other benchmarks left behind.
progress('end to end through the embedded relay');
const endToEnd = await measureEndToEnd({ seconds });
progress('primitives');
const primitives = await measurePrimitives({ seconds: seconds / 2 });
progress('ratchet-relay');
const ours = await measureOurs({ seconds });
progress('libsignal-client');
const libsignal = await measureLibsignal({ seconds });
progress('the invite key exchange (pure, then nodes through a relay process)');
const kx = await measureKx({ seconds });
progress('private addressing: per-message signing, then end to end in both modes');
const privacy = { signing: await measurePrivateSigning({ seconds: seconds / 2 }), throughput: await measureAddressingThroughput({ seconds }) };

const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
const ratios = {
  msgsPerSecOneWay: ratio(ours.msgsPerSecOneWay, libsignal.msgsPerSecOneWay),
  msgsPerSecAlternating: ratio(ours.msgsPerSecAlternating, libsignal.msgsPerSecAlternating),
  setupsPerSec: ratio(ours.setupsPerSec, libsignal.setupsPerSec),
  bundleGenerationMs: ratio(ours.bundleGenerationMs, libsignal.bundleGenerationMs),
  bundleSerializationMs: ratio(ours.bundleSerializationMs, libsignal.bundleSerializationMs),
  bundleBytes: ratio(ours.bundleBytes, libsignal.bundleBytes),
  e2eVsNostrCeiling: ratio(endToEnd.e2eMsgsPerSec, endToEnd.nostrCeilingPerSec),
  kxVsPqxdhSetups: ratio(kx.pureKxPerSec, ours.setupsPerSec),
};

if (json) {
  console.log(JSON.stringify({ machine, seconds, primitives, ours, libsignal, endToEnd, kx, privacy, ratios }, null, 2));
} else {
  const n = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3));
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}\n`);
  console.log('primitives (ops/s)');
  console.table(primitives.map((p) => ({ primitive: p.primitive, backend: p.backend, 'ops/s': n(p.opsPerSec) })));
  console.log('\nratchet-relay vs @signalapp/libsignal-client, same process (ratio = ours / libsignal)');
  const row = (figure: string, ourValue: number, theirs: number | null, r: number | null) => ({
    figure,
    'ratchet-relay': n(ourValue),
    libsignal: theirs === null ? '' : n(theirs),
    ratio: r === null ? '' : r,
  });
  console.table([
    row('1 KB msgs/s, one direction (encrypt+decrypt)', ours.msgsPerSecOneWay, libsignal.msgsPerSecOneWay, ratios.msgsPerSecOneWay),
    row('1 KB msgs/s, alternating', ours.msgsPerSecAlternating, libsignal.msgsPerSecAlternating, ratios.msgsPerSecAlternating),
    row('1 KB msgs/s, one direction, through SQLite store', ours.msgsPerSecOneWayStored, null, null),
    row('session setups/s (bundle to first decrypt)', ours.setupsPerSec, libsignal.setupsPerSec, ratios.setupsPerSec),
    row('bundle generation (ms)', ours.bundleGenerationMs, libsignal.bundleGenerationMs, ratios.bundleGenerationMs),
    row('bundle serialization (ms)', ours.bundleSerializationMs, libsignal.bundleSerializationMs, ratios.bundleSerializationMs),
    row('bundle bytes, 1 one-time key', ours.bundleBytes, libsignal.bundleBytes, ratios.bundleBytes),
    row('bundle bytes, 5 one-time keys (default)', ours.bundleBytesDefault, null, null),
  ]);

  console.log('\nend to end through the embedded relay (loopback, default addressing): the relay in its own process (rrelay relay), alice and bob in this one');
  const e = endToEnd;
  const t = e.targets;
  console.table([
    { figure: `Nostr sign+verify ceiling (events/s, ${e.ceilingContentBytes} B content, one core)`, value: n(e.nostrCeilingPerSec), target: '' },
    { figure: `1 KB msgs/s alice → bob (${e.e2eMessages} msgs)`, value: n(e.e2eMsgsPerSec), target: `≥ ${n(t.e2eVsNostrCeilingAtLeast * e.nostrCeilingPerSec)}` },
    { figure: 'end to end / Nostr ceiling', value: ratios.e2eVsNostrCeiling, target: `≥ ${t.e2eVsNostrCeilingAtLeast}` },
    { figure: `latency p50, one at a time (ms, ${e.latencySamples} samples)`, value: n(e.latencyP50Ms), target: '' },
    { figure: 'latency p99 (ms)', value: n(e.latencyP99Ms), target: '' },
    {
      figure: `catch-up of ${e.backlog} queued msgs (ms, start() to last)`,
      value: e.catchUpMs === null ? `FAILED: ${e.catchUpReceived} of ${e.backlog} arrived` : n(e.catchUpMs),
      target: '',
    },
    { figure: 'RSS idle, this process: relay + both nodes + bench (MB, upper bound for one node)', value: n(e.rssIdleMb), target: `< ${t.rssIdleMbUnder}` },
    { figure: 'RSS idle, one node alone in a child process (MB)', value: e.rssOneNodeIdleMb === null ? 'not measured' : n(e.rssOneNodeIdleMb), target: `< ${t.rssIdleMbUnder}` },
    { figure: 'RSS after the catch-up, this process (MB)', value: n(e.rssAfterCatchUpMb), target: '' },
  ]);

  console.log('\ninvite key exchange (KX) beside PQXDH: the KX nodes in this process, the relay in its own (ratio = KX / PQXDH)');
  const kxRow = (figure: string, kxValue: number | string, pqxdh: number | null = null, r: number | null = null) => ({
    figure,
    KX: typeof kxValue === 'number' ? n(kxValue) : kxValue,
    PQXDH: pqxdh === null ? '' : n(pqxdh),
    ratio: r === null ? '' : r,
  });
  const kxTotal = kx.inviteBytes + kx.halfKxWireBytes + kx.fullKxWireBytes;
  const pqxdhTotal = kx.pqxdhBundleBytes + kx.pqxdhInitialMessageBytes;
  console.table([
    kxRow('setups/s, pure, one core (KX: 3 steps, invite string, 1 KB each way; PQXDH: bundle to first 1 KB decrypt)', kx.pureKxPerSec, ours.setupsPerSec, ratios.kxVsPqxdhSetups),
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
    pRow('  of which: the throwaway key, a random scalar (µs; its public key comes out of the signing, as the node key’s does)', sg.throwawayKeyUs),
    pRow('  of which: padding and base64 (µs)', sg.paddingUs),
    pRow('  of which: the jittered created_at (µs)', sg.jitterUs),
    pRow('floor: one BIP-340 signature, an empty event (µs)', sg.schnorrFloorUs, sg.schnorrFloorUs),
    pRow('content (base64 chars)', sg.privateContentChars, sg.seedContentChars, ratio(sg.privateContentChars, sg.seedContentChars)),
    pRow(`1 KB msgs/s alice → bob, end to end (median of ${tp.rounds} rounds each, ${n(tp.privateMessages)} / ${n(tp.seedMessages)} msgs)`, tp.privateMsgsPerSec, tp.seedMsgsPerSec, tp.ratio),
  ]);
}

// What a benchmark measured must have worked: a catch-up that lost messages fails the run (after printing).
if (endToEnd.catchUpFailure !== null) {
  console.error(`bench: the end-to-end catch-up did not complete: ${endToEnd.catchUpFailure}`);
  process.exitCode = 1;
}
