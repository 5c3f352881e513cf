import Database from 'better-sqlite3-multiple-ciphers';
import { type Event, type Filter, EventRepository, type EventRepositoryUpsertResult } from '@nostr-relay/common';

/** Most events one filter returns, whatever its `limit`; clients page further back with `until`. */
export const MAX_EVENTS_PER_FILTER = 1000;

const MIGRATIONS = [
  `
  CREATE TABLE events (
    id TEXT PRIMARY KEY NOT NULL,
    pubkey TEXT NOT NULL,
    kind INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    content TEXT NOT NULL,
    sig TEXT NOT NULL,
    tags TEXT NOT NULL,
    -- The replacement key: '' for replaceable kinds, the d tag for addressable ones, NULL for the rest.
    d_tag TEXT
  ) STRICT;
  CREATE UNIQUE INDEX events_address ON events (pubkey, kind, d_tag) WHERE d_tag IS NOT NULL;
  CREATE INDEX events_created_at ON events (created_at DESC, id);
  CREATE INDEX events_pubkey ON events (pubkey, created_at DESC);
  CREATE INDEX events_kind ON events (kind, created_at DESC);

  -- Single-letter tags only: NIP-01 filters can select on nothing else.
  CREATE TABLE event_tags (
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    PRIMARY KEY (name, value, event_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX event_tags_event ON event_tags (event_id);
  `,
  // One row, written with synchronous = FULL by `sync`: that commit fsyncs the WAL, and with it every
  // NORMAL commit before it (group commit).
  `CREATE TABLE durability (id INTEGER PRIMARY KEY CHECK (id = 1), synced_at INTEGER NOT NULL) STRICT;`,
];

const SINGLE_LETTER = /^[a-zA-Z]$/;
const HEX64 = /^[0-9a-f]{64}$/;

function isReplaceableKind(kind: number): boolean {
  return kind === 0 || kind === 3 || (kind >= 10000 && kind < 20000);
}

function isAddressableKind(kind: number): boolean {
  return kind >= 30000 && kind < 40000;
}

/** The value of d_tag for an event: which earlier events a newer one replaces. */
function replacementKey(kind: number, tags: readonly string[][]): string | null {
  if (isReplaceableKind(kind)) return '';
  if (isAddressableKind(kind)) return tags.find((t) => t[0] === 'd')?.[1] ?? '';
  return null;
}

/** NIP-01: the newer event wins; on equal created_at the one with the lowest id. */
function supersedes(candidate: { created_at: number; id: string }, current: { created_at: number; id: string }): boolean {
  return candidate.created_at > current.created_at || (candidate.created_at === current.created_at && candidate.id < current.id);
}

interface EventRow {
  id: string;
  pubkey: string;
  kind: number;
  created_at: number;
  content: string;
  sig: string;
  tags: string;
}

function toEvent(row: EventRow): Event {
  return {
    id: row.id,
    pubkey: row.pubkey,
    kind: row.kind,
    created_at: row.created_at,
    content: row.content,
    sig: row.sig,
    tags: JSON.parse(row.tags) as string[][],
  };
}

/**
 * @nostr-relay/core's EventRepository on SQLite. The core checks ids and signatures, answers
 * duplicates, broadcasts ephemeral kinds (20000-29999) without ever passing them here, and routes
 * kind 5 to deleteByDeletionRequest instead of upsert; this class owns storage, replacement and queries.
 */
export class SqliteEventRepository extends EventRepository {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly upsertTransaction: (event: Event) => EventRepositoryUpsertResult;
  private readonly deleteTransaction: (event: Event) => void;
  /** Something was committed since the last `sync`: it would not survive a power cut yet. */
  private unsynced = false;
  /** For tests and measurements: how many times `sync` made writes durable. */
  syncs = 0;

  constructor(path: string) {
    super();
    this.db = new Database(path);
    try {
      if (path !== ':memory:') this.db.pragma('journal_mode = WAL');
      // OK true tells the client the event is stored: it must survive a power cut. Writes commit
      // with NORMAL (no fsync) and `sync` makes a whole burst of them durable with one fsync; the
      // relay sends no OK before that (group commit, see index.ts).
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.migrate();
    } catch (e) {
      this.db.close();
      throw e;
    }
    this.upsertTransaction = this.db.transaction((event: Event) => this.upsertNow(event));
    this.deleteTransaction = this.db.transaction((event: Event) => this.deleteNow(event));
  }

  isSearchSupported(): boolean {
    return false;
  }

  upsert(event: Event): EventRepositoryUpsertResult {
    const result = this.upsertTransaction(event);
    if (!result.isDuplicate) this.unsynced = true;
    return result;
  }

  /** Whether a commit since the last `sync` could still be lost to a power cut. */
  get needsSync(): boolean {
    return this.unsynced;
  }

  /** Makes every commit so far durable with one fsync: a FULL-synchronous write fsyncs the WAL, and every NORMAL commit before it. */
  sync(): void {
    if (!this.unsynced || !this.db.open) return;
    this.db.pragma('synchronous = FULL');
    try {
      this.statement('INSERT INTO durability (id, synced_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET synced_at = excluded.synced_at').run(Date.now());
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
    this.unsynced = false;
    this.syncs++;
  }

  find(filter: Filter): Event[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    // Lists are bound as one JSON array each, so the SQL text depends only on which fields are present.
    const inList = (column: string, values: readonly (string | number)[]): void => {
      where.push(`${column} IN (SELECT value FROM json_each(?))`);
      params.push(JSON.stringify(values));
    };
    if (filter.ids) inList('e.id', filter.ids);
    if (filter.authors) inList('e.pubkey', filter.authors);
    if (filter.kinds) inList('e.kind', filter.kinds);
    if (filter.since !== undefined) {
      where.push('e.created_at >= ?');
      params.push(filter.since);
    }
    if (filter.until !== undefined) {
      where.push('e.created_at <= ?');
      params.push(filter.until);
    }
    for (const [key, values] of Object.entries(filter)) {
      if (key[0] !== '#' || !SINGLE_LETTER.test(key.slice(1)) || !Array.isArray(values)) continue;
      where.push('e.id IN (SELECT t.event_id FROM event_tags t WHERE t.name = ? AND t.value IN (SELECT value FROM json_each(?)))');
      params.push(key.slice(1), JSON.stringify(values));
    }
    const limit = Math.min(filter.limit ?? MAX_EVENTS_PER_FILTER, MAX_EVENTS_PER_FILTER);
    if (limit <= 0) return [];
    params.push(limit);
    const sql =
      'SELECT e.id, e.pubkey, e.kind, e.created_at, e.content, e.sig, e.tags FROM events e' +
      (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
      ' ORDER BY e.created_at DESC, e.id ASC LIMIT ?';
    return (this.statement(sql).all(...params) as EventRow[]).map(toEvent);
  }

  /** NIP-09: stores the kind 5 and removes the events it names by id (e) or address (a), if its author wrote them. */
  override async deleteByDeletionRequest(event: Event): Promise<void> {
    this.deleteTransaction(event);
    this.unsynced = true;
  }

  async destroy(): Promise<void> {
    if (!this.db.open) return;
    this.sync();
    this.db.close();
  }

  private upsertNow(event: Event): EventRepositoryUpsertResult {
    if (this.statement('SELECT 1 FROM events WHERE id = ?').get(event.id) !== undefined) return { isDuplicate: true };
    const dTag = replacementKey(event.kind, event.tags);
    if (this.isDeleted(event, dTag)) return { isDuplicate: true };
    if (dTag !== null) {
      const current = this.statement('SELECT id, created_at FROM events WHERE pubkey = ? AND kind = ? AND d_tag = ?').get(
        event.pubkey,
        event.kind,
        dTag,
      ) as { id: string; created_at: number } | undefined;
      if (current !== undefined) {
        // An outdated version is neither stored nor broadcast; the core still answers OK true.
        if (!supersedes(event, current)) return { isDuplicate: true };
        this.statement('DELETE FROM events WHERE id = ?').run(current.id);
      }
    }
    this.insert(event, dTag);
    return { isDuplicate: false };
  }

  /** Anyone holding a deleted event could otherwise publish it again. */
  private isDeleted(event: Event, dTag: string | null): boolean {
    const byId = this.statement(
      "SELECT 1 FROM event_tags t JOIN events d ON d.id = t.event_id WHERE t.name = 'e' AND t.value = ? AND d.kind = 5 AND d.pubkey = ?",
    );
    if (byId.get(event.id, event.pubkey) !== undefined) return true;
    if (dTag === null) return false;
    const byAddress = this.statement(
      "SELECT 1 FROM event_tags t JOIN events d ON d.id = t.event_id WHERE t.name = 'a' AND t.value = ? AND d.kind = 5 AND d.pubkey = ? AND d.created_at >= ?",
    );
    return byAddress.get(`${event.kind}:${event.pubkey}:${dTag}`, event.pubkey, event.created_at) !== undefined;
  }

  private insert(event: Event, dTag: string | null): void {
    this.statement(
      'INSERT INTO events (id, pubkey, kind, created_at, content, sig, tags, d_tag) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(event.id, event.pubkey, event.kind, event.created_at, event.content, event.sig, JSON.stringify(event.tags), dTag);
    const insertTag = this.statement('INSERT OR IGNORE INTO event_tags (name, value, event_id) VALUES (?, ?, ?)');
    for (const [name, value] of event.tags) {
      if (name !== undefined && value !== undefined && SINGLE_LETTER.test(name)) insertTag.run(name, value, event.id);
    }
  }

  private deleteNow(request: Event): void {
    // The core hands kind 5 to us instead of upsert; it is kept so clients can see it and so the deletion sticks.
    if (this.statement('SELECT 1 FROM events WHERE id = ?').get(request.id) === undefined) this.insert(request, null);
    const ids: string[] = [];
    for (const [name, value] of request.tags) {
      if (value === undefined) continue;
      if (name === 'e' && HEX64.test(value)) ids.push(value);
      if (name === 'a') this.deleteAddress(request, value);
    }
    if (ids.length > 0) {
      // Kind 5 is exempt: NIP-09 has no way to undo a deletion.
      this.statement('DELETE FROM events WHERE pubkey = ? AND kind != 5 AND id IN (SELECT value FROM json_each(?))').run(
        request.pubkey,
        JSON.stringify(ids),
      );
    }
  }

  /** `kind:pubkey:d`: every version up to the request's created_at goes; later ones stay. */
  private deleteAddress(request: Event, address: string): void {
    const [kindText, pubkey, ...rest] = address.split(':');
    if (pubkey !== request.pubkey || kindText === undefined || !/^\d+$/.test(kindText)) return;
    const kind = Number(kindText);
    const dTag = isReplaceableKind(kind) ? '' : isAddressableKind(kind) ? rest.join(':') : null;
    if (dTag === null) return;
    this.statement('DELETE FROM events WHERE pubkey = ? AND kind = ? AND d_tag = ? AND created_at <= ?').run(
      pubkey,
      kind,
      dTag,
      request.created_at,
    );
  }

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private migrate(): void {
    const from = this.db.pragma('user_version', { simple: true }) as number;
    if (from > MIGRATIONS.length) throw new Error(`relay database schema ${from} is newer than this program (${MIGRATIONS.length})`);
    for (let v = from; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }
}
