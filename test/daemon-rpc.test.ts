import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { API, METHODS } from '../src/cli/api.js';
import { LocalApi } from '../src/cli/dispatch.js';
import { NodeService } from '../src/cli/node-service.js';
import { serveRpc } from '../src/cli/rpc.js';
import { eventually, pairOnOneRelay, testNodes } from './support/nodes.js';
import { startTestRelay } from './support/relay.js';
import { json, jsonLines, rrelay, start, twoDataDirs } from './support/cli.js';

/** Raw JSON-RPC lines over a daemon's socket: what any client (not ours) would send. */
async function rawClient(socketPath: string) {
  const socket = createConnection(socketPath);
  await new Promise((r) => socket.once('connect', r));
  const replies: Record<string, unknown>[] = [];
  createInterface({ input: socket }).on('line', (l) => replies.push(JSON.parse(l) as Record<string, unknown>));
  return {
    async send(line: string): Promise<Record<string, unknown>> {
      const before = replies.length;
      socket.write(`${line}\n`);
      return eventually(() => replies[before], `an answer to ${line}`);
    },
    close: () => socket.end(),
  };
}

describe('daemon JSON-RPC', () => {
  it('rejects bad requests with JSON-RPC errors that name the field, never an internal TypeError', async (t) => {
    const relay = await startTestRelay();
    t.after(() => relay.stop());
    const nodes = testNodes(t);
    const node = await nodes.open('alice', [relay.url]);
    const service = new NodeService(node, true);
    const logged: string[] = [];
    const socketPath = join(nodes.dataDir('alice'), 'test.sock');
    const server = await serveRpc(service, socketPath, (l) => logged.push(l));
    t.after(() => server.close());
    const c = await rawClient(socketPath);
    t.after(() => c.close());
    const error = (r: Record<string, unknown>) => r.error as { code: number; message: string; data?: { code: string } };

    assert.equal(error(await c.send('{not json')).code, -32700);
    assert.equal(error(await c.send('[1,2]')).code, -32600);
    const unknown = error(await c.send('{"jsonrpc":"2.0","id":1,"method":"nosuch","params":{}}'));
    assert.equal(unknown.code, -32601);
    assert.match(unknown.message, /nosuch/);
    const positional = error(await c.send('{"jsonrpc":"2.0","id":2,"method":"resetSession","params":["bob",null]}'));
    assert.equal(positional.code, -32602);
    assert.match(positional.message, /named parameters/);
    const missing = error(await c.send('{"jsonrpc":"2.0","id":3,"method":"resetSession","params":{}}'));
    assert.equal(missing.code, -32602);
    assert.match(missing.message, /resetSession: contact: /);
    const illTyped = error(await c.send('{"jsonrpc":"2.0","id":4,"method":"send","params":{"contact":"bob","text":7}}'));
    assert.equal(illTyped.code, -32602);
    assert.match(illTyped.message, /text: .*expected string/);
    const extra = error(await c.send('{"jsonrpc":"2.0","id":5,"method":"whoami","params":{"verbose":true}}'));
    assert.equal(extra.code, -32602);
    assert.match(extra.message, /verbose/);
    const app = error(await c.send('{"jsonrpc":"2.0","id":6,"method":"resetSession","params":{"contact":"nosuchcontact"}}'));
    assert.equal(app.code, -32000);
    assert.equal(app.data?.code, 'NO_SESSION');
    // An absent optional, or null for it, is "not given": never `null.toLowerCase()`.
    const nullVia = error(await c.send('{"jsonrpc":"2.0","id":7,"method":"resetSession","params":{"contact":"nosuchcontact","via":null}}'));
    assert.equal(nullVia.data?.code, 'NO_SESSION');
    const me = await c.send('{"jsonrpc":"2.0","id":8,"method":"whoami"}');
    assert.deepEqual(me, { jsonrpc: '2.0', id: 8, result: node.whoami() });

    // A result that does not match its schema is an internal error, and logged.
    const whoami = API.whoami as { handler: unknown };
    const real = whoami.handler;
    whoami.handler = () => ({ fingerprint: 'not hex' });
    try {
      const bad = error(await c.send('{"jsonrpc":"2.0","id":9,"method":"whoami","params":{}}'));
      assert.equal(bad.code, -32603);
      assert.equal(bad.data?.code, 'INTERNAL');
      assert.ok(logged.some((l) => l.includes('whoami') && l.includes('fingerprint')), logged.join('\n'));
    } finally {
      whoami.handler = real;
    }
    assert.equal(logged.filter((l) => /TypeError/.test(l)).length, 0, logged.join('\n'));
  });

  it('returns the same values in process as through the socket', async (t) => {
    const relay = await startTestRelay();
    t.after(() => relay.stop());
    const nodes = testNodes(t);
    const node = await nodes.open('alice', [relay.url]);
    const local = new LocalApi(new NodeService(node, false));
    const invalid = await local.call('send', { contact: 'x', text: 'hi', waitMs: -1 }).catch((e: Error) => e);
    assert.ok(invalid instanceof Error && /waitMs/.test(invalid.message), String(invalid));
    const me = await local.call('whoami');
    assert.deepEqual(me, node.whoami());
    const relays = await local.call('relays');
    assert.deepEqual(relays, JSON.parse(JSON.stringify(node.relays())));
  });

  it("lists conversations with their unread counts, and reading one clears only that one's", async (t) => {
    const { alice, bob, bobFp } = await pairOnOneRelay(t);
    const api = new LocalApi(new NodeService(bob, true));
    const aliceFp = alice.whoami().fingerprint;
    for (const text of ['one', 'two']) alice.messaging.send(bobFp, text);
    const conversation = () => api.call('conversations').then((list) => list.find((c) => c.id === aliceFp));
    const seen = await eventually(async () => ((await conversation())?.unread === 2 ? conversation() : undefined), 'both messages unread at bob');
    assert.deepEqual([seen?.kind, seen?.lastText, seen?.lastDirection], ['contact', 'two', 'in']);
    assert.deepEqual(await api.call('readConversation', { contact: aliceFp.slice(0, 16) }), { id: aliceFp, unread: 0 });
    assert.equal((await conversation())?.unread, 0);
    assert.equal((await api.call('receive')).length, 2, "the CLI's receive cursor is its own");
    const history = await api.call('history', { contact: aliceFp });
    assert.deepEqual(history.map((m) => [m.text, m.direction, m.group]), [['one', 'in', null], ['two', 'in', null]]);
    assert.deepEqual((await api.call('history', { contact: aliceFp, direct: true, limit: 1 })).map((m) => m.text), ['two']);
    assert.deepEqual((await api.call('history', { limit: 1 })).map((m) => m.text), ['two'], "everyone's: the newest");
    const groupDirect = await api.call('history', { group: 'x', direct: true }).catch((e: Error) => e);
    assert.match(String(groupDirect), /`direct` takes a contact/);
    const both = await api.call('readConversation', { contact: aliceFp, group: 'x' }).catch((e: Error) => e);
    assert.match(String(both), /a contact or a group, not both/);
  });

  it('a relay added to a running node gets every subscription; a removed one is dropped', async (t) => {
    const [one, two] = await Promise.all([startTestRelay(), startTestRelay()]);
    t.after(async () => {
      await one.stop();
      await two.stop();
    });
    const nodes = testNodes(t);
    const alice = await nodes.open('alice', [one.url]);
    const bob = await nodes.open('bob', [two.url]);
    await Promise.all([alice.start(), bob.start()]);
    await alice.start(); // idempotent: still one connection per lane
    assert.equal(one.clients(), 2);
    assert.equal(alice.addRelay(two.url), true);
    assert.equal(alice.addRelay(two.url), false);
    // alice's bundle reaches the new relay (what it missed), bob starts a session from it, and the
    // message, on that relay only, reaches alice through the subscriptions the new link made.
    await eventually(() => (bob.bundles.peers().some((p) => p.fingerprint === alice.whoami().fingerprint) ? true : undefined), 'bob finds alice on the added relay');
    const got = new Promise<string>((resolve) => alice.once('message', (m) => resolve(m.text)));
    bob.messaging.send(alice.whoami().fingerprint, 'through the added relay');
    assert.equal(await got, 'through the added relay');
    assert.deepEqual(alice.status().relays.map((r) => [r.url, r.connected]), [[one.url, true], [two.url, true]]);
    assert.equal(alice.removeRelay(two.url), true);
    assert.equal(alice.removeRelay(two.url), false);
    assert.deepEqual(alice.status().relays.map((r) => r.url), [one.url]);
    await eventually(() => (two.clients() === 2 ? true : undefined), 'alice leaves the removed relay; bob stays');
    assert.equal(one.clients(), 2);
  });

  it('lists every method of the table in docs/protocol.md', () => {
    const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Daemon JSON-RPC'), doc.indexOf('\n## ', doc.indexOf('## Daemon JSON-RPC') + 1));
    assert.ok(section.length > 100, 'the section is there');
    const rows = section.split('\n').filter((l) => l.startsWith('| `'));
    for (const m of METHODS) {
      const row = rows.find((l) => l.startsWith(`| \`${m}\` |`));
      assert.ok(row, `${m} is in the method table of the doc`);
      const params = row.split(' | ')[1]!;
      for (const p of Object.keys(API[m].params.shape)) assert.match(params, new RegExp(`\\b${p}\\??:`), `${m}'s param ${p} is documented`);
    }
    assert.equal(rows.length, METHODS.length, 'no method in the doc that the table lacks');
  });
});

describe('rrelay through a running daemon', () => {
  it('opens one relay connection per daemon: the first queued command does not start the node again', async (t) => {
    const { relay, daemons, A } = await twoDataDirs(t);
    await json(['init', ...A, '--relay', relay.url]);
    daemons.push(await start(['daemon', ...A, '--json'], /"daemon":"running"/));
    // One connection per lane (identity, anonymous).
    await eventually(() => (relay.clients() === 2 ? true : undefined), 'the daemon connects');
    assert.deepEqual(await json(['publish', ...A]), { published: true, pending: 0 });
    await json(['invite', 'create', ...A]);
    const sent = await rrelay(['send', ...A, 'nobody', 'hi']);
    assert.equal(sent.code, 4);
    assert.equal(relay.clients(), 2, 'still one connection per lane: no second relay set was opened');
    await json(['publish', ...A]);
    assert.equal(relay.clients(), 2);
  });

  it('resets a session through the daemon (an absent --via is not null)', async (t) => {
    const { relay, root, daemons, A, B } = await twoDataDirs(t);
    await json(['init', ...A, '--relay', relay.url]);
    const bob = await json<{ fingerprint: string }>(['init', ...B, '--relay', relay.url]);
    daemons.push(await start(['daemon', ...A, '--json'], /"daemon":"running"/));
    daemons.push(await start(['daemon', ...B, '--json'], /"daemon":"running"/));
    const file = join(root, 'invite.txt');
    await json(['invite', 'create', ...A, '--out', file]);
    await json(['invite', 'accept', ...B, file]);
    for (const D of [A, B]) await eventually(async () => ((await jsonLines(['kx', 'ls', ...D])).length === 0 ? true : undefined), 'the key exchange completes');
    const reset = await rrelay(['reset', ...A, bob.fingerprint.slice(0, 16), '--json']);
    assert.equal(reset.code, 0, reset.stderr);
    assert.equal((reset.json[0] as { peer: string }).peer, bob.fingerprint);
    for (const D of [A, B]) await eventually(async () => ((await jsonLines(['kx', 'ls', ...D])).length === 0 ? true : undefined), 'the reset completes');
  });

  it('relays add and rm take effect on the running node, and status shows it', async (t) => {
    const { relay, daemons, A } = await twoDataDirs(t);
    const second = await startTestRelay();
    t.after(() => second.stop());
    await json(['init', ...A, '--relay', relay.url]);
    daemons.push(await start(['daemon', ...A, '--json'], /"daemon":"running"/));
    assert.deepEqual(await json(['relays', 'add', ...A, second.url]), { url: second.url, added: true });
    await eventually(() => (second.clients() === 2 ? true : undefined), 'the daemon connects to the added relay (both lanes)');
    const connected = async (url: string) => (await json<{ relays: { url: string; connected: boolean }[] }>(['status', ...A])).relays.find((r) => r.url === url)?.connected;
    await eventually(async () => ((await connected(second.url)) ? true : undefined), 'status shows the added relay connected');
    assert.deepEqual(await json(['relays', 'rm', ...A, second.url]), { url: second.url, removed: true });
    await eventually(() => (second.clients() === 0 ? true : undefined), 'the daemon drops the removed relay');
    assert.equal(await connected(second.url), undefined, 'status no longer lists it');
    assert.equal(await connected(relay.url), true);
    assert.equal(relay.clients(), 2);
    const again = await rrelay(['relays', 'rm', ...A, second.url]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /not a configured relay/);
  });
});
