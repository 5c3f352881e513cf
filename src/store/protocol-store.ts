import { constantTimeEqual, type Rng } from '../crypto/index.js';
import { fail } from '../errors.js';
import {
  decodeIdentity,
  decodePublicIdentity,
  encodeIdentity,
  encodePublicIdentity,
  fingerprint,
  generateIdentity,
  type Identity,
} from '../identity/index.js';
import { SESSION_LIMITS } from '../limits.js';
import type { KyberPreKey, OneTimePreKey, PreKeyState, PublishedBundle, RotatingPreKey, SignedPreKey } from '../prekeys/index.js';
import { readPqxdhHeader, writePqxdhHeader } from '../pqxdh/index.js';
import { decodeRatchetCore, encodeRatchetCore, type SkippedKey } from '../ratchet/index.js';
import type { ProtocolStore, SessionState } from '../session/index.js';
import { Reader, Writer } from '../wire/codec.js';
import type { Db } from './database.js';
import { blob } from './rows.js';

type Row = Record<string, unknown>;
const u8 = (v: unknown) => new Uint8Array(v as Buffer);
const u8OrNull = (v: unknown) => (v === null ? null : u8(v));

function skippedId(k: SkippedKey): string {
  return `${blob(k.headerKey).toString('hex')}:${k.n}`;
}

/** ProtocolStore on SQLite. Every statement is prepared once. */
export class SqliteProtocolStore implements ProtocolStore {
  private cachedIdentity: Identity | undefined;
  /**
   * Write-through cache of loadSessions: a decrypt would otherwise re-read every skipped key of the
   * session. Updated as saves happen inside a transaction; any rollback clears it all.
   */
  private readonly sessionCache = new Map<string, SessionState[]>();
  private readonly tx: (fn: () => unknown) => unknown;
  /** A private key was deleted in the current transaction: the WAL is checkpointed once it commits. */
  private keysErased = false;
  private readonly q;
  /** Told the peer of every saved session (the node's mailbox tags follow it). */
  onSessionSaved: ((peer: string) => void) | undefined;

  constructor(
    readonly db: Db,
    private readonly clock: () => number = Date.now,
  ) {
    this.tx = db.transaction((fn: () => unknown) => fn());
    const p = (sql: string) => db.prepare(sql);
    this.q = {
      identity: p('SELECT record FROM identity WHERE id = 1'),
      insertIdentity: p('INSERT INTO identity (id, record, fingerprint, created_at) VALUES (1, ?, ?, ?)'),
      sessions: p('SELECT * FROM sessions WHERE peer = ? ORDER BY active DESC, updated_at DESC, rowid DESC'),
      skipped: p('SELECT header_key, n, message_key, created_at FROM skipped_keys WHERE peer = ? AND base_key = ? ORDER BY rowid'),
      upsertSession: p(`INSERT INTO sessions (peer, base_key, role, peer_identity, associated_data, pending, ratchet, active, created_at, updated_at)
        VALUES (@peer, @base_key, @role, @peer_identity, @associated_data, @pending, @ratchet, @active, @created_at, @updated_at)
        ON CONFLICT (peer, base_key) DO UPDATE SET pending = excluded.pending, ratchet = excluded.ratchet,
          active = excluded.active, updated_at = excluded.updated_at`),
      updateSession: p(`UPDATE sessions SET pending = @pending, ratchet = @ratchet, active = @active, updated_at = @updated_at
        WHERE peer = @peer AND base_key = @base_key`),
      deactivateOthers: p('UPDATE sessions SET active = 0 WHERE peer = ? AND base_key != ? AND active = 1'),
      evictSessions: p(`DELETE FROM sessions WHERE peer = ? AND rowid NOT IN
        (SELECT rowid FROM sessions WHERE peer = ? ORDER BY active DESC, updated_at DESC, rowid DESC LIMIT ?)`),
      insertSkipped: p('INSERT OR REPLACE INTO skipped_keys (peer, base_key, header_key, n, message_key, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
      deleteSkipped: p('DELETE FROM skipped_keys WHERE peer = ? AND base_key = ? AND header_key = ? AND n = ?'),
      signed: p('SELECT * FROM signed_prekeys WHERE id = ?'),
      kyber: p('SELECT * FROM kyber_prekeys WHERE id = ?'),
      oneTime: p('SELECT * FROM one_time_prekeys WHERE id = ?'),
      consume: p('UPDATE one_time_prekeys SET private_key = NULL, consumed_at = ? WHERE id = ? AND consumed_at IS NULL'),
      acceptedFirst: p('SELECT 1 FROM accepted_first_messages WHERE signed_prekey_id = ? AND base_key = ?'),
      recordFirst: p('INSERT INTO accepted_first_messages (signed_prekey_id, base_key, accepted_at) VALUES (?, ?, ?)'),
      pruneFirst: p('DELETE FROM accepted_first_messages WHERE signed_prekey_id = ?'),
      allSigned: p('SELECT * FROM signed_prekeys ORDER BY id'),
      allKyber: p('SELECT * FROM kyber_prekeys ORDER BY id'),
      unusedOneTime: p('SELECT * FROM one_time_prekeys WHERE consumed_at IS NULL ORDER BY id'),
      maxIds: p(`SELECT (SELECT coalesce(max(id), 0) FROM signed_prekeys) AS signed,
        (SELECT coalesce(max(id), 0) FROM kyber_prekeys) AS kyber,
        (SELECT coalesce(max(id), 0) FROM one_time_prekeys) AS one_time`),
      bundleMeta: p('SELECT * FROM bundle_meta WHERE id = 1'),
      upsertSigned: p(upsertRotating('signed_prekeys')),
      upsertKyber: p(upsertRotating('kyber_prekeys')),
      insertOneTime: p('INSERT INTO one_time_prekeys (id, public_key, private_key, created_at, consumed_at) VALUES (?, ?, ?, ?, NULL)'),
      upsertBundleMeta: p(`INSERT INTO bundle_meta (id, signed_prekey_id, kyber_prekey_id, one_time_prekey_ids, published_at)
        VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET signed_prekey_id = excluded.signed_prekey_id,
        kyber_prekey_id = excluded.kyber_prekey_id, one_time_prekey_ids = excluded.one_time_prekey_ids, published_at = excluded.published_at`),
    };
  }

  transaction<T>(fn: () => T): T {
    let result: T;
    try {
      result = this.tx(fn) as T;
    } catch (e) {
      this.sessionCache.clear();
      if (!this.db.inTransaction) this.keysErased = false;
      throw e;
    }
    if (this.keysErased && !this.db.inTransaction) {
      this.keysErased = false;
      eraseWal(this.db);
    }
    return result;
  }

  hasIdentity(): boolean {
    return this.q.identity.get() !== undefined;
  }

  /** Creates the identity on first use; later calls return the stored one. */
  ensureIdentity(rng: Rng, now: number): Identity {
    if (!this.hasIdentity()) {
      const id = generateIdentity(rng, now);
      this.q.insertIdentity.run(blob(encodeIdentity(id)), fingerprint(id.public), now);
    }
    return this.identity();
  }

  identity(): Identity {
    if (!this.cachedIdentity) {
      const row = this.q.identity.get() as Row | undefined;
      if (!row) return fail('STORE', 'no identity in this store: run `rrelay init` first');
      this.cachedIdentity = decodeIdentity(u8(row.record));
    }
    return this.cachedIdentity;
  }

  loadSessions(peer: string): SessionState[] {
    let sessions = this.sessionCache.get(peer);
    if (!sessions) {
      sessions = this.readSessions(peer);
      this.sessionCache.set(peer, sessions);
    }
    return [...sessions];
  }

  private readSessions(peer: string): SessionState[] {
    return (this.q.sessions.all(peer) as Row[]).map((row) => {
      const skipped = (this.q.skipped.all(peer, row.base_key) as Row[]).map((k) => ({
        headerKey: u8(k.header_key),
        n: k.n as number,
        messageKey: u8(k.message_key),
        createdAt: k.created_at as number,
      }));
      let pending = null;
      if (row.pending !== null) {
        const r = new Reader(u8(row.pending), 'stored PQXDH header');
        pending = readPqxdhHeader(r);
        r.end();
      }
      return {
        peer: decodePublicIdentity(u8(row.peer_identity)),
        associatedData: u8(row.associated_data),
        baseKey: u8(row.base_key),
        role: row.role as SessionState['role'],
        pending,
        ratchet: decodeRatchetCore(u8(row.ratchet), skipped),
        createdAt: row.created_at as number,
      };
    });
  }

  saveSession(peer: string, before: SessionState | null, after: SessionState, makeActive: boolean): void {
    const baseKey = blob(after.baseKey);
    const changed = {
      peer,
      base_key: baseKey,
      pending: after.pending ? blob(writePqxdhHeader(new Writer(), after.pending).finish()) : null,
      ratchet: blob(encodeRatchetCore(after.ratchet)),
      active: makeActive ? 1 : 0,
      updated_at: this.clock(),
    };
    // A session's identity, role and associated data never change: encoding the peer's identity (its
    // ML-KEM key is 1.5 KB) for every message was a tenth of a stored message's CPU.
    if (!before || this.q.updateSession.run(changed).changes === 0)
      this.q.upsertSession.run({
        ...changed,
        role: after.role,
        peer_identity: blob(encodePublicIdentity(after.peer)),
        associated_data: blob(after.associatedData),
        created_at: after.createdAt,
      });
    const old = before?.ratchet.skipped ?? [];
    const now = after.ratchet.skipped;
    if (old !== now) {
      const oldIds = new Set(old.map(skippedId));
      const newIds = new Set(now.map(skippedId));
      for (const k of old) if (!newIds.has(skippedId(k))) this.q.deleteSkipped.run(peer, baseKey, blob(k.headerKey), k.n);
      for (const k of now)
        if (!oldIds.has(skippedId(k))) this.q.insertSkipped.run(peer, baseKey, blob(k.headerKey), k.n, blob(k.messageKey), k.createdAt);
    }
    if (makeActive) this.q.deactivateOthers.run(peer, baseKey);
    if (!before && this.q.evictSessions.run(peer, peer, SESSION_LIMITS.maxSessionsPerPeer).changes > 0) this.keysErased = true;
    const cached = this.sessionCache.get(peer);
    if (cached && makeActive) {
      const others = cached.filter((x) => !constantTimeEqual(x.baseKey, after.baseKey));
      this.sessionCache.set(peer, [after, ...others].slice(0, SESSION_LIMITS.maxSessionsPerPeer));
    } else this.sessionCache.delete(peer);
    this.onSessionSaved?.(peer);
  }

  signedPreKey(id: number): SignedPreKey | undefined {
    const row = this.q.signed.get(id) as Row | undefined;
    return row && toRotatingPreKey(row);
  }

  kyberPreKey(id: number): KyberPreKey | undefined {
    const row = this.q.kyber.get(id) as Row | undefined;
    return row && toRotatingPreKey(row);
  }

  oneTimePreKey(id: number): OneTimePreKey | undefined {
    const row = this.q.oneTime.get(id) as Row | undefined;
    return row && toOneTimePreKey(row);
  }

  consumeOneTimePreKey(id: number, now: number): void {
    if (this.q.consume.run(now, id).changes !== 1) fail('ONE_TIME_PREKEY_USED', `one-time pre-key ${id} was already used`);
    this.keysErased = true;
  }

  acceptedFirstMessage(signedPreKeyId: number, baseKey: Uint8Array): boolean {
    return this.q.acceptedFirst.get(signedPreKeyId, blob(baseKey)) !== undefined;
  }

  recordFirstMessage(signedPreKeyId: number, baseKey: Uint8Array, now: number): void {
    this.q.recordFirst.run(signedPreKeyId, blob(baseKey), now);
  }

  loadPreKeyState(): PreKeyState {
    const ids = this.q.maxIds.get() as { signed: number; kyber: number; one_time: number };
    const meta = this.q.bundleMeta.get() as Row | undefined;
    const published: PublishedBundle | null = meta
      ? {
          signedPreKeyId: meta.signed_prekey_id as number,
          kyberPreKeyId: meta.kyber_prekey_id as number,
          oneTimePreKeyIds: JSON.parse(meta.one_time_prekey_ids as string) as number[],
          publishedAt: meta.published_at as number,
        }
      : null;
    return {
      signed: (this.q.allSigned.all() as Row[]).map(toRotatingPreKey),
      kyber: (this.q.allKyber.all() as Row[]).map(toRotatingPreKey),
      oneTime: (this.q.unusedOneTime.all() as Row[]).map(toOneTimePreKey),
      nextIds: { signed: ids.signed + 1, kyber: ids.kyber + 1, oneTime: ids.one_time + 1 },
      published,
    };
  }

  /** Writes what changed. Records are immutable, so an unchanged one is the same object. */
  savePreKeyState(before: PreKeyState, after: PreKeyState): void {
    for (const [statement, old, next] of [
      [this.q.upsertSigned, before.signed, after.signed],
      [this.q.upsertKyber, before.kyber, after.kyber],
    ] as const) {
      const unchanged = new Set(old);
      for (const k of next)
        if (!unchanged.has(k)) {
          if (k.privateKey === null) this.keysErased = true;
          // A first message naming an expired signed pre-key is refused anyway: its record can go.
          if (k.privateKey === null && statement === this.q.upsertSigned) this.q.pruneFirst.run(k.id);
          statement.run({
            id: k.id,
            public_key: blob(k.publicKey),
            private_key: k.privateKey && blob(k.privateKey),
            created_at: k.createdAt,
            replaced_at: k.replacedAt,
            signature: blob(k.signature),
          });
        }
    }
    const oldOneTime = new Set(before.oneTime);
    for (const k of after.oneTime)
      if (!oldOneTime.has(k)) this.q.insertOneTime.run(k.id, blob(k.publicKey), k.privateKey && blob(k.privateKey), k.createdAt);
    const p = after.published;
    if (p && p !== before.published)
      this.q.upsertBundleMeta.run(p.signedPreKeyId, p.kyberPreKeyId, JSON.stringify(p.oneTimePreKeyIds), p.publishedAt);
  }
}

/**
 * Moves the WAL into the database and empties it, so that a deleted private key (zeroed in its page by
 * secure_delete) leaves no copy in the WAL file either.
 */
function eraseWal(db: Db): void {
  db.pragma('wal_checkpoint(TRUNCATE)');
}

function upsertRotating(table: 'signed_prekeys' | 'kyber_prekeys'): string {
  return `INSERT INTO ${table} (id, public_key, private_key, created_at, replaced_at, signature)
    VALUES (@id, @public_key, @private_key, @created_at, @replaced_at, @signature)
    ON CONFLICT (id) DO UPDATE SET private_key = excluded.private_key, replaced_at = excluded.replaced_at`;
}

function toRotatingPreKey(row: Row): RotatingPreKey {
  return {
    id: row.id as number,
    publicKey: u8(row.public_key),
    privateKey: u8OrNull(row.private_key),
    createdAt: row.created_at as number,
    replacedAt: row.replaced_at as number | null,
    signature: u8(row.signature),
  };
}

function toOneTimePreKey(row: Row): OneTimePreKey {
  return {
    id: row.id as number,
    publicKey: u8(row.public_key),
    privateKey: u8OrNull(row.private_key),
    createdAt: row.created_at as number,
    consumedAt: row.consumed_at as number | null,
  };
}
