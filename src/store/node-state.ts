import { SEEN_LIMITS } from '../limits.js';
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

  /** The cursor of the relay read least far (null: one has none, and reads its whole history). */
  oldestCursor(): number | null {
    const cursors = this.all().map((r) => r.lastSeenAt);
    return cursors.length === 0 || cursors.includes(null) ? null : Math.min(...(cursors as number[]));
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

/** How long `seen_events` keeps ids, and how many; see SEEN_LIMITS. */
export interface SeenBounds {
  readonly keptMs: number;
  readonly cursorMarginS: number;
  readonly rejectedMs: number;
  readonly maxRows: number;
}

const REFUSED = "substr(outcome, 1, 9) = 'rejected:'";

/**
 * Every incoming event id handled, with its outcome: each event is acted on at most once. Bounded:
 * `prune` forgets ids no relay will send again, refused ones sooner, and the oldest beyond a count.
 */
export class SeenEvents {
  private readonly q;
  /** Rows in the table, about: a mark rolled back still counts, until the next prune counts again. */
  private rows: number;

  constructor(
    db: Db,
    private readonly bounds: SeenBounds = SEEN_LIMITS,
  ) {
    this.q = prepareAll(db, {
      get: 'SELECT outcome FROM seen_events WHERE id = ?',
      add: 'INSERT OR IGNORE INTO seen_events (id, seen_at, outcome) VALUES (?, ?, ?)',
      count: 'SELECT count(*) AS n FROM seen_events',
      pruneRefused: `DELETE FROM seen_events WHERE ${REFUSED} AND seen_at < ?`,
      pruneAny: 'DELETE FROM seen_events WHERE seen_at < ?',
      oldestRefused: `DELETE FROM seen_events WHERE rowid IN (SELECT rowid FROM seen_events WHERE ${REFUSED} ORDER BY seen_at LIMIT ?)`,
      oldest: 'DELETE FROM seen_events WHERE rowid IN (SELECT rowid FROM seen_events ORDER BY seen_at LIMIT ?)',
    });
    this.rows = this.count();
  }

  has(eventId: string): boolean {
    return this.q.get.get(eventId) !== undefined;
  }

  mark(eventId: string, outcome: string, now: number): void {
    this.rows += this.q.add.run(eventId, now, outcome.slice(0, 200)).changes;
    // A flood between two maintenance ticks: the count bound holds, with a tenth's slack so trims come in batches.
    if (this.rows > this.bounds.maxRows * 1.1) this.trim();
  }

  /**
   * At maintenance. Forgets refused ids after `rejectedMs`, and every other id after `keptMs` once
   * `cursor` (the oldest of the relays' cursors, created_at in seconds; null: a relay reads its
   * whole history) is `cursorMarginS` past it; then the oldest beyond `maxRows`. Returns how many went.
   */
  prune(now: number, cursor: number | null): number {
    const b = this.bounds;
    let gone = this.q.pruneRefused.run(now - b.rejectedMs).changes;
    // An event is never created later than its seen_at plus the skew the gate allows, within the margin.
    if (cursor !== null) gone += this.q.pruneAny.run(Math.min(now - b.keptMs, (cursor - b.cursorMarginS) * 1000)).changes;
    this.rows = this.count();
    return gone + this.trim();
  }

  private trim(): number {
    let gone = 0;
    for (const q of [this.q.oldestRefused, this.q.oldest]) {
      const excess = this.rows - this.bounds.maxRows;
      if (excess <= 0) break;
      const n = q.run(excess).changes;
      this.rows -= n;
      gone += n;
    }
    return gone;
  }

  private count(): number {
    return (this.q.count.get() as { n: number }).n;
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
