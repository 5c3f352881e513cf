import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';

/** Where a tightened permission is reported: stderr unless the caller routes it elsewhere. */
export type Warn = (line: string) => void;
export const warnOnStderr: Warn = (line) => process.stderr.write(`rrelay: warning: ${line}\n`);

/** Makes `path` (when it exists) readable by its owner only, warning when it was not. */
export function tightenMode(path: string, mode: 0o700 | 0o600, warn: Warn): void {
  if (!existsSync(path)) return;
  const current = statSync(path).mode & 0o777;
  if ((current & 0o077) === 0) return;
  chmodSync(path, mode);
  warn(`${path} was mode ${current.toString(8).padStart(4, '0')}, readable by others: changed to ${mode.toString(8).padStart(4, '0')}`);
}

/** A directory of the owner's only: created 0700, or tightened to it. */
export function privateDir(path: string, warn: Warn): void {
  if (!existsSync(path)) mkdirSync(path, { recursive: true, mode: 0o700 });
  else tightenMode(path, 0o700, warn);
}

/**
 * A file of the owner's only: created 0600 before SQLite opens it (SQLite gives its WAL and SHM files
 * the database file's mode), or tightened to 0600.
 */
export function privateFile(path: string, warn: Warn): void {
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  else tightenMode(path, 0o600, warn);
}
