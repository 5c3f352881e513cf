import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { LocalApi } from '../src/cli/dispatch.js';
import { NodeService } from '../src/cli/node-service.js';
import { DEFAULT_SETTINGS } from '../src/cli/settings.js';
import { rpcSession } from '../src/cli/rpc.js';
import { startWeb, WebUi } from '../src/cli/web.js';
import { cliEnv, json, rrelay, start, tempRoot } from './support/cli.js';
import { eventually } from './support/nodes.js';
import { startTestRelay } from './support/relay.js';

/**
 * `rrelay ui` (docs/protocol.md, "Web app"): served by a daemon it starts or by one already running,
 * to a real browser's requests as `fetch` and a `ws` WebSocket make them, with the token, Host and
 * Origin checks; the page's files come from a directory of this test (RRELAY_WEB_DIR).
 */

interface UiLine {
  ui: string;
  port: number;
  daemon: 'started' | 'running';
}

const CSP = (port: number) =>
  `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws://127.0.0.1:${port}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

const tokenOf = (ui: UiLine) => ui.ui.split('#token=')[1]!;

/** POST /api as the page does: its Origin, the token, JSON; `headers` replace any of them. */
function api(port: number, token: string, body: object, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/api`, {
    method: 'POST',
    headers: { Origin: `http://127.0.0.1:${port}`, Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

/** A request with a Host header of our choosing, which fetch does not allow. */
function withHost(port: number, host: string, path: string): Promise<{ status: number; csp: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { Host: host } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode!, csp: res.headers['content-security-policy'] as string | undefined });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A JSON-RPC connection over the page's WebSocket. */
class Page {
  readonly events: { type: string; message?: { text: string; from: string } }[] = [];
  readonly closed: Promise<number>;
  private nextId = 1;
  private readonly pending = new Map<number, (msg: { result?: unknown; error?: { message: string } }) => void>();

  constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { id?: number; method?: string; params?: Page['events'][number]; result?: unknown; error?: { message: string } };
      if (msg.method === 'event') this.events.push(msg.params!);
      else this.pending.get(msg.id!)?.(msg);
    });
  }

  call(method: string, params: object = {}): Promise<{ result?: unknown; error?: { message: string } }> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    return new Promise((resolve) => this.pending.set(id, resolve));
  }
}

/** Opens the page's WebSocket: the Page, or the HTTP status it was refused with. */
function openPage(port: number, token: string, origin = `http://127.0.0.1:${port}`): Promise<Page | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/rpc`, ['rrelay.v1', `bearer.${token}`], { origin });
    ws.once('open', () => resolve(new Page(ws)));
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode!));
    ws.once('error', reject);
  });
}

/** Whether anything listens on the port. */
const serving = (port: number) =>
  fetch(`http://127.0.0.1:${port}/`).then(
    () => true,
    () => false,
  );

/**
 * Runs an `rrelay ui` that must fail: its exit code and stderr. One that serves instead would never
 * exit: it is stopped after a bound, and fails the test rather than hang it.
 */
async function refused(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  const r = await start(args, /^/, env); // ready at once: what matters is how it ends
  let timer: NodeJS.Timeout | undefined;
  const served = new Promise<'served'>((resolve) => (timer = setTimeout(resolve, 20_000, 'served')));
  const code = await Promise.race([r.exited, served]);
  clearTimeout(timer);
  if (code === 'served') {
    await r.stop();
    assert.fail(`rrelay ${args.join(' ')} served instead of failing: ${r.output()}`);
  }
  return { code, stderr: r.stderr() };
}

describe('rrelay ui: the web app, served by the daemon', () => {
  it('with no daemon it becomes one: static files, POST /api and the WebSocket with their checks, follow, the same token after a restart, a port in use', async (t) => {
    const relay = await startTestRelay();
    const root = tempRoot(t);
    const web = join(root, 'web');
    mkdirSync(web);
    writeFileSync(join(web, 'index.html'), '<!doctype html><title>rrelay</title>');
    writeFileSync(join(web, 'app.js'), 'console.log(1);');
    const env = cliEnv({ RRELAY_WEB_DIR: web });
    const A = ['--data-dir', join(root, 'alice')];
    const B = ['--data-dir', join(root, 'bob')];
    const running: { stop(): Promise<unknown> }[] = [];
    t.after(async () => {
      for (const r of running) await r.stop();
      await relay.stop();
    });
    const alice = await json<{ fingerprint: string }>(['init', ...A, '--relay', relay.url]);
    await json(['init', ...B, '--relay', relay.url]);

    const ui = await start(['ui', ...A, '--port', '0', '--json'], /"ui":/, env);
    running.push(ui);
    const line = JSON.parse(ui.output().split('\n')[0]!) as UiLine;
    assert.equal(line.daemon, 'started');
    assert.match(line.ui, new RegExp(`^http://127\\.0\\.0\\.1:${line.port}/#token=[0-9a-f]{64}$`));
    const { port } = line;
    const token = tokenOf(line);
    const tokenFile = join(root, 'alice', 'ui-token');
    assert.equal(readFileSync(tokenFile, 'utf8').trim(), token);
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    assert.doesNotMatch(ui.stderr(), new RegExp(token), 'the token is never logged');

    // Other commands talk to the daemon it started, through the socket.
    assert.equal((await json<{ daemon: boolean }>(['status', ...A])).daemon, true);

    // Static files: no token needed; anything else 404; every response with the CSP.
    const index = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(index.status, 200);
    assert.equal(await index.text(), '<!doctype html><title>rrelay</title>');
    assert.match(index.headers.get('content-type')!, /^text\/html/);
    assert.equal(index.headers.get('content-security-policy'), CSP(port));
    assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(index.headers.get('cache-control'), 'no-store');
    assert.equal((await fetch(`http://127.0.0.1:${port}/app.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8');
    const nope = await fetch(`http://127.0.0.1:${port}/nope`);
    assert.equal(nope.status, 404);
    assert.equal(nope.headers.get('content-security-policy'), CSP(port));
    assert.equal((await fetch(`http://127.0.0.1:${port}/`, { method: 'POST' })).status, 405);

    // POST /api: the same answer as the CLI's, with the token and the page's Origin only.
    const whoami = { jsonrpc: '2.0', id: 1, method: 'whoami' };
    const ok = await api(port, token, whoami);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('content-security-policy'), CSP(port));
    const answered = (await ok.json()) as { id: number; result: { fingerprint: string } };
    assert.equal(answered.id, 1);
    assert.deepEqual(answered.result, await json(['whoami', ...A]));
    assert.equal(answered.result.fingerprint, alice.fingerprint);
    const localhost = await api(port, token, whoami, { Origin: `http://localhost:${port}` });
    assert.equal(localhost.status, 403, 'the Origin must match the Host (127.0.0.1 here)');
    const wrong = await api(port, token.replace(/^./, (c) => (c === '0' ? '1' : '0')), whoami);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('content-security-policy'), CSP(port));
    assert.match(((await wrong.json()) as { error: string }).error, /token/);
    assert.equal((await api(port, token, whoami, { Authorization: '' })).status, 401);
    assert.equal((await api(port, `${token}0`, whoami)).status, 401, 'a longer token is wrong too');
    assert.equal((await api(port, token, whoami, { Origin: 'http://evil.example' })).status, 403);
    assert.equal((await api(port, token, whoami, { 'Content-Type': 'text/plain' })).status, 415);
    const big = await api(port, token, { ...whoami, params: { pad: 'x'.repeat(1 << 20) } });
    assert.equal(big.status, 413);
    const follow = (await (await api(port, token, { jsonrpc: '2.0', id: 2, method: 'follow' })).json()) as { error: { message: string } };
    assert.match(follow.error.message, /follow streams events/, 'follow needs the WebSocket');
    const rebinding = await withHost(port, `evil.example:${port}`, '/');
    assert.equal(rebinding.status, 403, 'a foreign Host (DNS rebinding) is refused');
    assert.equal(rebinding.csp, CSP(port));
    assert.equal((await withHost(port, `localhost:${port}`, '/')).status, 200);

    // The WebSocket: refused without the token or from another origin, before upgrading.
    assert.equal(await openPage(port, '0'.repeat(64)), 401);
    assert.equal(await openPage(port, token, 'http://evil.example'), 403);
    const page = await openPage(port, token);
    assert.ok(page instanceof Page);
    assert.equal(page.ws.protocol, 'rrelay.v1');
    assert.deepEqual((await page.call('whoami')).result, answered.result);
    assert.match((await page.call('nosuchmethod')).error!.message, /no method "nosuchmethod"/);
    assert.equal((await page.call('follow')).result, true);

    // Bob, without a daemon, writes to alice from her bundle: the page gets the message live.
    await eventually(async () => ((await rrelay(['peers', ...B, '--json'])).json as { fingerprint: string }[]).some((p) => p.fingerprint === alice.fingerprint) || undefined, 'bob discovers alice');
    assert.equal((await rrelay(['send', ...B, alice.fingerprint, 'hello through the web'])).code, 0);
    const event = await eventually(() => page.events.find((e) => e.type === 'message'), 'the page gets the message');
    assert.equal(event.message!.text, 'hello through the web');

    // Another data directory's `rrelay ui` on the same port: it becomes bob's daemon, then fails.
    const taken = await refused(['ui', ...B, '--port', String(port)], env);
    assert.equal(taken.code, 2, taken.stderr);
    assert.match(taken.stderr, new RegExp(`port ${port} is in use on 127\\.0\\.0\\.1: choose another with --port`));

    // Ctrl-C stops the daemon it started, and the page is told (1001, going away).
    assert.equal(await ui.stop('SIGINT'), 0, ui.stderr());
    assert.equal(await page.closed, 1001);
    assert.equal(await serving(port), false);

    // The same URL after a restart on the same port.
    const again = await start(['ui', ...A, '--port', String(port), '--json'], /"ui":/, env);
    running.push(again);
    assert.equal((JSON.parse(again.output().split('\n')[0]!) as UiLine).ui, line.ui);
    assert.equal((await api(port, token, whoami)).status, 200);
    assert.equal(await again.stop('SIGINT'), 0);
  });

  it('with a daemon running, the daemon serves it while an `rrelay ui` holds it, and only then', async (t) => {
    const relay = await startTestRelay();
    const root = tempRoot(t);
    const env = cliEnv({ RRELAY_WEB_DIR: root }); // no index.html: GET / says it is not built
    const dataDir = join(root, 'carol');
    const C = ['--data-dir', dataDir];
    const running: { stop(): Promise<unknown> }[] = [];
    t.after(async () => {
      for (const r of running) await r.stop();
      await relay.stop();
    });
    const carol = await json<{ fingerprint: string }>(['init', ...C, '--relay', relay.url]);
    const help = await rrelay(['ui', '--help']);
    assert.equal(help.code, 0);
    for (const says of [/#token=/, /secret/, /127\.0\.0\.1 only/, /Ctrl-C stops it/, /--port/]) assert.match(help.stdout, says);

    // In process (no daemon) serveUi answers an error, as follow does.
    const local = new LocalApi(await NodeService.open({ dataDir, passphrase: 'test passphrase', log: () => {}, daemon: false, settings: DEFAULT_SETTINGS }));
    await assert.rejects(local.call('serveUi', { port: 0 }), /serveUi serves the web app while its connection stays open: it needs a daemon/);
    await local.close();

    const daemon = await start(['daemon', ...C, '--json'], /"daemon":"running"/, env);
    running.push(daemon);
    const otherSettings = await refused(['ui', ...C, '--addressing', 'seed', '--port', '0'], env);
    assert.equal(otherSettings.code, 5, 'the daemon runs with other settings: refused, as every command is');
    assert.match(otherSettings.stderr, /the running daemon uses --addressing private/);
    const first = await start(['ui', ...C, '--port', '0', '--json'], /"ui":/, env);
    running.push(first);
    const line = JSON.parse(first.output().split('\n')[0]!) as UiLine;
    assert.equal(line.daemon, 'running');
    const { port } = line;
    const token = tokenOf(line);
    const ok = (await (await api(port, token, { jsonrpc: '2.0', id: 7, method: 'whoami' })).json()) as { result: { fingerprint: string } };
    assert.equal(ok.result.fingerprint, carol.fingerprint);
    const missing = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /not built/);

    // A second `rrelay ui` on the same port shares it; another port is refused.
    const second = await start(['ui', ...C, '--port', String(port), '--json'], /"ui":/, env);
    running.push(second);
    assert.equal((JSON.parse(second.output().split('\n')[0]!) as UiLine).ui, line.ui);
    const other = await refused(['ui', ...C, '--port', String(port === 65535 ? port - 1 : port + 1)], env);
    assert.equal(other.code, 2);
    assert.match(other.stderr, new RegExp(`already served on port ${port}`));

    const page = await openPage(port, token);
    assert.ok(page instanceof Page);
    assert.equal(await first.stop('SIGINT'), 0);
    assert.equal((await page.call('whoami')).result !== undefined, true, 'still served while the second holds it');
    assert.equal(await second.stop('SIGINT'), 0);
    assert.equal(await page.closed, 1001, 'the last holder gone, the page is told');
    await eventually(async () => ((await serving(port)) ? undefined : true), 'the daemon stops serving');
    assert.equal((await json<{ daemon: boolean }>(['status', ...C])).daemon, true, 'the daemon itself runs on');

    // The daemon stopping ends `rrelay ui` with 1, saying so.
    const third = await start(['ui', ...C, '--port', '0'], /^http:\/\/127\.0\.0\.1:\d+\/#token=[0-9a-f]{64}$/m, env);
    running.push(third);
    assert.equal(await daemon.stop('SIGINT'), 0);
    assert.equal(await third.exited, 1);
    assert.match(third.stderr(), /the daemon stopped: the web app is no longer served/);
  });

  it('POST /api answers any body with one JSON-RPC response (or 204 for a notification), and keeps serving', async (t) => {
    const root = tempRoot(t);
    const dataDir = join(root, 'dave');
    await json(['init', '--data-dir', dataDir, '--relay', 'ws://127.0.0.1:1']); // never connected: only read-only methods below
    const service = await NodeService.open({ dataDir, passphrase: 'test passphrase', log: () => {}, daemon: false, settings: DEFAULT_SETTINGS });
    const token = 'ab'.repeat(32);
    const server = await startWeb({ service, port: 0, token, assets: root, log: () => {} });
    t.after(async () => {
      await server.close('done');
      await (service.ui as WebUi | undefined)?.close();
      await service.close();
    });
    const { port } = server;
    const id = fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.boolean(), fc.constant(undefined));
    const method = fc.constantFrom('whoami', 'status', 'contacts', 'groups', 'history', 'follow', 'serveUi', 'nosuch', '__proto__', 'constructor');
    const request = fc.record({ jsonrpc: fc.constant('2.0'), id, method, params: fc.oneof(fc.jsonValue(), fc.constant(undefined)) }, { requiredKeys: ['method'] });
    const body = fc.oneof(fc.string(), fc.jsonValue().map((v) => JSON.stringify(v)), request.map((r) => JSON.stringify(r)));
    await fc.assert(
      fc.asyncProperty(body, async (text) => {
        const res = await fetch(`http://127.0.0.1:${port}/api`, {
          method: 'POST',
          headers: { Origin: `http://127.0.0.1:${port}`, Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: text,
        });
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        const r = parsed as { id?: unknown; method?: unknown } | undefined;
        const isRequest = typeof r === 'object' && r !== null && !Array.isArray(r) && typeof r.method === 'string';
        if (isRequest && r.id === undefined) return assert.equal(res.status, 204);
        assert.equal(res.status, 200);
        const answer = (await res.json()) as { jsonrpc: string; id: unknown; result?: unknown; error?: { code: number; message: string } };
        assert.equal(answer.jsonrpc, '2.0');
        assert.equal(answer.id, isRequest && (typeof r.id === 'number' || typeof r.id === 'string') ? r.id : null);
        assert.equal('result' in answer !== 'error' in answer, true, 'a result or an error');
        if (answer.error) assert.equal(typeof answer.error.message, 'string');
      }),
      { numRuns: 150 },
    );
    const ok = (await (await api(port, token, { jsonrpc: '2.0', id: 1, method: 'whoami' })).json()) as { result: { fingerprint: string } };
    assert.match(ok.result.fingerprint, /^[0-9a-f]{64}$/);

    // A connection that closes while its serveUi is still starting the server does not keep it served.
    service.ui = new WebUi({ service, dataDir, assets: root, log: () => {} });
    let answer: { result?: { port: number } } = {};
    const session = rpcSession(service, (msg) => (answer = msg as typeof answer), () => {});
    const handled = session.handle(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'serveUi', params: { port: 0 } }));
    session.close();
    await handled;
    const uiPort = answer.result!.port;
    await eventually(async () => ((await serving(uiPort)) ? undefined : true), 'the web app no longer served');
  });
});

describe('rrelay demo --ui', () => {
  it('starts a relay and two identities that met by invite, each with its web app, and deletes everything at Ctrl-C', async (t) => {
    const tmp = tempRoot(t);
    const demo = await start(['demo', '--ui', '--port', '0', '--json'], /"step":"serving"/, cliEnv({ TMPDIR: tmp }));
    t.after(() => demo.stop('SIGKILL'));
    const uis = demo
      .output()
      .split('\n')
      .filter((l) => l.includes('"step":"ui"'))
      .map((l) => JSON.parse(l) as { who: string; url: string });
    assert.deepEqual(uis.map((u) => u.who), ['alice', 'bob']);
    const [alice, bob] = uis.map((u) => ({ port: Number(new URL(u.url).port), token: u.url.split('#token=')[1]! }));
    const call = async (side: { port: number; token: string }, method: string) => {
      const res = await api(side.port, side.token, { jsonrpc: '2.0', id: 1, method });
      assert.equal(res.status, 200);
      return ((await res.json()) as { result: { name: string; lastText: string | null; unread: number }[] }).result;
    };
    // Each names the other by the nickname the invite carried; alice's greeting waits unread at bob.
    const atBob = await eventually(async () => {
      const list = await call(bob!, 'conversations');
      return list[0]?.unread === 1 ? list : undefined;
    }, "alice's greeting at bob");
    assert.deepEqual(atBob.map((c) => [c.name, c.lastText]), [['alice', 'Hi bob! Answer me from your web app.']]);
    assert.deepEqual((await call(alice!, 'conversations')).map((c) => c.name), ['bob']);
    assert.equal(await demo.stop('SIGINT'), 0);
    assert.deepEqual(readdirSync(tmp), [], 'both identities and the relay are deleted');
  });
});
