import { connect } from 'node:net';
import { type BrokenEndpoint, listenTcp } from './evil-relay.js';

/**
 * A TCP proxy in front of a relay that holds each connection for `delayMs` before passing it on: a
 * relay that completes its handshake slowly, but within the connect timeout. A node that starts
 * against it holds its data directory for that long before it is up. `connections` counts the
 * connections it was offered.
 */
export function startSlowProxy(upstreamPort: number, delayMs: number): Promise<BrokenEndpoint> {
  return listenTcp((client, track) => {
    client.pause();
    const timer = setTimeout(() => {
      const upstream = connect(upstreamPort, '127.0.0.1');
      track(upstream);
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
      client.resume();
    }, delayMs);
    client.on('close', () => clearTimeout(timer));
  });
}
