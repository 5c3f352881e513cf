import type { Db } from './database.js';
import { prepareAll, type Row } from './rows.js';

/** Bounds on what the held-back store keeps; see HELD_BACK_LIMITS. */
export interface HeldBackBounds {
  readonly maxEventsPerSender: number;
  readonly maxBytesPerSender: number;
  readonly maxEvents: number;
  readonly maxBytes: number;
}

/** An incoming event kept for another try, as stored (format 1: the event's JSON as a relay sent it). */
export interface HeldBackRow {
  readonly eventId: string;
  /** The Nostr key that signed the event. */
  readonly sender: string;
  readonly event: string;
  readonly heldAt: number;
  readonly reason: string;
}

/** An event the bounds pushed out, for the caller to log. */
export interface DroppedHeldBack {
  readonly eventId: string;
  readonly sender: string;
  readonly why: string;
}

/**
 * Incoming events that failed for a reason a later message can cure, kept across restarts. Bounded
 * per sender and overall, in count and in bytes; the oldest go first.
 */
export class HeldBackStore {
  private readonly q;
  /** Count and bytes per sender, kept alongside the table so a bound costs no scan. */
  private readonly bySender = new Map<string, { n: number; bytes: number }>();
  private readonly total = { n: 0, bytes: 0 };

  /** Call its methods outside a transaction that may roll back: the totals live beside the table. */
  constructor(
    db: Db,
    private readonly bounds: HeldBackBounds,
  ) {
    this.q = prepareAll(db, {
      insert: `INSERT INTO held_back (event_id, sender, event, bytes, held_at, reason, format) VALUES (?, ?, ?, ?, ?, ?, 1)
        ON CONFLICT (event_id) DO UPDATE SET reason = excluded.reason`,
      setReason: 'UPDATE held_back SET reason = ? WHERE event_id = ?',
      failedSince: "SELECT DISTINCT sender FROM held_back WHERE reason LIKE ? || ':%' AND held_at < ?",
      exists: 'SELECT 1 FROM held_back WHERE event_id = ?',
      event: 'SELECT event FROM held_back WHERE event_id = ?',
      remove: 'DELETE FROM held_back WHERE event_id = ? RETURNING sender, bytes',
      all: 'SELECT event_id, sender, event, held_at, reason FROM held_back WHERE format = 1 ORDER BY held_at, rowid',
      totals: 'SELECT sender, count(*) AS n, sum(bytes) AS bytes FROM held_back GROUP BY sender',
      oldestOf: 'SELECT event_id FROM held_back WHERE sender = ? ORDER BY held_at, rowid LIMIT 1',
      oldest: 'SELECT event_id, sender FROM held_back ORDER BY held_at, rowid LIMIT 1',
    });
    for (const r of this.q.totals.all() as { sender: string; n: number; bytes: number }[]) this.count(r.sender, r.n, r.bytes);
  }

  /**
   * Keeps `row` (holding the same event again only updates its reason), then drops the oldest
   * events while a bound is exceeded, first the sender's, then anyone's. Returns what it dropped,
   * which may be `row` itself.
   */
  hold(row: HeldBackRow): DroppedHeldBack[] {
    const bytes = Buffer.byteLength(row.event);
    const isNew = this.q.exists.get(row.eventId) === undefined;
    this.q.insert.run(row.eventId, row.sender, row.event, bytes, row.heldAt, row.reason);
    if (isNew) this.count(row.sender, 1, bytes);
    const dropped: DroppedHeldBack[] = [];
    const b = this.bounds;
    const mine = () => this.bySender.get(row.sender) ?? { n: 0, bytes: 0 };
    const over = (t: { n: number; bytes: number }, maxN: number, maxBytes: number, scope: string) =>
      t.n > maxN ? `more than ${maxN} held-back events ${scope}` : t.bytes > maxBytes ? `more than ${maxBytes} bytes of held-back events ${scope}` : null;
    for (let why = over(mine(), b.maxEventsPerSender, b.maxBytesPerSender, 'from one sender'); why; why = over(mine(), b.maxEventsPerSender, b.maxBytesPerSender, 'from one sender')) {
      const victim = (this.q.oldestOf.get(row.sender) as Row).event_id as string;
      this.remove(victim);
      dropped.push({ eventId: victim, sender: row.sender, why });
    }
    for (let why = over(this.total, b.maxEvents, b.maxBytes, 'in all'); why; why = over(this.total, b.maxEvents, b.maxBytes, 'in all')) {
      const victim = this.q.oldest.get() as Row;
      this.remove(victim.event_id as string);
      dropped.push({ eventId: victim.event_id as string, sender: victim.sender as string, why });
    }
    return dropped;
  }

  /** Senders of events held since before `before` whose last try failed with error `code`. */
  failedSince(code: string, before: number): string[] {
    return (this.q.failedSince.all(code, before) as Row[]).map((r) => r.sender as string);
  }

  setReason(eventId: string, reason: string): void {
    this.q.setReason.run(reason, eventId);
  }

  /** Forgets an event: handled, refused for good, or dropped. */
  remove(eventId: string): void {
    const r = this.q.remove.get(eventId) as { sender: string; bytes: number } | undefined;
    if (r) this.count(r.sender, -1, -r.bytes);
  }

  /** One held-back event's JSON: only ids and positions stay in memory, so a large backlog costs disk, not RAM. */
  event(eventId: string): string | undefined {
    return (this.q.event.get(eventId) as { event: string } | undefined)?.event;
  }

  /** Every held-back event, oldest first. */
  all(): HeldBackRow[] {
    return (this.q.all.all() as Row[]).map((r) => ({
      eventId: r.event_id as string,
      sender: r.sender as string,
      event: r.event as string,
      heldAt: r.held_at as number,
      reason: r.reason as string,
    }));
  }

  totals(): { events: number; bytes: number } {
    return { events: this.total.n, bytes: this.total.bytes };
  }

  private count(sender: string, n: number, bytes: number): void {
    const t = this.bySender.get(sender) ?? { n: 0, bytes: 0 };
    t.n += n;
    t.bytes += bytes;
    if (t.n === 0) this.bySender.delete(sender);
    else this.bySender.set(sender, t);
    this.total.n += n;
    this.total.bytes += bytes;
  }
}
