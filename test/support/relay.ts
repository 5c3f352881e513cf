import { NostrRelay } from 'snstr/utils/ephemeral-relay';
import { WebSocketServer } from 'ws';

/** An independently written relay (snstr's ephemeral relay, events in memory), so tests do not only check our relay against itself. */
export interface TestRelay {
  readonly url: string;
  readonly port: number;
  /** Closes the relay; connected clients see the connection drop. */
  stop(): Promise<void>;
  /** Brings it back on the same port, without the events it held. */
  start(): Promise<void>;
  /** How many WebSocket clients are connected now (0 while stopped). */
  clients(): number;
  /** Every WebSocket connection it accepted, open or closed: where it came from and the text frames the client sent. */
  accepted(): readonly AcceptedConnection[];
}

export interface AcceptedConnection {
  readonly remoteAddress: string | undefined;
  readonly frames: string[];
}

/** Watches the relay's connections from the server side, as the relay operator could. */
function watch(relay: NostrRelay, log: AcceptedConnection[]): void {
  (relay.wss as WebSocketServer).on('connection', (ws, req) => {
    const c: AcceptedConnection = { remoteAddress: req.socket.remoteAddress, frames: [] };
    log.push(c);
    ws.on('message', (data, isBinary) => isBinary || c.frames.push(String(data)));
  });
}

async function listen(port: number): Promise<NostrRelay> {
  const relay = new NostrRelay(port);
  await relay.start();
  // When it cannot listen (EACCES, EPERM, EADDRNOTAVAIL) snstr silently falls back to an in-process
  // transport that no WebSocket client can reach; fail loudly instead.
  if (!(relay.wss instanceof WebSocketServer)) {
    await relay.close();
    throw new Error(`snstr's relay could not listen on 127.0.0.1:${port}`);
  }
  return relay;
}

/** Starts snstr's ephemeral relay on 127.0.0.1 (its fixed host) with a free port. */
export async function startTestRelay(): Promise<TestRelay> {
  const log: AcceptedConnection[] = [];
  let running: NostrRelay | undefined = await listen(0);
  watch(running, log);
  // Read now: once closed, snstr's url reports the port it was constructed with (0).
  const port = Number(new URL(running.url).port);
  return {
    url: `ws://127.0.0.1:${port}`,
    port,
    async stop() {
      const relay = running;
      running = undefined;
      await relay?.close();
    },
    async start() {
      if (running) return;
      running = await listen(port);
      watch(running, log);
    },
    clients() {
      return running?.wss.clients.size ?? 0;
    },
    accepted: () => log,
  };
}
