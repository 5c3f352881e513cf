import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NodeService } from '../src/cli/node-service.js';
import { connectRpc, ConnectionLost, serveRpc, stopRpc } from '../src/cli/rpc.js';
import { paths } from '../src/node/data-dir.js';
import { CLI, cliEnv, json, rrelay, type Running, start, twoDataDirs } from './support/cli.js';
import { eventually, testNodes } from './support/nodes.js';
import { startTestRelay } from './support/relay.js';
import { startSlowProxy } from './support/slow-proxy.js';

/**
 * Issue 9, the daemon's side: no client, however it goes away or whatever it sends, ends the daemon;
 * commands started while a daemon starts wait for it; a signal stops it cleanly, outbox flushed.
 */

const MAX_LINE = 1 << 20; // rpc.ts

function closed(socket: Socket): Promise<void> {
  return new Promise((r) => (socket.destroyed ? r() : socket.once('close', () => r())));
}

/** A socket path served by `onConnection`, removed afterwards. */
async function fakeDaemon(t: { after(fn: () => unknown): void }, onConnection: (s: Socket) => void): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'rrelay-fake-'));
  const server: Server = createServer(onConnection);
  const path = join(dir, 'rrelay.sock');
  await new Promise<void>((r) => server.listen(path, r));
  t.after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return path;
}

describe('the daemon survives its clients', () => {
  it('cuts off a client that sends more than MAX_LINE bytes without a newline, instead of buffering it', async (t) => {
    const relay = await startTestRelay();
    t.after(() => relay.stop());
    const nodes = testNodes(t);
    const node = await nodes.open('alice', [relay.url]);
    const socketPath = join(nodes.dataDir('alice'), 'test.sock');
    const server = await serveRpc(new NodeService(node, true), socketPath, () => {});
    t.after(() => stopRpc(server));
    const garbage = createConnection(socketPath);
    garbage.on('error', () => {});
    t.after(() => garbage.destroy());
    await new Promise((r) => garbage.once('connect', r));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let sent = 0; sent <= MAX_LINE; sent += chunk.length) garbage.write(chunk);
    await eventually(() => (garbage.destroyed ? true : undefined), 'the daemon closes the connection');
    // Others are served as before.
    const client = (await connectRpc(socketPath))!;
    t.after(() => client.close());
    assert.deepEqual(await client.call('whoami'), node.whoami());
  });

  it('a follower whose daemon dies mid-line is told the daemon stopped, and does not crash on the cut line', async (t) => {
    const socketPath = await fakeDaemon(t, (s) => {
      s.on('error', () => {});
      s.once('data', () => s.end('{"jsonrpc":"2.0","method":"event","params":{"type":"mess')); // killed mid-write
    });
    const client = (await connectRpc(socketPath))!;
    const events: string[] = [];
    const followed = await client.follow((e) => events.push(e.type)).catch((e: unknown) => e);
    assert.ok(followed instanceof ConnectionLost, String(followed));
    assert.deepEqual(events, ['ended']);
  });

  it('followers killed -9 mid-burst, sends killed mid-call, clients that vanish or send garbage: the daemon still serves, then stops cleanly on SIGTERM', async (t) => {
    const { relay, daemons, A } = await twoDataDirs(t);
    const me = await json<{ fingerprint: string }>(['init', ...A, '--relay', relay.url]);
    const daemon = await start(['daemon', ...A, '--json'], /"daemon":"running"/);
    daemons.push(daemon);
    const socketPath = paths(A[1]!).socket;
    const alice = await testNodes(t).open('alice', [relay.url]);
    await alice.start();
    await eventually(() => (alice.bundles.peers().some((p) => p.fingerprint === me.fingerprint) ? true : undefined), 'alice finds the daemon');
    const aliceFp = alice.whoami().fingerprint;
    const history = async () => (await rrelay(['messages', ...A, '--limit', '1000', '--json'])).json as { id: string; text: string; state: string }[];
    const burstStored = async () => (await history()).filter((m) => m.text.startsWith('burst')).length;
    const children: Running[] = [];
    t.after(() => children.forEach((c) => c.child.kill('SIGKILL')));

    // Followers that read nothing more once the burst starts, killed with events unread on their sockets.
    const followers = await Promise.all([0, 1, 2].map(() => start(['receive', '--follow', ...A, '--json'], /following new messages/)));
    children.push(...followers);
    followers.forEach((f) => f.child.stdout.pause());
    const pad = 'y'.repeat(500);
    for (let i = 0; i < 300; i++) alice.messaging.send(me.fingerprint, `burst ${i} ${pad}`);
    await eventually(async () => ((await burstStored()) > 20 ? true : undefined), 'the burst is arriving');
    followers.forEach((f) => f.child.kill('SIGKILL'));

    // `send`s and followers killed at every stage of their call, while the burst goes on.
    const doomed = Array.from({ length: 8 }, (_, i) => {
      const args = i % 2 ? ['receive', '--follow', ...A] : ['send', ...A, '--wait', '30', aliceFp.slice(0, 16), `doomed ${i}`];
      const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv() });
      return new Promise<void>((r) => {
        child.on('close', () => r());
        setTimeout(() => child.kill('SIGKILL'), 40 * i);
      });
    });
    // Raw clients: connect and vanish; ask and vanish before the answer; garbage; a half request.
    const raw = async (data: string | Buffer | null, wait = false) => {
      const s = createConnection(socketPath);
      const connected = await new Promise<boolean>((r) => {
        s.once('connect', () => r(true));
        s.once('error', () => r(false)); // the daemon is gone: the assertions below say so
      });
      if (connected && data !== null) s.write(data);
      if (wait) await new Promise((r) => setTimeout(r, 20));
      s.destroy();
      await closed(s);
    };
    for (let i = 0; i < 20; i++) {
      await raw(null);
      await raw('{"jsonrpc":"2.0","id":1,"method":"status","params":{}}\n');
      await raw('{"jsonrpc":"2.0","id":2,"method":"follow","params":{}}\n', true);
      await raw(Buffer.from(Array.from({ length: 4096 }, (_, j) => (j * 131 + i * 7) % 256)), true);
      await raw('{"jsonrpc":"2.0","id":3,"meth');
    }
    await Promise.all(doomed);

    assert.equal(daemon.child.exitCode, null, `the daemon is alive\n${daemon.stderr()}`);
    const status = await json<{ daemon: boolean }>(['status', ...A]);
    assert.equal(status.daemon, true, 'status is answered by the daemon');
    await eventually(async () => ((await burstStored()) === 300 ? true : undefined), 'the whole burst is stored', 60_000);

    // A message sent just before SIGTERM reaches the relay; the daemon exits 0 and removes its socket.
    const got = new Promise<string>((resolve) => alice.on('message', (m) => m.text === 'last words' && resolve(m.text)));
    const sent = await rrelay(['send', ...A, '--wait', '0', aliceFp.slice(0, 16), 'last', 'words', '--json']);
    assert.ok(sent.code === 0 || sent.code === 75, sent.stderr); // 75: queued, not yet taken by a relay
    const last = sent.json[0] as { id: string };
    assert.equal(await daemon.stop('SIGTERM'), 0, daemon.stderr());
    assert.equal(existsSync(socketPath), false, 'the socket file is gone');
    const after = await history(); // no daemon now, and `messages` does not connect
    assert.notEqual(after.find((m) => m.id === last.id)?.state ?? 'missing', 'queued', 'it left before the daemon did');
    assert.ok(after.some((m) => m.id === last.id));
    assert.equal(await got, 'last words');
  });
});

describe('the daemon starting and stopping', () => {
  /** A daemon whose only relay answers its handshake after 3 s: it holds its data directory that long with no socket yet. */
  async function slowDaemon(t: { after(fn: () => Promise<void> | void): void }) {
    const { relay, A } = await twoDataDirs(t);
    const proxy = await startSlowProxy(relay.port, 3000);
    t.after(() => proxy.close());
    await json(['init', ...A, '--relay', proxy.url]);
    const child = spawn(process.execPath, [CLI, 'daemon', ...A, '--json'], { env: cliEnv() });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    t.after(() => void child.kill('SIGKILL'));
    await eventually(() => (proxy.connections() > 0 ? true : undefined), 'the daemon holds its data directory and connects');
    assert.equal(existsSync(paths(A[1]!).socket), false, 'its socket is not open yet');
    return { A, child, exited, output: () => out };
  }

  it('a command run while the daemon starts waits for its socket instead of failing "another node is using"', async (t) => {
    const d = await slowDaemon(t);
    const status = await rrelay(['status', ...d.A, '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((status.json[0] as { daemon: boolean }).daemon, true, 'answered by the daemon');
    d.child.kill('SIGTERM');
    assert.equal(await d.exited, 0);
  });

  it('SIGTERM while the daemon starts: it stops once started, exits 0 and leaves no socket', async (t) => {
    const d = await slowDaemon(t);
    d.child.kill('SIGTERM');
    assert.equal(await d.exited, 0);
    assert.equal(existsSync(paths(d.A[1]!).socket), false);
    assert.doesNotMatch(d.output(), /running/, 'it never started serving');
  });
});

describe('a command without a daemon', () => {
  // Crash 3 of the issue: a `send` after its daemon was killed runs its own node; it exits while a
  // slow relay is still connecting, and nostr-tools closes that socket after removing its error
  // handler ("WebSocket was closed before the connection was established", an unhandled 'error').
  it(
    'exits cleanly while one of its relays is still connecting',
    async (t) => {
      const { relay, A } = await twoDataDirs(t);
      const tarpit = createServer((s) => s.on('error', () => {})); // accepts, never answers the handshake
      await new Promise<void>((r) => tarpit.listen(0, '127.0.0.1', r));
      t.after(() => tarpit.close());
      await json(['init', ...A, '--relay', relay.url]);
      await json(['relays', 'add', ...A, `ws://127.0.0.1:${(tarpit.address() as { port: number }).port}`]);
      const published = await rrelay(['publish', ...A]);
      assert.doesNotMatch(published.stderr, /Unhandled 'error' event/);
      assert.equal(published.code, 0, published.stderr);
    },
  );
});
