import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { ackPoints } from '../src/cli/acks.js';
import { LocalApi } from '../src/cli/dispatch.js';
import { NodeService } from '../src/cli/node-service.js';
import { serveRpc } from '../src/cli/rpc.js';
import { paths } from '../src/node/data-dir.js';
import type { RatchetNode } from '../src/node/index.js';
import { CLI, cliEnv, json, jsonLines, rrelay, start, twoDataDirs } from './support/cli.js';
import { eventually, pairOnOneRelay, testNodes } from './support/nodes.js';

/**
 * Nothing lost between the node and its user: a message is marked read only once the CLI wrote it,
 * every command exits only once its output is flushed, and a `send` whose outcome is unknown says
 * so and can be retried without sending twice.
 */

/** Long lines: a burst is more than a pipe (and the reader's buffer) holds. */
const pad = 'x'.repeat(400);

/** CLI processes still running when a test ends (it failed): killed, so that the server can close. */
const running = new Set<{ kill(signal: NodeJS.Signals): boolean }>();

/** Bob's node serving the daemon's socket in this process: the CLI on his data directory talks to it. */
async function bobServes(t: { after(fn: () => unknown): void }) {
  const pair = await pairOnOneRelay(t);
  const server = await serveRpc(new NodeService(pair.bob, true), paths(pair.nodes.dataDir('bob')).socket, () => {});
  t.after(() => {
    for (const child of running) child.kill('SIGKILL');
    running.clear();
    return new Promise((r) => server.close(r));
  });
  return { ...pair, B: ['--data-dir', pair.nodes.dataDir('bob')] };
}

async function burst(alice: RatchetNode, bob: RatchetNode, bobFp: string, n: number): Promise<string[]> {
  const texts = Array.from({ length: n }, (_, i) => `burst ${String(i).padStart(4, '0')} ${pad}`);
  for (const text of texts) alice.messaging.send(bobFp, text);
  const incoming = () => bob.messaging.messages(0, 1_000_000).filter((m) => m.direction === 'in').length;
  await eventually(() => (incoming() === n ? true : undefined), `bob stores all ${n} messages`, 60_000);
  return texts;
}

/** An `rrelay` whose stdout nobody reads yet: what it writes fills the pipe, then waits. */
function unread(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv() }) as ChildProcessWithoutNullStreams;
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  running.add(child);
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const ended = new Promise<string[]>((resolve) => child.stdout.on('end', () => resolve(out.split('\n').slice(0, -1)))); // a line cut by a kill is no line
  child.stdout.pause(); // until readAll (or until the child is gone: then Node reads what the pipe still holds)
  return {
    child,
    exited,
    stderr: () => err,
    /** Reads stdout from now on; resolves with the complete lines once it ends. */
    readAll: () => {
      child.stdout.resume();
      return ended;
    },
  };
}

const texts = (lines: string[]) => lines.map((l) => (JSON.parse(l) as { text: string }).text);

describe('CLI delivery: nothing lost between the node and its user', () => {
  it('ackPoints: what may be acknowledged after each of a batch handed out in any order', () => {
    assert.deepEqual(ackPoints([5, 3, 4, 6]), [2, 3, 5, 6]);
    assert.deepEqual(ackPoints([1, 2, 3]), [1, 2, 3]);
    assert.deepEqual(ackPoints([]), []);
  });

  it('a `receive --follow` killed during a burst loses nothing: the next one gets what it did not write', async (t) => {
    const { alice, bob, bobFp, B } = await bobServes(t);
    const n = 400;
    const first = unread(['receive', '--follow', '--json', ...B]);
    await eventually(() => (/following new messages/.test(first.stderr()) ? true : undefined), 'the first follower is ready');
    const sent = await burst(alice, bob, bobFp, n);
    first.child.kill('SIGKILL');
    const firstLines = await first.readAll(); // what reached the pipe before the kill
    await first.exited;

    const second = await start(['receive', '--follow', '--json', ...B], /following new messages/);
    running.add(second.child);
    const seen = () => new Set([...texts(firstLines), ...texts(second.output().split('\n').filter((l) => l.startsWith('{')))]);
    await eventually(() => (seen().size === n ? true : undefined), 'every message reached one follower or the other', 30_000);
    assert.equal(await second.stop('SIGINT'), 0, second.stderr());
    const secondLines = texts(second.output().split('\n').filter((l) => l.startsWith('{')));

    assert.deepEqual([...seen()].sort(), [...sent].sort(), 'everything delivered at least once');
    assert.ok(firstLines.length < n, `the kill came mid-burst (${firstLines.length} of ${n} written)`);
    for (const run of [texts(firstLines), secondLines]) assert.equal(new Set(run).size, run.length, 'no message twice in one run');
    // Seen twice: only what the first follower wrote after its last acknowledgement, the end of its output.
    const again = secondLines.filter((x) => texts(firstLines).includes(x));
    assert.deepEqual(again, texts(firstLines).slice(firstLines.length - again.length));
    assert.deepEqual(bob.messaging.unread(), [], 'the second follower acknowledged all it wrote');
    t.diagnostic(`first follower wrote ${firstLines.length}, second ${secondLines.length}, ${again.length} of them again`);
  });

  it('`receive` and `messages` into a pipe read slowly print everything, and receive marks read only that', async (t) => {
    const { alice, bob, bobFp, B } = await bobServes(t);
    const n = 300;
    const sent = await burst(alice, bob, bobFp, n);
    for (const args of [['receive'], ['messages', '--limit', String(n)]]) {
      const r = unread([...args, '--json', ...B]);
      // Give a command that would not wait for its output the time to exit without it (a wait, not a threshold).
      await Promise.race([r.exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
      const lines = await r.readAll();
      assert.equal(await r.exited, 0, r.stderr());
      assert.equal(lines.length, n, `${args[0]}: all ${n} lines`);
      assert.deepEqual(texts(lines), sent, `${args[0]}: in order`);
    }
    assert.deepEqual((await rrelay(['receive', '--json', ...B])).json, [], 'all of them marked read');
    // An acknowledgement beyond what arrived marks nothing that comes later read.
    const last = Math.max(...bob.messaging.messages(0, 1_000_000).filter((m) => m.direction === 'in').map((m) => m.seq));
    assert.deepEqual(await new LocalApi(new NodeService(bob, true)).call('ack', { upTo: last + 1000 }), { readUpTo: last });
    alice.messaging.send(bobFp, 'after the ack');
    await eventually(() => (bob.messaging.unread().length === 1 ? true : undefined), 'a later message stays unread');
  });

  it('a `send` whose daemon dies mid-call exits "outcome unknown"; retried with its --id it sends once', async (t) => {
    const { relay, daemons, A } = await twoDataDirs(t);
    const bob = await testNodes(t).open('bob', [relay.url]);
    await bob.start(); // publishes bob's bundle: alice can send to him as a discovered peer
    const bobFp = bob.whoami().fingerprint;
    await json(['init', ...A, '--relay', relay.url]);
    const daemon = await start(['daemon', ...A, '--json'], /"daemon":"running"/);
    daemons.push(daemon);
    await eventually(async () => ((await jsonLines<{ fingerprint: string }>(['peers', ...A])).some((p) => p.fingerprint === bobFp) ? true : undefined), 'alice finds bob');
    await relay.stop(); // no relay takes it: the send waits for one

    const id = 'ab'.repeat(16);
    const sending = rrelay(['send', ...A, '--id', id, '--wait', '60', bobFp.slice(0, 16), 'exactly', 'once']);
    const history = async () => (await rrelay(['messages', ...A, '--json'])).json as { id: string; text: string; state: string }[];
    await eventually(async () => ((await history()).some((m) => m.id === id) ? true : undefined), 'the daemon stored and queued it');
    daemon.child.kill('SIGKILL');
    const lost = await sending;
    assert.equal(lost.code, 76, lost.stderr);
    assert.match(lost.stderr, new RegExp(`rrelay messages.*--id ${id}`));

    await relay.start();
    const retried = await rrelay(['send', ...A, '--id', id, bobFp.slice(0, 16), 'exactly', 'once', '--json']);
    assert.ok(retried.code === 0 || retried.code === 75, retried.stderr);
    assert.equal((retried.json[0] as { id: string }).id, id);
    const other = await rrelay(['send', ...A, '--id', id, bobFp.slice(0, 16), 'something', 'else']);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /already used for another message/);
    assert.deepEqual((await history()).map((m) => [m.id, m.text]), [[id, 'exactly once']], 'one message, not two');
    const incoming = () => bob.messaging.messages().filter((m) => m.direction === 'in');
    await eventually(() => (incoming().length > 0 ? true : undefined), 'bob gets it');
    assert.deepEqual(incoming().map((m) => [m.id, m.body]), [[id, 'exactly once']]);
  });
});
