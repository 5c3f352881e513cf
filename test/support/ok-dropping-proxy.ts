import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

/**
 * A WebSocket proxy in front of a real relay that swallows the relay's OK answers: the event is
 * stored and delivered, but its publisher never learns it. Models a crash or a cut connection
 * between publishing and the OK.
 */
export async function startOkDroppingProxy(upstreamUrl: string): Promise<{ url: string; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (client) => {
    const upstream = new WebSocket(upstreamUrl);
    const queued: string[] = [];
    upstream.on('open', () => queued.splice(0).forEach((m) => upstream.send(m)));
    client.on('message', (data) => (upstream.readyState === WebSocket.OPEN ? upstream.send(String(data)) : queued.push(String(data))));
    upstream.on('message', (data) => {
      const text = String(data);
      if (!text.startsWith('["OK"')) client.send(text);
    });
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
