import { existsSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { FollowEvent, Method, Stream } from './api.js';
import { ApiClient, respond, RPC_ERROR, type RpcError, type RpcResponse, unwrap } from './dispatch.js';
import type { NodeService } from './node-service.js';

/**
 * JSON-RPC 2.0 over the daemon's Unix socket, one JSON object per line (as signal-cli's daemon does).
 * The methods, their named params and results are the table in `api.ts`; `follow` turns the
 * connection into a stream of `event` notifications. The session itself (`rpcSession`) does not
 * know its transport: the web app's WebSocket and POST /api (`web.ts`) run the same one.
 */

/** One request: a line on the socket, and a frame or a POST body of the web app (src/cli/web.ts). */
export const MAX_LINE = 1 << 20;

/**
 * A client that stops reading (a page frozen in a background tab, a follower stopped with ^Z) must
 * not grow the daemon without bound: once more than `maxQueued` bytes wait for it and none of them
 * is taken for `stallMs`, its connection is cut. A reader is never cut for a burst (a follow's
 * backlog goes out at once): it takes some within the grace. Cutting loses nothing: what `follow`
 * handed out stays unread until the client acknowledges it, and a page reloads what it shows.
 */
export interface QueueLimits {
  readonly maxQueued: number;
  readonly stallMs: number;
}
export const QUEUE_LIMITS: QueueLimits = { maxQueued: 16 << 20, stallMs: 30_000 };

/** Call the returned function after each write: it cuts the connection as QueueLimits says. */
export function cutWhenStalled(queued: () => number, cut: () => void, limits: QueueLimits): () => void {
  let timer: NodeJS.Timeout | undefined;
  const check = (before: number) => {
    timer = undefined;
    const now = queued();
    if (now <= limits.maxQueued) return;
    if (now >= before) return cut();
    timer = setTimeout(check, limits.stallMs, now).unref();
  };
  return () => {
    if (timer === undefined && queued() > limits.maxQueued) timer = setTimeout(check, limits.stallMs, queued()).unref();
  };
}

/** Each server's open connections, so that a shutdown can close them (a follower never ends its own). */
const connections = new WeakMap<Server, Set<Socket>>();

export function serveRpc(service: NodeService, socketPath: string, log: (line: string) => void, limits = QUEUE_LIMITS): Promise<Server> {
  if (existsSync(socketPath)) rmSync(socketPath); // stale: we hold the data-directory lock
  const open = new Set<Socket>();
  const server = createServer((socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    handleConnection(service, socket, log, limits);
  });
  connections.set(server, open);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      // An accept that fails (EMFILE under a flood of clients) costs that client, never the daemon.
      server.on('error', (e) => log(`rpc socket: ${e.message}`));
      resolve(server);
    });
  });
}

/**
 * Stops serving: no new connection, the socket file removed (by the listener's close), and every
 * open connection closed, a follower's too: its client says the daemon stopped.
 */
export function stopRpc(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of connections.get(server) ?? []) socket.destroy();
  return closed;
}

type Id = number | string | null;

/** The request's id, or null when it has none a response could carry (then it is a notification, or unusable). */
function idOf(req: Record<string, unknown>): Id | undefined {
  const id = req.id;
  if (id === undefined) return undefined;
  return typeof id === 'number' || typeof id === 'string' ? id : null;
}

/** One client's JSON-RPC conversation, whatever carries it: a line on the Unix socket, a frame on the web app's WebSocket, a POST body. */
export interface RpcSession {
  /** Answers one message (a request or a notification); never rejects: a failure is logged and costs this request only. */
  handle(text: string): Promise<void>;
  /** The transport closed: the streams this client started (`follow`, `serveUi`) stop. */
  close(): void;
}

/**
 * The session of the JSON-RPC protocol, independent of its transport: parses and checks each
 * message, answers it through `respond`, and sends what a stream (`follow`) emits through `send`.
 * `streaming: false` (one request per HTTP POST): no stream, so `follow` and `serveUi` answer an error.
 */
export function rpcSession(service: NodeService, send: (msg: object) => void, log: (line: string) => void, opts: { streaming: boolean } = { streaming: true }): RpcSession {
  const reply = (msg: object) => send({ jsonrpc: '2.0', ...msg });
  const stops: (() => void)[] = [];
  let closed = false;
  let following = false;
  // A stream started after the transport closed (its handler still awaiting) is stopped at once.
  const stream: Stream | undefined = opts.streaming
    ? { emit: (e: FollowEvent) => reply({ method: 'event', params: e }), onEnd: (stop) => (closed ? stop() : stops.push(stop)) }
    : undefined;
  const answer = async (text: string) => {
    let req: unknown;
    try {
      req = JSON.parse(text);
    } catch {
      return reply({ id: null, error: { code: RPC_ERROR.parse, message: 'parse error: a request is one JSON object (per line on the socket, per frame on the WebSocket)' } });
    }
    if (typeof req !== 'object' || req === null || Array.isArray(req) || typeof (req as { method?: unknown }).method !== 'string')
      return reply({ id: null, error: { code: RPC_ERROR.invalidRequest, message: 'invalid request: a JSON object with "method" (a string) and "params" (an object)' } });
    const r = req as Record<string, unknown>;
    const id = idOf(r);
    let response: RpcResponse;
    if (r.params !== undefined && (typeof r.params !== 'object' || r.params === null || Array.isArray(r.params)))
      response = { error: { code: RPC_ERROR.invalidParams, message: `invalid params for ${String(r.method)}: params is an object of named parameters` } };
    else if (r.method === 'follow' && following) response = { result: true };
    else {
      response = await respond(service, r.method, r.params, log, stream);
      if (r.method === 'follow' && 'result' in response) following = true;
    }
    if (id !== undefined) reply({ id, ...response });
  };
  return {
    // Whatever a request does, its failure is this request's: never an unhandled rejection, which would end the daemon.
    handle: (text) => answer(text).catch((e: unknown) => log(`rpc: ${e instanceof Error ? e.stack : String(e)}`)),
    close: () => {
      closed = true;
      stops.splice(0).forEach((stop) => stop());
    },
  };
}

function handleConnection(service: NodeService, socket: Socket, log: (line: string) => void, limits: QueueLimits): void {
  // Unwritable only once the connection is going: nothing sent on it is acknowledged any more, so
  // the messages dropped here stay unread for the next follower. A write that fails later (EPIPE,
  // ECONNRESET from a client killed mid-burst) is reported on 'error', below, and costs this client only.
  const written = cutWhenStalled(() => socket.writableLength, () => socket.destroy(), limits);
  const session = rpcSession(service, (msg) => socket.writable && (socket.write(`${JSON.stringify(msg)}\n`), written()), log);
  socket.on('close', () => session.close());
  socket.on('error', () => {});
  // readline buffers a line until its newline: a client that never sends one is cut off at MAX_LINE.
  let sinceNewline = 0;
  socket.on('data', (chunk: Buffer) => {
    const nl = chunk.lastIndexOf(10);
    sinceNewline = nl < 0 ? sinceNewline + chunk.length : chunk.length - nl - 1;
    if (sinceNewline > MAX_LINE) socket.destroy();
  });
  const lines = createInterface({ input: socket, crlfDelay: Infinity });
  // readline passes the socket's errors on: a client killed with events unread (ECONNRESET) must not take the daemon down.
  lines.on('error', () => {});
  lines.on('line', (line) => (line.length > MAX_LINE ? socket.destroy() : void session.handle(line)));
}

/** Connects to a daemon, or returns null when none listens on the socket. */
export async function connectRpc(socketPath: string): Promise<RpcClient | null> {
  if (!existsSync(socketPath)) return null;
  return new Promise((resolve) => {
    const socket = createConnection(socketPath);
    socket.once('connect', () => resolve(new RpcClient(socket)));
    socket.once('error', () => resolve(null));
  });
}

interface Incoming {
  id?: number;
  result?: unknown;
  error?: RpcError;
  method?: string;
  params?: FollowEvent;
}

/**
 * The daemon went away before it answered: whatever the call did may or may not have happened (a
 * `send` may be stored and queued).
 */
export class ConnectionLost extends Error {
  constructor(readonly method: Method) {
    super(`the daemon closed the connection before answering ${method}`);
  }
}

export class RpcClient extends ApiClient {
  private nextId = 1;
  private readonly pending = new Map<number, { method: Method; resolve: (r: RpcResponse) => void; reject: (e: Error) => void }>();
  private onEvent: ((e: FollowEvent) => void) | undefined;
  /** Resolves when the connection is gone: the daemon stopped (or this client closed it). */
  readonly closed: Promise<void>;

  constructor(private readonly socket: Socket) {
    super();
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    const lines = createInterface({ input: socket, crlfDelay: Infinity });
    lines.on('error', () => {}); // 'close' follows, and says so
    lines.on('line', (line) => {
      let msg: Incoming;
      try {
        msg = JSON.parse(line) as Incoming;
      } catch {
        return; // the end of a line cut by the daemon's death: 'close' follows, and says so
      }
      if (msg.method === 'event' && msg.params) return this.onEvent?.(msg.params);
      const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id!);
      p.resolve(msg.error ? { error: msg.error } : { result: msg.result });
    });
    socket.on('error', () => {}); // a reset connection: 'close' follows, and says so
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new ConnectionLost(p.method));
      this.pending.clear();
      this.onEvent?.({ type: 'ended', reason: 'the daemon stopped' });
    });
  }

  protected request(method: Method, params: object): Promise<RpcResponse> {
    if (this.socket.destroyed) return Promise.reject(new ConnectionLost(method));
    const id = this.nextId++;
    this.socket.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    return new Promise((resolve, reject) => this.pending.set(id, { method, resolve, reject }));
  }

  async follow(onEvent: (e: FollowEvent) => void): Promise<() => void> {
    this.onEvent = onEvent;
    unwrap(await this.request('follow', {}));
    return () => {
      this.onEvent = undefined;
    };
  }

  async close(): Promise<void> {
    this.socket.end();
  }
}
