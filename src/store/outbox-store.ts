import type { Db } from './database.js';
import { prepareAll, type Row } from './rows.js';

export interface OutboxEntry {
  readonly eventId: string;
  readonly event: string;
  readonly purpose: 'bundle' | 'message' | 'receipt' | 'control';
  readonly messageId: string | null;
  /** The messages (purpose 'message') whose envelopes the event carries: one, or a pack's several, or none. */
  readonly messageIds: readonly string[];
  readonly attempts: number;
}

/** The format of a waiting envelope's row: an Envelope v1 (type 2) to the mailbox `tag`. Rows of another format are left alone. */
const ENVELOPE_FORMAT = 1;

/** A mailbox envelope waiting, unsigned, for the flush that packs it into an event. */
export interface WaitingEnvelope {
  readonly seq: number;
  readonly tag: string;
  readonly envelope: Uint8Array;
  readonly purpose: Exclude<OutboxEntry['purpose'], 'bundle'>;
  readonly messageId: string | null;
}

/**
 * Signed events waiting for a relay's OK, and accepted ones kept for relays that were away; and
 * mailbox envelopes waiting, unsigned, to be packed into events at the next flush.
 */
export class OutboxStore {
  private readonly q;

  constructor(db: Db) {
    this.q = prepareAll(db, {
      enqueue: `INSERT OR IGNORE INTO outbox (event_id, event, purpose, message_id, message_ids, created_at, next_attempt_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)`,
      addEnvelope: `INSERT INTO outbox_envelopes (tag, envelope, purpose, message_id, created_at, format) VALUES (?, ?, ?, ?, ?, ${ENVELOPE_FORMAT})`,
      envelopes: `SELECT * FROM outbox_envelopes WHERE format = ${ENVELOPE_FORMAT} ORDER BY seq LIMIT ?`,
      removeEnvelopes: `DELETE FROM outbox_envelopes WHERE seq <= ? AND format = ${ENVELOPE_FORMAT}`,
      due: 'SELECT * FROM outbox WHERE done_at IS NULL AND next_attempt_at <= ? ORDER BY created_at, rowid LIMIT ?',
      pending: `SELECT (SELECT count(*) FROM outbox WHERE done_at IS NULL) + (SELECT count(*) FROM outbox_envelopes WHERE format = ${ENVELOPE_FORMAT}) AS n`,
      // A waiting envelope is due at once.
      nextDue: `SELECT min(t) AS t FROM (SELECT min(next_attempt_at) AS t FROM outbox WHERE done_at IS NULL
        UNION ALL SELECT min(created_at) FROM outbox_envelopes WHERE format = ${ENVELOPE_FORMAT})`,
      done: 'UPDATE outbox SET done_at = coalesce(done_at, ?), accepted_relays = ?, attempts = attempts + 1 WHERE event_id = ?',
      acceptedRelays: 'SELECT accepted_relays FROM outbox WHERE event_id = ?',
      recentlyDone: 'SELECT * FROM outbox WHERE done_at >= ? ORDER BY created_at, rowid',
      prune: 'DELETE FROM outbox WHERE done_at < ?',
      dropBundles: "DELETE FROM outbox WHERE purpose = 'bundle'",
      remove: 'DELETE FROM outbox WHERE event_id = ?',
      retry: 'UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE event_id = ?',
    });
  }

  /** A signed event; a pack names its messages in `packedMessageIds` (`messageId` null). */
  enqueue(eventId: string, eventJson: string, purpose: OutboxEntry['purpose'], messageId: string | null, now: number, packedMessageIds?: readonly string[]): void {
    this.q.enqueue.run(eventId, eventJson, purpose, messageId, packedMessageIds ? JSON.stringify(packedMessageIds) : null, now, now);
  }

  /** A mailbox envelope, unsigned, for the next flush to pack. */
  addEnvelope(tag: string, envelope: Uint8Array, purpose: WaitingEnvelope['purpose'], messageId: string | null, now: number): void {
    this.q.addEnvelope.run(tag, envelope, purpose, messageId, now);
  }

  /** The oldest `limit` waiting envelopes, in the order they were queued. */
  envelopes(limit: number): WaitingEnvelope[] {
    return (this.q.envelopes.all(limit) as Row[]).map((r) => ({
      seq: r.seq as number,
      tag: r.tag as string,
      envelope: new Uint8Array(r.envelope as Buffer),
      purpose: r.purpose as WaitingEnvelope['purpose'],
      messageId: r.message_id as string | null,
    }));
  }

  /** Forgets the waiting envelopes up to `seq`, now in signed events. */
  removeEnvelopes(upToSeq: number): void {
    this.q.removeEnvelopes.run(upToSeq);
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
  const purpose = r.purpose as OutboxEntry['purpose'];
  const messageId = r.message_id as string | null;
  const packed = r.message_ids as string | null;
  return {
    eventId: r.event_id as string,
    event: r.event as string,
    purpose,
    messageId,
    messageIds: packed !== null ? (JSON.parse(packed) as string[]) : purpose === 'message' && messageId !== null ? [messageId] : [],
    attempts: r.attempts as number,
  };
}
