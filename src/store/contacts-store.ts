import { fail } from '../errors.js';
import { decodePublicIdentity, encodePublicIdentity, fingerprint, type PublicIdentity } from '../identity/index.js';
import type { Db } from './database.js';
import { blob, bytesOf, prepareAll, type Row } from './rows.js';

export interface Contact {
  readonly fingerprint: string;
  readonly identity: PublicIdentity;
  readonly nostrPubkey: string;
  readonly alias: string | null;
  readonly verified: boolean;
  readonly trusted: boolean;
  /** Set when the contact's identity key changed and nobody has acknowledged it yet. */
  readonly keyChangedAt: number | null;
  readonly createdAt: number;
  /** Our mailbox for this contact's ratchet-reset requests, and theirs for ours (hex RVs, from a key exchange). */
  readonly resetRv: string | null;
  readonly peerResetRv: string | null;
  /** How we met: null for contacts stored before this was recorded. */
  readonly met: Met | null;
}

/**
 * How a contact was met: through its bundle, a message from it, an invite handed over out of band,
 * an introduction by a mediator (`via`: its fingerprint), or the admin of a group (`via`: the group id).
 * Stored as `how` or `how:via` (contacts.met, pending_kx.met).
 */
export type Met =
  | { readonly how: 'bundle' | 'message' | 'invite' }
  | { readonly how: 'introduction'; readonly via: string }
  | { readonly how: 'group'; readonly via: string };

export function encodeMet(m: Met): string {
  return 'via' in m ? `${m.how}:${m.via}` : m.how;
}

export function decodeMet(s: string | null): Met | null {
  if (s === null) return null;
  const [how, via] = s.split(':');
  if ((how === 'introduction' || how === 'group') && via) return { how, via };
  if (how === 'bundle' || how === 'message' || how === 'invite') return { how };
  return null;
}

/** What "identity seen" did to the contacts: the caller warns loudly on `key-changed`. */
export type IdentityObservation =
  | { readonly kind: 'known'; readonly contact: Contact }
  | { readonly kind: 'new'; readonly contact: Contact }
  | { readonly kind: 'key-changed'; readonly contact: Contact; readonly previous: string }
  | { readonly kind: 'unknown' };

/** The contacts table. */
export class ContactsStore {
  private readonly q;

  constructor(db: Db) {
    this.q = prepareAll(db, {
      byFp: 'SELECT * FROM contacts WHERE fingerprint = ?',
      byNostr: 'SELECT * FROM contacts WHERE nostr_pubkey = ?',
      byResetRv: 'SELECT * FROM contacts WHERE reset_rv = ?',
      byAlias: 'SELECT * FROM contacts WHERE alias = ?',
      byPrefix: "SELECT * FROM contacts WHERE fingerprint LIKE ? || '%'",
      all: 'SELECT * FROM contacts ORDER BY coalesce(alias, fingerprint)',
      resetRvs: 'SELECT reset_rv FROM contacts WHERE reset_rv IS NOT NULL',
      insert: `INSERT INTO contacts (fingerprint, identity, nostr_pubkey, alias, verified, trusted, met, created_at, updated_at)
        VALUES (?, ?, ?, NULL, 0, ?, ?, ?, ?)`,
      replaceIdentity: `UPDATE contacts SET fingerprint = ?, identity = ?, verified = 0, key_changed_at = ?, updated_at = ?
        WHERE fingerprint = ?`,
      setAlias: 'UPDATE contacts SET alias = ?, updated_at = ? WHERE fingerprint = ?',
      setVerified: 'UPDATE contacts SET verified = ?, key_changed_at = NULL, updated_at = ? WHERE fingerprint = ?',
      setTrusted: 'UPDATE contacts SET trusted = ?, key_changed_at = NULL, updated_at = ? WHERE fingerprint = ?',
      setResetRvs: 'UPDATE contacts SET reset_rv = ?, peer_reset_rv = ?, updated_at = ? WHERE fingerprint = ?',
      setIdentity: 'UPDATE contacts SET identity = ?, updated_at = ? WHERE fingerprint = ?',
      setMet: 'UPDATE contacts SET met = ?, updated_at = ? WHERE fingerprint = ?',
    });
  }

  get(fingerprint: string): Contact | undefined {
    return toContact(this.q.byFp.get(fingerprint) as Row | undefined);
  }

  byNostr(pubkey: string): Contact | undefined {
    return toContact(this.q.byNostr.get(pubkey) as Row | undefined);
  }

  byResetRv(rv: string): Contact | undefined {
    return toContact(this.q.byResetRv.get(rv) as Row | undefined);
  }

  all(): Contact[] {
    return (this.q.all.all() as Row[]).map((r) => toContact(r)!);
  }

  /** Our reset mailboxes, one per contact met by a key exchange. */
  resetRvs(): string[] {
    return (this.q.resetRvs.all() as Row[]).map((r) => r.reset_rv as string);
  }

  /** A contact named by alias, full fingerprint, or a unique fingerprint prefix (at least 8 hex digits). */
  resolve(ref: string): Contact | undefined {
    const lower = ref.toLowerCase();
    // A whole fingerprint (what every send names) is one primary-key lookup, not the alias's and a
    // LIKE scan: no alias looks like a fingerprint (setAlias refuses one).
    if (/^[0-9a-f]{64}$/.test(lower)) return this.get(lower);
    const byAlias = toContact(this.q.byAlias.get(ref) as Row | undefined);
    if (byAlias) return byAlias;
    if (!/^[0-9a-f]{8,64}$/.test(lower)) return undefined;
    const hits = (this.q.byPrefix.all(lower) as Row[]).map((r) => toContact(r)!);
    if (hits.length > 1) fail('INVALID_ARGUMENT', `"${ref}" matches ${hits.length} contacts: give more digits`);
    return hits[0];
  }

  /**
   * Records that `identity` spoke (a message) or was published (a bundle). A known Nostr key that now
   * speaks for another identity updates the contact and reports `key-changed`: it never silently
   * becomes a second contact. A message from nobody we know creates an untrusted contact.
   */
  observe(identity: PublicIdentity, source: 'message' | 'bundle', now: number): IdentityObservation {
    const fp = fingerprint(identity);
    const nostr = Buffer.from(identity.nostrKey).toString('hex');
    const byNostr = this.byNostr(nostr);
    if (byNostr && byNostr.fingerprint === fp) return { kind: 'known', contact: byNostr };
    if (byNostr) {
      this.q.replaceIdentity.run(fp, blob(encodePublicIdentity(identity)), now, now, byNostr.fingerprint);
      return { kind: 'key-changed', contact: this.get(fp)!, previous: byNostr.fingerprint };
    }
    const byFp = this.get(fp);
    if (byFp) return { kind: 'known', contact: byFp };
    if (source === 'bundle') return { kind: 'unknown' };
    this.q.insert.run(fp, blob(encodePublicIdentity(identity)), nostr, 0, 'message', now, now);
    return { kind: 'new', contact: this.get(fp)! };
  }

  /** Adds a contact met as `met`, trusted or not. An existing one is returned as it is. */
  add(identity: PublicIdentity, met: Met, trusted: boolean, now: number): Contact {
    const fp = fingerprint(identity);
    const existing = this.get(fp);
    if (existing) return existing;
    this.q.insert.run(fp, blob(encodePublicIdentity(identity)), Buffer.from(identity.nostrKey).toString('hex'), trusted ? 1 : 0, encodeMet(met), now, now);
    return this.get(fp)!;
  }

  setMet(fingerprint: string, met: Met, now: number): void {
    this.q.setMet.run(encodeMet(met), now, fingerprint);
  }

  setAlias(fingerprint: string, alias: string | null, now: number): void {
    try {
      this.q.setAlias.run(alias, now, fingerprint);
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') fail('INVALID_ARGUMENT', `alias "${alias}" is already taken`);
      throw e;
    }
  }

  setVerified(fingerprint: string, verified: boolean, now: number): void {
    this.q.setVerified.run(verified ? 1 : 0, now, fingerprint);
  }

  setTrusted(fingerprint: string, trusted: boolean, now: number): void {
    this.q.setTrusted.run(trusted ? 1 : 0, now, fingerprint);
  }

  /** Stores the full form of a contact's identity (same fingerprint), which carries its KEM key. */
  setFullIdentity(identity: PublicIdentity, now: number): void {
    if (!identity.kemKey) throw new RangeError('only a full identity, with its KEM key, replaces a stored one');
    this.q.setIdentity.run(blob(encodePublicIdentity(identity)), now, fingerprint(identity));
  }

  /** The two reset mailboxes a key exchange leaves: ours to listen on, the peer's to write to. */
  setResetRvs(fingerprint: string, resetRv: string, peerResetRv: string, now: number): void {
    this.q.setResetRvs.run(resetRv, peerResetRv, now, fingerprint);
  }
}

function toContact(r: Row | undefined): Contact | undefined {
  if (!r) return undefined;
  return {
    fingerprint: r.fingerprint as string,
    identity: decodePublicIdentity(bytesOf(r.identity)),
    nostrPubkey: r.nostr_pubkey as string,
    alias: r.alias as string | null,
    verified: r.verified === 1,
    trusted: r.trusted === 1,
    keyChangedAt: r.key_changed_at as number | null,
    createdAt: r.created_at as number,
    resetRv: (r.reset_rv as string | null) ?? null,
    peerResetRv: (r.peer_reset_rv as string | null) ?? null,
    met: decodeMet((r.met as string | null) ?? null),
  };
}
