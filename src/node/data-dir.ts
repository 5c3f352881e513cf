import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { RatchetRelayError } from '../errors.js';
import { privateDir, privateFile, type Warn, warnOnStderr } from '../store/private-files.js';

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
  /** `--proxy` and `--addressing`, kept for later commands and the daemon (src/cli/settings.ts). */
  settings: join(dataDir, 'settings.json'),
  /** The web app's token (0600): whoever has it can use this identity through `rrelay ui` (src/cli/web.ts). */
  uiToken: join(dataDir, 'ui-token'),
});

/** Creates the data directory 0700, or tightens an existing one to 0700 (with a warning). */
export function ensureDataDir(dataDir: string, warn: Warn = warnOnStderr): void {
  privateDir(dataDir, warn);
}

/** Another process holds the data directory: a node for one command, or a daemon (perhaps still starting). */
export class DataDirBusy extends RatchetRelayError {
  constructor(readonly dataDir: string) {
    super('STORE', `another rrelay node is using ${dataDir}: stop it (or talk to it, if it is a daemon) first`);
  }
}

/**
 * One node per data directory. The lock is an exclusive SQLite transaction on `node.lock`, that is an
 * OS file lock: it is released when the process exits, however it exits, so a crashed node never
 * leaves a stale lock behind, and a second node gets a clear error at once.
 */
export async function lockDataDir(dataDir: string, warn: Warn = warnOnStderr): Promise<() => Promise<void>> {
  ensureDataDir(dataDir, warn);
  privateFile(paths(dataDir).lock, warn);
  const db = new Database(paths(dataDir).lock, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code === 'SQLITE_BUSY')
      throw new DataDirBusy(dataDir);
    throw e;
  }
  return async () => {
    db.close();
  };
}
