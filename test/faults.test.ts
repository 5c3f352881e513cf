import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConnectionLost, connectRpc, type RpcClient } from '../src/cli/rpc.js';
import { paths } from '../src/node/data-dir.js';
import type { RatchetNode } from '../src/node/index.js';
import { seededRng } from './helpers.js';
import { json, jsonLines, rrelay, type Running, start, tempRoot } from './support/cli.js';
import { eventually, meet, testNodes } from './support/nodes.js';
import { startTestRelay, type TestRelay } from './support/relay.js';

/**
 * Faults, as automated tests: daemons killed with SIGKILL during a burst, relays that go down and
 * come back empty. Afterwards every message is stored exactly once at the receiver, and its sender
 * sees it delivered. The kill schedule comes from a seed, printed; RRELAY_FAULT_SEED replays one.
 */

const SEED = process.env.RRELAY_FAULT_SEED ?? String(randomInt(2 ** 31));

/** A seeded integer in [lo, hi]. */
function seededInts(seed: string): (lo: number, hi: number) => number {
  const rng = seededRng(`faults/${seed}`);
  return (lo, hi) => lo + (Buffer.from(rng(4)).readUInt32BE(0) % (hi - lo + 1));
}

const idOf = (i: number) => i.toString(16).padStart(32, '0');
const textOf = (i: number) => `burst message ${String(i).padStart(3, '0')}`;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Counts {
  sent: number;
  stored: number;
  distinct: number;
  duplicated: number;
  delivered: number;
}

/** What the receiver stored and what the sender sees, from their stored histories. */
function counts(sent: readonly string[], incoming: readonly string[], outgoingDelivered: number): Counts {
  const distinct = new Set(incoming).size;
  return { sent: sent.length, stored: incoming.length, distinct, duplicated: incoming.length - distinct, delivered: outgoingDelivered };
}

/** Everything arrived once: each sent text stored exactly once, nothing else, and every message shown delivered to its sender. */
function assertExactlyOnce(c: Counts, sent: readonly string[], incoming: readonly string[], why: string): void {
  assert.equal(c.duplicated, 0, `${why}: no message stored twice`);
  assert.deepEqual([...incoming].sort(), [...sent].sort(), `${why}: every message stored, once`);
  assert.equal(c.delivered, sent.length, `${why}: the sender sees every message delivered`);
}

const describeCounts = (c: Counts, convergeMs: number) =>
  `sent ${c.sent}, stored ${c.stored} (${c.distinct} distinct, ${c.duplicated} duplicated), shown delivered ${c.delivered}; converged ${convergeMs} ms after the last fault`;

type Who = 'alice' | 'bob';

/** A daemon per identity that can be killed and started again on its data directory. */
class Daemons {
  private readonly running = new Map<Who, Running>();

  constructor(private readonly dirs: Record<Who, string[]>) {}

  async start(who: Who): Promise<void> {
    this.running.set(who, await start(['daemon', ...this.dirs[who], '--json'], /"daemon":"running"/));
  }

  async kill(who: Who): Promise<void> {
    const d = this.running.get(who)!;
    this.running.delete(who);
    await d.stop('SIGKILL');
  }

  async stopAll(): Promise<void> {
    for (const d of this.running.values()) await d.stop('SIGKILL');
    this.running.clear();
  }
}

/** One RPC connection to a daemon, made again whenever the daemon went away. */
class Client {
  private client: RpcClient | null = null;
  /** Calls cut by a kill (the daemon went away before it answered). */
  cut = 0;

  constructor(private readonly socket: string) {}

  /**
   * Sends with a fixed id until one call is answered: a call cut by a kill may or may not have
   * queued the message, and the id makes the retry send it at most once.
   */
  async send(contact: string, text: string, id: string): Promise<void> {
    for (;;) {
      this.client ??= await connectRpc(this.socket);
      if (this.client === null) {
        await pause(20); // the daemon is down: wait for its restart
        continue;
      }
      try {
        await this.client.call('send', { contact, text, id, waitMs: 0 });
        return;
      } catch (e) {
        if (!(e instanceof ConnectionLost)) throw e;
        this.cut++;
        this.client = null;
      }
    }
  }

  async close(): Promise<void> {
    await this.client?.close();
  }
}

describe('faults', () => {
  it('kill -9 of either daemon at seeded points of a 200-message burst: every message delivered exactly once', async (t) => {
    t.diagnostic(`seed ${SEED} (replay with RRELAY_FAULT_SEED=${SEED})`);
    const int = seededInts(SEED);
    const relay = await startTestRelay();
    const root = tempRoot(t);
    const A = ['--data-dir', join(root, 'alice')];
    const B = ['--data-dir', join(root, 'bob')];
    const daemons = new Daemons({ alice: A, bob: B });
    const alice = new Client(paths(join(root, 'alice')).socket);
    t.after(async () => {
      await alice.close();
      await daemons.stopAll();
      await relay.stop();
    });
    await json(['init', ...A, '--relay', relay.url]);
    const bobFp = (await json<{ fingerprint: string }>(['init', ...B, '--relay', relay.url])).fingerprint;
    await Promise.all([daemons.start('alice'), daemons.start('bob')]);
    await eventually(async () => ((await jsonLines<{ fingerprint: string }>(['peers', ...A])).some((p) => p.fingerprint === bobFp) ? true : undefined), 'alice finds bob');

    // The schedule: 4 kills alternating between the daemons, each at a message of the burst, a few
    // ms after it was sent (so that it lands inside a send, a publish, a decrypt), down for a while.
    const n = 200;
    const first: Who = int(0, 1) === 0 ? 'alice' : 'bob';
    const at = new Set<number>();
    while (at.size < 4) at.add(int(0, n - 5));
    const schedule = [...at]
      .sort((a, b) => a - b)
      .map((index, k) => ({ index, who: (k % 2 === 0) === (first === 'alice') ? ('alice' as const) : ('bob' as const), afterMs: int(0, 30), downMs: int(0, 400) }));
    t.diagnostic(`schedule: ${schedule.map((s) => `${s.who} at ${s.index} +${s.afterMs} ms, down ${s.downMs} ms`).join('; ')}`);

    let fault: Promise<void> = Promise.resolve();
    const texts: string[] = [];
    for (let i = 0; i < n; i++) {
      const kill = schedule.find((s) => s.index === i);
      if (kill) {
        await fault; // one fault at a time: the previous daemon is back
        fault = (async () => {
          await pause(kill.afterMs);
          await daemons.kill(kill.who);
          await pause(kill.downMs);
          await daemons.start(kill.who);
        })();
      }
      texts.push(textOf(i));
      await alice.send(bobFp, textOf(i), idOf(i));
    }
    await fault;
    const healed = Date.now();

    type Entry = { id: string; direction: 'in' | 'out'; text: string; state: string };
    const history = async (who: string[]) => (await rrelay(['messages', ...who, '--limit', '1000', '--json'])).json as Entry[];
    const measure = async () => {
      const [atBob, atAlice] = await Promise.all([history(B), history(A)]);
      const incoming = atBob.filter((m) => m.direction === 'in').map((m) => m.text);
      const outgoing = atAlice.filter((m) => m.direction === 'out');
      return { incoming, outgoing, c: counts(texts, incoming, outgoing.filter((m) => m.state === 'delivered').length) };
    };
    let last = await measure();
    await eventually(
      async () => {
        last = await measure();
        return last.c.distinct === n && last.c.delivered === n ? true : undefined;
      },
      'every message stored at bob and shown delivered to alice',
      30_000,
    ).catch(() => {}); // the assertions below say what is missing
    const convergeMs = Date.now() - healed;
    t.diagnostic(`${describeCounts(last.c, convergeMs)}; ${alice.cut} sends cut by a kill and retried with their id`);
    assertExactlyOnce(last.c, texts, last.incoming, `seed ${SEED}`);
    assert.deepEqual(last.outgoing.map((m) => m.id).sort(), texts.map((_, i) => idOf(i)), `seed ${SEED}: alice stored each message once`);
  });
});

/** Three relays and two nodes on all of them that have met. */
async function threeRelays(t: { after(fn: () => Promise<void> | void): void }) {
  const relays = await Promise.all([startTestRelay(), startTestRelay(), startTestRelay()]);
  t.after(async () => {
    for (const r of relays) await r.stop();
  });
  const nodes = testNodes(t);
  const urls = relays.map((r) => r.url);
  const alice = await nodes.open('alice', urls);
  const bob = await nodes.open('bob', urls);
  await meet(alice, bob);
  return { relays, alice, bob, bobFp: bob.whoami().fingerprint };
}

/** Waits until bob stored every text and alice sees them all delivered; reports and checks the counts. */
async function converge(t: { diagnostic(m: string): void }, what: string, alice: RatchetNode, bob: RatchetNode, texts: readonly string[], healed: number): Promise<void> {
  const measure = () => {
    const incoming = bob.messaging.messages(0, 1_000_000).filter((m) => m.direction === 'in').map((m) => m.body);
    const delivered = alice.messaging.messages(0, 1_000_000).filter((m) => m.direction === 'out' && m.state === 'delivered').length;
    return { incoming, c: counts(texts, incoming, delivered) };
  };
  await eventually(() => {
    const { c } = measure();
    return c.distinct === texts.length && c.delivered === texts.length ? true : undefined;
  }, 'every message stored at bob and shown delivered to alice').catch(() => {});
  const convergeMs = Date.now() - healed;
  const { incoming, c } = measure();
  t.diagnostic(`${what}: ${describeCounts(c, convergeMs)}`);
  assertExactlyOnce(c, texts, incoming, what);
}

describe('faults: three relays', () => {
  it('one relay goes down during a burst and comes back empty: nothing lost or doubled, and it gets what it missed', async (t) => {
    const { relays, alice, bob, bobFp } = await threeRelays(t);
    const n = 200;
    const texts: string[] = [];
    let down: TestRelay | undefined;
    for (let i = 0; i < n; i++) {
      if (i === 60) await (down = relays[1]!).stop();
      if (i === 140) await down!.start();
      texts.push(textOf(i));
      alice.messaging.send(bobFp, textOf(i));
      if (i % 10 === 9) await pause(5); // a burst in slices: the relay drops and returns between them
    }
    await converge(t, 'one relay down and back', alice, bob, texts, Date.now());
    // The relay that came back (empty) was given what it missed, from the outbox.
    const out = alice.messaging.messages(0, 1_000_000).filter((m) => m.direction === 'out');
    await eventually(() => (out.every((m) => (alice.messaging.outgoing(m.id)?.relaysAccepted ?? 0) === 3) ? true : undefined), 'every message on all three relays');
  });

  it('all three relays go down, messages are sent, one comes back: nothing lost or doubled', async (t) => {
    const { relays, alice, bob, bobFp } = await threeRelays(t);
    const before = [textOf(0), textOf(1)];
    for (const text of before) alice.messaging.send(bobFp, text);
    await eventually(() => (alice.messaging.messages().filter((m) => m.state === 'delivered').length === 2 ? true : undefined), 'the first two delivered');

    for (const r of relays) await r.stop();
    await eventually(() => (!alice.isConnected() && !bob.isConnected() ? true : undefined), 'both nodes see every relay gone');
    const texts = [...before];
    for (let i = 2; i < 100; i++) {
      texts.push(textOf(i));
      alice.messaging.send(bobFp, textOf(i));
    }
    assert.equal(alice.messaging.messages().filter((m) => m.state === 'queued').length, 98, 'queued while no relay is up');
    await relays[2]!.start();
    await converge(t, 'all relays down, one back', alice, bob, texts, Date.now());
    assert.deepEqual(
      relays.map((r) => r.clients()),
      [0, 0, 4], // two nodes, two lanes each
      'only the relay that came back carried them',
    );
  });
});
