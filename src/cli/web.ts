import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { fail } from '../errors.js';
import { paths } from '../node/data-dir.js';
import { privateFile, type Warn, warnOnStderr } from '../store/private-files.js';
import type { NodeService, UiHost, UiLease } from './node-service.js';
import { cutWhenStalled, MAX_LINE, QUEUE_LIMITS, type QueueLimits, rpcSession } from './rpc.js';

/**
 * The web app's server (docs/protocol.md, "Web app"): on 127.0.0.1 only, the page's static files,
 * `POST /api` (one JSON-RPC request) and `GET /rpc` (the WebSocket, the Unix socket's protocol one
 * message per frame), both through the same session as the daemon's socket (`rpcSession`). Every
 * call needs the token of `<data-dir>/ui-token` and this server's own Origin; every response
 * carries a strict Content-Security-Policy, and a foreign Host header is refused (DNS rebinding).
 */

/** The WebSocket subprotocol: the version of this protocol. The token rides in a second one, `bearer.TOKEN`. */
export const SUBPROTOCOL = 'rrelay.v1';
/** What `npm run build` bundles from web/ (dist/src/cli/web.js → dist/web/). */
export const DEFAULT_ASSETS = fileURLToPath(new URL('../../web/', import.meta.url));
/** A page that went away without closing (a laptop put to sleep) is found and dropped. */
const PING_MS = 30_000;
/** How long a closing WebSocket may take to answer our close frame before it is cut. */
const CLOSE_GRACE_MS = 1000;
const TOKEN = /^[0-9a-f]{64}$/;

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

/**
 * The token that grants the web app's session: 32 random bytes as 64 hex digits in
 * `<data-dir>/ui-token` (0600), made on first use and kept, so that a URL keeps working after the
 * daemon restarts. Anything else in the file (empty, damaged) is replaced.
 */
export function uiToken(dataDir: string, random: (n: number) => Buffer = randomBytes, warn: Warn = warnOnStderr): string {
  const path = paths(dataDir).uiToken;
  privateFile(path, warn);
  const kept = readFileSync(path, 'utf8').trim();
  if (TOKEN.test(kept)) return kept;
  const token = random(32).toString('hex');
  writeFileSync(path, `${token}\n`);
  return token;
}

function securityHeaders(port: number): Record<string, string> {
  return {
    'Content-Security-Policy': `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws://127.0.0.1:${port}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
  };
}

/** Constant time on equal lengths; the length (64) is no secret. */
function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The path without the query; never parsed as a URL, so `//host/x` is no host. */
const pathOf = (req: IncomingMessage) => (req.url ?? '/').split('?')[0]!;

/** The body, or null when it is over `max` bytes. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  if (Number(req.headers['content-length']) > max) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) resolve(null);
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export interface WebServer {
  readonly port: number;
  /** The page's URL, with the token in its fragment (a browser never sends it). */
  readonly url: string;
  /** Stops listening and closes every WebSocket with 1001 (`reason`: the page shows it while it reconnects). */
  close(reason: string): Promise<void>;
}

/** Listens on 127.0.0.1:`port` (0: any free port); a port in use is an INVALID_ARGUMENT naming `--port`. */
export async function startWeb(opts: { service: NodeService; port: number; token: string; assets: string; log: (line: string) => void; limits?: QueueLimits }): Promise<WebServer> {
  const { service, token, assets, log } = opts;
  let port = opts.port; // the one bound, once listening
  const hostOk = (host: string | undefined) => host === `127.0.0.1:${port}` || host === `localhost:${port}`;
  const originOk = (req: IncomingMessage) => hostOk(req.headers.host) && req.headers.origin === `http://${req.headers.host}`;
  const why = {
    host: () => `refused: the Host header must be 127.0.0.1:${port} or localhost:${port}`,
    origin: () => `refused: the Origin must be this page's, http://127.0.0.1:${port} (or localhost)`,
    token: 'refused: the token is missing or wrong: open the URL `rrelay ui` printed',
  };

  const sendJson = (res: ServerResponse, status: number, value: object) => {
    const body = JSON.stringify(value);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
  };
  const refuse = (res: ServerResponse, status: number, error: string) => sendJson(res, status, { error });

  const api = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST') return refuse(res.setHeader('Allow', 'POST'), 405, 'POST /api takes one JSON-RPC request');
    if (!originOk(req)) return refuse(res, 403, why.origin());
    if (!sameToken(/^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1], token)) return refuse(res, 401, why.token);
    if (req.headers['content-type']?.split(';')[0]!.trim().toLowerCase() !== 'application/json') return refuse(res, 415, 'the body is JSON: Content-Type: application/json');
    const body = await readBody(req, MAX_LINE);
    if (body === null) return refuse(res.setHeader('Connection', 'close'), 413, `a request is at most ${MAX_LINE} bytes`);
    let answer = undefined as object | undefined;
    const session = rpcSession(service, (msg) => (answer = msg), log, { streaming: false });
    await session.handle(body.toString('utf8'));
    session.close();
    if (answer === undefined) return void res.writeHead(204).end(); // a notification
    sendJson(res, 200, answer);
  };

  const onRequest = async (req: IncomingMessage, res: ServerResponse) => {
    for (const [k, v] of Object.entries(securityHeaders(port))) res.setHeader(k, v);
    if (!hostOk(req.headers.host)) return refuse(res, 403, why.host());
    const path = pathOf(req);
    if (path === '/api') return api(req, res);
    if (path === '/rpc') return refuse(res, 426, 'GET /rpc is the WebSocket: Upgrade: websocket');
    const asset = STATIC[path];
    if (!asset) return refuse(res, 404, 'not found');
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res.setHeader('Allow', 'GET, HEAD'), 405, `${path} is GET only`);
    let file: Buffer;
    try {
      file = await readFile(join(assets, asset.file));
    } catch {
      return refuse(res, 404, `${asset.file} is not built: run \`npm run build\``);
    }
    res.writeHead(200, { 'Content-Type': asset.type, 'Content-Length': file.length }).end(req.method === 'HEAD' ? undefined : file);
  };

  const server = createServer((req, res) => {
    onRequest(req, res).catch((e: unknown) => {
      log(`web: ${e instanceof Error ? e.stack : String(e)}`);
      if (res.headersSent) res.destroy();
      else refuse(res, 500, 'internal error');
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_LINE, handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false) });
  wss.on('headers', (headers) => headers.push(...Object.entries(securityHeaders(port)).map(([k, v]) => `${k}: ${v}`)));
  const alive = new Map<WebSocket, boolean>();

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const no = (status: number, error: string) => {
      const body = JSON.stringify({ error });
      const headers = { ...securityHeaders(port), 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' };
      socket.once('finish', () => socket.destroy());
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`);
    };
    if (!hostOk(req.headers.host)) return no(403, why.host());
    if (pathOf(req) !== '/rpc') return no(404, 'not found: the WebSocket is GET /rpc');
    if (!originOk(req)) return no(403, why.origin());
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const bearer = offered.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length);
    if (!offered.includes(SUBPROTOCOL) || !sameToken(bearer, token)) return no(401, why.token);
    wss.handleUpgrade(req, socket, head, (ws) => {
      alive.set(ws, true);
      const written = cutWhenStalled(() => ws.bufferedAmount, () => ws.terminate(), opts.limits ?? QUEUE_LIMITS);
      const session = rpcSession(service, (msg) => ws.readyState === WebSocket.OPEN && (ws.send(JSON.stringify(msg)), written()), log);
      ws.on('pong', () => alive.set(ws, true));
      ws.on('message', (data, isBinary) => (isBinary ? ws.close(1003, 'text frames only: one JSON-RPC message each') : void session.handle(String(data))));
      ws.on('close', () => {
        alive.delete(ws);
        session.close();
      });
      ws.on('error', () => {}); // a frame over maxPayload, a reset: ws closes the connection, and 'close' follows
    });
  });

  const pings = setInterval(() => {
    for (const [ws, answered] of alive) {
      if (!answered) ws.terminate();
      else {
        alive.set(ws, false);
        ws.ping();
      }
    }
  }, PING_MS).unref();

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        server.on('error', (e) => log(`web: ${e.message}`));
        resolve();
      });
    });
  } catch (e) {
    clearInterval(pings);
    if ((e as { code?: string }).code === 'EADDRINUSE') fail('INVALID_ARGUMENT', `port ${port} is in use on 127.0.0.1: choose another with --port`);
    throw e;
  }
  port = (server.address() as AddressInfo).port;

  return {
    port,
    url: `http://127.0.0.1:${port}/#token=${token}`,
    async close(reason) {
      clearInterval(pings);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const ws of alive.keys()) ws.close(1001, reason);
      server.closeIdleConnections();
      const cut = setTimeout(() => {
        for (const ws of alive.keys()) ws.terminate();
        server.closeAllConnections();
      }, CLOSE_GRACE_MS);
      await closed;
      clearTimeout(cut);
    },
  };
}

/**
 * The daemon's web app: served while at least one holder (a `serveUi` connection, or the `rrelay
 * ui` that started the daemon) holds it, on the port the first one asked for.
 */
export class WebUi implements UiHost {
  private current: { web: Promise<WebServer>; holders: number } | undefined;

  constructor(private readonly opts: { service: NodeService; dataDir: string; assets: string; log: (line: string) => void }) {}

  async acquire(port: number): Promise<UiLease> {
    let c = this.current;
    if (!c) {
      const { service, dataDir, assets, log } = this.opts;
      const web = startWeb({ service, port, token: uiToken(dataDir), assets, log });
      const started = (c = this.current = { web, holders: 0 });
      web.catch(() => {
        if (this.current === started) this.current = undefined;
      });
    }
    const held = c;
    held.holders++;
    let web: WebServer;
    try {
      web = await held.web;
    } catch (e) {
      held.holders--;
      throw e;
    }
    if (port !== 0 && port !== web.port) {
      this.release(held);
      fail('INVALID_ARGUMENT', `the web app is already served on port ${web.port} (open the URL the running \`rrelay ui\` printed), not ${port}: ask for that port, or stop it first`);
    }
    let released = false;
    return {
      url: web.url,
      port: web.port,
      release: () => {
        if (released) return;
        released = true;
        this.release(held);
      },
    };
  }

  private release(held: { web: Promise<WebServer>; holders: number }): void {
    if (--held.holders > 0 || this.current !== held) return;
    this.current = undefined;
    held.web.then((w) => w.close('the web app is no longer served')).catch((e: unknown) => this.opts.log(`web: ${String(e)}`));
  }

  /** The daemon stops: the web app with it, whoever holds it. */
  async close(): Promise<void> {
    const c = this.current;
    this.current = undefined;
    const web = await c?.web.catch(() => undefined);
    await web?.close('the daemon stopped');
  }
}
