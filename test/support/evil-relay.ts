import { type AddressInfo, createServer, type Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

/**
 * A hostile relay for rejection tests: it serves whatever the test hands it, forged or malformed,
 * which no honest relay (they verify events) would pass on. It speaks just enough NIP-01 to be
 * subscribed to; it is not a relay implementation.
 */
export interface EvilRelay {
  readonly url: string;
  /** Sends `event` as-is on every open subscription whose filter names its kind. */
  push(event: Record<string, unknown>): void;
  /** Sends an arbitrary text frame to every client. */
  pushRaw(text: string): void;
  /** How many WebSocket connections it has accepted. */
  connections(): number;
  close(): Promise<void>;
}

export interface EvilRelayOptions {
  /** Answer every EVENT with OK false and this message (a NIP-01 prefix and a reason). */
  refuse?: string;
  /** Raw frames to send in answer to a REQ, before its EOSE. */
  onReq?: (subId: string) => string[];
  /** Listen on this port (to come back where a closed one was); default: a free one. */
  port?: number;
  /** Sees every event a client publishes (e.g. to push it back later, replayed or re-signed). */
  onPublish?: (event: Record<string, unknown>) => void;
}

export async function startEvilRelay(options: EvilRelayOptions = {}): Promise<EvilRelay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: options.port ?? 0 });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject); // the port is taken
  });
  const subs = new Map<WebSocket, Map<string, number[]>>();
  let connections = 0;
  wss.on('connection', (ws) => {
    connections++;
    subs.set(ws, new Map());
    ws.on('close', () => subs.delete(ws));
    ws.on('message', (data) => {
      let msg: unknown[];
      try {
        msg = JSON.parse(String(data)) as unknown[];
      } catch {
        return;
      }
      if (msg[0] === 'REQ') {
        const kinds = (msg.slice(2) as { kinds?: number[] }[]).flatMap((f) => f.kinds ?? []);
        subs.get(ws)?.set(String(msg[1]), kinds);
        for (const frame of options.onReq?.(String(msg[1])) ?? []) ws.send(frame);
        ws.send(JSON.stringify(['EOSE', msg[1]]));
      } else if (msg[0] === 'CLOSE') subs.get(ws)?.delete(String(msg[1]));
      else if (msg[0] === 'EVENT') {
        options.onPublish?.(msg[1] as Record<string, unknown>);
        ws.send(JSON.stringify(['OK', (msg[1] as { id: string }).id, options.refuse === undefined, options.refuse ?? '']));
      }
    });
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    push(event) {
      for (const [ws, s] of subs)
        for (const [id, kinds] of s) if (kinds.includes(event.kind as number)) ws.send(JSON.stringify(['EVENT', id, event]));
    },
    pushRaw(text) {
      for (const ws of subs.keys()) ws.send(text);
    },
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}

/**
 * A TCP endpoint where a relay should be that fails the WebSocket handshake: `tarpit` accepts and
 * never answers, `close` accepts and closes at once, `reset` reads the upgrade request and resets
 * the connection, `http` answers it with a plain HTTP 200.
 */
export interface BrokenEndpoint {
  readonly url: string;
  /** How many TCP connections it has accepted. */
  connections(): number;
  close(): Promise<void>;
}

export async function startBrokenEndpoint(mode: 'tarpit' | 'close' | 'reset' | 'http'): Promise<BrokenEndpoint> {
  return listenTcp((socket) => {
    if (mode === 'close') socket.end();
    else if (mode !== 'tarpit')
      socket.once('data', () => {
        if (mode === 'reset') socket.resetAndDestroy();
        else socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno');
      });
  });
}

/**
 * A TCP listener on 127.0.0.1 with a `ws://` URL, counting the connections it accepts; `close`
 * destroys them and every socket handed to `track` (a proxy's upstream ones) before it stops.
 */
export async function listenTcp(onConnection: (socket: Socket, track: (s: Socket) => void) => void): Promise<BrokenEndpoint> {
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    track(socket);
    socket.on('error', () => {});
    onConnection(socket, track);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A URL on 127.0.0.1 where nothing listens: connection refused. */
export async function refusedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return `ws://127.0.0.1:${port}`;
}
