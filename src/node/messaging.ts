import { fail, isRatchetRelayError } from '../errors.js';
import { RETRY_LIMITS } from '../limits.js';
import { type Bytes, toHex } from '../crypto/index.js';
import { fingerprint, type PublicIdentity } from '../identity/index.js';
import { budgetedCreatedAt, type Event, inboxEvent, KIND_MESSAGE, messageEvent, reasonOf, type SecondBudget } from '../nostr/events.js';
import { sendTag } from '../ratchet/index.js';
import { type RetryReason, sealEnvelope } from '../session/index.js';
import { type Contact, type Conversation, type ConversationSummary, MessagesStore, type OutboxEntry, type StoredMessage } from '../store/index.js';
import { type AppMessage, assertSendableText, decodeAppMessage, encodeAppMessage } from './app-message.js';
import type { Bundles } from './bundles.js';
import { type Contacts, nameOf } from './contacts.js';
import type { NodeContext } from './context.js';
import type { ReceivedMessage, SentMessage } from './events.js';
import { type Arrival, Arrivals } from './arrivals.js';
import { DeferredSends } from './deferred-sends.js';
import { HeldBack } from './held-back.js';
import { Mailboxes } from './mailboxes.js';
import { RetryRequests } from './retry-requests.js';
import type { Outbox } from './outbox.js';

/** Failures that a later message can cure; anything else is final. */
const RETRYABLE = ['TOO_MANY_SKIPPED', 'NO_SESSION', 'DECRYPT_FAILED'] as const;
const RECEIPT_DELAY_MS = 100;
const RECEIPT_BATCH = 200;
/** Setting: every incoming message up to this seq has its receipt in the outbox (the rest were only batched in memory). */
const RECEIPTS_CURSOR = 'receipts_queued_up_to';
/** At most this many receipts owed by a killed run are queued per start (an older store, without the cursor, owes its whole history). */
const OWED_RECEIPTS_PER_START = 10_000;
const MESSAGE_ID = /^[0-9a-f]{32}$/;
/** Envelope v1's type byte for a normal message (docs/protocol.md, "Envelope v1"). */
const ENVELOPE_TYPE_NORMAL = 2;

/**
 * How our message events are addressed. `private` (the default): a session's messages go to a
 * mailbox tag of the session once the peer has answered in it; before that (pre-key messages, a key
 * exchange's hello) and retry requests go sealed to the recipient's inbox; each event is signed by a
 * throwaway key, padded and its time jittered. `seed`: the seed's format, signed by our Nostr key
 * with the recipient's `p` tag. A node reads both.
 */
export type Addressing = 'private' | 'seed';

/** The subscription for messages addressed to us (kind 40001, `p` = our Nostr key): our inbox, and seed-format events. */
export const messageFilter = (selfNostr: string) => ({ kinds: [KIND_MESSAGE], '#p': [selfNostr] });

/** Acts on one application message from `from`, inside the transaction of the decrypt that carried it. */
export type AppMessageHandler<T extends AppMessage['type'] = AppMessage['type']> = (from: Contact, m: Extract<AppMessage, { type: T }>, now: number) => void;
export type AppMessageRoutes = { readonly [T in AppMessage['type']]: AppMessageHandler<T> };

/** Messages that are never answered with a refusal: what people send each other, and refusals themselves. */
const NEVER_REFUSED: ReadonlySet<AppMessage['type']> = new Set(['text', 'receipt', 'kx-hello', 'refused']);

const isRetryable = (e: unknown) => RETRYABLE.some((code) => isRatchetRelayError(e, code));

/**
 * Messaging: kind-40001 events in and out. A decrypt, its ratchet step, the delivered message and
 * the "seen" mark commit together; receipts are batched; events that a later message can cure (a
 * gap beyond MAX_SKIP, a session not there yet) are held back and retried.
 */
export class Messaging {
  private readonly store: MessagesStore;
  private readonly heldBack: HeldBack;
  private readonly retryRequests: RetryRequests;
  private readonly arrivals: Arrivals;
  private readonly deferred: DeferredSends;
  /** The mailbox tags we listen on, following every session's ratchet. */
  readonly mailboxes: Mailboxes;
  /** For tests and measurements: decrypts tried, whether they succeeded or not; events held back as they arrived. */
  readonly stats = { decryptAttempts: 0, heldBack: 0 };
  private readonly pendingReceipts = new Map<string, { contact: Contact; ids: string[] }>();
  private receiptTimer: ReturnType<typeof setTimeout> | undefined;
  /** The highest seq whose receipt was batched in this run. */
  private receiptsUpTo = 0;
  private lastSentAt = 0;
  private createdAtBudget: SecondBudget | null = null;

  constructor(
    private readonly ctx: NodeContext,
    private readonly contacts: Contacts,
    private readonly bundles: Bundles,
    private readonly outbox: Outbox,
    private readonly wiring: {
      /** The node's routing table for what arrives inside a session. */
      readonly routes: () => AppMessageRoutes;
      /** A group's id and name, for a stored group message. */
      readonly groupOf: (id: string) => { id: string; name: string } | null;
    },
    private readonly addressing: Addressing = 'private',
  ) {
    this.store = new MessagesStore(ctx.db, ctx.settings);
    this.mailboxes = new Mailboxes(ctx, contacts);
    this.arrivals = new Arrivals(ctx, (tag) => this.mailboxes.ownerOf(tag));
    this.heldBack = new HeldBack(ctx, contacts, (event) => this.receive(event), isRetryable, (event) => this.arrivals.of(event));
    this.deferred = new DeferredSends(ctx, contacts, {
      send: (contact, plaintext, purpose, messageId) => this.publish(this.ctx.cipher.encrypt(contact.fingerprint, plaintext), contact.identity, purpose, messageId),
      failMessage: (peer, id, reason) => this.failMessage(peer, id, reason),
    });
    this.retryRequests = new RetryRequests(
      ctx,
      contacts,
      {
        publish: (envelope, recipient) => this.publish(envelope, recipient, 'control', null),
        resend: (contact, m) => this.sendApp(contact, textMessage(m.id, m.sentAt, m.body, m.groupId), 'message'),
      },
      this.store,
    );
  }

  /** For tests and measurements: retry requests sent, and sessions started again at a peer's request. */
  get retryStats(): RetryRequests['stats'] {
    return this.retryRequests.stats;
  }

  /**
   * At maintenance. A contact whose messages no key of ours has opened for a while has a session we
   * lost (a restored backup, say): it is asked for a new one, and every event held for it is dropped,
   * since it sends again every message we did not confirm. Old retry requests are forgotten.
   */
  maintain(now: number): void {
    for (const sender of this.heldBack.undecryptable(now - RETRY_LIMITS.lostSessionAfterMs)) {
      const contact = this.contacts.byNostr(sender);
      if (contact && this.retryRequests.request(sender, contact.identity, null, 'LOST_SESSION'))
        this.heldBack.drop(sender, 'a session we lost: its sender was asked for a new one and sends again what we did not confirm');
    }
    this.retryRequests.prune(now);
    this.deferred.maintain(now);
  }

  // Sending

  /**
   * Encrypts and queues a text message; the ratchet step, the stored message and the outbox entry
   * commit together. With a caller's `id` a retry is idempotent: the same id, peer and text returns
   * the stored message as it is now instead of sending it again; the same id for anything else is refused.
   */
  send(ref: string, text: string, clientId?: string): SentMessage {
    assertSendableText(text);
    if (clientId !== undefined && !MESSAGE_ID.test(clientId)) fail('INVALID_ARGUMENT', 'a message id is 32 lowercase hex digits (16 random bytes)');
    const contact = this.bundles.resolvePeer(ref);
    const earlier = clientId === undefined ? undefined : this.store.outgoing(clientId);
    if (earlier) {
      if (earlier.peer !== contact.fingerprint || earlier.body !== text || earlier.groupId !== null)
        fail('INVALID_ARGUMENT', `message id ${clientId} was already used for another message: pick a fresh id for a new message`);
      return sentOf(earlier);
    }
    this.contacts.assertSendable(contact);
    const next = this.nextOutgoing();
    const id = clientId ?? next.id;
    this.ctx.transaction(() => {
      this.bundles.ensureSession(contact);
      this.queueText(contact, id, next.sentAt, text, null);
    });
    return { id, to: contact.fingerprint, state: 'queued', relaysAccepted: 0, failure: null };
  }

  /** An id and a send time, strictly increasing, so the receiver can order a backlog sent within one millisecond. */
  nextOutgoing(): { id: string; sentAt: number } {
    const sentAt = Math.max(this.ctx.clock(), this.lastSentAt + 1);
    this.lastSentAt = sentAt;
    return { id: this.ctx.newId(), sentAt };
  }

  /** Stores an outgoing text (or one member's copy of a group message) and queues it. Call inside a transaction. */
  queueText(contact: Contact, id: string, sentAt: number, text: string, groupId: string | null): void {
    this.store.insert({ id, peer: contact.fingerprint, direction: 'out', body: text, sentAt, receivedAt: null, state: 'queued', groupId });
    this.sendApp(contact, textMessage(id, sentAt, text, groupId), 'message');
  }

  /**
   * Encrypts an application message to a contact with a session and queues its event; to a session
   * that cannot send yet (a key exchange's acceptor before the inviter's hello) it waits, in order,
   * until the session can (see DeferredSends). Call inside a transaction.
   */
  sendApp(contact: Contact, m: AppMessage, purpose: OutboxEntry['purpose']): void {
    const peer = contact.fingerprint;
    const plaintext = encodeAppMessage(m);
    // Behind what already waits for this contact, unless its session can send now: order is kept.
    const waiting = this.deferred.waits(peer) && !this.deferred.flush(peer);
    if (waiting || this.deferred.sessionWaits(peer)) return this.deferred.defer(contact, plaintext, purpose, m.id);
    this.publish(this.ctx.cipher.encrypt(peer, plaintext), contact.identity, purpose, m.id);
  }

  /**
   * Queues an envelope to `recipient`, addressed as this node's `addressing` says: to a mailbox it
   * waits unsigned, to be packed with the others of its tag at the next flush; anything else is
   * signed now. Inside a transaction.
   */
  private publish(envelope: Bytes, recipient: PublicIdentity, purpose: OutboxEntry['purpose'], messageId: string | null): void {
    const tag = this.addressing === 'private' ? this.mailboxOf(envelope, recipient) : null;
    if (tag !== null && purpose !== 'bundle') this.outbox.enqueueEnvelope(tag, envelope, purpose, messageId);
    else this.outbox.enqueue(this.messageEventOf(envelope, recipient), purpose, messageId);
  }

  /**
   * The mailbox tag an envelope to `recipient` goes to, or null when it goes sealed to the inbox.
   * Its type byte (Envelope v1: version, then type; 2 = normal) is read, not decoded again: encoded
   * by us just now, a pre-key message would have its identity's signatures checked once more.
   */
  private mailboxOf(envelope: Bytes, recipient: PublicIdentity): string | null {
    if (envelope[1] !== ENVELOPE_TYPE_NORMAL) return null;
    // Encrypted just now in the active session, whose sending header key names the mailbox. Until
    // the peer has answered in it (a key exchange's first messages: the hello) the peer may not
    // listen there yet, but it listens on its inbox: those go sealed, as a pre-key message does.
    const active = this.ctx.store.loadSessions(fingerprint(recipient))[0];
    return active?.ratchet.hkr ? sendTag(active.ratchet) : null;
  }

  /** The signed event of an envelope that goes to no mailbox: seed-format, or sealed to the recipient's inbox. */
  private messageEventOf(envelope: Bytes, recipient: PublicIdentity): Event {
    const recipientNostr = toHex(recipient.nostrKey);
    const now = this.ctx.clock();
    if (this.addressing === 'seed') {
      // A bounded number of our events per created_at second, so a relay's capped answers can page past each second.
      const next = budgetedCreatedAt(this.createdAtBudget, now);
      this.createdAtBudget = next.budget;
      return messageEvent(envelope, recipientNostr, this.ctx.store.identity().nostr.privateKey, next.createdAtMs);
    }
    const rng = this.ctx.rng;
    const self = this.ctx.store.identity();
    return inboxEvent(recipientNostr, (throwaway) => sealEnvelope(self, recipient, throwaway, envelope, rng), rng, now);
  }

  /** A control message (or a receipt): a fresh id and the current time. Returns the id. Call inside a transaction. */
  sendControl(contact: Contact, m: DistributiveOmit<AppMessage, 'id' | 'sentAt'>, purpose: OutboxEntry['purpose'] = 'control'): string {
    const id = this.ctx.newId();
    this.sendApp(contact, { ...m, id, sentAt: this.ctx.clock() } as AppMessage, purpose);
    return id;
  }

  /** The outbox hook: a relay accepted an event that carries outgoing messages (one, or a pack's several). */
  onAccepted(entry: OutboxEntry, acceptedBy: number): void {
    for (const id of entry.messageIds) {
      this.store.markSent(id, acceptedBy);
      const m = this.store.outgoing(id);
      if (m) this.ctx.afterCommit(() => this.ctx.events.emit('sent', sentOf(m)));
    }
  }

  /** The outbox hook: every relay refused an event of ours for good. Each message in it fails with the reason; anything else is logged. */
  onRefusedByRelays(entry: OutboxEntry, event: Event, reason: string): void {
    // The stored message names its peer: a mailbox or inbox event does not (or not as a contact's key).
    const failed = entry.messageIds.filter((id) => {
      const peer = this.store.outgoing(id)?.peer;
      return peer !== undefined && this.failMessage(peer, id, reason);
    });
    if (failed.length < Math.max(1, entry.messageIds.length))
      this.ctx.afterCommit(() => this.ctx.log(`outbox: gave up on ${entry.purpose} ${entry.eventId.slice(0, 12)}: ${reason}`));
  }

  /** A stored outgoing message fails with `reason`, and the user is told (`failed`). False when no such message could fail. */
  private failMessage(peer: string, id: string, reason: string): boolean {
    if (!this.store.markFailed(peer, id, reason)) return false;
    const failed = { peer, ids: [id], reason };
    this.ctx.afterCommit(() => this.ctx.events.emit('failed', failed));
    return true;
  }

  outgoing(id: string): SentMessage | undefined {
    const m = this.store.outgoing(id);
    return m && sentOf(m);
  }

  // Receiving

  /**
   * An incoming kind-40001 event. One that sits later in its sender's chain than the next expected
   * message waits (held back) for the earlier ones, so that a backlog is decrypted in chain order and
   * the ratchet skips no more than it must. A failure that a later message can cure holds the event
   * back for another try (and is reported once); any other failure is thrown, for the node to refuse it.
   */
  onMessageEvent(event: Event, relay: string): void {
    const held = this.heldBack;
    // Who sent it: a seal that does not open or verify, an unknown mailbox tag, refuse it here.
    const arrival = this.arrivals.of(event);
    const sender = arrival.sender;
    if (held.has(event, sender)) return; // already waiting; its sender's progress retries it
    if (held.aheadOfChain(event, sender)) {
      this.stats.heldBack++;
      held.hold(event, sender, 'waits for earlier messages of its chain', false);
      held.wake(sender, false);
      return;
    }
    try {
      this.receive(event);
    } catch (e) {
      const cure = RetryRequests.reasonFor(e);
      if (cure && this.ctx.db.open) this.askForRetry(arrival, cure);
      if (!isRetryable(e) || !this.ctx.db.open) throw e;
      this.ctx.reject(relay, event.id, `${reasonOf(e)} (kept for a retry)`);
      this.stats.heldBack++;
      held.hold(event, sender, reasonOf(e), true);
      return;
    }
    held.release(sender);
  }

  /**
   * A batch of incoming message events in the order to handle them: each sender's messages that its
   * current chains place, in chain order, then the rest as they came. A relay hands a backlog over
   * by created_at, which private addressing jitters by minutes: in that order nearly every message
   * would wait (held back, written and read again) for the ones before it.
   */
  chainOrder<T extends { readonly event: Event }>(batch: readonly T[]): T[] {
    return this.heldBack.chainOrder(batch);
  }

  /** A first message we cannot read, though its sender can cure that: ask for a new session. */
  private askForRetry(arrival: Arrival, reason: RetryReason): void {
    const envelope = arrival.envelope;
    if (envelope.type !== 'prekey') return;
    try {
      this.retryRequests.request(arrival.sender, envelope.header.identity, envelope.header.ephemeralKey, reason);
    } catch (e) {
      this.ctx.log(`could not ask ${arrival.sender.slice(0, 12)} for a new session: ${reasonOf(e)}`);
    }
  }

  /** Retries held-back events: every event of `sender` (after a key exchange), or of everyone (once a relay's backlog is in); see `HeldBack.retry`. */
  retryHeldBack(sender?: string): void {
    this.heldBack.retry(sender);
  }

  /** How many events are held back now. */
  heldBackCount(): number {
    return this.heldBack.count();
  }

  /** The default routes for what people send each other: a text, a receipt, the inviter's hello. */
  readonly onText: AppMessageHandler<'text'> = (from, m, now) => this.deliverText(from, m, null, now);

  readonly onReceipt: AppMessageHandler<'receipt'> = (from, m) => {
    const ids = this.store.markDelivered(from.fingerprint, m.ids);
    if (ids.length > 0) this.ctx.afterCommit(() => this.ctx.events.emit('delivered', { peer: from.fingerprint, ids }));
  };

  /** kx-hello carries nothing to deliver: decrypting it is what lets us send. */
  readonly onKxHello: AppMessageHandler<'kx-hello'> = () => {};

  /** The peer refused a message of ours: the user is told. */
  readonly onRefused: AppMessageHandler<'refused'> = (from, m) => {
    const refused = { peer: from.fingerprint, alias: from.alias, id: m.refusedId, what: m.refusedType, reason: m.reason };
    this.ctx.afterCommit(() => {
      this.ctx.log(`${nameOf(from)} refused our ${m.refusedType}: ${m.reason}`);
      this.ctx.events.emit('refused', refused);
    });
  };

  /** Stores an incoming text (exactly once), emits it, and acknowledges it with a batched receipt. */
  deliverText(from: Contact, m: { id: string; sentAt: number; text: string }, group: { id: string; name: string } | null, now: number): void {
    const seq = this.store.insert({ id: m.id, peer: from.fingerprint, direction: 'in', body: m.text, sentAt: m.sentAt, receivedAt: now, state: 'received', groupId: group?.id ?? null });
    // Sent again (the sender was asked for a new session before our receipt reached it): confirm it again, deliver it once.
    if (seq === null) return this.ctx.afterCommit(() => this.queueReceipt(from, m.id, 0));
    const received: ReceivedMessage = { id: m.id, seq, from: from.fingerprint, alias: from.alias, text: m.text, sentAt: m.sentAt, receivedAt: now, trusted: from.trusted, group };
    this.ctx.afterCommit(() => {
      this.ctx.events.emit('message', received);
      this.queueReceipt(from, m.id, seq);
    });
  }

  /** Decrypts and delivers one event, all in one transaction; throws (state unchanged) when it cannot. */
  private receive(event: Event): void {
    this.stats.decryptAttempts++;
    const { sender, envelope, envelopeBytes } = this.arrivals.of(event);
    if (envelope.type === 'retry-request') {
      const request = envelope.request;
      return this.ctx.transaction(() => {
        if (this.ctx.seen.has(event.id)) return;
        this.retryRequests.onRetryRequest(sender, request);
        this.ctx.seen.mark(event.id, 'retry request', this.ctx.clock());
      });
    }
    let from: string | undefined;
    // A pre-key message's identity was checked against its sender when the arrival was read.
    if (envelope.type === 'normal') {
      const contact = this.contacts.byNostr(sender);
      if (!contact) fail('NO_SESSION', 'normal message from a Nostr key that is no contact of ours');
      from = contact.fingerprint;
    }
    const now = this.ctx.clock();
    this.ctx.transaction(() => {
      if (this.ctx.seen.has(event.id)) return;
      const result = this.ctx.cipher.decrypt(envelopeBytes, {
        from,
        deliver: (d) => {
          const app = decodeAppMessage(d.plaintext);
          const observed = this.contacts.observe(d.peer, 'message', now);
          if (observed.kind === 'unknown') return fail('NO_SESSION', 'sender is unknown');
          this.route(observed.contact, app, now, event.id);
        },
      });
      this.ctx.seen.mark(event.id, 'delivered', now);
      // What waited for this session to send goes now, with the step that made it able to.
      if (this.deferred.waits(result.peerFingerprint)) this.deferred.flush(result.peerFingerprint);
      // The seed: a consumed one-time pre-key means a new peer; publish a fresh bundle at once.
      if (result.consumedOneTimePreKey) this.ctx.afterCommit(() => this.bundles.maintain());
    });
  }

  /**
   * Hands an application message to its handler. A message that cannot be acted on is refused on its
   * own (a savepoint): the ratchet step that carried it still commits, so the session stays in step.
   */
  private route(from: Contact, app: AppMessage, now: number, eventId: string): void {
    const handler = this.wiring.routes()[app.type] as AppMessageHandler;
    try {
      this.ctx.transaction(() => handler(from, app, now));
    } catch (e) {
      const reason = reasonOf(e);
      this.ctx.afterCommit(() => this.ctx.reject('(inside a message)', eventId, reason));
      // The sender of a request is told it will not happen, rather than left waiting.
      if (NEVER_REFUSED.has(app.type)) return;
      try {
        this.ctx.transaction(() => this.sendControl(from, { type: 'refused', refusedId: app.id, refusedType: app.type, reason }));
      } catch (e) {
        this.ctx.log(`could not tell ${nameOf(from)} of a refusal: ${reasonOf(e)}`);
      }
    }
  }

  // Receipts

  /**
   * Receipts are batched per peer for a moment: a burst of messages then costs one receipt, not one
   * each. None is lost to a crash within the delay: `sendOwedReceipts` queues them at the next start.
   */
  private queueReceipt(contact: Contact, id: string, seq: number): void {
    this.receiptsUpTo = Math.max(this.receiptsUpTo, seq);
    const pending = this.pendingReceipts.get(contact.fingerprint);
    if (pending) pending.ids.push(id);
    else this.pendingReceipts.set(contact.fingerprint, { contact, ids: [id] });
    if ((pending?.ids.length ?? 1) >= RECEIPT_BATCH) this.sendReceipts();
    else this.receiptTimer ??= setTimeout(() => this.sendReceipts(), RECEIPT_DELAY_MS);
  }

  /** Queues the batched receipts now (also on close). */
  sendReceipts(): void {
    clearTimeout(this.receiptTimer);
    this.receiptTimer = undefined;
    if (this.ctx.closed) return;
    const batches = [...this.pendingReceipts.values()];
    this.pendingReceipts.clear();
    let failed = false;
    for (const { contact, ids } of batches) {
      try {
        this.ctx.transaction(() => this.sendControl(contact, { type: 'receipt', ids }, 'receipt'));
      } catch (e) {
        failed = true;
        this.ctx.log(`could not queue a receipt for ${contact.fingerprint.slice(0, 12)}: ${reasonOf(e)}`);
      }
    }
    if (!failed && batches.length > 0) this.ctx.settings.set(RECEIPTS_CURSOR, String(this.receiptsUpTo));
  }

  /**
   * Queues the receipts that a run killed within a batch's delay owed: for the stored incoming
   * messages past the cursor. Without them their sender would show them "sent" for good.
   */
  sendOwedReceipts(): void {
    const cursor = Number(this.ctx.settings.get(RECEIPTS_CURSOR) ?? '0');
    for (const m of this.store.incomingAfter(cursor, OWED_RECEIPTS_PER_START)) {
      const contact = this.contacts.get(m.peer);
      if (contact) this.queueReceipt(contact, m.id, m.seq);
    }
    this.sendReceipts();
  }

  // Reading

  /** Stored messages after `seq`, oldest first. */
  messages(afterSeq = 0, limit = 1000): StoredMessage[] {
    return this.store.after(afterSeq, limit);
  }

  /** A conversation's last `limit` messages, oldest first (see MessagesStore.history). */
  history(c: Conversation | null, limit: number, direct = false): StoredMessage[] {
    return this.store.history(c, limit, direct);
  }

  /** Every conversation with a message: its last one and its count unread in the web app. */
  conversations(): ConversationSummary[] {
    return this.store.summaries();
  }

  /** The web app showed a conversation: its messages so far are read there (the CLI's cursor is its own). */
  markConversationRead(c: Conversation): void {
    this.store.markConversationRead(c);
  }

  /**
   * Incoming messages not yet marked read (after `afterSeq` too, when given), at most `limit`: a
   * contiguous run of seqs, ordered by the sender's clock (a catch-up decrypts in relay order, which
   * is only per-second). Nothing is marked read: see `markRead`.
   */
  unread(limit = 10_000, afterSeq = 0): ReceivedMessage[] {
    return this.store
      .incomingAfter(Math.max(afterSeq, this.store.readCursor()), limit)
      .sort((a, b) => a.sentAt - b.sentAt || a.seq - b.seq)
      .map((m) => this.toReceived(m));
  }

  /** Marks every incoming message up to `seq` read (the cursor only moves forward); returns the cursor. */
  markRead(seq: number): number {
    return this.store.markRead(seq);
  }

  /** Incoming messages not yet marked read, marked read as they are handed out. */
  takeUnread(): ReceivedMessage[] {
    return this.ctx.transaction(() => {
      const list = this.unread();
      if (list.length > 0) this.markRead(Math.max(...list.map((m) => m.seq)));
      return list;
    });
  }

  private toReceived(m: StoredMessage): ReceivedMessage {
    const c = this.contacts.get(m.peer);
    return {
      id: m.id,
      seq: m.seq,
      from: m.peer,
      alias: c?.alias ?? null,
      text: m.body,
      sentAt: m.sentAt,
      receivedAt: m.receivedAt ?? 0,
      trusted: c?.trusted ?? false,
      group: m.groupId ? this.wiring.groupOf(m.groupId) : null,
    };
  }
}

/** A text as it goes out: to a contact, or one member's copy of a group message. */
function textMessage(id: string, sentAt: number, text: string, groupId: string | null): AppMessage {
  return groupId === null ? { type: 'text', id, sentAt, text } : { type: 'group-text', id, sentAt, groupId, text };
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function sentOf(m: StoredMessage): SentMessage {
  return { id: m.id, to: m.peer, state: m.state, relaysAccepted: m.relaysAccepted, failure: m.failure };
}
