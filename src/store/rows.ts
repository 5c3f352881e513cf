import type { Bytes } from '../crypto/index.js';
import type Database from 'better-sqlite3-multiple-ciphers';
import type { Db } from './database.js';

/** A row as better-sqlite3 returns it; each store module turns its own rows into records. */
export type Row = Record<string, unknown>;

/** A Uint8Array as a Buffer over the same memory, which is what better-sqlite3 binds as a BLOB. */
export const blob = (b: Bytes): Buffer => Buffer.from(b.buffer, b.byteOffset, b.length);

export const bytesOf = (v: unknown): Uint8Array => new Uint8Array(v as Buffer);

/** Prepares every statement of a store module once. */
export function prepareAll<K extends string>(db: Db, sql: Record<K, string>): Record<K, Database.Statement<unknown[]>> {
  return Object.fromEntries(Object.entries(sql).map(([k, s]) => [k, db.prepare(s as string)])) as unknown as Record<K, Database.Statement<unknown[]>>;
}
