import { type Bytes, constantTimeEqual, toHex } from '../crypto/index.js';
import { type ErrorCode, fail, isRatchetRelayError } from '../errors.js';
import { type PublicIdentity, sameIdentity } from '../identity/index.js';
import { RETRY_LIMITS } from '../limits.js';
import { decodeRetryRequest, encodeEnvelope, encodeRetryRequest, type RetryReason, UNKNOWN_BASE_KEY } from '../session/index.js';
import { type Contact, type MessagesStore, RetryRequestsStore, type StoredMessage } from '../store/index.js';
import { type Contacts, nameOf } from './contacts.js';
import type { NodeContext } from './context.js';

const HOUR_MS = 60 * 60 * 1000;

/** The failures of a first message that a new session from our current bundle cures. */
const CURABLE = ['ONE_TIME_PREKEY_USED', 'UNKNOWN_PREKEY', 'PREKEY_EXPIRED'] as const satisfies readonly (ErrorCode & RetryReason)[];

export interface RetryWiring {
  /** Sends an envelope that is no ratchet message (a retry request) to an identity. Inside a transaction. */
  readonly publish: (envelope: Bytes, recipient: PublicIdentity) => void;
  /** Encrypts a stored outgoing message again, in the contact's active session. Inside a transaction. */
  readonly resend: (contact: Contact, m: StoredMessage) => void;
}

/**
 * Retry requests, after Signal's decryption-error messages. A recipient that cannot read a first
 * message (its one-time key was taken by another sender, its pre-key is unknown or expired) or that
 * lost the session asks the sender, signed by its identity, for a new session from the bundle it
 * encloses. The sender starts that session and sends again, once, what is not delivered yet.
 */
export class RetryRequests {
  private readonly requests: RetryRequestsStore;
  readonly stats = { sessionsRetried: 0, requestsSent: 0 };

  constructor(
    private readonly ctx: NodeContext,
    private readonly contacts: Contacts,
    private readonly wiring: RetryWiring,
    /** Messaging's history, whose undelivered messages go again. */
    private readonly messages: MessagesStore,
  ) {
    this.requests = new RetryRequestsStore(ctx.db);
  }

  /** Why a new session cures this failure of a first message, or null when it does not. */
  static reasonFor(e: unknown): RetryReason | null {
    return isRatchetRelayError(e) && (CURABLE as readonly ErrorCode[]).includes(e.code) ? (e.code as RetryReason) : null;
  }

  // As the recipient

  /**
   * Asks `sender` (the Nostr key that signed the message, owned by `identity`) for a new session:
   * once per failed session (`baseKey`, or null for a session we lost), and at most a few per sender
   * an hour, so that no one can make us sign and publish without bound.
   */
  request(sender: string, identity: PublicIdentity, baseKey: Bytes | null, reason: RetryReason): boolean {
    const now = this.ctx.clock();
    return this.ctx.transaction(() => {
      if (this.requests.countSince(sender, now - HOUR_MS) >= RETRY_LIMITS.perSenderPerHour) {
        this.ctx.log(`no retry request to ${sender.slice(0, 12)}: ${RETRY_LIMITS.perSenderPerHour} in the last hour already`);
        return false;
      }
      if (!this.requests.record(sender, baseKey ? toHex(baseKey) : `lost@${now}`, now)) return false;
      const request = { baseKey: baseKey ?? UNKNOWN_BASE_KEY, reason, requestedAt: now, bundle: this.ctx.cipher.bundle() };
      this.wiring.publish(encodeEnvelope({ type: 'retry-request', request: encodeRetryRequest(this.ctx.store.identity(), request, identity) }), identity);
      this.stats.requestsSent++;
      return true;
    });
  }

  /** Forgets old requests (at maintenance); a session that failed that long ago will not be retried again. */
  prune(now: number): void {
    this.requests.prune(now - RETRY_LIMITS.rememberMs);
  }

  // As the sender

  /**
   * A retry request from `sender`: when it names our active session with the contact (or, for a
   * session it lost, was made after ours began), a new session from its bundle replaces ours and every
   * message not yet delivered goes again, once; a message asked for a second time fails, with the
   * reason. A stale request (for a session already replaced) changes nothing. Inside a transaction.
   */
  onRetryRequest(sender: string, bytes: Bytes): void {
    const contact = this.contacts.byNostr(sender);
    if (!contact) return fail('NO_SESSION', 'retry request from a Nostr key that is no contact of ours');
    const request = decodeRetryRequest(bytes, this.ctx.store.identity().public);
    if (!sameIdentity(request.bundle.identity, contact.identity)) return fail('IDENTITY_MISMATCH', `retry request signed by an identity other than ${nameOf(contact)}'s`);
    const active = this.ctx.store.loadSessions(contact.fingerprint)[0];
    const lost = constantTimeEqual(request.baseKey, UNKNOWN_BASE_KEY);
    const current = active && (lost ? request.requestedAt > active.createdAt : constantTimeEqual(active.baseKey, request.baseKey));
    if (!current) {
      this.ctx.log(`a retry request from ${nameOf(contact)} for a session already replaced: nothing to do`);
      return;
    }
    this.ctx.cipher.startSession(request.bundle);
    this.stats.sessionsRetried++;
    const why = describe(request.reason);
    const failure = `${nameOf(contact)} could not read it, even sent again in a new session (${why})`;
    const failed: string[] = [];
    for (const m of this.messages.undelivered(contact.fingerprint)) {
      if (m.resends >= RETRY_LIMITS.resendsPerMessage) {
        if (this.messages.markFailed(contact.fingerprint, m.id, failure)) failed.push(m.id);
      } else {
        this.wiring.resend(contact, m);
        this.messages.markResent(contact.fingerprint, m.id);
      }
    }
    this.ctx.afterCommit(() => {
      this.ctx.log(`${nameOf(contact)} asked for a new session (${why}); started one and sent again what was not delivered`);
      if (failed.length > 0) this.ctx.events.emit('failed', { peer: contact.fingerprint, ids: failed, reason: failure });
    });
  }
}

function describe(reason: RetryReason): string {
  switch (reason) {
    case 'ONE_TIME_PREKEY_USED':
      return 'the one-time pre-key we used was taken by another sender';
    case 'UNKNOWN_PREKEY':
      return 'the pre-key we used was unknown to them';
    case 'PREKEY_EXPIRED':
      return 'the pre-key we used had expired';
    case 'LOST_SESSION':
      return 'they lost our session';
  }
}
