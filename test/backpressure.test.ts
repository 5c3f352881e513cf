import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import type { FollowEvent } from '../src/cli/api.js';
import { NodeService } from '../src/cli/node-service.js';
import { connectRpc, serveRpc, stopRpc } from '../src/cli/rpc.js';
import { startWeb, SUBPROTOCOL } from '../src/cli/web.js';
import { eventually, pairOnOneRelay } from './support/nodes.js';

/** Small, so that a backlog of a few hundred KiB overflows it (the daemon's: 16 MiB, 30 s). */
const LIMITS = { maxQueued: 64 * 1024, stallMs: 1000 };
const BACKLOG = 24;

/**
 * A client that stops reading (events, or answers it asked for) is cut once more than maxQueued bytes wait for it and it takes none for stallMs, on the Unix socket and on the web
 * app's WebSocket, and loses nothing by it: what `follow` handed out stays unread until acknowledged.
 */
describe('a client that stops reading', () => {
  it('is cut off, on the socket and the WebSocket, and the next follower gets every message', async (t) => {
    const { alice, bob, bobFp } = await pairOnOneRelay(t);
    for (let i = 0; i < BACKLOG; i++) alice.messaging.send(bobFp, `${i} ${'x'.repeat(30_000)}`);
    await eventually(() => (bob.messaging.unread().length === BACKLOG ? true : undefined), 'the backlog at bob');
    // Counts follows begun and ended: the server side of a cut, which a client that reads nothing cannot see.
    const follows = { begun: 0, ended: 0 };
    const service = new (class extends NodeService {
      override follow(onEvent: (e: FollowEvent) => void): () => void {
        follows.begun++;
        const stop = super.follow(onEvent);
        return () => (follows.ended++, stop());
      }
    })(bob, true);
    const cutAfter = (n: number) => eventually(() => (follows.begun === n && follows.ended === n ? true : undefined), `follow ${n} cut off`);
    const follow = `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'follow', params: {} })}\n`;

    // The Unix socket: a follower that never reads.
    const socketPath = join(tmpdir(), `rrelay-bp-${process.pid}.sock`);
    const server = await serveRpc(service, socketPath, () => {}, LIMITS);
    t.after(() => stopRpc(server));
    const stalled = createConnection(socketPath);
    stalled.on('error', () => {});
    await new Promise((r) => stalled.once('connect', r));
    stalled.pause();
    stalled.write(follow);
    await cutAfter(1);
    assert.equal(await new Promise<number>((r) => server.getConnections((_, n) => r(n))), 0);
    stalled.destroy();

    // The web app's WebSocket: a page that never reads.
    const token = 'a'.repeat(64);
    const web = await startWeb({ service, port: 0, token, assets: '/nonexistent', log: () => {}, limits: LIMITS });
    t.after(() => web.close('test over'));
    const page = new WebSocket(`ws://127.0.0.1:${web.port}/rpc`, [SUBPROTOCOL, `bearer.${token}`], { origin: `http://127.0.0.1:${web.port}` });
    await new Promise((r, j) => page.once('open', r).once('error', j));
    page.pause();
    const closed = new Promise<number>((r) => page.once('close', (code) => r(code)));
    page.send(follow.trim());
    // Loopback TCP buffers megabytes on its own: answers of ~0.7 MiB each fill it, then the cap.
    const history = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'history', params: { contact: alice.whoami().fingerprint } });
    for (let i = 0; i < 40; i++) page.send(history);
    await cutAfter(2);
    page.resume();
    assert.equal(await closed, 1006, 'terminated, not closed politely: it was not reading');

    // Nothing was acknowledged, so a follower that reads gets the whole backlog (a burst over the cap,
    // which it takes in time: it is not cut); the daemon serves on.
    const client = (await connectRpc(socketPath))!;
    t.after(() => client.close());
    const texts: string[] = [];
    await client.follow((e: FollowEvent) => e.type === 'message' && texts.push(e.message.text.split(' ')[0]!));
    await eventually(() => (texts.length === BACKLOG ? true : undefined), 'the whole backlog');
    assert.deepEqual(texts, Array.from({ length: BACKLOG }, (_, i) => String(i)));
    assert.equal(bob.messaging.unread().length, BACKLOG, 'still unread: nobody acknowledged');
  });
});
