import type { Bytes } from '../crypto/index.js';
import { fail } from '../errors.js';
import { DEFERRED_LIMITS } from '../limits.js';
import { type Contact, DeferredStore, type OutboxEntry } from '../store/index.js';
import { type Contacts, nameOf } from './contacts.js';
import type { NodeContext } from './context.js';

export interface DeferredWiring {
  /** Encrypts an application message in the contact's active session and queues its event. Inside a transaction. */
  readonly send: (contact: Contact, plaintext: Bytes, purpose: OutboxEntry['purpose'], messageId: string | null) => void;
  /** A stored outgoing message that will not go: it fails with `reason`, and its sender is told. Inside a transaction. */
  readonly failMessage: (peer: string, id: string, reason: string) => boolean;
}

/**
 * Sends that wait for a session able to send. A key exchange's acceptor installs its session when
 * the full KX arrives, but its ratchet can send only once the inviter's first message (the hello)
 * has been decrypted, and the two come on different connections. What the node sends meanwhile
 * (texts, receipts, control messages) is kept in the store, in order, and encrypted and queued in
 * the transaction of the decrypt that gives the session its sending chain, or as soon as a new
 * session that can send replaces it. A text stays `queued` meanwhile.
 */
export class DeferredSends {
  private readonly store: DeferredStore;

  constructor(
    private readonly ctx: NodeContext,
    private readonly contacts: Contacts,
    private readonly wiring: DeferredWiring,
    private readonly limits: typeof DEFERRED_LIMITS = DEFERRED_LIMITS,
  ) {
    this.store = new DeferredStore(ctx.db);
  }

  /** True when `peer` has a session that cannot send yet: what goes to it must wait. */
  sessionWaits(peer: string): boolean {
    const active = this.ctx.store.loadSessions(peer)[0];
    return active !== undefined && (active.ratchet.cks === null || active.ratchet.hks === null);
  }

  waits(peer: string): boolean {
    return this.store.waits(peer);
  }

  /** Keeps an application message for `contact` until its session can send; refused beyond the bounds. Inside a transaction. */
  defer(contact: Contact, plaintext: Bytes, purpose: OutboxEntry['purpose'], messageId: string | null): void {
    const l = this.limits;
    const mine = this.store.tally(contact.fingerprint);
    const all = this.store.tally();
    if (mine.n >= l.maxPerContact || mine.bytes + plaintext.length > l.maxBytesPerContact)
      fail('NO_SESSION', `${nameOf(contact)}'s session cannot send before its first message, and ${mine.n} messages (${mine.bytes} bytes) already wait for it`);
    if (all.n >= l.max || all.bytes + plaintext.length > l.maxBytes)
      fail('NO_SESSION', `${nameOf(contact)}'s session cannot send before its first message, and ${all.n} messages (${all.bytes} bytes) already wait for sessions`);
    this.store.add(contact.fingerprint, plaintext, purpose, messageId, this.ctx.clock());
  }

  /**
   * Sends, in order, what waits for `peer` if its active session can send now. True when nothing
   * waits any more. Inside a transaction (the decrypt's, or the send's that comes after them).
   */
  flush(peer: string): boolean {
    if (this.sessionWaits(peer)) return false;
    const contact = this.contacts.get(peer);
    for (const d of this.store.of(peer)) {
      // No contact any more: nothing can carry it. Its sender is told, as for any message that fails.
      if (contact) this.wiring.send(contact, d.message, d.purpose, d.messageId);
      else this.failed(d, 'the contact is gone');
      this.store.remove(d.seq);
    }
    return true;
  }

  /**
   * At maintenance: sends what a session that can send now (a new one, from a bundle or a reset)
   * has waiting, and fails what has waited longer than `maxWaitMs` for a first message that never came.
   */
  maintain(now: number): void {
    for (const peer of this.store.peers()) this.ctx.transaction(() => this.flush(peer));
    const before = now - this.limits.maxWaitMs;
    this.ctx.transaction(() => {
      for (const d of this.store.olderThan(before)) {
        this.failed(d, `no first message from the contact in ${Math.round(this.limits.maxWaitMs / 86_400_000)} days: its session never could send`);
        this.store.remove(d.seq);
      }
    });
  }

  private failed(d: { peer: string; purpose: OutboxEntry['purpose']; messageId: string | null }, reason: string): void {
    if (d.purpose === 'message' && d.messageId && this.wiring.failMessage(d.peer, d.messageId, reason)) return;
    this.ctx.afterCommit(() => this.ctx.log(`gave up on a ${d.purpose} waiting for ${d.peer.slice(0, 12)}'s session: ${reason}`));
  }
}
