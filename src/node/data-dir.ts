import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import { fail } from '../errors.js';

/** `--data-dir`, else $RRELAY_DATA_DIR, else $XDG_DATA_HOME/rrelay, else ~/.local/share/rrelay. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RRELAY_DATA_DIR) return resolve(env.RRELAY_DATA_DIR);
  const xdg = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(xdg, 'rrelay');
}

export const paths = (dataDir: string) => ({
  db: join(dataDir, 'store.db'),
  lock: join(dataDir, 'node.lock'),
  socket: join(dataDir, 'rrelay.sock'),
  relayDb: join(dataDir, 'relay.db'),
});

export function ensureDataDir(dataDir: string): void {
  if (!existsSync(dataDir)) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
}

/**
 * One node per data directory. The lock is a directory that proper-lockfile refreshes; a node that
 * died leaves a lock that goes stale after `staleMs` and is then taken over.
 */
export async function lockDataDir(dataDir: string, staleMs = 10_000): Promise<() => Promise<void>> {
  try {
    return await lockfile.lock(dataDir, { lockfilePath: paths(dataDir).lock, stale: staleMs, update: staleMs / 2, retries: 0, realpath: false });
  } catch (e) {
    if ((e as { code?: string }).code === 'ELOCKED')
      return fail('STORE', `another rrelay node is using ${dataDir}: stop it (or talk to it, if it is a daemon) first`);
    throw e;
  }
}
