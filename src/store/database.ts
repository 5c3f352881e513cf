import Database from 'better-sqlite3-multiple-ciphers';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { scryptSync } from 'node:crypto';
import { systemRng, toHex } from '../crypto/index.js';
import { fail } from '../errors.js';
import { MIGRATIONS } from './migrations.js';
import { privateFile, tightenMode, type Warn, warnOnStderr } from './private-files.js';

export type Db = Database.Database;

export interface KdfParams {
  /** scrypt cost (r = 8, p = 1), a power of two. Measured on 2 cores: 2^15 ~95 ms, 2^17 ~420 ms. Tests lower it. */
  readonly N: number;
}
/** For new databases; an existing one keeps the cost stored beside its salt. */
export const DEFAULT_KDF: KdfParams = { N: 1 << 17 };
/** What a salt file without a header (16 bytes, written before issue 10) was derived with. */
export const LEGACY_KDF: KdfParams = { N: 1 << 15 };

/**
 * The cost a new store is created with: $RRELAY_SCRYPT_LOG2N (10..22) when set, else DEFAULT_KDF. The
 * test suites set it low so each CLI process does not spend half a second unlocking; an existing store
 * ignores it and uses the cost stored beside its salt.
 */
export function kdfFromEnv(env: NodeJS.ProcessEnv = process.env): KdfParams {
  const raw = env.RRELAY_SCRYPT_LOG2N;
  if (raw === undefined || raw === '') return DEFAULT_KDF;
  const log2 = Number(raw);
  if (!Number.isInteger(log2) || log2 < MIN_LOG2_N || log2 > MAX_LOG2_N)
    fail('INVALID_ARGUMENT', `RRELAY_SCRYPT_LOG2N must be an integer from ${MIN_LOG2_N} to ${MAX_LOG2_N}, got "${raw}"`);
  return { N: 2 ** log2 };
}

const SALT_BYTES = 16;
const SALT_FILE_VERSION = 1;
/** log2 N bounds a salt file may name: below is too weak even for tests, above needs more memory than we allow. */
const MIN_LOG2_N = 10;
const MAX_LOG2_N = 22;

export interface SaltFile {
  readonly salt: Uint8Array;
  readonly kdf: KdfParams;
}

/**
 * The salt file, version 1: version (1 byte), log2 N (1 byte), salt (16 bytes); r = 8 and p = 1 are
 * fixed. A file of 16 bytes is the salt alone, written before issue 10, and means N = 2^15.
 */
export function encodeSaltFile(f: SaltFile): Uint8Array {
  const log2 = Math.log2(f.kdf.N);
  if (!Number.isInteger(log2) || log2 < MIN_LOG2_N || log2 > MAX_LOG2_N || f.salt.length !== SALT_BYTES)
    fail('INVALID_ARGUMENT', `scrypt N must be a power of two from 2^${MIN_LOG2_N} to 2^${MAX_LOG2_N}, with a ${SALT_BYTES}-byte salt`);
  return new Uint8Array([SALT_FILE_VERSION, log2, ...f.salt]);
}

export function decodeSaltFile(bytes: Uint8Array): SaltFile {
  if (bytes.length === SALT_BYTES) return { salt: bytes.slice(), kdf: LEGACY_KDF };
  if (bytes.length !== 2 + SALT_BYTES) fail('MALFORMED', `a salt file has ${SALT_BYTES} or ${2 + SALT_BYTES} bytes, not ${bytes.length}`);
  if (bytes[0] !== SALT_FILE_VERSION) fail('UNSUPPORTED_VERSION', `salt file version ${bytes[0]} is not supported`);
  const log2 = bytes[1]!;
  if (log2 < MIN_LOG2_N || log2 > MAX_LOG2_N) fail('MALFORMED', `the salt file names scrypt N = 2^${log2}, outside 2^${MIN_LOG2_N}..2^${MAX_LOG2_N}`);
  return { salt: bytes.slice(2), kdf: { N: 2 ** log2 } };
}

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
  /** Where a tightened file mode is reported (stderr by default). */
  readonly warn?: Warn;
}

/**
 * Derives the database key with scrypt. The salt and the cost it was made with live beside the
 * database (they are not secret), so a store keeps opening when the default cost rises; the key itself
 * is never written anywhere.
 */
function databaseKey(path: string, passphrase: string, kdf: KdfParams, warn: Warn): string {
  const saltPath = `${path}.salt`;
  let file: SaltFile;
  if (existsSync(saltPath)) {
    tightenMode(saltPath, 0o600, warn);
    file = decodeSaltFile(new Uint8Array(readFileSync(saltPath)));
  } else {
    if (existsSync(path)) fail('STORE', `${saltPath} is missing: the database cannot be unlocked without it`);
    file = { salt: systemRng(SALT_BYTES), kdf };
    writeFileSync(saltPath, encodeSaltFile(file), { mode: 0o600 });
  }
  const N = file.kdf.N;
  return toHex(scryptSync(passphrase, file.salt, 32, { N, r: 8, p: 1, maxmem: 256 * N * 8 }));
}

export function openDatabase(options: OpenOptions): Db {
  const memory = options.path === ':memory:';
  const warn = options.warn ?? warnOnStderr;
  const key =
    options.passphrase === undefined
      ? null
      : memory
        ? toHex(systemRng(32))
        : databaseKey(options.path, options.passphrase, options.kdf ?? DEFAULT_KDF, warn);
  if (!memory) {
    privateFile(options.path, warn);
    for (const suffix of ['-wal', '-shm']) tightenMode(options.path + suffix, 0o600, warn);
  }
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
    // Deleted rows (a consumed one-time key, an evicted session) are zeroed, not left in free space.
    db.pragma('secure_delete = ON');
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
