// What private addressing costs: per message, the private path's extra work (a throwaway key, its
// signature, padding, a jittered created_at) beside signing with the node key as the seed format
// does, with one bare signature as the floor; then end to end, the same conversation through the
// embedded relay with `addressing: 'private'` and with `'seed'`. Not a test: nothing here passes or
// fails on time, but every figure is only reported if what it measured worked.
import { pathToFileURL } from 'node:url';
import { constantTimeEqual, Secp256k1Schnorr, systemRng, toHex } from '../src/crypto/index.js';
import {
  checkIncomingEvent,
  decodeMessageEvent,
  type Event,
  jitteredCreatedAt,
  KIND_MESSAGE,
  mailboxEvent,
  messageEvent,
  signEvent,
  throwawayKey,
} from '../src/nostr/events.js';
import { padFrame } from '../src/nostr/padding.js';
import { textEnvelope, throughput, withFreshPair } from './e2e.js';
import { nsPerOp } from './timing.js';

export interface PrivateSigningFigures {
  /** µs per message: the seed format, `messageEvent`: the envelope signed by the node key, `p` tag. */
  nodeKeyUs: number;
  /** µs per message: the private path, `mailboxEvent`: throwaway key, padding, jittered created_at, signature. */
  privateUs: number;
  /** privateUs / nodeKeyUs. */
  ratio: number;
  /** µs: the floor under both, one BIP-340 signature as nostr-tools makes it (an empty event: key, id, sign). */
  schnorrFloorUs: number;
  /** The parts of the private path's extra work, µs each (the throwaway key: a random scalar, checked; nostr-tools derives the public key while signing, in both paths). */
  throwawayKeyUs: number;
  paddingUs: number;
  jitterUs: number;
  /** Content (base64 characters) of a 1 KB text's event: seed format, private (its padding bucket). */
  seedContentChars: number;
  privateContentChars: number;
}

export interface AddressingThroughputFigures {
  /** 1 KB msgs/s alice → bob through the relay process, both nodes in this process; median of `rounds`. */
  privateMsgsPerSec: number;
  seedMsgsPerSec: number;
  /** private / seed. */
  ratio: number;
  /** Rounds per mode, alternating private and seed so that drift in the machine hits both alike. */
  rounds: number;
  /** Messages in each timed burst (per mode, the median round's). */
  privateMessages: number;
  seedMessages: number;
}

function fail(message: string): never {
  throw new Error(`bench: ${message}`);
}

/** An event must pass the incoming gate and carry `envelope` back out, or its timing means nothing. */
function check(e: Event, envelope: Uint8Array, self: string, what: string): void {
  const reason = checkIncomingEvent(e, Date.now());
  if (reason !== null) fail(`${what}: the event was refused: ${reason}`);
  const c = decodeMessageEvent(e, self);
  const back = c.format === 'inbox' ? c.sealed : c.envelope;
  if (!constantTimeEqual(back, envelope)) fail(`${what}: the event does not carry the envelope`);
}

export async function measurePrivateSigning(opts: { seconds: number }): Promise<PrivateSigningFigures> {
  const s = opts.seconds;
  const us = async (op: () => unknown) => (await nsPerOp(s, () => void op())) / 1000;
  const envelope = textEnvelope();
  const nodeSecret = throwawayKey(systemRng);
  const recipient = toHex(Secp256k1Schnorr.publicKeyOf(throwawayKey(systemRng)));
  const tag = toHex(systemRng(32));
  const seed = messageEvent(envelope, recipient, nodeSecret, Date.now());
  const mailbox = mailboxEvent(tag, envelope, systemRng, Date.now());
  check(seed, envelope, recipient, 'the seed-format event');
  check(mailbox, envelope, recipient, 'the mailbox event');
  if (mailbox.pubkey === mailboxEvent(tag, envelope, systemRng, Date.now()).pubkey) fail('two mailbox events share a signing key');

  const nodeKeyUs = await us(() => messageEvent(envelope, recipient, nodeSecret, Date.now()));
  const privateUs = await us(() => mailboxEvent(tag, envelope, systemRng, Date.now()));
  return {
    nodeKeyUs,
    privateUs,
    ratio: Math.round((privateUs / nodeKeyUs) * 100) / 100,
    schnorrFloorUs: await us(() => signEvent(KIND_MESSAGE, [], '', nodeSecret, Date.now())),
    throwawayKeyUs: await us(() => throwawayKey(systemRng)),
    paddingUs: await us(() => Buffer.from(padFrame(envelope)).toString('base64')),
    jitterUs: await us(() => jitteredCreatedAt(Date.now(), systemRng)),
    seedContentChars: seed.content.length,
    privateContentChars: mailbox.content.length,
  };
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

export async function measureAddressingThroughput(opts: { seconds: number; rounds?: number }): Promise<AddressingThroughputFigures> {
  const rounds = opts.rounds ?? 3;
  // Each round on a fresh relay and pair, as in bench/e2e.ts, so no round inherits another's tables.
  const modes = ['private', 'seed'] as const;
  const runs = new Map<(typeof modes)[number], { msgsPerSec: number; messages: number }[]>(modes.map((m) => [m, []]));
  for (let r = 0; r < rounds; r++)
    for (const mode of modes) runs.get(mode)!.push(await withFreshPair((pair) => throughput(pair, opts.seconds), { addressing: mode }));
  const mid = (mode: (typeof modes)[number]) => {
    const rs = runs.get(mode)!;
    return rs.find((x) => x.msgsPerSec === median(rs.map((y) => y.msgsPerSec)))!;
  };
  const p = mid('private');
  const sd = mid('seed');
  return {
    privateMsgsPerSec: p.msgsPerSec,
    seedMsgsPerSec: sd.msgsPerSec,
    ratio: Math.round((p.msgsPerSec / sd.msgsPerSec) * 100) / 100,
    rounds,
    privateMessages: p.messages,
    seedMessages: sd.messages,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--seconds');
  const seconds = i >= 0 ? Number(process.argv[i + 1]) : 1;
  console.log(JSON.stringify({ signing: await measurePrivateSigning({ seconds }), throughput: await measureAddressingThroughput({ seconds }) }, null, 2));
}
