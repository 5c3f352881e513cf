import type { AddressInfo } from 'node:net';
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
  close(): Promise<void>;
}

/** `refuse`: answer every EVENT with OK false and this message (a NIP-01 prefix and a reason). */
export async function startEvilRelay(options: { refuse?: string } = {}): Promise<EvilRelay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const subs = new Map<WebSocket, Map<string, number[]>>();
  wss.on('connection', (ws) => {
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
        ws.send(JSON.stringify(['EOSE', msg[1]]));
      } else if (msg[0] === 'CLOSE') subs.get(ws)?.delete(String(msg[1]));
      else if (msg[0] === 'EVENT') ws.send(JSON.stringify(['OK', (msg[1] as { id: string }).id, options.refuse === undefined, options.refuse ?? '']));
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
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}
