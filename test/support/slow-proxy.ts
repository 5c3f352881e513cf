import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a relay that holds each connection for `delayMs` before passing it on: a
 * relay that completes its handshake slowly, but within the connect timeout. A node that starts
 * against it holds its data directory for that long before it is up. `connections` counts the
 * connections it was offered.
 */
export async function startSlowProxy(upstreamPort: number, delayMs: number): Promise<{ url: string; connections(): number; close(): Promise<void> }> {
  const open = new Set<Socket>();
  let offered = 0;
  const server = createServer((client) => {
    offered++;
    open.add(client);
    client.on('error', () => {});
    client.pause();
    const timer = setTimeout(() => {
      const upstream = connect(upstreamPort, '127.0.0.1');
      open.add(upstream);
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
      client.resume();
    }, delayMs);
    client.on('close', () => clearTimeout(timer));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => offered,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
