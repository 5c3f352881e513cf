import type { Db } from './database.js';
import type { Settings } from './node-state.js';
import { prepareAll, type Row } from './rows.js';

export type MessageState = 'queued' | 'sent' | 'delivered' | 'received' | 'failed';

export interface StoredMessage {
  readonly seq: number;
  readonly id: string;
  readonly peer: string;
  readonly direction: 'in' | 'out';
  readonly body: string;
  readonly sentAt: number;
  readonly receivedAt: number | null;
  readonly state: MessageState;
  readonly relaysAccepted: number;
  readonly groupId: string | null;
  /** Why a failed message failed. */
  readonly failure: string | null;
  /** How often it was sent again in a new session, at the peer's retry request. */
  readonly resends: number;
}

export type NewMessage = Omit<StoredMessage, 'seq' | 'relaysAccepted' | 'groupId' | 'failure' | 'resends'> & { groupId?: string | null };

const READ_CURSOR = 'read_cursor';

/** The conversation history, sent and received, with each sent message's state. */
export class MessagesStore {
  private readonly q;

  constructor(
    db: Db,
    private readonly settings: Settings,
  ) {
    this.q = prepareAll(db, {
      insert: `INSERT OR IGNORE INTO messages (id, peer, direction, body, sent_at, received_at, state, group_id)
        VALUES (@id, @peer, @direction, @body, @sent_at, @received_at, @state, @group_id)`,
      sent: "UPDATE messages SET state = CASE WHEN state = 'queued' THEN 'sent' ELSE state END, relays_accepted = max(relays_accepted, ?) WHERE direction = 'out' AND id = ?",
      delivered: "UPDATE messages SET state = 'delivered' WHERE direction = 'out' AND peer = ? AND id = ?",
      after: 'SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?',
      incomingAfter: "SELECT * FROM messages WHERE direction = 'in' AND seq > ? ORDER BY seq LIMIT ?",
      lastIncoming: "SELECT max(seq) AS seq FROM messages WHERE direction = 'in'",
      outgoing: "SELECT * FROM messages WHERE direction = 'out' AND id = ?",
      undelivered: "SELECT * FROM messages WHERE direction = 'out' AND peer = ? AND state IN ('queued', 'sent') ORDER BY seq",
      resent: "UPDATE messages SET resends = resends + 1 WHERE direction = 'out' AND peer = ? AND id = ?",
      failed: "UPDATE messages SET state = 'failed', failure = ? WHERE direction = 'out' AND peer = ? AND id = ? AND state IN ('queued', 'sent')",
    });
  }

  /** Returns the stored message's seq, or null for a message already stored: delivery is exactly once. */
  insert(m: NewMessage): number | null {
    const r = this.q.insert.run({
      id: m.id,
      peer: m.peer,
      direction: m.direction,
      body: m.body,
      sent_at: m.sentAt,
      received_at: m.receivedAt,
      state: m.state,
      group_id: m.groupId ?? null,
    });
    return r.changes > 0 ? Number(r.lastInsertRowid) : null;
  }

  /** A relay accepted the event carrying outgoing message `id` (each member's copy of a group message shares it). */
  markSent(id: string, relaysAccepted: number): void {
    this.q.sent.run(relaysAccepted, id);
  }

  /** Returns the ids that a receipt from `peer` moved to delivered. */
  markDelivered(peer: string, ids: readonly string[]): string[] {
    return ids.filter((id) => this.q.delivered.run(peer, id).changes > 0);
  }

  /** Outgoing messages to `peer` that no receipt has confirmed yet, oldest first. */
  undelivered(peer: string): StoredMessage[] {
    return (this.q.undelivered.all(peer) as Row[]).map(toMessage);
  }

  markResent(peer: string, id: string): void {
    this.q.resent.run(peer, id);
  }

  /** Gives up on an outgoing message that is not delivered yet; returns whether it was. */
  markFailed(peer: string, id: string, reason: string): boolean {
    return this.q.failed.run(reason, peer, id).changes > 0;
  }

  after(seq: number, limit = 1000): StoredMessage[] {
    return (this.q.after.all(seq, limit) as Row[]).map(toMessage);
  }

  /** Incoming messages after `seq`, in the order they were stored. */
  incomingAfter(seq: number, limit: number): StoredMessage[] {
    return (this.q.incomingAfter.all(seq, limit) as Row[]).map(toMessage);
  }

  outgoing(id: string): StoredMessage | undefined {
    const r = this.q.outgoing.get(id) as Row | undefined;
    return r && toMessage(r);
  }

  /** The seq up to which messages were handed out as read. */
  readCursor(): number {
    return Number(this.settings.get(READ_CURSOR) ?? '0');
  }

  /**
   * Moves the read cursor forward to `seq` (never back, never past the last stored incoming message:
   * an acknowledgement cannot mark read what has not arrived yet). Returns the cursor.
   */
  markRead(seq: number): number {
    const last = ((this.q.lastIncoming.get() as Row).seq as number | null) ?? 0;
    const cursor = Math.max(this.readCursor(), Math.min(seq, last));
    if (cursor !== this.readCursor()) this.settings.set(READ_CURSOR, String(cursor));
    return cursor;
  }
}

function toMessage(r: Row): StoredMessage {
  return {
    seq: r.seq as number,
    id: r.id as string,
    peer: r.peer as string,
    direction: r.direction as 'in' | 'out',
    body: r.body as string,
    sentAt: r.sent_at as number,
    receivedAt: r.received_at as number | null,
    state: r.state as MessageState,
    relaysAccepted: r.relays_accepted as number,
    groupId: (r.group_id as string | null) ?? null,
    failure: (r.failure as string | null) ?? null,
    resends: (r.resends as number | undefined) ?? 0,
  };
}
