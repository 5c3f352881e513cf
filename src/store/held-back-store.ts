import type { Db } from './database.js';
import { prepareAll, type Row } from './rows.js';

/** Bounds on one pool of held-back events, per sender and in all. */
export interface HeldBackPoolBounds {
  readonly maxEventsPerSender: number;
  readonly maxBytesPerSender: number;
  readonly maxEvents: number;
  readonly maxBytes: number;
}

/** Bounds on what the held-back store keeps (see HELD_BACK_LIMITS): contacts' events, and `strangers`' in a pool of their own. */
export interface HeldBackBounds extends HeldBackPoolBounds {
  readonly strangers: HeldBackPoolBounds;
}

/** An incoming event kept for another try, as stored (format 1: the event's JSON as a relay sent it). */
export interface HeldBackRow {
  readonly eventId: string;
  /** The Nostr key of the sender: the event's author (seed format), the sealed identity's, or the mailbox's contact's. */
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

type Tally = { n: number; bytes: number };

/**
 * Incoming events that failed for a reason a later message can cure, kept across restarts. Two
 * pools, each bounded per sender and in all, in count and in bytes: contacts' events, and those of
 * senders that are no contact (`isStranger`), so that what anyone can sign never pushes out a
 * contact's. The oldest go first. A sender's pool is read again whenever it holds an event, and on
 * `reclassify` (it became a contact).
 */
export class HeldBackStore {
  private readonly q;
  /** Count, bytes and pool per sender, kept alongside the table so a bound costs no scan. */
  private readonly bySender = new Map<string, Tally & { stranger: boolean }>();
  /** Per pool: [contacts, strangers]. */
  private readonly pools: [Tally, Tally] = [
    { n: 0, bytes: 0 },
    { n: 0, bytes: 0 },
  ];

  /** Call its methods outside a transaction that may roll back: the totals live beside the table. */
  constructor(
    db: Db,
    private readonly bounds: HeldBackBounds,
    private readonly isStranger: (sender: string) => boolean = () => false,
  ) {
    this.q = prepareAll(db, {
      insert: `INSERT INTO held_back (event_id, sender, event, bytes, held_at, reason, format, stranger) VALUES (?, ?, ?, ?, ?, ?, 1, ?)
        ON CONFLICT (event_id) DO UPDATE SET reason = excluded.reason`,
      setReason: 'UPDATE held_back SET reason = ? WHERE event_id = ?',
      setPool: 'UPDATE held_back SET stranger = ? WHERE sender = ?',
      failedSince: "SELECT DISTINCT sender FROM held_back WHERE reason LIKE ? || ':%' AND held_at < ?",
      exists: 'SELECT 1 FROM held_back WHERE event_id = ?',
      event: 'SELECT event FROM held_back WHERE event_id = ?',
      remove: 'DELETE FROM held_back WHERE event_id = ? RETURNING sender, bytes',
      all: 'SELECT event_id, sender, event, held_at, reason FROM held_back WHERE format = 1 ORDER BY held_at, rowid',
      ids: 'SELECT event_id, sender FROM held_back WHERE format = 1 ORDER BY held_at, rowid',
      totals: 'SELECT sender, count(*) AS n, sum(bytes) AS bytes FROM held_back GROUP BY sender',
      oldestOf: 'SELECT event_id FROM held_back WHERE sender = ? ORDER BY held_at, rowid LIMIT 1',
      oldestIn: 'SELECT event_id, sender FROM held_back WHERE stranger = ? ORDER BY held_at, rowid LIMIT 1',
    });
    for (const r of this.q.totals.all() as { sender: string; n: number; bytes: number }[]) {
      const stranger = this.isStranger(r.sender);
      this.q.setPool.run(stranger ? 1 : 0, r.sender);
      this.count(r.sender, r.n, r.bytes, stranger);
    }
  }

  /**
   * Keeps `row` (holding the same event again only updates its reason), then drops the oldest
   * events while a bound of its sender's pool is exceeded, first the sender's, then anyone's in that
   * pool. Returns what it dropped, which may be `row` itself.
   */
  hold(row: HeldBackRow): DroppedHeldBack[] {
    const dropped = this.reclassify(row.sender);
    const stranger = this.bySender.get(row.sender)?.stranger ?? this.isStranger(row.sender);
    const bytes = Buffer.byteLength(row.event);
    const isNew = this.q.exists.get(row.eventId) === undefined;
    this.q.insert.run(row.eventId, row.sender, row.event, bytes, row.heldAt, row.reason, stranger ? 1 : 0);
    if (isNew) this.count(row.sender, 1, bytes, stranger);
    return [...dropped, ...this.enforce(row.sender)];
  }

  /**
   * Moves `sender`'s events to the pool it belongs in now (it became a contact, or stopped being
   * one), and enforces that pool's bounds; returns what they dropped.
   */
  reclassify(sender: string): DroppedHeldBack[] {
    const t = this.bySender.get(sender);
    if (!t || t.stranger === this.isStranger(sender)) return [];
    const { n, bytes, stranger } = t;
    this.q.setPool.run(stranger ? 0 : 1, sender);
    this.count(sender, -n, -bytes, stranger);
    this.count(sender, n, bytes, !stranger);
    return this.enforce(sender);
  }

  /** Drops what the bounds of any pool do not allow (after a start with events an older version held). */
  trim(): DroppedHeldBack[] {
    return [...this.bySender.keys()].flatMap((sender) => this.enforce(sender));
  }

  private enforce(sender: string): DroppedHeldBack[] {
    const dropped: DroppedHeldBack[] = [];
    const stranger = this.bySender.get(sender)?.stranger;
    if (stranger === undefined) return dropped;
    const b = stranger ? this.bounds.strangers : this.bounds;
    const who = stranger ? 'senders that are no contact' : 'contacts';
    const mine = () => this.bySender.get(sender) ?? { n: 0, bytes: 0 };
    const over = (t: Tally, maxN: number, maxBytes: number, scope: string) =>
      t.n > maxN ? `more than ${maxN} held-back events ${scope}` : t.bytes > maxBytes ? `more than ${maxBytes} bytes of held-back events ${scope}` : null;
    const perSender = () => over(mine(), b.maxEventsPerSender, b.maxBytesPerSender, 'from one sender');
    for (let why = perSender(); why; why = perSender()) {
      const victim = (this.q.oldestOf.get(sender) as Row).event_id as string;
      this.remove(victim);
      dropped.push({ eventId: victim, sender, why });
    }
    const pool = this.pools[stranger ? 1 : 0];
    const inAll = () => over(pool, b.maxEvents, b.maxBytes, `of ${who} in all`);
    for (let why = inAll(); why; why = inAll()) {
      const victim = this.q.oldestIn.get(stranger ? 1 : 0) as Row;
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
    if (r) this.count(r.sender, -1, -r.bytes, this.bySender.get(r.sender)?.stranger ?? false);
  }

  /** One held-back event's JSON: only ids and positions stay in memory, so a large backlog costs disk, not RAM. */
  event(eventId: string): string | undefined {
    return (this.q.event.get(eventId) as { event: string } | undefined)?.event;
  }

  /** The id and sender of every held-back event, oldest first: what memory keeps of them. */
  *ids(): Generator<{ eventId: string; sender: string }> {
    for (const r of this.q.ids.iterate() as Iterable<{ event_id: string; sender: string }>) yield { eventId: r.event_id, sender: r.sender };
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

  /** Everything held; `strangers`: what senders that are no contact hold of it. */
  totals(): { events: number; bytes: number; strangers: { events: number; bytes: number } } {
    const [c, x] = this.pools;
    return { events: c.n + x.n, bytes: c.bytes + x.bytes, strangers: { events: x.n, bytes: x.bytes } };
  }

  private count(sender: string, n: number, bytes: number, stranger: boolean): void {
    const t = this.bySender.get(sender) ?? { n: 0, bytes: 0, stranger };
    t.n += n;
    t.bytes += bytes;
    if (t.n === 0) this.bySender.delete(sender);
    else this.bySender.set(sender, t);
    const pool = this.pools[stranger ? 1 : 0];
    pool.n += n;
    pool.bytes += bytes;
  }
}
