import type { Db } from './database.js';
import { prepareAll, type Row } from './rows.js';

export interface OutboxEntry {
  readonly eventId: string;
  readonly event: string;
  readonly purpose: 'bundle' | 'message' | 'receipt' | 'control';
  readonly messageId: string | null;
  readonly attempts: number;
}

/** Signed events waiting for a relay's OK, and accepted ones kept for relays that were away. */
export class OutboxStore {
  private readonly q;

  constructor(db: Db) {
    this.q = prepareAll(db, {
      enqueue: `INSERT OR IGNORE INTO outbox (event_id, event, purpose, message_id, created_at, next_attempt_at)
        VALUES (?, ?, ?, ?, ?, ?)`,
      due: 'SELECT * FROM outbox WHERE done_at IS NULL AND next_attempt_at <= ? ORDER BY created_at, rowid LIMIT ?',
      pending: 'SELECT count(*) AS n FROM outbox WHERE done_at IS NULL',
      nextDue: 'SELECT min(next_attempt_at) AS t FROM outbox WHERE done_at IS NULL',
      done: 'UPDATE outbox SET done_at = coalesce(done_at, ?), accepted_relays = ?, attempts = attempts + 1 WHERE event_id = ?',
      acceptedRelays: 'SELECT accepted_relays FROM outbox WHERE event_id = ?',
      recentlyDone: 'SELECT * FROM outbox WHERE done_at >= ? ORDER BY created_at, rowid',
      prune: 'DELETE FROM outbox WHERE done_at < ?',
      dropBundles: "DELETE FROM outbox WHERE purpose = 'bundle'",
      remove: 'DELETE FROM outbox WHERE event_id = ?',
      retry: 'UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE event_id = ?',
    });
  }

  enqueue(eventId: string, eventJson: string, purpose: OutboxEntry['purpose'], messageId: string | null, now: number): void {
    this.q.enqueue.run(eventId, eventJson, purpose, messageId, now, now);
  }

  due(now: number, limit = 100): OutboxEntry[] {
    return (this.q.due.all(now, limit) as Row[]).map(toOutboxEntry);
  }

  pending(): number {
    return (this.q.pending.get() as { n: number }).n;
  }

  nextAttempt(): number | null {
    return (this.q.nextDue.get() as { t: number | null }).t;
  }

  /** Records relays that accepted an entry; the first acceptance makes it done. Returns how many have (0: the entry is gone). */
  accepted(entry: OutboxEntry, relays: readonly string[], now: number): number {
    const row = this.q.acceptedRelays.get(entry.eventId) as { accepted_relays: string } | undefined;
    if (!row) return 0;
    const all = [...new Set([...(JSON.parse(row.accepted_relays) as string[]), ...relays])];
    this.q.done.run(now, JSON.stringify(all), entry.eventId);
    return all.length;
  }

  /**
   * Entries done since `since` that `relay` has not accepted: what to hand a relay that was away,
   * so that every relay gets every event, not only the first one to answer.
   */
  missedBy(relay: string, since: number): OutboxEntry[] {
    return (this.q.recentlyDone.all(since) as Row[])
      .filter((r) => !(JSON.parse(r.accepted_relays as string) as string[]).includes(relay))
      .map(toOutboxEntry);
  }

  /** Forgets entries done before `before`. */
  prune(before: number): void {
    this.q.prune.run(before);
  }

  /** A new bundle replaces every older one, sent or not: relays keep one bundle per author anyway. */
  dropBundles(): void {
    this.q.dropBundles.run();
  }

  remove(eventId: string): void {
    this.q.remove.run(eventId);
  }

  retry(eventId: string, nextAttemptAt: number): void {
    this.q.retry.run(nextAttemptAt, eventId);
  }
}

function toOutboxEntry(r: Row): OutboxEntry {
  return {
    eventId: r.event_id as string,
    event: r.event as string,
    purpose: r.purpose as OutboxEntry['purpose'],
    messageId: r.message_id as string | null,
    attempts: r.attempts as number,
  };
}
