import type { Db } from './database.js';
import { prepareAll, type Row } from './rows.js';

/** The relays this identity uses, with how far each one's history has been read. */
export class RelayList {
  private readonly q;

  constructor(db: Db) {
    this.q = prepareAll(db, {
      all: 'SELECT url, last_seen_at FROM relays ORDER BY added_at, url',
      add: 'INSERT OR IGNORE INTO relays (url, added_at) VALUES (?, ?)',
      remove: 'DELETE FROM relays WHERE url = ?',
      seen: 'UPDATE relays SET last_seen_at = max(coalesce(last_seen_at, 0), ?) WHERE url = ?',
    });
  }

  all(): { url: string; lastSeenAt: number | null }[] {
    return (this.q.all.all() as Row[]).map((r) => ({ url: r.url as string, lastSeenAt: r.last_seen_at as number | null }));
  }

  lastSeen(url: string): number | null {
    return this.all().find((r) => r.url === url)?.lastSeenAt ?? null;
  }

  add(url: string, now: number): boolean {
    return this.q.add.run(url, now).changes > 0;
  }

  remove(url: string): boolean {
    return this.q.remove.run(url).changes > 0;
  }

  /** The newest created_at read from `url`; it only moves forward. */
  markSeen(url: string, createdAt: number): void {
    this.q.seen.run(createdAt, url);
  }
}

/** Every incoming event id handled, with its outcome: each event is acted on at most once. */
export class SeenEvents {
  private readonly q;

  constructor(db: Db) {
    this.q = prepareAll(db, {
      get: 'SELECT outcome FROM seen_events WHERE id = ?',
      add: 'INSERT OR IGNORE INTO seen_events (id, seen_at, outcome) VALUES (?, ?, ?)',
    });
  }

  has(eventId: string): boolean {
    return this.q.get.get(eventId) !== undefined;
  }

  mark(eventId: string, outcome: string, now: number): void {
    this.q.add.run(eventId, now, outcome.slice(0, 200));
  }
}

/**
 * A small key-value table. Each capability keeps its own keys here behind a store module of its
 * own, under a prefix nobody else uses.
 */
export class Settings {
  private readonly q;

  constructor(db: Db) {
    this.q = prepareAll(db, {
      get: 'SELECT value FROM settings WHERE key = ?',
      set: 'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    });
  }

  get(key: string): string | undefined {
    return (this.q.get.get(key) as { value: string } | undefined)?.value;
  }

  set(key: string, value: string): void {
    this.q.set.run(key, value);
  }
}
