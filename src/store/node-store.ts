import type { Bytes } from '../crypto/index.js';
import { fail } from '../errors.js';
import { decodePublicIdentity, encodePublicIdentity, fingerprint, type PublicIdentity } from '../identity/index.js';
import type { Db } from './database.js';

type Row = Record<string, unknown>;
const buf = (b: Bytes) => Buffer.from(b.buffer, b.byteOffset, b.length);

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
}

export interface DiscoveredBundle {
  readonly fingerprint: string;
  readonly nostrPubkey: string;
  readonly bundle: Bytes;
  readonly eventCreatedAt: number;
  readonly receivedAt: number;
}

export type MessageState = 'queued' | 'sent' | 'delivered' | 'received';

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
}

export interface OutboxEntry {
  readonly eventId: string;
  readonly event: string;
  readonly purpose: 'bundle' | 'message' | 'receipt' | 'control';
  readonly messageId: string | null;
  readonly attempts: number;
}

/** A group chat as this node knows it. `members` is the admin's signed GroupMembers record. */
export interface StoredGroup {
  readonly id: string;
  readonly name: string;
  readonly admin: string;
  readonly version: number;
  readonly members: Bytes;
  /** False while we are only invited. */
  readonly joined: boolean;
  readonly createdAt: number;
}

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

/** What "identity seen" did to the contacts: the caller warns loudly on `keyChanged`. */
export type IdentityObservation =
  | { readonly kind: 'known'; readonly contact: Contact }
  | { readonly kind: 'new'; readonly contact: Contact }
  | { readonly kind: 'key-changed'; readonly contact: Contact; readonly previous: string }
  | { readonly kind: 'unknown' };

/** The node's own tables beside the protocol store: contacts, discovered bundles, relays, outbox, messages. */
export class NodeStore {
  private readonly q;

  constructor(readonly db: Db) {
    const p = (sql: string) => db.prepare(sql);
    this.q = {
      contactByFp: p('SELECT * FROM contacts WHERE fingerprint = ?'),
      contactByNostr: p('SELECT * FROM contacts WHERE nostr_pubkey = ?'),
      contactByResetRv: p('SELECT * FROM contacts WHERE reset_rv = ?'),
      contactByAlias: p('SELECT * FROM contacts WHERE alias = ?'),
      contactsByPrefix: p("SELECT * FROM contacts WHERE fingerprint LIKE ? || '%'"),
      contacts: p('SELECT * FROM contacts ORDER BY coalesce(alias, fingerprint)'),
      insertContact: p(`INSERT INTO contacts (fingerprint, identity, nostr_pubkey, alias, verified, trusted, created_at, updated_at)
        VALUES (?, ?, ?, NULL, 0, ?, ?, ?)`),
      replaceContactIdentity: p(`UPDATE contacts SET fingerprint = ?, identity = ?, verified = 0, key_changed_at = ?, updated_at = ?
        WHERE fingerprint = ?`),
      setAlias: p('UPDATE contacts SET alias = ?, updated_at = ? WHERE fingerprint = ?'),
      setVerified: p('UPDATE contacts SET verified = ?, key_changed_at = NULL, updated_at = ? WHERE fingerprint = ?'),
      setResetRvs: p('UPDATE contacts SET reset_rv = ?, peer_reset_rv = ?, updated_at = ? WHERE fingerprint = ?'),
      setTrusted: p('UPDATE contacts SET trusted = ?, key_changed_at = NULL, updated_at = ? WHERE fingerprint = ?'),
      discovered: p('SELECT * FROM discovered_bundles WHERE fingerprint = ?'),
      discoveredByNostr: p('SELECT * FROM discovered_bundles WHERE nostr_pubkey = ? ORDER BY event_created_at DESC LIMIT 1'),
      discoveredByPrefix: p("SELECT * FROM discovered_bundles WHERE fingerprint LIKE ? || '%'"),
      allDiscovered: p('SELECT * FROM discovered_bundles ORDER BY received_at DESC'),
      upsertDiscovered: p(`INSERT INTO discovered_bundles (fingerprint, nostr_pubkey, bundle, event_created_at, received_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (fingerprint) DO UPDATE SET nostr_pubkey = excluded.nostr_pubkey, bundle = excluded.bundle,
          event_created_at = excluded.event_created_at, received_at = excluded.received_at
        WHERE excluded.event_created_at >= discovered_bundles.event_created_at`),
      deleteDiscovered: p('DELETE FROM discovered_bundles WHERE nostr_pubkey = ? AND event_created_at <= ?'),
      relays: p('SELECT url, last_seen_at FROM relays ORDER BY added_at, url'),
      addRelay: p('INSERT OR IGNORE INTO relays (url, added_at) VALUES (?, ?)'),
      removeRelay: p('DELETE FROM relays WHERE url = ?'),
      relaySeen: p('UPDATE relays SET last_seen_at = max(coalesce(last_seen_at, 0), ?) WHERE url = ?'),
      seen: p('SELECT outcome FROM seen_events WHERE id = ?'),
      markSeen: p('INSERT OR IGNORE INTO seen_events (id, seen_at, outcome) VALUES (?, ?, ?)'),
      enqueue: p(`INSERT OR IGNORE INTO outbox (event_id, event, purpose, message_id, created_at, next_attempt_at)
        VALUES (?, ?, ?, ?, ?, ?)`),
      due: p('SELECT * FROM outbox WHERE done_at IS NULL AND next_attempt_at <= ? ORDER BY created_at, rowid LIMIT ?'),
      pending: p('SELECT count(*) AS n FROM outbox WHERE done_at IS NULL'),
      nextDue: p('SELECT min(next_attempt_at) AS t FROM outbox WHERE done_at IS NULL'),
      outboxDone: p(`UPDATE outbox SET done_at = coalesce(done_at, ?), accepted_relays = ?, attempts = attempts + 1 WHERE event_id = ?`),
      acceptedRelays: p('SELECT accepted_relays FROM outbox WHERE event_id = ?'),
      recentlyDone: p('SELECT * FROM outbox WHERE done_at >= ? ORDER BY created_at, rowid'),
      pruneDone: p('DELETE FROM outbox WHERE done_at < ?'),
      dropBundles: p("DELETE FROM outbox WHERE purpose = 'bundle'"),
      outboxRetry: p('UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE event_id = ?'),
      insertMessage: p(`INSERT OR IGNORE INTO messages (id, peer, direction, body, sent_at, received_at, state, group_id)
        VALUES (@id, @peer, @direction, @body, @sent_at, @received_at, @state, @group_id)`),
      messageSent: p("UPDATE messages SET state = CASE WHEN state = 'queued' THEN 'sent' ELSE state END, relays_accepted = max(relays_accepted, ?) WHERE direction = 'out' AND id = ?"),
      messageDelivered: p("UPDATE messages SET state = 'delivered' WHERE direction = 'out' AND peer = ? AND id = ?"),
      messagesAfter: p('SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?'),
      messageById: p("SELECT * FROM messages WHERE direction = 'out' AND id = ?"),
      pendingKx: p('SELECT * FROM pending_kx ORDER BY created_at'),
      pendingKxByRv: p('SELECT * FROM pending_kx WHERE rv = ?'),
      insertPendingKx: p('INSERT INTO pending_kx (rv, role, record, peer, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)'),
      deletePendingKx: p('DELETE FROM pending_kx WHERE rv = ?'),
      expirePendingKx: p('DELETE FROM pending_kx WHERE expires_at < ?'),
      mediation: p('SELECT mediator FROM pending_mediations WHERE target = ? AND expires_at >= ?'),
      addMediation: p(`INSERT INTO pending_mediations (target, mediator, created_at, expires_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (target) DO UPDATE SET mediator = excluded.mediator, created_at = excluded.created_at, expires_at = excluded.expires_at`),
      deleteMediation: p('DELETE FROM pending_mediations WHERE target = ?'),
      groups: p('SELECT * FROM groups ORDER BY created_at'),
      group: p('SELECT * FROM groups WHERE id = ?'),
      upsertGroup: p(`INSERT INTO groups (id, name, admin, version, members, joined, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version, members = excluded.members, joined = excluded.joined`),
      intro: p('SELECT attempts, last_attempt_at FROM group_introductions WHERE group_id = ? AND member = ?'),
      setIntro: p(`INSERT INTO group_introductions (group_id, member, attempts, last_attempt_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (group_id, member) DO UPDATE SET attempts = excluded.attempts, last_attempt_at = excluded.last_attempt_at`),
      getSetting: p('SELECT value FROM settings WHERE key = ?'),
      setSetting: p('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  // Contacts

  contact(fingerprint: string): Contact | undefined {
    return toContact(this.q.contactByFp.get(fingerprint) as Row | undefined);
  }

  contactByNostr(pubkey: string): Contact | undefined {
    return toContact(this.q.contactByNostr.get(pubkey) as Row | undefined);
  }

  contactByResetRv(rv: string): Contact | undefined {
    return toContact(this.q.contactByResetRv.get(rv) as Row | undefined);
  }

  contacts(): Contact[] {
    return (this.q.contacts.all() as Row[]).map((r) => toContact(r)!);
  }

  /** A contact named by alias, full fingerprint, or a unique fingerprint prefix (at least 8 hex digits). */
  resolveContact(ref: string): Contact | undefined {
    const byAlias = toContact(this.q.contactByAlias.get(ref) as Row | undefined);
    if (byAlias) return byAlias;
    const lower = ref.toLowerCase();
    if (!/^[0-9a-f]{8,64}$/.test(lower)) return undefined;
    const hits = (this.q.contactsByPrefix.all(lower) as Row[]).map((r) => toContact(r)!);
    if (hits.length > 1) fail('INVALID_ARGUMENT', `"${ref}" matches ${hits.length} contacts: give more digits`);
    return hits[0];
  }

  /**
   * Records that `identity` spoke (a message) or was published (a bundle). A known Nostr key that now
   * speaks for another identity updates the contact and reports `key-changed`: it never silently
   * becomes a second contact. A message from nobody we know creates an untrusted contact.
   */
  observeIdentity(identity: PublicIdentity, source: 'message' | 'bundle', now: number): IdentityObservation {
    const fp = fingerprint(identity);
    const nostr = Buffer.from(identity.nostrKey).toString('hex');
    const byNostr = this.contactByNostr(nostr);
    if (byNostr && byNostr.fingerprint === fp) return { kind: 'known', contact: byNostr };
    if (byNostr) {
      this.q.replaceContactIdentity.run(fp, buf(encodePublicIdentity(identity)), now, now, byNostr.fingerprint);
      return { kind: 'key-changed', contact: this.contact(fp)!, previous: byNostr.fingerprint };
    }
    const byFp = this.contact(fp);
    if (byFp) return { kind: 'known', contact: byFp };
    if (source === 'bundle') return { kind: 'unknown' };
    this.q.insertContact.run(fp, buf(encodePublicIdentity(identity)), nostr, 0, now, now);
    return { kind: 'new', contact: this.contact(fp)! };
  }

  /** Adds a contact on purpose (the user chose to write to a discovered peer): trusted from the start. */
  addContact(identity: PublicIdentity, now: number): Contact {
    const fp = fingerprint(identity);
    const existing = this.contact(fp);
    if (existing) return existing;
    this.q.insertContact.run(fp, buf(encodePublicIdentity(identity)), Buffer.from(identity.nostrKey).toString('hex'), 1, now, now);
    return this.contact(fp)!;
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

  /** The two reset mailboxes a key exchange leaves: ours to listen on, the peer's to write to. */
  setResetRvs(fingerprint: string, resetRv: string, peerResetRv: string, now: number): void {
    this.q.setResetRvs.run(resetRv, peerResetRv, now, fingerprint);
  }

  setTrusted(fingerprint: string, trusted: boolean, now: number): void {
    this.q.setTrusted.run(trusted ? 1 : 0, now, fingerprint);
  }

  // Discovered bundles

  /** Keeps the newest bundle per identity; returns false when `eventCreatedAt` is older than what we have. */
  saveDiscoveredBundle(fp: string, nostrPubkey: string, bundle: Bytes, eventCreatedAt: number, now: number): boolean {
    return this.q.upsertDiscovered.run(fp, nostrPubkey, buf(bundle), eventCreatedAt, now).changes > 0;
  }

  /** An empty bundle event unpublishes: forget what that Nostr key published before it. */
  forgetDiscoveredBundles(nostrPubkey: string, upTo: number): number {
    return this.q.deleteDiscovered.run(nostrPubkey, upTo).changes;
  }

  discoveredBundle(fp: string): DiscoveredBundle | undefined {
    return toDiscovered(this.q.discovered.get(fp) as Row | undefined);
  }

  discoveredByPrefix(prefix: string): DiscoveredBundle[] {
    return (this.q.discoveredByPrefix.all(prefix.toLowerCase()) as Row[]).map((r) => toDiscovered(r)!);
  }

  discoveredBundles(): DiscoveredBundle[] {
    return (this.q.allDiscovered.all() as Row[]).map((r) => toDiscovered(r)!);
  }

  // Relays

  relays(): { url: string; lastSeenAt: number | null }[] {
    return (this.q.relays.all() as Row[]).map((r) => ({ url: r.url as string, lastSeenAt: r.last_seen_at as number | null }));
  }

  addRelay(url: string, now: number): boolean {
    return this.q.addRelay.run(url, now).changes > 0;
  }

  removeRelay(url: string): boolean {
    return this.q.removeRelay.run(url).changes > 0;
  }

  relaySeen(url: string, createdAt: number): void {
    this.q.relaySeen.run(createdAt, url);
  }

  // Event de-duplication

  hasSeen(eventId: string): boolean {
    return this.q.seen.get(eventId) !== undefined;
  }

  markSeen(eventId: string, outcome: string, now: number): void {
    this.q.markSeen.run(eventId, now, outcome);
  }

  // Outbox

  enqueue(eventId: string, eventJson: string, purpose: OutboxEntry['purpose'], messageId: string | null, now: number): void {
    this.q.enqueue.run(eventId, eventJson, purpose, messageId, now, now);
  }

  dueOutbox(now: number, limit = 100): OutboxEntry[] {
    return (this.q.due.all(now, limit) as Row[]).map(toOutboxEntry);
  }

  pendingOutbox(): number {
    return (this.q.pending.get() as { n: number }).n;
  }

  nextOutboxAttempt(): number | null {
    return (this.q.nextDue.get() as { t: number | null }).t;
  }

  /** Records relays that accepted an entry; the first acceptance makes it done. Returns how many have. */
  outboxAccepted(entry: OutboxEntry, relays: readonly string[], now: number): number {
    return this.db.transaction(() => {
      const row = this.q.acceptedRelays.get(entry.eventId) as { accepted_relays: string } | undefined;
      if (!row) return 0;
      const all = [...new Set([...(JSON.parse(row.accepted_relays) as string[]), ...relays])];
      this.q.outboxDone.run(now, JSON.stringify(all), entry.eventId);
      if (entry.messageId && entry.purpose === 'message') this.q.messageSent.run(all.length, entry.messageId);
      return all.length;
    })();
  }

  /**
   * Entries done since `since` that `relay` has not accepted: what to hand a relay that was away,
   * so that every relay gets every event, not only the first one to answer.
   */
  missedBy(relay: string, since: number): OutboxEntry[] {
    return (this.q.recentlyDone.all(since) as Row[])
      .filter((r) => !(JSON.parse(r.accepted_relays as string) as string[]).includes(relay))
      .map(toOutboxEntry);
  }

  /** Forgets entries done before `before`. */
  pruneOutbox(before: number): void {
    this.q.pruneDone.run(before);
  }

  /** A new bundle replaces every older one, sent or not: relays keep one bundle per author anyway. */
  dropQueuedBundles(): void {
    this.q.dropBundles.run();
  }

  outboxRetry(eventId: string, nextAttemptAt: number): void {
    this.q.outboxRetry.run(nextAttemptAt, eventId);
  }

  // Messages

  /** Returns the stored message's seq, or null for a message already stored: delivery is exactly once. */
  insertMessage(m: Omit<StoredMessage, 'seq' | 'relaysAccepted' | 'groupId'> & { groupId?: string | null }): number | null {
    const r = this.q.insertMessage.run({
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

  markDelivered(peer: string, ids: readonly string[]): string[] {
    return ids.filter((id) => this.q.messageDelivered.run(peer, id).changes > 0);
  }

  messagesAfter(seq: number, limit = 1000): StoredMessage[] {
    return (this.q.messagesAfter.all(seq, limit) as Row[]).map(toMessage);
  }

  outgoingMessage(id: string): StoredMessage | undefined {
    const r = this.q.messageById.get(id) as Row | undefined;
    return r && toMessage(r);
  }

  // Key exchanges waiting at a rendezvous point

  pendingKxs(): StoredPendingKx[] {
    return (this.q.pendingKx.all() as Row[]).map(toPendingKx);
  }

  pendingKx(rv: string): StoredPendingKx | undefined {
    const r = this.q.pendingKxByRv.get(rv) as Row | undefined;
    return r && toPendingKx(r);
  }

  addPendingKx(p: Omit<StoredPendingKx, 'record'> & { record: Bytes }): void {
    this.q.insertPendingKx.run(p.rv, p.role, buf(p.record), p.peer, p.createdAt, p.expiresAt);
  }

  deletePendingKx(rv: string): boolean {
    return this.q.deletePendingKx.run(rv).changes > 0;
  }

  /** Drops key exchanges that expired before `before`; returns how many. */
  expirePendingKxs(before: number): number {
    return this.q.expirePendingKx.run(before).changes;
  }

  // Group chats

  groups(): StoredGroup[] {
    return (this.q.groups.all() as Row[]).map(toGroup);
  }

  group(id: string): StoredGroup | undefined {
    const r = this.q.group.get(id) as Row | undefined;
    return r && toGroup(r);
  }

  saveGroup(g: StoredGroup): void {
    this.q.upsertGroup.run(g.id, g.name, g.admin, g.version, buf(g.members), g.joined ? 1 : 0, g.createdAt);
  }

  introduction(groupId: string, member: string): { attempts: number; lastAttemptAt: number } | undefined {
    const r = this.q.intro.get(groupId, member) as { attempts: number; last_attempt_at: number } | undefined;
    return r && { attempts: r.attempts, lastAttemptAt: r.last_attempt_at };
  }

  setIntroduction(groupId: string, member: string, attempts: number, at: number): void {
    this.q.setIntro.run(groupId, member, attempts, at);
  }

  // Introductions we asked for (or were told to expect): an invite from `target` through `mediator` is welcome.

  pendingMediation(target: string, now: number): string | undefined {
    return (this.q.mediation.get(target, now) as { mediator: string } | undefined)?.mediator;
  }

  addPendingMediation(target: string, mediator: string, now: number, expiresAt: number): void {
    this.q.addMediation.run(target, mediator, now, expiresAt);
  }

  deletePendingMediation(target: string): void {
    this.q.deleteMediation.run(target);
  }

  setting(key: string): string | undefined {
    return (this.q.getSetting.get(key) as { value: string } | undefined)?.value;
  }

  setSetting(key: string, value: string): void {
    this.q.setSetting.run(key, value);
  }
}

function toContact(r: Row | undefined): Contact | undefined {
  if (!r) return undefined;
  return {
    fingerprint: r.fingerprint as string,
    identity: decodePublicIdentity(new Uint8Array(r.identity as Buffer)),
    nostrPubkey: r.nostr_pubkey as string,
    alias: r.alias as string | null,
    verified: r.verified === 1,
    trusted: r.trusted === 1,
    keyChangedAt: r.key_changed_at as number | null,
    createdAt: r.created_at as number,
    resetRv: (r.reset_rv as string | null) ?? null,
    peerResetRv: (r.peer_reset_rv as string | null) ?? null,
  };
}

function toDiscovered(r: Row | undefined): DiscoveredBundle | undefined {
  if (!r) return undefined;
  return {
    fingerprint: r.fingerprint as string,
    nostrPubkey: r.nostr_pubkey as string,
    bundle: new Uint8Array(r.bundle as Buffer),
    eventCreatedAt: r.event_created_at as number,
    receivedAt: r.received_at as number,
  };
}

function toGroup(r: Row): StoredGroup {
  return {
    id: r.id as string,
    name: r.name as string,
    admin: r.admin as string,
    version: r.version as number,
    members: new Uint8Array(r.members as Buffer),
    joined: r.joined === 1,
    createdAt: r.created_at as number,
  };
}

function toPendingKx(r: Row): StoredPendingKx {
  return {
    rv: r.rv as string,
    role: r.role as StoredPendingKx['role'],
    record: new Uint8Array(r.record as Buffer),
    peer: r.peer as string | null,
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
  };
}

function toOutboxEntry(r: Row): OutboxEntry {
  return {
    eventId: r.event_id as string,
    event: r.event as string,
    purpose: r.purpose as OutboxEntry['purpose'],
    messageId: r.message_id as string | null,
    attempts: r.attempts as number,
  };
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
  };
}
