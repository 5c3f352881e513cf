import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, connect, createServer } from 'node:net';

/** Debian's microsocks, the independent SOCKS5 server the proxy tests route relay connections through (.ci/run installs it). */
export const MICROSOCKS = '/usr/bin/microsocks';

export interface SocksProxy {
  /** socks5h://127.0.0.1:<port> */
  readonly url: string;
  stop(): Promise<void>;
}

/** A port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts microsocks on 127.0.0.1 and a free port, no authentication (it then accepts any SOCKS
 * credentials the client offers by choosing "no authentication"); its outgoing connections come
 * from `bindAddress`, so a relay on 127.0.0.1 can tell them from direct ones.
 */
export async function startMicrosocks(bindAddress: string): Promise<SocksProxy> {
  const port = await freePort();
  const child: ChildProcess = spawn(MICROSOCKS, ['-i', '127.0.0.1', '-p', String(port), '-b', bindAddress], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      throw new Error(`microsocks did not start on 127.0.0.1:${port}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `socks5h://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await exited;
    },
  };
}
