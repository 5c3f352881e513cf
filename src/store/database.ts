import Database from 'better-sqlite3-multiple-ciphers';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { scryptSync } from 'node:crypto';
import { systemRng, toHex } from '../crypto/index.js';
import { fail } from '../errors.js';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

export interface KdfParams {
  /** scrypt cost; 2^15 takes ~100 ms here. Tests lower it. */
  readonly N: number;
}
export const DEFAULT_KDF: KdfParams = { N: 1 << 15 };

export interface OpenOptions {
  /** A file path, or ':memory:'. */
  readonly path: string;
  /** Encrypts the whole database (SQLCipher format) with a key derived from this. Omit for no encryption. */
  readonly passphrase?: string;
  readonly kdf?: KdfParams;
  /**
   * FULL (the default) makes every commit durable. NORMAL, in WAL mode, survives a process crash but
   * may lose the last commits to a power cut; a caller that picks it must call `syncToDisk` before any
   * ciphertext leaves the machine, or a rolled-back ratchet could reuse a message key.
   */
  readonly synchronous?: 'FULL' | 'NORMAL';
}

/**
 * Derives the database key with scrypt. The salt lives beside the database (it is not secret);
 * the key itself is never written anywhere.
 */
function databaseKey(path: string, passphrase: string, kdf: KdfParams): string {
  const saltPath = `${path}.salt`;
  let salt: Uint8Array;
  if (existsSync(saltPath)) salt = new Uint8Array(readFileSync(saltPath));
  else {
    if (existsSync(path)) fail('STORE', `${saltPath} is missing: the database cannot be unlocked without it`);
    salt = systemRng(16);
    writeFileSync(saltPath, salt, { mode: 0o600 });
  }
  return toHex(scryptSync(passphrase, salt, 32, { N: kdf.N, r: 8, p: 1, maxmem: 256 * kdf.N * 8 }));
}

export function openDatabase(options: OpenOptions): Db {
  const memory = options.path === ':memory:';
  const key =
    options.passphrase === undefined ? null : memory ? toHex(systemRng(32)) : databaseKey(options.path, options.passphrase, options.kdf ?? DEFAULT_KDF);
  const db = new Database(options.path);
  try {
    if (key !== null) {
      db.pragma(`cipher='sqlcipher'`);
      db.pragma(`legacy=4`);
      db.pragma(`key="x'${key}'"`);
    }
    try {
      db.pragma('user_version', { simple: true });
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_NOTADB')
        fail('BAD_PASSPHRASE', 'the database cannot be opened: wrong passphrase, or not a ratchet-relay database');
      throw e;
    }
    if (!memory) db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    db.pragma('foreign_keys = ON');
    migrate(db);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/**
 * Makes every commit so far durable: one FULL-synchronous write fsyncs the WAL, and with it all the
 * NORMAL commits before it. A group commit: one fsync for a whole batch of outgoing messages.
 */
export function syncToDisk(db: Db): void {
  if ((db.pragma('synchronous', { simple: true }) as number) >= 2) return;
  db.pragma('synchronous = FULL');
  try {
    db.prepare("INSERT INTO durability (id, synced_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET synced_at = excluded.synced_at").run(Date.now());
  } finally {
    db.pragma('synchronous = NORMAL');
  }
}

/** Applies the migrations this database has not seen yet, each in its own transaction. */
export function migrate(db: Db): number {
  const from = db.pragma('user_version', { simple: true }) as number;
  if (from > MIGRATIONS.length)
    fail('STORE', `database schema version ${from} is newer than this program (${MIGRATIONS.length}): upgrade ratchet-relay`);
  for (let v = from; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return MIGRATIONS.length;
}
