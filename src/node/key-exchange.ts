import { fromHex, toHex } from '../crypto/index.js';
import { fail } from '../errors.js';
import { decodePublicIdentity, encodePublicIdentity, fingerprint, type PublicIdentity, sameIdentity } from '../identity/index.js';
import {
  acceptInvite,
  checkNickname,
  createInvite,
  decodeInvite,
  decodePendingKX,
  encodeInvite,
  encodePendingKX,
  inviteFromString,
  inviteToString,
  type KXComplete,
  type KXRefusalReason,
  type KXRefused,
  type KXSend,
  type OOBPublicIdentityInvite,
  onHalfKX,
  onStep3,
  open,
  openHalfKX,
  refuseHalfKX,
  rvHex,
  seal,
} from '../kx/index.js';
import { decodeRendezvousEvent, type Event, KIND_RENDEZVOUS, RENDEZVOUS_TAG, rendezvousEvent } from '../nostr/events.js';
import { type Contact, decodeMet, encodeMet, type KxRequest, KxStore, type Met, type SpentInvite, type StoredPendingKx } from '../store/index.js';
import type { Bundles } from './bundles.js';
import { type Contacts, nameOf } from './contacts.js';
import type { NodeContext } from './context.js';
import type { RequestChange } from './events.js';
import type { AppMessageHandler, Messaging } from './messaging.js';
import type { Outbox } from './outbox.js';

export const SUB_RENDEZVOUS = 'rr-rendezvous';
/** An acceptor keeps waiting this long past the invite's expiry, for a full KX still in transit. */
export const KX_GRACE_MS = 24 * 60 * 60 * 1000;
/** A reset request is answered within this, or forgotten. */
const RESET_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** An introduction asked for (or announced) is welcome this long. */
export const MEDIATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** A spent invite refuses at most this many other half KXs: each refusal is an event we post. */
export const MAX_REFUSALS_PER_INVITE = 32;
/** Introductions waiting for the user's consent, at most this many per mediator: the rest are refused. */
export const MAX_REQUESTS_PER_MEDIATOR = 16;
/** An introduction waiting for the user's consent is forgotten (at maintenance) after this. */
export const REQUEST_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/** What the acceptor is told when the inviter refused its half KX. */
const FAILURE_TEXT: Record<KXRefusalReason | 'expired', string> = {
  'invite-used': 'the invite was already used: someone else answered it first',
  expired: 'no answer came before it expired',
};

export interface PendingKeyExchange {
  readonly rv: string;
  readonly role: 'inviter' | 'acceptor';
  readonly peer: string | null;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** An introduction that waits for the user: `rrelay kx accept|decline <id>`. */
export interface IntroductionRequest {
  readonly id: string;
  /** `invite-request`: we would invite `peer`; `introduced`: we would answer `peer`'s invite. */
  readonly kind: KxRequest['kind'];
  readonly mediator: string;
  readonly mediatorAlias: string | null;
  readonly peer: string;
  /** True once the peer's invite came (an `introduced` one): accepting answers it at once. */
  readonly inviteArrived: boolean;
  readonly receivedAt: number;
  readonly expiresAt: number;
}

/** A group we joined (its id) run by `admin` that lists `peer`, if any: an introduction by the admin needs no consent. */
export type GroupOfAdmin = (admin: string, peer: string) => string | undefined;

/**
 * The invite key exchange on the node (Bison Relay-style): invites, the half and full KX at
 * rendezvous points, ratchet resets (direct and through a mediator) and introductions (auto-KX).
 * The protocol itself is the pure state machine in `src/kx/`; this is its I/O shell.
 */
export class KeyExchange {
  private readonly store: KxStore;
  /** Ours, read once: the node holds its data directory alone, and `whoami` answers after close too. */
  private ownNickname: string | null;

  constructor(
    private readonly ctx: NodeContext,
    private readonly contacts: Contacts,
    private readonly bundles: Bundles,
    private readonly messaging: Messaging,
    private readonly outbox: Outbox,
    private readonly groupOf: GroupOfAdmin,
  ) {
    this.store = new KxStore(ctx.db, ctx.settings);
    this.ownNickname = this.store.nickname();
  }

  // Invites

  /** Step 1: an invite to hand over out of band. Its key exchange waits at the invite's initial RV. */
  createInvite(ttlMs: number): { invite: string; rv: string; expiresAt: number } {
    const { invite, rv } = this.ctx.transaction(() => this.startInviter(null, ttlMs, { how: 'invite' }, this.ctx.clock()));
    return { invite: inviteToString(invite), rv, expiresAt: invite.expiresAt };
  }

  /** Step 2: accept an invite string; the half KX goes to the inviter's initial RV. `nickname`: the one the inviter chose. */
  acceptInvite(text: string): { peer: string; rv: string; nickname: string | null } {
    const invite = inviteFromString(text.trim());
    const peer = fingerprint(invite.identity);
    const rv = this.ctx.transaction(() => this.startAcceptor(invite, peer, { how: 'invite' }, this.ctx.clock()));
    return { peer, rv, nickname: invite.nickname };
  }

  /** Our nickname: invites and half KXs carry it (resets do not), and the peer names its new contact by it. */
  nickname(): string | null {
    return this.ownNickname;
  }

  /** Sets (or, with null, removes) our nickname; invites made before keep the one they carry. */
  setNickname(nickname: string | null): string | null {
    this.store.setNickname(nickname === null ? null : checkNickname(nickname));
    this.ownNickname = nickname;
    return nickname;
  }

  pending(): PendingKeyExchange[] {
    return this.store.pending().map(({ rv, role, peer, createdAt, expiresAt }) => ({ rv, role, peer, createdAt, expiresAt }));
  }

  /** Cancels a pending key exchange by its RV (or a unique prefix of at least 8 hex digits). */
  cancel(ref: string): string {
    const { rv } = oneByPrefix(this.store.pending(), (p) => p.rv, ref, 8, 'key exchanges', `no pending key exchange matches "${ref}": see \`rrelay kx ls\``);
    this.ctx.transaction(() => this.forget(rv));
    return rv;
  }

  /**
   * Drops the key exchanges that expired (at maintenance). One that waited on someone in particular
   * (an invite we accepted, a reset, an introduction) failed, and is told as a refusal is; our own
   * invite that nobody answered simply ends.
   */
  expire(now: number): void {
    this.ctx.transaction(() => {
      for (const r of this.store.expiredRequests(now)) this.requestChanged(r, 'expired');
      const unanswered = this.store.expiredWithPeer(now);
      if (this.store.expire(now) > 0) this.ctx.afterCommit(() => this.subscribe());
      for (const p of unanswered) this.failed(p.peer, p.rv, 'expired');
    });
  }

  /** Listens at every RV a key exchange waits on, at each spent invite's until it expires, and at each contact's reset RV; nowhere else. */
  subscribe(): void {
    const relays = this.ctx.relays;
    if (!relays) return;
    const rvs = [...this.store.pending().map((p) => p.rv), ...this.store.spentRvs(), ...this.contacts.resetRvs()];
    if (rvs.length === 0) relays.unsubscribe(SUB_RENDEZVOUS);
    else relays.subscribe(SUB_RENDEZVOUS, [{ kinds: [KIND_RENDEZVOUS], [`#${RENDEZVOUS_TAG}`]: rvs }]);
  }

  /** Steps 2 and 3 arriving, a half KX for a spent invite, or a reset request at a contact's reset RV; anything else is refused. */
  onRendezvousEvent(event: Event): void {
    const { rv, payload } = decodeRendezvousEvent(event);
    const stored = this.store.pendingAt(rv);
    if (!stored) {
      const spent = this.store.spentAt(rv);
      if (spent) return this.refuseSpent(spent, payload, event.id);
      const contact = this.contacts.byResetRv(rv);
      if (!contact) return fail('INVALID_ARGUMENT', 'no key exchange waits at this rendezvous point (unknown, finished, cancelled or expired)');
      return this.ctx.transaction(() => {
        this.answerResetInvite(contact, payload, this.ctx.clock());
        this.ctx.seen.mark(event.id, 'reset request', this.ctx.clock());
      });
    }
    const pending = decodePendingKX(stored.record);
    const self = this.ctx.store.identity();
    const now = this.ctx.clock();
    const done: (KXComplete & { send?: KXSend }) | KXRefused =
      pending.role === 'inviter' ? onHalfKX(self, pending, payload, this.ctx.rng, now) : onStep3(self, pending, payload, now);
    if ('refused' in done) return this.onRefusedByInviter(stored, done.refused, event.id, now);
    const peer = fingerprint(done.session.peer);
    if (stored.peer !== null && stored.peer !== peer) fail('IDENTITY_MISMATCH', 'the answer to a ratchet reset comes from another identity than the contact');
    // The peer's chosen name: the inviter's came in its invite, the acceptor's in this half KX. A reset (no `met`) names no one.
    const met = decodeMet(stored.met);
    const nickname = met === null ? null : pending.role === 'inviter' ? (done.peerNickname ?? null) : stored.nickname;
    this.ctx.transaction(() => {
      this.ctx.cipher.installSession(done.session);
      const added = this.contacts.addFromKeyExchange(done.session.peer, rvHex(done.resetRV), rvHex(done.peerResetRV), met, now);
      const contact = nickname === null ? added : this.contacts.nameByNickname(added, nickname, now);
      this.forget(rv);
      // An invite handed out of band may reach others too: keep hearing them, to tell them it is spent.
      if (pending.role === 'inviter' && stored.peer === null) this.store.addSpent(stored, peer, now);
      if (done.send) {
        this.queueRendezvous(done.send);
        this.messaging.sendControl(contact, { type: 'kx-hello' });
      }
      this.ctx.seen.mark(event.id, 'key exchange', now);
      this.ctx.afterCommit(() => {
        // The inviter's first message (its hello, which lets us send) can arrive before the full KX it depends on.
        this.messaging.retryHeldBack(toHex(done.session.peer.nostrKey));
        this.ctx.events.emit('kx', { peer, role: pending.role });
      });
    });
  }

  /**
   * A half KX at an invite another acceptor completed: a signed refusal goes to its step3RV, once per
   * half KX and at most MAX_REFUSALS_PER_INVITE times per invite. A half KX from the acceptor that
   * completed it is a duplicate of a finished exchange and gets no answer.
   */
  private refuseSpent(spent: SpentInvite, payload: Uint8Array, eventId: string): void {
    const self = this.ctx.store.identity();
    const now = this.ctx.clock();
    const { half } = openHalfKX(self, decodePendingKX(spent.record), payload, now);
    if (fingerprint(half.identity) === spent.acceptor) fail('INVALID_ARGUMENT', 'duplicate half KX: its sender already completed this invite');
    const step3Rv = rvHex(half.step3RV);
    if (this.store.refused(step3Rv)) fail('INVALID_ARGUMENT', 'this half KX for a spent invite was refused already');
    if (this.store.refusals(spent.rv) >= MAX_REFUSALS_PER_INVITE)
      fail('INVALID_ARGUMENT', `spent invite: ${MAX_REFUSALS_PER_INVITE} later half KXs were refused already, no more answers`);
    this.ctx.transaction(() => {
      this.store.addRefusal(step3Rv, spent.rv, now);
      this.queueRendezvous(refuseHalfKX(self, half, 'invite-used', this.ctx.rng));
      this.ctx.seen.mark(eventId, 'half KX for a spent invite: refused', now);
    });
  }

  /** The inviter refused our half KX (signed, and bound to it): stop waiting, and say why. */
  private onRefusedByInviter(stored: StoredPendingKx, code: KXRefusalReason, eventId: string, now: number): void {
    this.ctx.transaction(() => {
      this.forget(stored.rv);
      this.ctx.seen.mark(eventId, `key exchange refused: ${code}`, now);
      this.failed(stored.peer!, stored.rv, code); // an acceptor always knows its inviter
    });
  }

  /** Tells, once committed, that the key exchange with `peer` at `rv` ended without a session. */
  private failed(peer: string, rv: string, code: KXRefusalReason | 'expired'): void {
    const alias = this.contacts.get(peer)?.alias ?? null;
    this.ctx.afterCommit(() => {
      this.ctx.log(`key exchange with ${nameOf({ alias, fingerprint: peer })} failed: ${FAILURE_TEXT[code]}`);
      this.ctx.events.emit('kx-failed', { peer, alias, rv, code, reason: FAILURE_TEXT[code] });
    });
  }

  // Ratchet resets

  /**
   * Ratchet reset: a fresh invite, sealed to the contact's KEM key, posted at the contact's reset RV
   * (or carried by a mediator, `via`). The usual half and full KX follow; completion replaces the
   * session and rotates both reset RVs.
   */
  reset(ref: string, viaRef?: string): { rv: string; peer: string } {
    const contact = this.bundles.resolvePeer(ref);
    const kemKey = contact.identity.kemKey;
    const via = viaRef === undefined ? undefined : this.bundles.resolvePeer(viaRef);
    if (via?.fingerprint === contact.fingerprint) fail('INVALID_ARGUMENT', 'the mediator must be a third contact');
    if (!kemKey || (!via && !contact.peerResetRv))
      fail('NO_SESSION', `no reset mailbox for ${nameOf(contact)}: only sessions made by an invite have one`);
    if (this.store.pending().some((p) => p.peer === contact.fingerprint))
      fail('INVALID_ARGUMENT', `a key exchange with ${nameOf(contact)} is already under way (\`rrelay kx ls\`)`);
    const now = this.ctx.clock();
    const rv = this.ctx.transaction(() => {
      const { invite, rv } = this.startInviter(contact.fingerprint, RESET_TTL_MS, null, now);
      const sealed = seal(kemKey, encodeInvite(invite), this.ctx.rng);
      // Transitive reset: the mediator carries the sealed invite and cannot read it.
      if (via) this.store.rememberRequest(this.messaging.sendControl(via, { type: 'reset-via', peer: contact.fingerprint, sealed }), { rv });
      else this.queueRendezvous({ rv: fromHex(contact.peerResetRv!), payload: sealed });
      return rv;
    });
    return { rv, peer: contact.fingerprint };
  }

  /** As a mediator of a reset between two of our contacts: pass the sealed invite on, unread. */
  readonly onResetVia: AppMessageHandler<'reset-via'> = (from, m) => {
    const to = this.contacts.get(m.peer);
    if (!to || to.fingerprint === from.fingerprint) return fail('INVALID_ARGUMENT', `${nameOf(from)} asked to pass a reset to someone we do not know`);
    this.messaging.sendControl(to, { type: 'reset-forwarded', peer: from.fingerprint, sealed: m.sealed });
  };

  readonly onResetForwarded: AppMessageHandler<'reset-forwarded'> = (from, m, now) => {
    const contact = this.contacts.get(m.peer);
    if (!contact) return fail('INVALID_ARGUMENT', `${nameOf(from)} passed on a reset from someone we do not know`);
    this.answerResetInvite(contact, m.sealed, now);
  };

  /**
   * A reset invite (sealed to our KEM key) from `contact`, directly or passed on. Accepted only from
   * the contact's own identity; a second request while one is being answered is a duplicate; crossed
   * requests (both sides reset at once) are settled by fingerprint order, so exactly one proceeds.
   */
  private answerResetInvite(contact: Contact, sealed: Uint8Array, now: number): void {
    const self = this.ctx.store.identity();
    const invite = decodeInvite(open(self.kem.secretKey, sealed));
    if (!sameIdentity(invite.identity, contact.identity)) fail('IDENTITY_MISMATCH', `reset request signed by an identity other than ${nameOf(contact)}'s`);
    // A mediator (or a relay) replaying an old reset invite would block the real resets: each is answered once.
    const inviteRv = rvHex(invite.initialRV);
    if (this.store.resetAnswered(inviteRv)) fail('INVALID_ARGUMENT', 'replayed reset request: this reset invite was answered already');
    if (invite.expiresAt < now) fail('INVALID_ARGUMENT', 'expired reset request');
    const ongoing = this.store.pending().filter((p) => p.peer === contact.fingerprint);
    if (ongoing.some((p) => p.role === 'acceptor')) fail('INVALID_ARGUMENT', 'duplicate reset request: one from this contact is already being answered');
    const ours = ongoing.find((p) => p.role === 'inviter');
    if (ours && fingerprint(self.public) < contact.fingerprint) fail('INVALID_ARGUMENT', 'crossed reset: ours wins the tiebreak (lower fingerprint), theirs is dropped');
    if (ours) this.forget(ours.rv); // crossed, and theirs wins: ours is dropped
    this.startAcceptor(invite, contact.fingerprint, null, now);
    this.store.addAnsweredReset(inviteRv, invite.expiresAt);
  }

  // Introductions (auto-KX)

  /** As a mediator: introduces two contacts to each other; `b` will invite `a`. */
  introduce(aRef: string, bRef: string): { a: string; b: string } {
    const a = this.bundles.resolvePeer(aRef);
    const b = this.bundles.resolvePeer(bRef);
    if (a.fingerprint === b.fingerprint) fail('INVALID_ARGUMENT', 'introduce two different contacts');
    for (const c of [a, b]) this.contacts.assertMetByInvite(c, 'only contacts met by invite can be introduced');
    const now = this.ctx.clock();
    this.ctx.transaction(() => {
      this.messaging.sendControl(a, { type: 'introduced', target: b.identity });
      this.messaging.sendControl(b, { type: 'invite-request', requester: a.identity });
      this.store.allowForward(b.fingerprint, a.fingerprint, now + MEDIATION_TTL_MS);
    });
    return { a: a.fingerprint, b: b.fingerprint };
  }

  /** Asks `mediator` (a contact) for an introduction to the identity `target` (a full fingerprint). */
  mediate(mediatorRef: string, target: string): { mediator: string; target: string } {
    const mediator = this.bundles.resolvePeer(mediatorRef);
    // The mediator's answer comes sealed to our KEM key, which it has only from a key exchange.
    this.contacts.assertMetByInvite(mediator, 'it cannot mediate an introduction for us');
    const fp = target.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(fp)) fail('INVALID_ARGUMENT', 'the identity to be introduced to is a full 64-digit fingerprint');
    if (this.ctx.cipher.hasSession(fp)) fail('INVALID_ARGUMENT', 'that identity is a contact already');
    this.ctx.transaction(() => this.askMediator(mediator, fp, this.ctx.clock()));
    return { mediator: mediator.fingerprint, target: fp };
  }

  /** Asks `mediator` to introduce us to `target`, whose invite through it is then welcome. Call inside a transaction. */
  askMediator(mediator: Contact, target: string, now: number): void {
    this.store.expectIntroduction(target, mediator.fingerprint, now, now + MEDIATION_TTL_MS);
    this.store.rememberRequest(this.messaging.sendControl(mediator, { type: 'mediate-identity', target }), { target });
  }

  /** A mediator refused a reset we sent through it, or an introduction we asked of it: stop waiting for it. */
  readonly onRefused: AppMessageHandler<'refused'> = (from, m) => {
    if (m.refusedType !== 'reset-via' && m.refusedType !== 'mediate-identity') return;
    const waiting = this.store.takeRequest(m.refusedId);
    if (!waiting) return;
    if ('rv' in waiting) this.forget(waiting.rv);
    else if (this.store.mediatorFor(waiting.target, this.ctx.clock()) === from.fingerprint) this.store.forgetIntroduction(waiting.target);
  };

  /** We mediate: ask the target to invite the requester. */
  readonly onMediateIdentity: AppMessageHandler<'mediate-identity'> = (from, m, now) => {
    const target = this.contacts.get(m.target);
    if (!target) return fail('NO_SESSION', `${nameOf(from)} asked for an introduction to an identity we do not know`);
    if (!from.identity.kemKey || !target.identity.kemKey) return fail('INVALID_ARGUMENT', 'only contacts met by invite can be introduced');
    this.messaging.sendControl(target, { type: 'invite-request', requester: from.identity });
    this.store.allowForward(target.fingerprint, from.fingerprint, now + MEDIATION_TTL_MS);
  };

  /** `from` tells us to expect `target`'s invite: welcome if we asked for it or `from` runs a group of ours, else it waits for the user. */
  readonly onIntroduced: AppMessageHandler<'introduced'> = (from, m, now) => {
    const target = fingerprint(m.target);
    if (this.ctx.cipher.hasSession(target)) return;
    const met = this.consented(from, target, now);
    if (met) this.store.expectIntroduction(target, from.fingerprint, now, now + MEDIATION_TTL_MS);
    else this.holdForConsent(from, m.id, 'introduced', m.target, now);
  };

  /** We are the target: invite the requester, sealed to it, back through the mediator, once the user consents. */
  readonly onInviteRequest: AppMessageHandler<'invite-request'> = (from, m, now) => {
    const requester = fingerprint(m.requester);
    if (this.ctx.cipher.hasSession(requester)) return; // crossed, and a session exists already
    if (this.store.pending().some((p) => p.peer === requester)) return; // already under way
    if (!m.requester.kemKey) return fail('INVALID_ARGUMENT', 'an introduction needs the full identity of whom to invite');
    const met = this.consented(from, requester, now);
    if (met) this.inviteIntroduced(from, m.requester, met, now);
    else this.holdForConsent(from, m.id, 'invite-request', m.requester, now);
  };

  /** Invites `requester`, sealed to it, through `mediator`. Call inside a transaction. */
  private inviteIntroduced(mediator: Contact, requester: PublicIdentity, met: Met, now: number): void {
    const peer = fingerprint(requester);
    const { invite } = this.startInviter(peer, MEDIATION_TTL_MS, met, now);
    const sealed = seal(requester.kemKey!, encodeInvite(invite), this.ctx.rng);
    this.messaging.sendControl(mediator, { type: 'transitive', peer, sealed });
  }

  /**
   * How an introduction of `peer` by `mediator` meets it, when it needs no consent: we asked
   * `mediator` for it (`mediate`), or `mediator` is the admin of a group we joined.
   */
  private consented(mediator: Contact, peer: string, now: number): Met | undefined {
    const group = this.groupOf(mediator.fingerprint, peer);
    if (group) return { how: 'group', via: group };
    if (this.store.mediatorFor(peer, now) === mediator.fingerprint) return { how: 'introduction', via: mediator.fingerprint };
    return undefined;
  }

  /** An introduction nobody asked for: it waits for the user, at most MAX_REQUESTS_PER_MEDIATOR per mediator. */
  private holdForConsent(mediator: Contact, id: string, kind: KxRequest['kind'], identity: PublicIdentity, now: number): void {
    const peer = fingerprint(identity);
    if (this.store.requestFor(mediator.fingerprint, peer)) return; // asked again: it waits already
    if (this.store.requestsFrom(mediator.fingerprint) >= MAX_REQUESTS_PER_MEDIATOR)
      fail('INVALID_ARGUMENT', `${MAX_REQUESTS_PER_MEDIATOR} introductions by ${nameOf(mediator)} wait for the user already`);
    const r: KxRequest = { id, kind, mediator: mediator.fingerprint, peer, identity: encodePublicIdentity(identity), sealed: null, receivedAt: now, expiresAt: now + REQUEST_TTL_MS };
    this.store.addRequest(r);
    this.ctx.afterCommit(() =>
      this.ctx.log(`${nameOf(mediator)} introduces ${peer.slice(0, 16)}: \`rrelay kx requests\`, then \`rrelay kx accept ${id.slice(0, 8)}\` or \`decline\``),
    );
    this.requestChanged(r, 'arrived');
  }

  /** Tells, once the transaction commits, that an introduction waiting for the user changed. Call inside a transaction. */
  private requestChanged({ id, kind, mediator, peer }: KxRequest, change: RequestChange): void {
    this.ctx.afterCommit(() => this.ctx.events.emit('request', { id, kind, mediator, peer, change }));
  }

  /** Introductions waiting for the user. */
  requests(): IntroductionRequest[] {
    return this.store.requests().map((r) => this.viewOf(r));
  }

  /** The user consents to an introduction: it goes ahead as if asked for; the contact is met "via" the mediator, untrusted. */
  acceptRequest(ref: string): IntroductionRequest {
    const r = this.requestByRef(ref);
    const mediator = this.contacts.get(r.mediator) ?? fail('NO_SESSION', 'the mediator of this introduction is no contact any more');
    const met: Met = { how: 'introduction', via: mediator.fingerprint };
    const now = this.ctx.clock();
    this.ctx.transaction(() => {
      this.store.deleteRequest(r.id);
      this.requestChanged(r, 'accepted');
      if (this.ctx.cipher.hasSession(r.peer)) return;
      if (r.kind === 'invite-request') return this.inviteIntroduced(mediator, decodePublicIdentity(r.identity), met, now);
      this.store.expectIntroduction(r.peer, mediator.fingerprint, now, now + MEDIATION_TTL_MS);
      if (r.sealed) this.acceptIntroduction(mediator, r.peer, r.sealed, met, now);
    });
    return this.viewOf(r);
  }

  /** The user declines an introduction: it is forgotten, and the mediator told (a `refused` of its message). */
  declineRequest(ref: string): IntroductionRequest {
    const r = this.requestByRef(ref);
    const mediator = this.contacts.get(r.mediator);
    this.ctx.transaction(() => {
      this.store.deleteRequest(r.id);
      this.requestChanged(r, 'declined');
      if (mediator) this.messaging.sendControl(mediator, { type: 'refused', refusedId: r.id, refusedType: r.kind, reason: 'the introduction was declined' });
    });
    return this.viewOf(r);
  }

  private requestByRef(ref: string): KxRequest {
    return oneByPrefix(this.store.requests(), (r) => r.id, ref, 6, 'introductions', `no introduction waits as "${ref}": see \`rrelay kx requests\``);
  }

  private viewOf(r: KxRequest): IntroductionRequest {
    const { id, kind, mediator, peer, receivedAt, expiresAt } = r;
    return { id, kind, mediator, mediatorAlias: this.contacts.get(mediator)?.alias ?? null, peer, inviteArrived: r.sealed !== null, receivedAt, expiresAt };
  }

  /** An invite sealed to a third party: ours if we asked `from` for `peer` (or it waits for our consent), else one to pass on if we mediate. */
  readonly onTransitive: AppMessageHandler<'transitive'> = (from, m, now) => {
    if (this.store.mediatorFor(m.peer, now) === from.fingerprint)
      return this.acceptIntroduction(from, m.peer, m.sealed, this.consented(from, m.peer, now)!, now);
    const waiting = this.store.requestFor(from.fingerprint, m.peer);
    if (waiting?.kind === 'introduced') {
      this.store.setRequestSealed(waiting.id, m.sealed);
      return this.requestChanged(waiting, 'invite');
    }
    const to = this.contacts.get(m.peer);
    if (!to || !this.store.takeForward(from.fingerprint, m.peer, now)) return fail('INVALID_ARGUMENT', `unsolicited introduction from ${nameOf(from)}: nobody asked for it`);
    this.messaging.sendControl(to, { type: 'transitive', peer: from.fingerprint, sealed: m.sealed });
  };

  /**
   * We asked `mediator` for `target`, and here is target's invite. Crossed auto-KXs (each side
   * inviting the other) keep the one whose inviter has the lower fingerprint, on both sides.
   */
  private acceptIntroduction(mediator: Contact, target: string, sealed: Uint8Array, met: Met, now: number): void {
    const self = this.ctx.store.identity();
    const invite = decodeInvite(open(self.kem.secretKey, sealed));
    if (fingerprint(invite.identity) !== target) fail('IDENTITY_MISMATCH', `the introduced invite is not from the identity ${mediator.alias ?? 'the mediator'} named`);
    // Crossed, and ours already completed (their half KX overtook this invite): answering it would leave
    // an acceptor waiting at an invite its inviter dropped.
    if (this.ctx.cipher.hasSession(target)) return;
    const ours = this.store.pending().find((p) => p.peer === target && p.role === 'inviter');
    if (ours) {
      if (fingerprint(self.public) < target) return; // ours wins the tiebreak; theirs is dropped
      this.forget(ours.rv);
    }
    this.startAcceptor(invite, target, met, now);
    this.store.forgetIntroduction(target);
  }

  // The two ends of a key exchange

  /**
   * Makes an invite and stores its pending KX, waiting at the initial RV. `peer`: whom it is for, when
   * known; `met` null: a reset, whose invite carries no nickname. Call inside a transaction.
   */
  private startInviter(peer: string | null, ttlMs: number, met: Met | null, now: number): { invite: OOBPublicIdentityInvite; rv: string } {
    const nickname = met === null ? null : this.nickname();
    const { invite, pending } = createInvite(this.ctx.store.identity(), this.ctx.rng, now, ttlMs, nickname);
    const rv = rvHex(pending.initialRV);
    this.store.add({ rv, role: 'inviter', record: encodePendingKX(pending), peer, createdAt: now, expiresAt: pending.expiresAt, met: met && encodeMet(met), nickname: null });
    this.ctx.afterCommit(() => this.subscribe());
    return { invite, rv };
  }

  /**
   * Answers an invite: stores the acceptor's pending KX (with the inviter's nickname, for when it
   * completes) and queues the half KX, with our nickname unless it is a reset. Call inside a transaction.
   */
  private startAcceptor(invite: OOBPublicIdentityInvite, peer: string, met: Met | null, now: number): string {
    const { pending, send } = acceptInvite(this.ctx.store.identity(), invite, this.ctx.rng, now, met === null ? null : this.nickname());
    const rv = rvHex(pending.step3RV);
    this.store.add({
      rv,
      role: 'acceptor',
      record: encodePendingKX(pending),
      peer,
      createdAt: now,
      expiresAt: pending.expiresAt + KX_GRACE_MS,
      met: met && encodeMet(met),
      nickname: invite.nickname,
    });
    this.queueRendezvous(send);
    this.ctx.afterCommit(() => this.subscribe());
    return rv;
  }

  /** Forgets a pending key exchange; its RV is no longer listened to. Call inside a transaction. */
  private forget(rv: string): void {
    this.store.delete(rv);
    this.ctx.afterCommit(() => this.subscribe());
  }

  private queueRendezvous(send: KXSend): void {
    this.outbox.enqueue(rendezvousEvent(rvHex(send.rv), send.payload, this.ctx.rng, this.ctx.clock()), 'control', null);
  }
}

/** The one item whose hex id starts with `ref` (at least `minDigits` of it); else a usage error that says how many matched. */
function oneByPrefix<T>(items: readonly T[], idOf: (t: T) => string, ref: string, minDigits: number, plural: string, none: string): T {
  const hits = items.filter((t) => ref.length >= minDigits && idOf(t).startsWith(ref.toLowerCase()));
  if (hits.length !== 1) fail('INVALID_ARGUMENT', hits.length ? `"${ref}" matches ${hits.length} ${plural}: give more digits` : none);
  return hits[0]!;
}
