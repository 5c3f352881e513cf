import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_KDF } from '../helpers.js';
import { startTestRelay } from './relay.js';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON lines. */
  readonly json: unknown[];
}

export const cliEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  RRELAY_PASSPHRASE: 'test passphrase',
  RRELAY_SCRYPT_LOG2N: String(Math.log2(TEST_KDF.N)),
  ...extra,
});

function parseLines(stdout: string): unknown[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('{') || l.trim().startsWith('['))
    .map((l) => JSON.parse(l) as unknown);
}

/** Runs `rrelay args...` to completion in its own process. */
export function rrelay(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: opts.env ?? cliEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr, json: parseLines(stdout) }));
    child.stdin.end(opts.input ?? '');
  });
}

/** A long-running `rrelay` (daemon, receive --follow, chat): resolves once its stdout has a line matching `ready`. */
export interface Running {
  readonly child: ChildProcessWithoutNullStreams;
  output(): string;
  stderr(): string;
  /** The first match of `pattern` in stdout, else in stderr. */
  waitFor(pattern: RegExp, ms?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code when the process ends by itself. */
  readonly exited: Promise<number | null>;
}

export async function start(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = cliEnv()): Promise<Running> {
  const child = spawn(process.execPath, [CLI, ...args], { env });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const running: Running = {
    child,
    exited,
    output: () => out,
    stderr: () => err,
    async waitFor(pattern, ms = 20_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = out.match(pattern) ?? err.match(pattern);
        if (m) return m[0];
        if (child.exitCode !== null || Date.now() > deadline)
          throw new Error(`rrelay ${args.join(' ')}: no ${pattern} in output\nstdout: ${out}\nstderr: ${err}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
  await running.waitFor(ready);
  return running;
}

export function tempRoot(t: { after(fn: () => void): void }): string {
  const root = mkdtempSync(join(tmpdir(), 'rrelay-cli-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

/** Runs `rrelay args... --json`, which must succeed; its JSON lines (a list prints one object per line). */
export async function jsonLines<T>(args: string[]): Promise<T[]> {
  const r = await rrelay([...args, '--json']);
  assert.equal(r.code, 0, `rrelay ${args.join(' ')} failed: ${r.stderr}`);
  return r.json as T[];
}

/** Runs `rrelay args... --json`, which must succeed; its first JSON line. */
export async function json<T>(args: string[]): Promise<T> {
  return (await jsonLines<T>(args))[0]!;
}

/** A relay, a temp root with data directories for alice and bob, and the daemons to stop afterwards. */
export async function twoDataDirs(t: { after(fn: () => Promise<void> | void): void }) {
  const relay = await startTestRelay();
  const root = tempRoot(t);
  const daemons: Running[] = [];
  t.after(async () => {
    for (const d of daemons) await d.stop();
    await relay.stop();
  });
  return { relay, root, daemons, A: ['--data-dir', join(root, 'alice')], B: ['--data-dir', join(root, 'bob')] };
}
