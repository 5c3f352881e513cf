import type { Command } from 'commander';
import { RatchetRelayError } from '../errors.js';
import { DataDirBusy, defaultDataDir, paths } from '../node/data-dir.js';
import { EXIT, exit, exitWithError, printJson, readPassphrase } from './io.js';
import { warn } from './progress.js';
import { type ApiClient, LocalApi } from './dispatch.js';
import { NodeService } from './node-service.js';
import { connectRpc } from './rpc.js';
import { readSettings, sameSettings, type Settings, settingsArgs, settingsGiven, writeSettings } from './settings.js';

// What every command shares: global options, the API (a daemon, or the node in this process), output.

/** The embedded relay's address: what `rrelay relay` serves and what `init` configures when given no relay. */
export const DEFAULT_RELAY = 'ws://127.0.0.1:7447';

export interface GlobalOptions {
  dataDir?: string;
  json?: boolean;
  verbose?: boolean;
  proxy?: string;
  addressing?: string;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

export function dataDirOf(g: GlobalOptions): string {
  return g.dataDir ?? defaultDataDir();
}

export function logger(g: GlobalOptions): (line: string) => void {
  return g.verbose ? (line) => process.stderr.write(`[rrelay] ${line}\n`) : () => {};
}

/**
 * How long a command waits while another process holds the data directory: a daemon holds it from
 * before it connects to its relays (up to their 5 s connect timeout) until its socket opens, and a
 * command run without a daemon holds it until it exits.
 */
const BUSY_WAIT_MS = 10_000;
const BUSY_POLL_MS = 100;

/**
 * The daemon if one runs on this data directory, else the node opened in this process. While
 * another process holds the directory (a daemon starting, a command finishing), waits up to
 * BUSY_WAIT_MS for the daemon's socket or for the lock.
 */
export async function openApi(g: GlobalOptions): Promise<ApiClient> {
  const dataDir = dataDirOf(g);
  const given = settingsGiven(g);
  const deadline = Date.now() + BUSY_WAIT_MS;
  let passphrase: string | undefined;
  for (;;) {
    const rpc = await connectRpc(paths(dataDir).socket);
    if (rpc) {
      try {
        await sameAsDaemon(rpc, given);
      } catch (e) {
        await rpc.close();
        throw e;
      }
      return rpc;
    }
    passphrase ??= await readPassphrase();
    const log = logger(g);
    try {
      const opened = (settings: Settings) => NodeService.open({ dataDir, passphrase: passphrase!, log, daemon: false, settings, warn: (m) => warn(g, m) });
      return new LocalApi(await openWithSettings(dataDir, given, opened), log);
    } catch (e) {
      if (!(e instanceof DataDirBusy) || Date.now() >= deadline) throw busyAfterWaiting(e);
    }
    await new Promise((r) => setTimeout(r, BUSY_POLL_MS));
  }
}

/**
 * Opens the node with the data directory's settings, changed by what the command line gave; once it
 * opened (and so holds the directory), keeps the change for later commands and the daemon.
 */
export async function openWithSettings<T>(dataDir: string, given: Partial<Settings>, open: (settings: Settings) => Promise<T>): Promise<T> {
  const saved = readSettings(dataDir);
  const settings = { ...saved, ...given };
  const opened = await open(settings);
  if (!sameSettings(saved, settings)) writeSettings(dataDir, settings);
  return opened;
}

/** A running daemon connects as it started: a command asking for something else must not seem to get it. */
export async function sameAsDaemon(rpc: ApiClient, given: Partial<Settings>): Promise<void> {
  if (Object.keys(given).length === 0) return;
  const running = await rpc.call('settings');
  const differs = (Object.keys(given) as (keyof Settings)[]).filter((k) => given[k] !== running[k]);
  if (differs.length === 0) return;
  const now = settingsArgs(Object.fromEntries(differs.map((k) => [k, running[k]])));
  throw new RatchetRelayError(
    'STORE',
    `the running daemon uses ${now}: stop it and start it again with \`rrelay ${settingsArgs(given)} daemon\` to change that (it is then kept for every later command)`,
  );
}

function busyAfterWaiting(e: unknown): unknown {
  if (!(e instanceof DataDirBusy)) return e;
  return new RatchetRelayError(
    'STORE',
    `another rrelay node is using ${e.dataDir}, and no daemon opened its socket there within ${BUSY_WAIT_MS / 1000} s: stop that node (or talk to it, if it is a daemon) first`,
  );
}

/** Runs one command against the API and always closes it; errors become messages and exit codes. */
export function action<A extends unknown[]>(fn: (api: ApiClient, g: GlobalOptions, ...args: A) => Promise<number | void>) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const g = globals(cmd);
    let api: ApiClient | undefined;
    try {
      api = await openApi(g);
      const code = await fn(api, g, ...(args.slice(0, -1) as A));
      await api.close();
      return await exit(code ?? EXIT.ok);
    } catch (e) {
      await api?.close().catch(() => {});
      return exitWithError(e, g.json ?? false);
    }
  };
}

/** A command that runs on its own, not through the API (init, daemon, relay, demo): errors become messages and exit codes. */
export function standalone<A extends unknown[]>(fn: (g: GlobalOptions, ...args: A) => Promise<void>) {
  return async (...args: unknown[]) => {
    const g = globals(args[args.length - 1] as Command);
    try {
      await fn(g, ...(args.slice(0, -1) as A));
      return await exit(EXIT.ok);
    } catch (e) {
      return exitWithError(e, g.json ?? false);
    }
  };
}

export function out(g: GlobalOptions, json: unknown, human: string): void {
  if (g.json) printJson(json);
  else process.stdout.write(`${human}\n`);
}


export function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}
