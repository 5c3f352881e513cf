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
      insert: 'INSERT INTO pending_kx (rv, role, record, peer, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      delete: 'DELETE FROM pending_kx WHERE rv = ?',
      expire: 'DELETE FROM pending_kx WHERE expires_at < ?',
      mediation: 'SELECT mediator FROM pending_mediations WHERE target = ? AND expires_at >= ?',
      addMediation: `INSERT INTO pending_mediations (target, mediator, created_at, expires_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (target) DO UPDATE SET mediator = excluded.mediator, created_at = excluded.created_at, expires_at = excluded.expires_at`,
      deleteMediation: 'DELETE FROM pending_mediations WHERE target = ?',
    });
  }

  pending(): StoredPendingKx[] {
    return (this.q.all.all() as Row[]).map(toPendingKx);
  }

  pendingAt(rv: string): StoredPendingKx | undefined {
    const r = this.q.byRv.get(rv) as Row | undefined;
    return r && toPendingKx(r);
  }

  add(p: StoredPendingKx): void {
    this.q.insert.run(p.rv, p.role, blob(p.record), p.peer, p.createdAt, p.expiresAt);
  }

  delete(rv: string): boolean {
    return this.q.delete.run(rv).changes > 0;
  }

  /** Drops key exchanges that expired before `before`; returns how many. */
  expire(before: number): number {
    return this.q.expire.run(before).changes;
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
  };
}
