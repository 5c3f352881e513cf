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

/**
 * A conversation: one contact's (its direct messages; `history` adds its group messages unless
 * asked for `direct` ones) or one group's messages.
 */
export type Conversation = { readonly peer: string } | { readonly groupId: string };

/** A conversation's key in `conversation_reads`. */
function keyOf(c: Conversation): string {
  return 'peer' in c ? `c:${c.peer}` : `g:${c.groupId}`;
}

/** A conversation's last message and how many of its incoming messages the web app has not shown. */
export interface ConversationSummary {
  readonly conversation: Conversation;
  readonly last: StoredMessage;
  readonly unread: number;
}

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
      peerHistory: 'SELECT * FROM (SELECT * FROM messages WHERE peer = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq',
      directHistory: 'SELECT * FROM (SELECT * FROM messages WHERE peer = ? AND group_id IS NULL ORDER BY seq DESC LIMIT ?) ORDER BY seq',
      lastOfAll: 'SELECT * FROM (SELECT * FROM messages ORDER BY seq DESC LIMIT ?) ORDER BY seq',
      // An outgoing group message once, in its least advanced state across the members it went to.
      groupHistory: `SELECT * FROM (
          SELECT seq, id, peer, direction, body, sent_at, received_at, state, relays_accepted, group_id, failure, resends
            FROM messages WHERE group_id = @g AND direction = 'in'
          UNION ALL
          SELECT min(seq) AS seq, id, min(peer) AS peer, 'out' AS direction, body, sent_at, NULL AS received_at,
              CASE WHEN sum(state = 'failed') > 0 THEN 'failed' WHEN sum(state = 'queued') > 0 THEN 'queued'
                WHEN sum(state = 'sent') > 0 THEN 'sent' ELSE 'delivered' END AS state,
              min(relays_accepted) AS relays_accepted, group_id, max(failure) AS failure, max(resends) AS resends
            FROM messages WHERE group_id = @g AND direction = 'out' GROUP BY id
          ORDER BY seq DESC LIMIT @limit) ORDER BY seq`,
      // A contact's conversation is its direct messages; a group's, its group's (each member's copy of an outgoing one).
      summaries: `SELECT m.*, (SELECT count(*) FROM messages i WHERE i.direction = 'in' AND i.seq > coalesce(r.seq, 0)
            AND (CASE WHEN l.k LIKE 'g:%' THEN i.group_id = m.group_id ELSE i.peer = m.peer AND i.group_id IS NULL END)) AS unread
        FROM (SELECT CASE WHEN group_id IS NULL THEN 'c:' || peer ELSE 'g:' || group_id END AS k, max(seq) AS seq FROM messages GROUP BY k) l
        JOIN messages m ON m.seq = l.seq LEFT JOIN conversation_reads r ON r.conversation = l.k`,
      lastIncomingIn: "SELECT max(seq) AS seq FROM messages WHERE direction = 'in' AND (CASE WHEN ? IS NULL THEN peer = ? AND group_id IS NULL ELSE group_id = ? END)",
      markConversationRead: 'INSERT INTO conversation_reads (conversation, seq) VALUES (?, ?) ON CONFLICT (conversation) DO UPDATE SET seq = max(seq, excluded.seq)',
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

  /**
   * The last `limit` messages stored with a contact (its group messages too, unless `direct`), in a
   * group (an outgoing one once, in its least advanced state), or with anyone (`null`), oldest first.
   */
  history(c: Conversation | null, limit: number, direct = false): StoredMessage[] {
    const rows =
      c === null
        ? this.q.lastOfAll.all(limit)
        : 'groupId' in c
          ? this.q.groupHistory.all({ g: c.groupId, limit })
          : (direct ? this.q.directHistory : this.q.peerHistory).all(c.peer, limit);
    return (rows as Row[]).map(toMessage);
  }

  /** Every conversation that has a message: its last one, and its incoming messages after its read mark. */
  summaries(): ConversationSummary[] {
    return (this.q.summaries.all() as Row[]).map((r) => {
      const last = toMessage(r);
      return { conversation: last.groupId === null ? { peer: last.peer } : { groupId: last.groupId }, last, unread: r.unread as number };
    });
  }

  /** Marks a conversation's incoming messages read, as far as they have arrived (a mark only moves forward). */
  markConversationRead(c: Conversation): void {
    const group = 'groupId' in c ? c.groupId : null;
    const peer = 'peer' in c ? c.peer : null;
    const last = (this.q.lastIncomingIn.get(group, peer, group) as Row).seq as number | null;
    if (last !== null) this.q.markConversationRead.run(keyOf(c), last);
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
