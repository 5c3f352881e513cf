import type { Bytes } from '../crypto/index.js';
import type { Db } from './database.js';
import type { Settings } from './node-state.js';
import { blob, bytesOf, prepareAll, type Row } from './rows.js';

/** A key exchange waiting for its next message at rendezvous point `rv` (hex). `record` is an encoded PendingKX. */
export interface StoredPendingKx {
  readonly rv: string;
  readonly role: 'inviter' | 'acceptor';
  readonly record: Bytes;
  /** The peer's fingerprint once known (the acceptor knows the inviter). */
  readonly peer: string | null;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** How its completion meets the peer (`Met`, encoded); null for a ratchet reset. */
  readonly met: string | null;
  /** The acceptor's: the nickname its invite carried (validated by the invite's decoder), if any. */
  readonly nickname: string | null;
}

/** The `settings` key of our own nickname ('' or absent: none). */
export const NICKNAME_SETTING = 'nickname';

/**
 * An introduction waiting for the user's consent, by the id of the message that carried it:
 * `invite-request` (the mediator asks us to invite `peer`) or `introduced` (it tells us to expect
 * `peer`'s invite, `sealed` once it came).
 */
export interface KxRequest {
  readonly id: string;
  readonly kind: 'invite-request' | 'introduced';
  readonly mediator: string;
  readonly peer: string;
  readonly identity: Bytes;
  readonly sealed: Bytes | null;
  readonly receivedAt: number;
  readonly expiresAt: number;
}

/** Pending key exchanges, introductions we expect, and the sealed answers we agreed to carry as a mediator. */
export class KxStore {
  private readonly q;

  constructor(
    db: Db,
    private readonly settings: Settings,
  ) {
    this.q = prepareAll(db, {
      all: 'SELECT * FROM pending_kx ORDER BY created_at',
      byRv: 'SELECT * FROM pending_kx WHERE rv = ?',
      insert: 'INSERT INTO pending_kx (rv, role, record, peer, created_at, expires_at, met, nickname) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      delete: 'DELETE FROM pending_kx WHERE rv = ?',
      expire: 'DELETE FROM pending_kx WHERE expires_at < ?',
      expiredWithPeer: 'SELECT rv, peer FROM pending_kx WHERE expires_at < ? AND peer IS NOT NULL ORDER BY created_at',
      mediation: 'SELECT mediator FROM pending_mediations WHERE target = ? AND expires_at >= ?',
      addMediation: `INSERT INTO pending_mediations (target, mediator, created_at, expires_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (target) DO UPDATE SET mediator = excluded.mediator, created_at = excluded.created_at, expires_at = excluded.expires_at`,
      deleteMediation: 'DELETE FROM pending_mediations WHERE target = ?',
      spentRvs: 'SELECT rv FROM spent_invites',
      spentAt: 'SELECT * FROM spent_invites WHERE rv = ?',
      addSpent: 'INSERT INTO spent_invites (rv, record, acceptor, spent_at, expires_at) VALUES (?, ?, ?, ?, ?)',
      expireSpent: 'DELETE FROM spent_invites WHERE expires_at <= ?',
      refusals: 'SELECT count(*) AS n FROM kx_refusals WHERE invite_rv = ?',
      refused: 'SELECT 1 FROM kx_refusals WHERE step3_rv = ?',
      addRefusal: 'INSERT INTO kx_refusals (step3_rv, invite_rv, refused_at) VALUES (?, ?, ?)',
      requests: 'SELECT * FROM kx_requests ORDER BY received_at, id',
      request: 'SELECT * FROM kx_requests WHERE id = ?',
      requestFor: 'SELECT * FROM kx_requests WHERE mediator = ? AND peer = ?',
      requestsFrom: 'SELECT count(*) AS n FROM kx_requests WHERE mediator = ?',
      addRequest: `INSERT INTO kx_requests (id, kind, mediator, peer, identity, sealed, received_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      setRequestSealed: 'UPDATE kx_requests SET sealed = ? WHERE id = ?',
      deleteRequest: 'DELETE FROM kx_requests WHERE id = ?',
      expireRequests: 'DELETE FROM kx_requests WHERE expires_at < ?',
      expiredRequests: 'SELECT * FROM kx_requests WHERE expires_at < ? ORDER BY received_at, id',
      answeredReset: 'SELECT 1 FROM answered_resets WHERE rv = ?',
      addAnsweredReset: 'INSERT OR IGNORE INTO answered_resets (rv, expires_at) VALUES (?, ?)',
      expireAnsweredResets: 'DELETE FROM answered_resets WHERE expires_at < ?',
    });
  }

  pending(): StoredPendingKx[] {
    return (this.q.all.all() as Row[]).map(toPendingKx);
  }

  /** The key exchanges `expire(before)` would drop that wait on a known peer (not our own invite). */
  expiredWithPeer(before: number): { rv: string; peer: string }[] {
    return this.q.expiredWithPeer.all(before) as { rv: string; peer: string }[];
  }

  pendingAt(rv: string): StoredPendingKx | undefined {
    const r = this.q.byRv.get(rv) as Row | undefined;
    return r && toPendingKx(r);
  }

  add(p: StoredPendingKx): void {
    this.q.insert.run(p.rv, p.role, blob(p.record), p.peer, p.createdAt, p.expiresAt, p.met, p.nickname);
  }

  /** Our nickname, which our invites and half KXs carry; null: none. */
  nickname(): string | null {
    return this.settings.get(NICKNAME_SETTING) || null;
  }

  setNickname(nickname: string | null): void {
    this.settings.set(NICKNAME_SETTING, nickname ?? '');
  }

  delete(rv: string): boolean {
    return this.q.delete.run(rv).changes > 0;
  }

  /**
   * Drops key exchanges that expired before `before`, and spent invites expired by then (with their
   * refusals); returns how many. Also drops the introductions nobody answered and the answered reset
   * invites that expired (a replay of one is refused by its own expiry from then on).
   */
  expire(before: number): number {
    this.q.expireRequests.run(before);
    this.q.expireAnsweredResets.run(before);
    return this.q.expire.run(before).changes + this.q.expireSpent.run(before).changes;
  }

  // Introductions waiting for the user's consent.

  /** The introductions `expire(before)` would drop. */
  expiredRequests(before: number): KxRequest[] {
    return (this.q.expiredRequests.all(before) as Row[]).map(toRequest);
  }

  requests(): KxRequest[] {
    return (this.q.requests.all() as Row[]).map(toRequest);
  }

  request(id: string): KxRequest | undefined {
    const r = this.q.request.get(id) as Row | undefined;
    return r && toRequest(r);
  }

  requestFor(mediator: string, peer: string): KxRequest | undefined {
    const r = this.q.requestFor.get(mediator, peer) as Row | undefined;
    return r && toRequest(r);
  }

  requestsFrom(mediator: string): number {
    return (this.q.requestsFrom.get(mediator) as { n: number }).n;
  }

  addRequest(r: KxRequest): void {
    this.q.addRequest.run(r.id, r.kind, r.mediator, r.peer, blob(r.identity), r.sealed && blob(r.sealed), r.receivedAt, r.expiresAt);
  }

  setRequestSealed(id: string, sealed: Bytes): void {
    this.q.setRequestSealed.run(blob(sealed), id);
  }

  deleteRequest(id: string): void {
    this.q.deleteRequest.run(id);
  }

  // Reset invites we answered, by their initial RV, until they expire: a replayed one is refused.

  resetAnswered(rv: string): boolean {
    return this.q.answeredReset.get(rv) !== undefined;
  }

  addAnsweredReset(rv: string, expiresAt: number): void {
    this.q.addAnsweredReset.run(rv, expiresAt);
  }

  // Invites answered by one acceptor, still listened to until they expire, so that a later acceptor is told.

  /** `p` (an inviter's pending KX) was completed by `acceptor`: keep it, spent, until the invite expires. */
  addSpent(p: StoredPendingKx, acceptor: string, now: number): void {
    this.q.addSpent.run(p.rv, blob(p.record), acceptor, now, p.expiresAt);
  }

  spentRvs(): string[] {
    return (this.q.spentRvs.all() as { rv: string }[]).map((r) => r.rv);
  }

  spentAt(rv: string): SpentInvite | undefined {
    const r = this.q.spentAt.get(rv) as Row | undefined;
    return r && { rv: r.rv as string, record: bytesOf(r.record), acceptor: r.acceptor as string, expiresAt: r.expires_at as number };
  }

  /** How many half KXs at spent invite `rv` were refused. */
  refusals(rv: string): number {
    return (this.q.refusals.get(rv) as { n: number }).n;
  }

  /** True when the half KX that named `step3Rv` was refused already. */
  refused(step3Rv: string): boolean {
    return this.q.refused.get(step3Rv) !== undefined;
  }

  addRefusal(step3Rv: string, inviteRv: string, now: number): void {
    this.q.addRefusal.run(step3Rv, inviteRv, now);
  }

  // Introductions we asked for (or were told to expect): an invite from `target` through `mediator` is welcome.

  mediatorFor(target: string, now: number): string | undefined {
    return (this.q.mediation.get(target, now) as { mediator: string } | undefined)?.mediator;
  }

  expectIntroduction(target: string, mediator: string, now: number, expiresAt: number): void {
    this.q.addMediation.run(target, mediator, now, expiresAt);
  }

  forgetIntroduction(target: string): void {
    this.q.deleteMediation.run(target);
  }

  // Requests through a mediator (a reset via it, an introduction asked of it), by the id of the message that carried them.

  rememberRequest(messageId: string, waiting: PendingRequest): void {
    this.settings.set(requestKey(messageId), JSON.stringify(waiting));
  }

  /** What request `messageId` left waiting, once: a second refusal of it finds nothing. */
  takeRequest(messageId: string): PendingRequest | undefined {
    const v = this.settings.get(requestKey(messageId));
    if (v === undefined || v === '') return undefined;
    this.settings.set(requestKey(messageId), '');
    return JSON.parse(v) as PendingRequest;
  }

  // As a mediator: we asked `inviter` to invite `invitee`, so its sealed answer may pass through us, once.

  allowForward(inviter: string, invitee: string, until: number): void {
    this.settings.set(forwardKey(inviter, invitee), String(until));
  }

  /** True (and spent) when a forward from `inviter` to `invitee` was allowed and has not expired. */
  takeForward(inviter: string, invitee: string, now: number): boolean {
    const key = forwardKey(inviter, invitee);
    if (Number(this.settings.get(key) ?? 0) < now) return false;
    this.settings.set(key, '0');
    return true;
  }
}

/** An invite whose key exchange completed, at its initial RV (hex). `record`: the inviter's PendingKX. */
export interface SpentInvite {
  readonly rv: string;
  readonly record: Bytes;
  /** The fingerprint of the acceptor that completed it. */
  readonly acceptor: string;
  readonly expiresAt: number;
}

/** What a request of ours left waiting, to undo if the peer refuses it. */
export type PendingRequest = { readonly rv: string } | { readonly target: string };

function requestKey(messageId: string): string {
  return `request:${messageId}`;
}

function forwardKey(inviter: string, invitee: string): string {
  return `forward:${inviter}:${invitee}`;
}

function toPendingKx(r: Row): StoredPendingKx {
  return {
    rv: r.rv as string,
    role: r.role as StoredPendingKx['role'],
    record: bytesOf(r.record),
    peer: r.peer as string | null,
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
    met: (r.met as string | null) ?? null,
    nickname: (r.nickname as string | null) ?? null,
  };
}

function toRequest(r: Row): KxRequest {
  return {
    id: r.id as string,
    kind: r.kind as KxRequest['kind'],
    mediator: r.mediator as string,
    peer: r.peer as string,
    identity: bytesOf(r.identity),
    sealed: r.sealed == null ? null : bytesOf(r.sealed),
    receivedAt: r.received_at as number,
    expiresAt: r.expires_at as number,
  };
}
