import type { Bytes } from '../crypto/index.js';
import type { Db } from './database.js';
import type { OutboxEntry } from './outbox-store.js';
import { blob, bytesOf, prepareAll, type Row } from './rows.js';

/**
 * An application message waiting for its contact's session to be able to send (format 1: the
 * encoded Application message v1, not yet encrypted).
 */
export interface DeferredSend {
  readonly seq: number;
  readonly peer: string;
  readonly message: Bytes;
  readonly purpose: OutboxEntry['purpose'];
  readonly messageId: string | null;
  readonly createdAt: number;
}

/** What waits, for one contact or in all. */
export interface DeferredTally {
  readonly n: number;
  readonly bytes: number;
}

/**
 * What the node sends to a contact whose session cannot send yet (a key exchange's acceptor, until
 * the inviter's first message): kept in order, across restarts, until the session can.
 */
export class DeferredStore {
  private readonly q;

  constructor(db: Db) {
    this.q = prepareAll(db, {
      insert: `INSERT INTO deferred_sends (peer, message, bytes, purpose, message_id, created_at, format) VALUES (?, ?, ?, ?, ?, ?, 1)`,
      any: 'SELECT 1 FROM deferred_sends WHERE peer = ? LIMIT 1',
      tallyOf: 'SELECT count(*) AS n, coalesce(sum(bytes), 0) AS bytes FROM deferred_sends WHERE peer = ?',
      tally: 'SELECT count(*) AS n, coalesce(sum(bytes), 0) AS bytes FROM deferred_sends',
      of: 'SELECT * FROM deferred_sends WHERE peer = ? AND format = 1 ORDER BY seq',
      peers: 'SELECT DISTINCT peer FROM deferred_sends',
      olderThan: 'SELECT * FROM deferred_sends WHERE created_at < ? ORDER BY seq',
      remove: 'DELETE FROM deferred_sends WHERE seq = ?',
    });
  }

  add(peer: string, message: Bytes, purpose: OutboxEntry['purpose'], messageId: string | null, now: number): void {
    this.q.insert.run(peer, blob(message), message.length, purpose, messageId, now);
  }

  waits(peer: string): boolean {
    return this.q.any.get(peer) !== undefined;
  }

  /** What waits for `peer`, or (without it) for everyone. */
  tally(peer?: string): DeferredTally {
    return (peer === undefined ? this.q.tally.get() : this.q.tallyOf.get(peer)) as DeferredTally;
  }

  /** What waits for `peer`, oldest first. */
  of(peer: string): DeferredSend[] {
    return (this.q.of.all(peer) as Row[]).map(toDeferred);
  }

  peers(): string[] {
    return (this.q.peers.all() as { peer: string }[]).map((r) => r.peer);
  }

  /** What has waited since before `before`, oldest first. */
  olderThan(before: number): DeferredSend[] {
    return (this.q.olderThan.all(before) as Row[]).map(toDeferred);
  }

  remove(seq: number): void {
    this.q.remove.run(seq);
  }
}

function toDeferred(r: Row): DeferredSend {
  return {
    seq: r.seq as number,
    peer: r.peer as string,
    message: bytesOf(r.message),
    purpose: r.purpose as OutboxEntry['purpose'],
    messageId: r.message_id as string | null,
    createdAt: r.created_at as number,
  };
}
