import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

export interface RelayProxy {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A WebSocket proxy in front of a real relay. `fromRelay` passes each relay frame on (or not) with
 * `forward`, when it likes; `fromClient` sees each client frame, and its connection, before it goes
 * up; while `accept` says no, a new client is dropped at once.
 */
export async function startRelayProxy(
  upstreamUrl: string,
  hooks: {
    fromRelay?: (text: string, forward: (text: string) => void) => void;
    fromClient?: (text: string, client: WebSocket) => void;
    accept?: () => boolean;
  },
): Promise<RelayProxy> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (client) => {
    if (hooks.accept?.() === false) return client.terminate();
    const upstream = new WebSocket(upstreamUrl);
    const queued: string[] = [];
    upstream.on('open', () => queued.splice(0).forEach((m) => upstream.send(m)));
    client.on('message', (data) => {
      const text = String(data);
      hooks.fromClient?.(text, client);
      if (upstream.readyState === WebSocket.OPEN) upstream.send(text);
      else queued.push(text);
    });
    const forward = (text: string) => client.readyState === WebSocket.OPEN && client.send(text);
    upstream.on('message', (data) => (hooks.fromRelay ?? ((text, f) => f(text)))(String(data), forward));
    const closeBoth = () => {
      client.terminate();
      upstream.terminate();
    };
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

/**
 * A proxy that swallows the relay's OK answers: the event is stored and delivered, but its
 * publisher never learns it. Models a crash or a cut connection between publishing and the OK.
 */
export function startOkDroppingProxy(upstreamUrl: string): Promise<RelayProxy> {
  return startRelayProxy(upstreamUrl, { fromRelay: (text, forward) => text.startsWith('["OK"') || forward(text) });
}
