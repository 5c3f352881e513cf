import { existsSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { RatchetRelayError, isRatchetRelayError, type ErrorCode } from '../errors.js';
import type { FollowEvent, GroupAction, NodeApi, NodeService } from './service.js';

/**
 * JSON-RPC 2.0 over the daemon's Unix socket, one JSON object per line (as signal-cli's daemon does).
 * Methods are NodeApi's names; `follow` turns the connection into a stream of `event` notifications.
 */
const METHODS = [
  'whoami',
  'status',
  'relays',
  'addRelay',
  'removeRelay',
  'publish',
  'unpublish',
  'peers',
  'contacts',
  'setAlias',
  'setVerified',
  'setTrusted',
  'send',
  'receive',
  'history',
  'createInvite',
  'acceptInvite',
  'keyExchanges',
  'cancelKeyExchange',
  'resetSession',
  'introduce',
  'mediate',
  'group',
] as const;
type Method = (typeof METHODS)[number];

const MAX_LINE = 1 << 20;

interface Request {
  jsonrpc: '2.0';
  id?: number | string;
  method: string;
  params?: unknown[];
}

export function serveRpc(service: NodeService, socketPath: string, log: (line: string) => void): Promise<Server> {
  if (existsSync(socketPath)) rmSync(socketPath); // stale: we hold the data-directory lock
  const server = createServer((socket) => handleConnection(service, socket, log));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}

function handleConnection(service: NodeService, socket: Socket, log: (line: string) => void): void {
  const send = (msg: object) => socket.writable && socket.write(`${JSON.stringify({ jsonrpc: '2.0', ...msg })}\n`);
  let stopFollowing: (() => void) | undefined;
  socket.on('close', () => stopFollowing?.());
  socket.on('error', () => {});
  const lines = createInterface({ input: socket, crlfDelay: Infinity });
  lines.on('line', async (line) => {
    if (line.length > MAX_LINE) return socket.destroy();
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
      if (typeof req !== 'object' || req === null || typeof req.method !== 'string') throw new Error();
    } catch {
      return send({ id: null, error: { code: -32700, message: 'parse error' } });
    }
    const params = Array.isArray(req.params) ? req.params : [];
    try {
      if (req.method === 'follow') {
        stopFollowing ??= await service.follow((event) => send({ method: 'event', params: event }));
        return send({ id: req.id, result: true });
      }
      if (!(METHODS as readonly string[]).includes(req.method)) return send({ id: req.id, error: { code: -32601, message: `no method ${req.method}` } });
      const fn = service[req.method as Method] as (...a: unknown[]) => Promise<unknown>;
      const result = await fn.apply(service, params);
      send({ id: req.id, result: result ?? null });
    } catch (e) {
      const code: ErrorCode | 'INTERNAL' = isRatchetRelayError(e) ? e.code : 'INTERNAL';
      if (code === 'INTERNAL') log(`rpc ${req.method}: ${e instanceof Error ? e.stack : String(e)}`);
      send({ id: req.id, error: { code: -32000, message: e instanceof Error ? e.message : String(e), data: { code } } });
    }
  });
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

export class RpcClient implements NodeApi {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private onEvent: ((e: FollowEvent) => void) | undefined;

  constructor(private readonly socket: Socket) {
    const lines = createInterface({ input: socket, crlfDelay: Infinity });
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as { id?: number; result?: unknown; error?: { message: string; data?: { code?: string } }; method?: string; params?: FollowEvent };
      if (msg.method === 'event' && msg.params) return this.onEvent?.(msg.params);
      const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id!);
      if (msg.error) {
        const code = msg.error.data?.code;
        p.reject(code && code !== 'INTERNAL' ? new RatchetRelayError(code as ErrorCode, msg.error.message) : new Error(msg.error.message));
      } else p.resolve(msg.result);
    });
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('the daemon closed the connection'));
      this.pending.clear();
      this.onEvent?.({ type: 'ended', reason: 'the daemon stopped' });
    });
  }

  private call<T>(method: string, ...params: unknown[]): Promise<T> {
    const id = this.nextId++;
    this.socket.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    return new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject }));
  }

  whoami = () => this.call<Awaited<ReturnType<NodeApi['whoami']>>>('whoami');
  status = () => this.call<Awaited<ReturnType<NodeApi['status']>>>('status');
  relays = () => this.call<Awaited<ReturnType<NodeApi['relays']>>>('relays');
  addRelay = (url: string) => this.call<boolean>('addRelay', url);
  removeRelay = (url: string) => this.call<boolean>('removeRelay', url);
  publish = () => this.call<{ pending: number }>('publish');
  unpublish = () => this.call<{ pending: number }>('unpublish');
  peers = () => this.call<Awaited<ReturnType<NodeApi['peers']>>>('peers');
  contacts = () => this.call<Awaited<ReturnType<NodeApi['contacts']>>>('contacts');
  setAlias = (ref: string, alias: string | null) => this.call<Awaited<ReturnType<NodeApi['setAlias']>>>('setAlias', ref, alias);
  setVerified = (ref: string, v: boolean) => this.call<Awaited<ReturnType<NodeApi['setVerified']>>>('setVerified', ref, v);
  setTrusted = (ref: string, t: boolean) => this.call<Awaited<ReturnType<NodeApi['setTrusted']>>>('setTrusted', ref, t);
  send = (ref: string, text: string, waitMs: number) => this.call<Awaited<ReturnType<NodeApi['send']>>>('send', ref, text, waitMs);
  receive = () => this.call<Awaited<ReturnType<NodeApi['receive']>>>('receive');
  history = (ref: string | null, limit: number) => this.call<Awaited<ReturnType<NodeApi['history']>>>('history', ref, limit);

  createInvite = (ttlMs: number) => this.call<Awaited<ReturnType<NodeApi['createInvite']>>>('createInvite', ttlMs);
  acceptInvite = (invite: string) => this.call<Awaited<ReturnType<NodeApi['acceptInvite']>>>('acceptInvite', invite);
  keyExchanges = () => this.call<Awaited<ReturnType<NodeApi['keyExchanges']>>>('keyExchanges');
  cancelKeyExchange = (ref: string) => this.call<string>('cancelKeyExchange', ref);
  resetSession = (ref: string, via?: string) => this.call<{ rv: string; peer: string }>('resetSession', ref, via);
  introduce = (a: string, b: string) => this.call<{ a: string; b: string }>('introduce', a, b);
  group = (a: GroupAction) => this.call<unknown>('group', a);
  mediate = (mediator: string, target: string) => this.call<{ mediator: string; target: string }>('mediate', mediator, target);

  async follow(onEvent: (e: FollowEvent) => void): Promise<() => void> {
    this.onEvent = onEvent;
    await this.call('follow');
    return () => {
      this.onEvent = undefined;
    };
  }

  async close(): Promise<void> {
    this.socket.end();
  }
}
