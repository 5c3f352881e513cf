// Idle RSS of one node, in processes that hold nothing else: `node --expose-gc dist/bench/one-node.js
// <data-dir> <relay-url>` imports RatchetNode alone (no bench code, no libsignal, no liboqs: ML-KEM
// never runs in an idle node, and its WASM loads only on first use); `daemonRss` starts the daemon
// as a user does (`rrelay init`, then `rrelay daemon`) and reads its RSS from /proc.
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RatchetNode } from '../src/node/index.js';

/** Idle time before reading RSS: start-up garbage has a chance to go. */
const IDLE_MS = 2000;
/** A bound on a hang, not a performance check. */
const TIMEOUT_MS = 60_000;
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** This file in a child process (production scrypt cost): RSS in MB once started, connected and idle; null if it failed. */
export function oneNodeRss(dataDir: string, relayUrl: string): Promise<number | null> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), dataDir, relayUrl], { timeout: TIMEOUT_MS }, (error, stdout, stderr) => {
      const mb = Number(/rssMb=([\d.]+)/.exec(stdout)?.[1]);
      if (error || !(mb > 0)) {
        process.stderr.write(`bench: the one-node RSS child failed: ${error?.message ?? 'no figure'} ${stderr.slice(0, 500)}\n`);
        resolve(null);
      } else resolve(mb);
    });
  });
}

async function runOneNode(dataDir: string, relayUrl: string): Promise<void> {
  const options = { dataDir, passphrase: 'one node', relays: [relayUrl] };
  await RatchetNode.init(options);
  const node = await RatchetNode.open(options);
  const published = new Promise((r) => node.once('published', r));
  await node.start();
  await published;
  await sleep(IDLE_MS);
  globalThis.gc?.();
  const rss = process.memoryUsage.rss() / 2 ** 20;
  await node.close();
  process.stdout.write(`rssMb=${rss.toFixed(1)}\n`);
}

/** VmRSS of a process in MB (Linux), or null elsewhere. */
function procRssMb(pid: number): number | null {
  try {
    const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return kb > 0 ? kb / 1024 : null;
  } catch {
    return null;
  }
}

/** `rrelay init` and `rrelay daemon` on `dataDir`, as a user starts them: the daemon's RSS once running and idle; null if it failed. */
export async function daemonRss(dataDir: string, relayUrl: string): Promise<number | null> {
  const env = { ...process.env, RRELAY_PASSPHRASE: 'the daemon' };
  const problem = (what: string) => {
    process.stderr.write(`bench: the daemon RSS run failed: ${what}\n`);
    return null;
  };
  const init = await new Promise<string | null>((resolve) =>
    execFile(process.execPath, [CLI, '--data-dir', dataDir, '--json', 'init', '--relay', relayUrl], { env, timeout: TIMEOUT_MS }, (error, _out, stderr) =>
      resolve(error ? `init: ${error.message} ${stderr.slice(0, 500)}` : null),
    ),
  );
  if (init) return problem(init);
  const daemon = spawn(process.execPath, [CLI, '--data-dir', dataDir, '--json', 'daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => daemon.once('exit', () => r()));
  try {
    const running = await new Promise<boolean>((resolve) => {
      let out = '';
      const timer = setTimeout(() => resolve(false), TIMEOUT_MS);
      daemon.stdout.on('data', (d) => {
        out += d;
        if (out.includes('"daemon":"running"')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      daemon.once('exit', () => resolve(false));
    });
    if (!running) return problem('it never said it was running');
    await sleep(IDLE_MS);
    return procRssMb(daemon.pid!) ?? problem('no /proc here');
  } finally {
    daemon.kill('SIGTERM');
    await exited;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runOneNode(process.argv[2]!, process.argv[3]!);
}
