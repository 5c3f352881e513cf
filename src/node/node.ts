import { EventEmitter, on } from 'node:events';
import { existsSync } from 'node:fs';
import * as nip19 from 'nostr-tools/nip19';
import { fromHex, type Rng, systemRng, toHex } from '../crypto/index.js';
import { fail, isRatchetRelayError } from '../errors.js';
import { fingerprint, formatSafetyNumber, type PublicIdentity, safetyNumber, sameIdentity } from '../identity/index.js';
import type { PreKeyConfig, RatchetConfig } from '../limits.js';
import {
  BUNDLE_D_TAG,
  bundleEvent,
  decodeBundleEvent,
  decodeMessageEvent,
  decodeRendezvousEvent,
  type Event,
  initNostr,
  KIND_BUNDLE,
  KIND_MESSAGE,
  KIND_RENDEZVOUS,
  messageEvent,
  reasonOf,
  RENDEZVOUS_TAG,
  rendezvousEvent,
} from '../nostr/events.js';
import { RelaySet, type RelayStatus, type RelayTiming } from '../nostr/relay-set.js';
import {
  acceptInvite,
  createInvite,
  decodeInvite,
  decodePendingKX,
  encodeInvite,
  encodePendingKX,
  inviteFromString,
  inviteToString,
  type KXSend,
  type OOBPublicIdentityInvite,
  onFullKX,
  onHalfKX,
  open,
  rvHex,
  seal,
} from '../kx/index.js';
import { decodePreKeyBundle, encodePreKeyBundle, type MaintenanceReport } from '../prekeys/index.js';
import { decodeEnvelope, SessionCipher } from '../session/index.js';
import {
  type Contact,
  type DiscoveredBundle,
  type KdfParams,
  NodeStore,
  openDatabase,
  type OutboxEntry,
  syncToDisk,
  SqliteProtocolStore,
  type StoredGroup,
  type StoredMessage,
} from '../store/index.js';
import { type AppMessage, decodeAppMessage, encodeAppMessage } from './app-message.js';
import { decodeGroupMembers, encodeGroupMembers, type GroupMembers, signGroupMembers } from './group.js';
import { ensureDataDir, lockDataDir, paths } from './data-dir.js';

export interface NodeTiming {
  /** Key maintenance runs this often while connected, besides on every connect. */
  maintenanceEveryMs: number;
  outboxRetryBaseMs: number;
  outboxRetryMaxMs: number;
  relay: Partial<RelayTiming>;
}

export const DEFAULT_NODE_TIMING: NodeTiming = {
  maintenanceEveryMs: 60 * 60 * 1000,
  outboxRetryBaseMs: 1000,
  outboxRetryMaxMs: 5 * 60 * 1000,
  relay: {},
};

export interface NodeOptions {
  readonly dataDir: string;
  readonly passphrase: string;
  /** Relays to use instead of the ones stored with `relays add`. */
  readonly relays?: readonly string[];
  readonly clock?: () => number;
  readonly rng?: Rng;
  readonly kdf?: KdfParams;
  readonly log?: (line: string) => void;
  readonly timing?: Partial<NodeTiming>;
  readonly preKeys?: Partial<PreKeyConfig>;
  readonly ratchet?: Partial<RatchetConfig>;
}

export interface ReceivedMessage {
  readonly id: string;
  readonly seq: number;
  readonly from: string;
  readonly alias: string | null;
  readonly text: string;
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly trusted: boolean;
  /** Set for a group chat message. */
  readonly group: { readonly id: string; readonly name: string } | null;
}

export interface SentMessage {
  readonly id: string;
  readonly to: string;
  readonly state: StoredMessage['state'];
  readonly relaysAccepted: number;
}

export interface Whoami {
  readonly fingerprint: string;
  readonly npub: string;
  readonly nostrPubkey: string;
  readonly createdAt: number;
}

/** The typed events a node emits. */
export interface NodeEvents {
  message: [ReceivedMessage];
  sent: [SentMessage];
  delivered: [{ readonly peer: string; readonly ids: readonly string[] }];
  bundle: [{ readonly fingerprint: string; readonly nostrPubkey: string }];
  published: [{ readonly acceptedBy: number; readonly unpublished: boolean }];
  /** Something the user must see: an identity key changed for a known contact. */
  warning: [{ readonly kind: 'identity-changed'; readonly contact: string; readonly alias: string | null; readonly previous: string; readonly message: string }];
  /** An incoming event that was refused, with the reason; nothing changed. */
  rejected: [{ readonly relay: string; readonly eventId: string | null; readonly reason: string }];
  relay: [{ readonly url: string; readonly connected: boolean }];
  /** A key exchange completed: a session with `peer` exists now. */
  kx: [{ readonly peer: string; readonly role: 'inviter' | 'acceptor' }];
}

/** Failures that a later message can cure; anything else is final. */
const RETRYABLE = ['TOO_MANY_SKIPPED', 'NO_SESSION', 'DECRYPT_FAILED'] as const;
const MAX_PARKED = 10_000;
const RECEIPT_DELAY_MS = 100;
/** Accepted events are kept this long, for relays that were away when they went out. */
const OUTBOX_KEEP_MS = 24 * 60 * 60 * 1000;
const RECEIPT_BATCH = 200;

const SUB_BUNDLES = 'rr-bundles';
const SUB_RENDEZVOUS = 'rr-rendezvous';
/** An acceptor keeps waiting this long past the invite's expiry, for a full KX still in transit. */
const KX_GRACE_MS = 24 * 60 * 60 * 1000;
/** A reset request is answered within this, or forgotten. */
const RESET_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** An introduction asked for (or announced) is welcome this long. */
const MEDIATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;
const GROUP_INTRO_ATTEMPTS = 3;
const GROUP_INTRO_INTERVAL_MS = 7 * 24 * 60 * 60 * 1000;
const SUB_MESSAGES = 'rr-messages';
const SETTING_UNPUBLISHED = 'unpublished';

function randomId(rng: Rng): string {
  return toHex(rng(16));
}


/**
 * A ratchet-relay node: one identity, its store, and its relays. Follows the seed's lifecycle:
 * maintenance and publishing on connect, republish when a one-time key is used, decrypt and deliver
 * exactly once, and keys maintained on a timer. The CLI is one client of this object.
 */
export class RatchetNode extends EventEmitter<NodeEvents> {
  readonly store: SqliteProtocolStore;
  readonly nodeStore: NodeStore;
  readonly cipher: SessionCipher;
  private relaySet: RelaySet | undefined;
  private readonly clock: () => number;
  private readonly rng: Rng;
  private readonly timing: NodeTiming;
  private readonly log: (line: string) => void;
  private maintenanceTimer: NodeTimeout | undefined;
  private flushTimer: NodeTimeout | undefined;
  private flushing: Promise<void> | undefined;
  private flushAgain = false;
  private closed = false;
  private readonly parked = new Map<string, { event: Event; relay: string }>();
  private readonly pendingReceipts = new Map<string, { contact: Contact; ids: string[] }>();
  private receiptTimer: NodeTimeout | undefined;
  private lastSentAt = 0;
  /** Set by control messages that add a pending KX inside a decrypt; acted on once it commits. */
  private subscribeRendezvousSoon = false;
  /** Set when an event is queued (inside a message's handling, say); a flush is scheduled once it commits. */
  private outboxTouched = false;
  readonly selfNostr: string;

  private constructor(
    private readonly options: NodeOptions,
    private readonly unlock: () => Promise<void>,
  ) {
    super();
    this.clock = options.clock ?? Date.now;
    this.rng = options.rng ?? systemRng;
    this.timing = { ...DEFAULT_NODE_TIMING, ...options.timing };
    this.log = options.log ?? (() => {});
    // NORMAL commits, and one fsync (syncToDisk) before each batch of events is published.
    const db = openDatabase({ path: paths(options.dataDir).db, passphrase: options.passphrase, kdf: options.kdf, synchronous: 'NORMAL' });
    this.store = new SqliteProtocolStore(db, this.clock);
    this.nodeStore = new NodeStore(db);
    if (!this.store.hasIdentity()) {
      db.close();
      fail('STORE', `no identity in ${options.dataDir}: run \`rrelay init\` first`);
    }
    this.cipher = new SessionCipher(this.store, { rng: this.rng, clock: this.clock, preKeys: options.preKeys, ratchet: options.ratchet });
    this.selfNostr = toHex(this.store.identity().nostr.publicKey);
  }

  /** Creates the data directory, the encrypted store and a new identity. Fails if one exists. */
  static async init(options: NodeOptions): Promise<Whoami> {
    ensureDataDir(options.dataDir);
    if (existsSync(paths(options.dataDir).db)) fail('INVALID_ARGUMENT', `${options.dataDir} already holds an identity`);
    const unlock = await lockDataDir(options.dataDir);
    try {
      const db = openDatabase({ path: paths(options.dataDir).db, passphrase: options.passphrase, kdf: options.kdf });
      const store = new SqliteProtocolStore(db);
      const clock = options.clock ?? Date.now;
      store.ensureIdentity(options.rng ?? systemRng, clock());
      const cipher = new SessionCipher(store, { rng: options.rng ?? systemRng, clock, preKeys: options.preKeys });
      cipher.maintain();
      const me = whoamiOf(store.identity().public);
      db.close();
      return me;
    } finally {
      await unlock();
    }
  }

  /** Opens an initialized data directory. Holds its lock until close(). */
  static async open(options: NodeOptions): Promise<RatchetNode> {
    if (!existsSync(paths(options.dataDir).db)) fail('STORE', `no identity in ${options.dataDir}: run \`rrelay init\` first`);
    const unlock = await lockDataDir(options.dataDir);
    try {
      return new RatchetNode(options, unlock);
    } catch (e) {
      await unlock();
      throw e;
    }
  }

  whoami(): Whoami {
    return whoamiOf(this.identity());
  }

  identity(): PublicIdentity {
    return this.store.identity().public;
  }

  relayUrls(): string[] {
    return [...(this.options.relays ?? this.nodeStore.relays().map((r) => r.url))];
  }

  // SHIM(rpc-table): start() is idempotent: a second call returns the first call's promise, so no
  // second relay set is ever opened (and the first leaked with its subscriptions and timers).
  private starting: Promise<void> | undefined;

  /** Connects, runs maintenance, publishes if anything changed (or never published), subscribes. Idempotent. */
  start(): Promise<void> {
    this.starting ??= this.startOnce(); // SHIM(rpc-table)
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    await initNostr();
    const urls = this.relayUrls();
    if (urls.length === 0) fail('INVALID_ARGUMENT', 'no relays configured: add one with `rrelay relays add <ws-url>`');
    this.relaySet = new RelaySet(urls, {
      onEvent: (event, relay, sub) => this.onEvent(event, relay, sub),
      onReject: (reason, relay) => this.reject(relay, null, reason),
      onBacklogDone: () => this.retryParked(),
      alreadyHave: (id) => this.nodeStore.hasSeen(id),
      onStatus: (url, connected) => {
        if (!connected) this.persistCursor(url);
        this.emit('relay', { url, connected });
        if (connected) {
          this.scheduleFlush(0);
          void this.catchUpRelay(url);
        }
      },
      lastSeen: (url) => this.nodeStore.relays().find((r) => r.url === url)?.lastSeenAt ?? null,
      clock: this.clock,
      log: this.log,
      timing: this.timing.relay,
    });
    for (const url of urls) this.nodeStore.addRelay(url, this.clock());
    await this.relaySet.start();
    this.maintain();
    this.relaySet.subscribe(SUB_BUNDLES, [{ kinds: [KIND_BUNDLE], '#d': [BUNDLE_D_TAG] }]);
    this.relaySet.subscribe(SUB_MESSAGES, [{ kinds: [KIND_MESSAGE], '#p': [this.selfNostr] }]);
    this.subscribeRendezvous();
    this.maintenanceTimer = setInterval(() => this.maintain(), this.timing.maintenanceEveryMs);
    this.maintenanceTimer.unref();
    this.scheduleFlush(0);
  }

  // SHIM(rpc-table): relays added or removed while the node runs take effect on the live relay set.
  /** Stores a relay (false: it was there already) and, once started, connects to it. */
  addRelay(url: string): boolean {
    const added = this.nodeStore.addRelay(url, this.clock());
    this.relaySet?.add(url);
    return added;
  }

  /** Forgets a relay (false: it was not configured) and, once started, drops its connection. */
  removeRelay(url: string): boolean {
    const removed = this.nodeStore.removeRelay(url);
    this.relaySet?.remove(url);
    return removed;
  }
  // end SHIM(rpc-table)

  /** Flushes what it can, disconnects, and releases the store and the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.maintenanceTimer);
    clearTimeout(this.flushTimer);
    this.sendReceipts();
    this.closed = true;
    await this.flushing;
    if (this.relaySet) for (const r of this.relaySet.status()) this.persistCursor(r.url);
    this.relaySet?.stop();
    this.store.db.close();
    await this.unlock();
  }

  private persistCursor(url: string): void {
    const seen = this.relaySet?.lastSeen(url);
    if (seen !== null && seen !== undefined && this.store.db.open) this.nodeStore.relaySeen(url, seen);
  }

  // Key maintenance and the bundle

  /** Runs key maintenance and publishes a new bundle when it changed, unless the user unpublished. */
  maintain(): MaintenanceReport {
    this.nodeStore.pruneOutbox(this.clock() - OUTBOX_KEEP_MS);
    if (this.nodeStore.expirePendingKxs(this.clock()) > 0) this.subscribeRendezvous();
    const retried = this.store.transaction(() => {
      const before = this.nodeStore.pendingOutbox();
      for (const g of this.nodeStore.groups()) this.introduceToGroup(g.id, this.clock());
      return this.nodeStore.pendingOutbox() > before;
    });
    if (retried) this.scheduleFlush(0);
    const report = this.cipher.maintain();
    if (report.shouldPublish && this.nodeStore.setting(SETTING_UNPUBLISHED) !== '1') this.queueBundle(false);
    return report;
  }

  /** Publishes the current bundle now, even if nothing changed; clears an earlier unpublish. */
  publish(): void {
    this.nodeStore.setSetting(SETTING_UNPUBLISHED, '0');
    this.cipher.maintain();
    this.queueBundle(false);
  }

  /** Replaces our bundle on the relays with an empty one: peers can no longer start new sessions. */
  unpublish(): void {
    this.nodeStore.setSetting(SETTING_UNPUBLISHED, '1');
    this.queueBundle(true);
  }

  private queueBundle(empty: boolean): void {
    const bytes = empty ? null : encodePreKeyBundle(this.cipher.bundle());
    const event = bundleEvent(bytes, this.store.identity().nostr.privateKey, this.clock());
    this.store.transaction(() => {
      this.nodeStore.dropQueuedBundles();
      this.enqueue(event, 'bundle', null);
    });
    this.scheduleFlush(0);
  }

  // Sending

  /** Resolves a contact by alias or fingerprint (prefix), or a discovered peer, which becomes a contact. */
  resolvePeer(ref: string): Contact {
    const contact = this.nodeStore.resolveContact(ref);
    if (contact) return contact;
    if (/^[0-9a-fA-F]{8,64}$/.test(ref)) {
      const found = this.nodeStore.discoveredByPrefix(ref);
      if (found.length > 1) fail('INVALID_ARGUMENT', `"${ref}" matches ${found.length} discovered peers: give more digits`);
      if (found[0]) return this.nodeStore.addContact(decodePreKeyBundle(found[0].bundle).identity, this.clock());
    }
    return fail(
      'NO_SESSION',
      `no contact or discovered bundle matches "${ref}": check \`rrelay contacts ls\` and \`rrelay peers\`, or ask the peer to run \`rrelay publish\``,
    );
  }

  /** Encrypts and queues a text message; the ratchet step, the stored message and the outbox entry commit together. */
  send(ref: string, text: string): SentMessage {
    const contact = this.resolvePeer(ref);
    if (contact.keyChangedAt !== null)
      fail(
        'IDENTITY_MISMATCH',
        `the identity key of ${contact.alias ?? contact.fingerprint.slice(0, 16)} changed: compare safety numbers, then run \`rrelay contacts verify ${contact.alias ?? contact.fingerprint}\` or \`rrelay contacts trust ...\``,
      );
    const id = randomId(this.rng);
    // Strictly increasing, so the receiver can order a backlog sent within one millisecond.
    const sentAt = Math.max(this.clock(), this.lastSentAt + 1);
    this.lastSentAt = sentAt;
    this.store.transaction(() => {
      this.ensureSession(contact);
      this.nodeStore.insertMessage({ id, peer: contact.fingerprint, direction: 'out', body: text, sentAt, receivedAt: null, state: 'queued' });
      this.queueAppMessage(contact, { type: 'text', id, sentAt, text }, 'message');
    });
    this.scheduleFlush(0);
    return { id, to: contact.fingerprint, state: 'queued', relaysAccepted: 0 };
  }

  private ensureSession(contact: Contact): void {
    if (this.cipher.hasSession(contact.fingerprint)) return;
    const discovered = this.nodeStore.discoveredBundle(contact.fingerprint);
    if (!discovered)
      fail('NO_SESSION', `no session with ${contact.alias ?? contact.fingerprint.slice(0, 16)} and no bundle of theirs: they need to publish one (\`rrelay publish\`)`);
    this.cipher.startSession(decodePreKeyBundle(discovered.bundle));
  }

  private queueAppMessage(contact: Contact, m: AppMessage, purpose: OutboxEntry['purpose']): void {
    const envelope = this.cipher.encrypt(contact.fingerprint, encodeAppMessage(m));
    const event = messageEvent(envelope, contact.nostrPubkey, this.store.identity().nostr.privateKey, this.clock());
    this.enqueue(event, purpose, m.id);
  }

  /** Every outgoing event goes through here, so that whoever queued one inside a transaction gets it flushed. */
  private enqueue(event: Event, purpose: OutboxEntry['purpose'], messageId: string | null): void {
    this.nodeStore.enqueue(event.id, JSON.stringify(event), purpose, messageId, this.clock());
    this.outboxTouched = true;
  }

  // The outbox

  /** Publishes everything due; each entry is done once one relay accepted it, else retried with backoff. */
  flush(): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true;
      return this.flushing;
    }
    this.flushing = this.flushOnce().finally(() => {
      this.flushing = undefined;
      if (this.flushAgain && !this.closed) {
        this.flushAgain = false;
        void this.flush();
      } else this.scheduleNextFlush();
    });
    return this.flushing;
  }

  private scheduleFlush(delayMs: number): void {
    if (this.closed || !this.relaySet) return;
    clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => void this.flush(), delayMs);
  }

  private scheduleNextFlush(): void {
    if (this.closed) return;
    const next = this.nodeStore.nextOutboxAttempt();
    if (next !== null) this.scheduleFlush(Math.max(0, next - this.clock()));
  }

  private async flushOnce(): Promise<void> {
    const relays = this.relaySet;
    if (!relays || this.closed) return;
    for (;;) {
      const due = this.nodeStore.dueOutbox(this.clock(), 256);
      if (due.length === 0 || relays.connectedCount() === 0) return;
      // No ciphertext leaves before the ratchet step that made it is on disk.
      syncToDisk(this.store.db);
      await Promise.all(due.map((entry) => this.publishEntry(relays, entry)));
      if (this.closed) return;
    }
  }

  private async publishEntry(relays: RelaySet, entry: OutboxEntry): Promise<void> {
    const event = JSON.parse(entry.event) as Event;
    const { first, all } = relays.publish(event);
    const url = await first;
    if (url !== null) {
      if (this.closed) return;
      const acceptedBy = this.nodeStore.outboxAccepted(entry, [url], this.clock());
      // 0: a newer bundle replaced this entry while it was in flight; that one will be recorded.
      if (entry.purpose === 'bundle' && acceptedBy > 0) this.bundleAccepted(event, acceptedBy);
      this.emitSent(entry);
      // The other relays answer in their own time; each acceptance is recorded. A relay that
      // connected while this was in flight missed it and gets one more try now.
      void all.then(async (r) => {
        if (this.closed) return;
        const late = await Promise.all(r.rejected.filter((x) => relays.isConnected(x.url)).map(async (x) => ((await relays.publishTo(x.url, event)) ? x.url : null)));
        const accepted = [...r.accepted, ...late.filter((u): u is string => u !== null)];
        if (this.closed || accepted.length <= 1) return;
        this.nodeStore.outboxAccepted(entry, accepted, this.clock());
        this.emitSent(entry);
      });
      return;
    }
    const result = await all;
    if (this.closed) return;
    const t = this.timing;
    const delay = Math.min(t.outboxRetryMaxMs, t.outboxRetryBaseMs * 2 ** Math.min(entry.attempts, 20));
    this.nodeStore.outboxRetry(entry.eventId, this.clock() + delay);
    this.log(`outbox: ${entry.purpose} ${entry.eventId.slice(0, 12)} not accepted (${result.rejected.map((r) => `${r.url}: ${r.reason}`).join('; ')}); retry in ${delay} ms`);
  }

  /** A relay that (re)connects gets what it missed of the last day's events. */
  private async catchUpRelay(url: string): Promise<void> {
    const relays = this.relaySet;
    if (!relays || this.closed) return;
    for (const entry of this.nodeStore.missedBy(url, this.clock() - OUTBOX_KEEP_MS)) {
      if (this.closed) return;
      if (await relays.publishTo(url, JSON.parse(entry.event) as Event)) this.nodeStore.outboxAccepted(entry, [url], this.clock());
    }
  }

  private emitSent(entry: OutboxEntry): void {
    if (entry.purpose !== 'message' || !entry.messageId) return;
    const m = this.nodeStore.outgoingMessage(entry.messageId);
    if (m) this.emit('sent', { id: m.id, to: m.peer, state: m.state, relaysAccepted: m.relaysAccepted });
  }

  private bundleAccepted(event: Event, acceptedBy: number): void {
    const unpublished = event.content === '';
    if (!unpublished) this.cipher.markPublished(decodePreKeyBundle(new Uint8Array(Buffer.from(event.content, 'base64'))));
    this.emit('published', { acceptedBy, unpublished });
  }

  // Receiving

  private reject(relay: string, eventId: string | null, reason: string): void {
    this.log(`rejected event ${eventId?.slice(0, 12) ?? '(unverified)'} from ${relay}: ${reason}`);
    this.emit('rejected', { relay, eventId, reason });
  }

  private onEvent(event: Event, relay: string, sub: string): void {
    if (this.closed) return;
    if (sub === SUB_BUNDLES) this.attempt(event, relay, () => this.onBundleEvent(event));
    else if (sub === SUB_RENDEZVOUS) this.attempt(event, relay, () => this.onRendezvousEvent(event));
    else if (sub === SUB_MESSAGES && this.attempt(event, relay, () => this.onMessageEvent(event))) this.retryParked(event.pubkey);
  }

  /**
   * Runs one event's handler. A final failure marks the event seen, so it is never tried again; a
   * failure that a later message can cure (a gap beyond MAX_SKIP, a session that is not there yet)
   * parks the event for another try after the next message that decrypts.
   */
  private attempt(event: Event, relay: string, handle: () => void): boolean {
    try {
      handle();
      this.parked.delete(event.id);
      return true;
    } catch (e) {
      const reason = reasonOf(e);
      if (!isRatchetRelayError(e)) this.log(`unexpected error on event ${event.id.slice(0, 12)}: ${e instanceof Error ? e.stack : reason}`);
      if (!this.store.db.open) return false;
      if (RETRYABLE.some((code) => isRatchetRelayError(e, code)) && event.kind === KIND_MESSAGE) {
        if (!this.parked.has(event.id)) this.reject(relay, event.id, `${reason} (kept for a retry)`);
        this.parked.delete(event.id);
        this.parked.set(event.id, { event, relay });
        if (this.parked.size > MAX_PARKED) this.parked.delete(this.parked.keys().next().value!);
      } else {
        this.nodeStore.markSeen(event.id, `rejected: ${reason}`.slice(0, 200), this.clock());
        this.parked.delete(event.id);
        this.reject(relay, event.id, reason);
      }
      return false;
    }
  }

  /**
   * Retries held-back events. After a message or a key exchange only `sender`'s events can have been
   * cured, so only those are tried: otherwise events a hostile relay parked would be re-tried on
   * every message.
   */
  private retryParked(sender?: string): void {
    let progress = true;
    while (progress && this.parked.size > 0) {
      progress = false;
      for (const [id, { event }] of this.parkedInChainOrder(sender)) {
        if (!this.parked.has(id)) continue;
        try {
          this.onMessageEvent(event);
          this.parked.delete(id);
          progress = true;
        } catch (e) {
          if (!RETRYABLE.some((code) => isRatchetRelayError(e, code))) {
            this.parked.delete(id);
            if (this.store.db.open) this.nodeStore.markSeen(id, `rejected: ${reasonOf(e)}`.slice(0, 200), this.clock());
          }
        }
      }
    }
  }

  /**
   * Parked events, those whose place in their sender's chain can be read first, in that order: a
   * backlog that a relay returned out of order (within one second, created_at cannot order it) then
   * decrypts without ever skipping more than it must.
   */
  private parkedInChainOrder(sender?: string): [string, { event: Event; relay: string }][] {
    const position = (event: Event): number => {
      const contact = this.nodeStore.contactByNostr(event.pubkey);
      if (!contact) return Number.MAX_SAFE_INTEGER;
      let envelope: Uint8Array;
      try {
        envelope = decodeMessageEvent(event, this.selfNostr);
      } catch {
        return Number.MAX_SAFE_INTEGER;
      }
      const p = this.cipher.peekPosition(contact.fingerprint, envelope);
      return p ? p.chain * 2 ** 32 + p.n : Number.MAX_SAFE_INTEGER;
    };
    return [...this.parked]
      .filter(([, { event }]) => sender === undefined || event.pubkey === sender)
      .map((entry) => ({ entry, at: position(entry[1].event) }))
      .sort((a, b) => a.at - b.at)
      .map((x) => x.entry);
  }

  private onBundleEvent(event: Event): void {
    if (this.nodeStore.hasSeen(event.id)) return;
    if (event.pubkey === this.selfNostr) {
      this.nodeStore.markSeen(event.id, 'own bundle', this.clock());
      return;
    }
    const content = decodeBundleEvent(event);
    const now = this.clock();
    const createdAtMs = event.created_at * 1000;
    this.store.transaction(() => {
      if (content.kind === 'unpublished') this.nodeStore.forgetDiscoveredBundles(event.pubkey, createdAtMs);
      else {
        const observed = this.nodeStore.observeIdentity(content.bundle.identity, 'bundle', now);
        if (observed.kind === 'key-changed') this.warnKeyChanged(observed.contact, observed.previous);
        this.nodeStore.saveDiscoveredBundle(content.fingerprint, event.pubkey, content.bytes, createdAtMs, now);
      }
      this.nodeStore.markSeen(event.id, content.kind, now);
    });
    if (content.kind === 'bundle') this.emit('bundle', { fingerprint: content.fingerprint, nostrPubkey: event.pubkey });
  }

  private onMessageEvent(event: Event): void {
    const envelopeBytes = decodeMessageEvent(event, this.selfNostr);
    const envelope = decodeEnvelope(envelopeBytes);
    let from: string | undefined;
    if (envelope.type === 'prekey') {
      // The initial message's identity must be the one that owns the Nostr key that signed the event.
      if (toHex(envelope.header.identity.nostrKey) !== event.pubkey)
        fail('IDENTITY_MISMATCH', 'initial message identity does not own the Nostr key that signed the event');
    } else {
      const contact = this.nodeStore.contactByNostr(event.pubkey);
      if (!contact) fail('NO_SESSION', 'normal message from a Nostr key that is no contact of ours');
      from = contact.fingerprint;
    }
    const now = this.clock();
    let received: ReceivedMessage | undefined;
    let delivered: { peer: string; ids: string[] } | undefined;
    let warning: { contact: Contact; previous: string } | undefined;
    let receiptTo: Contact | undefined;
    let controlRefused: string | undefined;
    const result = this.store.transaction(() => {
      if (this.nodeStore.hasSeen(event.id)) return undefined;
      const d = this.cipher.decrypt(envelopeBytes, {
        from,
        deliver: (d) => {
          const app = decodeAppMessage(d.plaintext);
          const observed = this.nodeStore.observeIdentity(d.peer, 'message', now);
          if (observed.kind === 'unknown') return fail('NO_SESSION', 'sender is unknown');
          if (observed.kind === 'key-changed') warning = { contact: observed.contact, previous: observed.previous };
          const contact = observed.contact;
          if (app.type === 'text' || app.type === 'group-text') {
            const group = app.type === 'group-text' ? this.groupForMember(app.groupId, contact.fingerprint) : null;
            const seq = this.nodeStore.insertMessage({
              id: app.id,
              peer: contact.fingerprint,
              direction: 'in',
              body: app.text,
              sentAt: app.sentAt,
              receivedAt: now,
              state: 'received',
              groupId: group?.id ?? null,
            });
            if (seq !== null) {
              received = {
                id: app.id,
                seq,
                from: contact.fingerprint,
                alias: contact.alias,
                text: app.text,
                sentAt: app.sentAt,
                receivedAt: now,
                trusted: contact.trusted,
                group: group && { id: group.id, name: group.name },
              };
              receiptTo = contact;
            }
          } else if (app.type === 'receipt') delivered = { peer: contact.fingerprint, ids: this.nodeStore.markDelivered(contact.fingerprint, app.ids) };
          else if (app.type !== 'kx-hello') {
            // A control message that cannot be acted on is refused on its own (a savepoint): the
            // ratchet step that carried it still commits, so the session stays in step.
            try {
              this.store.transaction(() => this.onControl(contact, app, now));
            } catch (e) {
              controlRefused = reasonOf(e);
            }
          }
          // kx-hello carries nothing to deliver: decrypting it is what lets us send.
        },
      });
      this.nodeStore.markSeen(event.id, 'delivered', now);
      return d;
    });
    if (!result) return;
    if (this.subscribeRendezvousSoon) {
      this.subscribeRendezvousSoon = false;
      this.subscribeRendezvous();
    }
    // A control message may have queued answers.
    if (this.outboxTouched) {
      this.outboxTouched = false;
      this.scheduleFlush(0);
    }
    if (controlRefused) this.reject('(inside a message)', event.id, controlRefused);
    if (warning) this.warnKeyChanged(warning.contact, warning.previous);
    // The seed: a consumed one-time pre-key means a new peer; publish a fresh bundle at once.
    if (result.consumedOneTimePreKey) this.maintain();
    if (received) this.emit('message', received);
    if (delivered && delivered.ids.length > 0) this.emit('delivered', delivered);
    if (receiptTo && received) this.queueReceipt(receiptTo, received.id);
  }

  /**
   * Receipts are batched per peer for a moment: a burst of messages then costs one receipt, not one
   * each. A receipt lost to a crash only leaves the sender's message shown as "sent".
   */
  private queueReceipt(contact: Contact, id: string): void {
    const pending = this.pendingReceipts.get(contact.fingerprint);
    if (pending) pending.ids.push(id);
    else this.pendingReceipts.set(contact.fingerprint, { contact, ids: [id] });
    if ((pending?.ids.length ?? 1) >= RECEIPT_BATCH) this.sendReceipts();
    else this.receiptTimer ??= setTimeout(() => this.sendReceipts(), RECEIPT_DELAY_MS);
  }

  private sendReceipts(): void {
    clearTimeout(this.receiptTimer);
    this.receiptTimer = undefined;
    if (this.closed) return;
    const batches = [...this.pendingReceipts.values()];
    this.pendingReceipts.clear();
    for (const { contact, ids } of batches) {
      try {
        this.store.transaction(() => this.queueAppMessage(contact, { type: 'receipt', id: randomId(this.rng), sentAt: this.clock(), ids }, 'receipt'));
      } catch (e) {
        this.log(`could not queue a receipt for ${contact.fingerprint.slice(0, 12)}: ${reasonOf(e)}`);
      }
    }
    this.scheduleFlush(0);
  }

  private warnKeyChanged(contact: Contact, previous: string): void {
    const name = contact.alias ?? contact.fingerprint.slice(0, 16);
    const message = `WARNING: the identity key of ${name} changed (was ${previous.slice(0, 16)}…, now ${contact.fingerprint.slice(0, 16)}…). Compare safety numbers before you trust it.`;
    this.log(message);
    this.emit('warning', { kind: 'identity-changed', contact: contact.fingerprint, alias: contact.alias, previous, message });
  }

  // The invite key exchange

  /** Step 1: an invite to hand over out of band. Its key exchange waits at the invite's initial RV. */
  createInvite(ttlMs: number): { invite: string; rv: string; expiresAt: number } {
    const { invite, rv } = this.startInviter(null, ttlMs, this.clock());
    this.subscribeRendezvous();
    return { invite: inviteToString(invite), rv, expiresAt: invite.expiresAt };
  }

  /** Makes an invite and stores its pending KX, waiting at the initial RV. `peer`: whom it is for, when known. */
  private startInviter(peer: string | null, ttlMs: number, now: number): { invite: OOBPublicIdentityInvite; rv: string } {
    const { invite, pending } = createInvite(this.store.identity(), this.rng, now, ttlMs);
    const rv = rvHex(pending.initialRV);
    this.nodeStore.addPendingKx({ rv, role: 'inviter', record: encodePendingKX(pending), peer, createdAt: now, expiresAt: pending.expiresAt });
    return { invite, rv };
  }

  /** Answers an invite: stores the acceptor's pending KX and queues the half KX. Call inside a transaction. */
  private startAcceptor(invite: OOBPublicIdentityInvite, peer: string, now: number): string {
    const { pending, send } = acceptInvite(this.store.identity(), invite, this.rng, now);
    const rv = rvHex(pending.step3RV);
    this.nodeStore.addPendingKx({ rv, role: 'acceptor', record: encodePendingKX(pending), peer, createdAt: now, expiresAt: pending.expiresAt + KX_GRACE_MS });
    this.queueRendezvous(send);
    return rv;
  }

  /** Step 2: accept an invite string; the half KX goes to the inviter's initial RV. */
  acceptInvite(text: string): { peer: string; rv: string } {
    const invite = inviteFromString(text.trim());
    const peer = fingerprint(invite.identity);
    const rv = this.store.transaction(() => this.startAcceptor(invite, peer, this.clock()));
    this.subscribeRendezvous();
    this.scheduleFlush(0);
    return { peer, rv };
  }

  pendingKeyExchanges(): { rv: string; role: 'inviter' | 'acceptor'; peer: string | null; createdAt: number; expiresAt: number }[] {
    return this.nodeStore.pendingKxs().map(({ rv, role, peer, createdAt, expiresAt }) => ({ rv, role, peer, createdAt, expiresAt }));
  }

  /** Cancels a pending key exchange by its RV (or a unique prefix of at least 8 hex digits). */
  cancelKeyExchange(ref: string): string {
    const hits = this.nodeStore.pendingKxs().filter((p) => ref.length >= 8 && p.rv.startsWith(ref.toLowerCase()));
    if (hits.length !== 1)
      fail('INVALID_ARGUMENT', hits.length ? `"${ref}" matches ${hits.length} key exchanges: give more digits` : `no pending key exchange matches "${ref}": see \`rrelay kx ls\``);
    this.nodeStore.deletePendingKx(hits[0]!.rv);
    this.subscribeRendezvous();
    return hits[0]!.rv;
  }

  /**
   * Ratchet reset: a fresh invite, sealed to the contact's KEM key, posted at the contact's reset RV.
   * The usual half and full KX follow; completion replaces the session and rotates both reset RVs.
   */
  resetSession(ref: string, viaRef?: string): { rv: string; peer: string } {
    const contact = this.resolvePeer(ref);
    const kemKey = contact.identity.kemKey;
    const via = viaRef === undefined ? undefined : this.resolvePeer(viaRef);
    if (via?.fingerprint === contact.fingerprint) fail('INVALID_ARGUMENT', 'the mediator must be a third contact');
    if (!kemKey || (!via && !contact.peerResetRv))
      fail('NO_SESSION', `no reset mailbox for ${contact.alias ?? contact.fingerprint.slice(0, 16)}: only sessions made by an invite have one`);
    const mine = this.nodeStore.pendingKxs().find((p) => p.peer === contact.fingerprint);
    if (mine) fail('INVALID_ARGUMENT', `a key exchange with ${contact.alias ?? contact.fingerprint.slice(0, 16)} is already under way (\`rrelay kx ls\`)`);
    const now = this.clock();
    const rv = this.store.transaction(() => {
      const { invite, rv } = this.startInviter(contact.fingerprint, RESET_TTL_MS, now);
      const sealed = seal(kemKey, encodeInvite(invite), this.rng);
      // Transitive reset: the mediator carries the sealed invite and cannot read it.
      if (via) this.queueAppMessage(via, { type: 'reset-via', id: randomId(this.rng), sentAt: now, peer: contact.fingerprint, sealed }, 'control');
      else this.queueRendezvous({ rv: fromHex(contact.peerResetRv!), payload: sealed });
      return rv;
    });
    this.subscribeRendezvous();
    this.scheduleFlush(0);
    return { rv, peer: contact.fingerprint };
  }

  /**
   * A reset request at our reset RV for `contact`. Accepted only from the contact's own identity;
   * a second request while one is being answered is a duplicate; crossed requests (both sides reset
   * at once) are settled by fingerprint order, so exactly one key exchange proceeds.
   */
  private onResetRequest(event: Event, contact: Contact, payload: Uint8Array): void {
    this.store.transaction(() => {
      this.answerResetInvite(contact, payload, this.clock());
      this.nodeStore.markSeen(event.id, 'reset request', this.clock());
    });
    this.subscribeRendezvous();
    this.scheduleFlush(0);
  }

  /** Shared by direct and transitive resets: `sealed` is an invite sealed to our KEM key. Call inside a transaction. */
  private answerResetInvite(contact: Contact, sealed: Uint8Array, now: number): void {
    const self = this.store.identity();
    const invite = decodeInvite(open(self.kem.secretKey, sealed));
    if (!sameIdentity(invite.identity, contact.identity))
      fail('IDENTITY_MISMATCH', `reset request signed by an identity other than ${contact.alias ?? contact.fingerprint.slice(0, 16)}'s`);
    const ongoing = this.nodeStore.pendingKxs().filter((p) => p.peer === contact.fingerprint);
    if (ongoing.some((p) => p.role === 'acceptor')) fail('INVALID_ARGUMENT', 'duplicate reset request: one from this contact is already being answered');
    const ours = ongoing.find((p) => p.role === 'inviter');
    if (ours && fingerprint(self.public) < contact.fingerprint) fail('INVALID_ARGUMENT', 'crossed reset: ours wins the tiebreak (lower fingerprint), theirs is dropped');
    if (ours) this.nodeStore.deletePendingKx(ours.rv); // crossed, and theirs wins: ours is dropped
    this.startAcceptor(invite, contact.fingerprint, now);
    this.subscribeRendezvousSoon = true;
  }

  // Group chats (minimal: an admin, a signed member list, fan-out over the pairwise ratchets)

  createGroup(name: string): { id: string } {
    const self = this.store.identity();
    const now = this.clock();
    const g = signGroupMembers(self, { groupId: randomId(this.rng), name, version: 1, members: [fingerprint(self.public)] });
    this.nodeStore.saveGroup({ id: g.groupId, name, admin: g.admin, version: 1, members: encodeGroupMembers(g), joined: true, createdAt: now });
    return { id: g.groupId };
  }

  /** A group by id (or a prefix of at least 6 hex digits) or by name. */
  resolveGroup(ref: string): StoredGroup {
    const all = this.nodeStore.groups();
    const hits = all.filter((g) => g.name === ref || (ref.length >= 6 && g.id.startsWith(ref.toLowerCase())));
    if (hits.length !== 1) fail('INVALID_ARGUMENT', hits.length ? `"${ref}" matches ${hits.length} groups: use its id` : `no group matches "${ref}": see \`rrelay group ls\``);
    return hits[0]!;
  }

  /** As admin: invites a contact; it becomes a member when it joins. */
  inviteToGroup(groupRef: string, contactRef: string): void {
    const g = this.resolveGroup(groupRef);
    if (g.admin !== this.whoami().fingerprint) fail('INVALID_ARGUMENT', `only the admin of ${g.name} invites to it`);
    const contact = this.resolvePeer(contactRef);
    const now = this.clock();
    this.store.transaction(() => {
      this.nodeStore.setSetting(groupInviteKey(g.id, contact.fingerprint), String(now));
      this.queueAppMessage(contact, { type: 'group-invite', id: randomId(this.rng), sentAt: now, members: g.members }, 'control');
    });
    this.scheduleFlush(0);
  }

  /** Accepts an invitation: asks the admin to add us; the new member list follows. */
  joinGroup(groupRef: string): void {
    const g = this.resolveGroup(groupRef);
    const admin = this.nodeStore.contact(g.admin);
    if (!admin) return fail('NO_SESSION', `the admin of ${g.name} is not a contact`);
    this.store.transaction(() => this.queueAppMessage(admin, { type: 'group-join', id: randomId(this.rng), sentAt: this.clock(), groupId: g.id }, 'control'));
    this.scheduleFlush(0);
  }

  groupMembers(ref: string): { fingerprint: string; alias: string | null; admin: boolean; reachable: boolean; introductionAttempts: number }[] {
    const g = this.resolveGroup(ref);
    const list = this.membersOf(g);
    const self = this.whoami().fingerprint;
    return list.members.map((fp) => ({
      fingerprint: fp,
      alias: fp === self ? 'me' : (this.nodeStore.contact(fp)?.alias ?? null),
      admin: fp === g.admin,
      reachable: fp === self || this.cipher.hasSession(fp),
      introductionAttempts: this.nodeStore.introduction(g.id, fp)?.attempts ?? 0,
    }));
  }

  /** A message to every member, one pairwise ratchet each. Members without a session yet are named, not dropped. */
  sendToGroup(ref: string, text: string): { id: string; sent: string[]; unreachable: string[] } {
    const g = this.resolveGroup(ref);
    if (!g.joined) fail('INVALID_ARGUMENT', `join ${g.name} first: \`rrelay group join ${g.id.slice(0, 8)}\``);
    const self = this.whoami().fingerprint;
    const id = randomId(this.rng);
    const sentAt = Math.max(this.clock(), this.lastSentAt + 1);
    this.lastSentAt = sentAt;
    const sent: string[] = [];
    const unreachable: string[] = [];
    this.store.transaction(() => {
      for (const fp of this.membersOf(g).members) {
        if (fp === self) continue;
        const contact = this.nodeStore.contact(fp);
        if (!contact || !this.cipher.hasSession(fp)) {
          unreachable.push(fp);
          continue;
        }
        this.nodeStore.insertMessage({ id, peer: fp, direction: 'out', body: text, sentAt, receivedAt: null, state: 'queued', groupId: g.id });
        this.queueAppMessage(contact, { type: 'group-text', id, sentAt, groupId: g.id, text }, 'message');
        sent.push(fp);
      }
    });
    this.scheduleFlush(0);
    return { id, sent, unreachable };
  }

  private membersOf(g: StoredGroup): GroupMembers {
    const admin = g.admin === this.whoami().fingerprint ? this.identity() : this.nodeStore.contact(g.admin)?.identity;
    if (!admin) return fail('NO_SESSION', `the admin of ${g.name} is not a contact`);
    return decodeGroupMembers(g.members, admin);
  }

  private groupForMember(groupId: string, member: string): StoredGroup {
    const g = this.nodeStore.group(groupId);
    if (!g || !g.joined) return fail('INVALID_ARGUMENT', 'a message for a group we are not in');
    if (!this.membersOf(g).members.includes(member)) return fail('IDENTITY_MISMATCH', 'a group message from someone who is not a member');
    return g;
  }

  /** As admin: a new signed member list, sent to every member. */
  private publishMembers(g: StoredGroup, members: readonly string[], now: number): void {
    const self = this.store.identity();
    const list = signGroupMembers(self, { groupId: g.id, name: g.name, version: g.version + 1, members });
    const bytes = encodeGroupMembers(list);
    this.nodeStore.saveGroup({ ...g, version: list.version, members: bytes });
    for (const fp of list.members) {
      const contact = fp === list.admin ? undefined : this.nodeStore.contact(fp);
      if (contact) this.queueAppMessage(contact, { type: 'group-members', id: randomId(this.rng), sentAt: now, members: bytes }, 'control');
    }
  }

  /**
   * A member asks the admin to introduce it to every member it has no session with. Each
   * introduction is tried at most GROUP_INTRO_ATTEMPTS times, at least GROUP_INTRO_INTERVAL_MS apart.
   */
  private introduceToGroup(groupId: string, now: number): void {
    const g = this.nodeStore.group(groupId);
    if (!g || !g.joined) return;
    const self = this.whoami().fingerprint;
    const admin = this.nodeStore.contact(g.admin);
    if (!admin || g.admin === self) return;
    for (const fp of this.membersOf(g).members) {
      if (fp === self || fp === g.admin || this.cipher.hasSession(fp)) continue;
      const tried = this.nodeStore.introduction(g.id, fp);
      if (tried && (tried.attempts >= GROUP_INTRO_ATTEMPTS || now - tried.lastAttemptAt < GROUP_INTRO_INTERVAL_MS)) continue;
      this.nodeStore.addPendingMediation(fp, admin.fingerprint, now, now + MEDIATION_TTL_MS);
      this.queueAppMessage(admin, { type: 'mediate-identity', id: randomId(this.rng), sentAt: now, target: fp }, 'control');
      this.nodeStore.setIntroduction(g.id, fp, (tried?.attempts ?? 0) + 1, now);
    }
  }

  /** Asks `mediator` (a contact) for an introduction to the identity `target` (a fingerprint). */
  mediate(mediatorRef: string, target: string): { mediator: string; target: string } {
    const mediator = this.resolvePeer(mediatorRef);
    const fp = target.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(fp)) fail('INVALID_ARGUMENT', 'the identity to be introduced to is a full 64-digit fingerprint');
    if (this.cipher.hasSession(fp)) fail('INVALID_ARGUMENT', 'that identity is a contact already');
    const now = this.clock();
    this.store.transaction(() => {
      this.nodeStore.addPendingMediation(fp, mediator.fingerprint, now, now + MEDIATION_TTL_MS);
      this.queueAppMessage(mediator, { type: 'mediate-identity', id: randomId(this.rng), sentAt: now, target: fp }, 'control');
    });
    this.scheduleFlush(0);
    return { mediator: mediator.fingerprint, target: fp };
  }

  /** As a mediator: introduces two contacts to each other; `b` will invite `a`. */
  introduce(aRef: string, bRef: string): { a: string; b: string } {
    const a = this.resolvePeer(aRef);
    const b = this.resolvePeer(bRef);
    if (a.fingerprint === b.fingerprint) fail('INVALID_ARGUMENT', 'introduce two different contacts');
    for (const c of [a, b])
      if (!c.identity.kemKey) fail('INVALID_ARGUMENT', `${c.alias ?? c.fingerprint.slice(0, 16)} was met through a bundle: only contacts met by invite can be introduced`);
    const now = this.clock();
    this.store.transaction(() => {
      this.queueAppMessage(a, { type: 'introduced', id: randomId(this.rng), sentAt: now, target: b.identity }, 'control');
      this.queueAppMessage(b, { type: 'invite-request', id: randomId(this.rng), sentAt: now, requester: a.identity }, 'control');
      this.allowForward(b.fingerprint, a.fingerprint, now);
    });
    this.scheduleFlush(0);
    return { a: a.fingerprint, b: b.fingerprint };
  }

  /** The key-exchange control messages that arrive inside a session with `from`. */
  private onControl(from: Contact, m: AppMessage, now: number): void {
    const name = (c: Contact) => c.alias ?? c.fingerprint.slice(0, 16);
    switch (m.type) {
      case 'mediate-identity': {
        // We mediate: ask the target to invite the requester.
        const target = this.nodeStore.contact(m.target);
        if (!target) return fail('NO_SESSION', `${name(from)} asked for an introduction to an identity we do not know`);
        if (!from.identity.kemKey || !target.identity.kemKey) return fail('INVALID_ARGUMENT', 'only contacts met by invite can be introduced');
        this.queueAppMessage(target, { type: 'invite-request', id: randomId(this.rng), sentAt: now, requester: from.identity }, 'control');
        this.allowForward(target.fingerprint, from.fingerprint, now);
        return;
      }
      case 'introduced':
        this.nodeStore.addPendingMediation(fingerprint(m.target), from.fingerprint, now, now + MEDIATION_TTL_MS);
        return;
      case 'invite-request': {
        // We are the target: invite the requester, sealed to it, back through the mediator.
        const requester = fingerprint(m.requester);
        if (this.cipher.hasSession(requester)) return; // crossed, and a session exists already
        if (this.nodeStore.pendingKxs().some((p) => p.peer === requester)) return; // already under way
        const { invite } = this.startInviter(requester, MEDIATION_TTL_MS, now);
        const sealed = seal(m.requester.kemKey!, encodeInvite(invite), this.rng);
        this.queueAppMessage(from, { type: 'transitive', id: randomId(this.rng), sentAt: now, peer: requester, sealed }, 'control');
        this.subscribeRendezvousSoon = true;
        return;
      }
      case 'reset-via': {
        // We mediate a reset between two of our contacts: pass the sealed invite on, unread.
        const to = this.nodeStore.contact(m.peer);
        if (!to || to.fingerprint === from.fingerprint) return fail('INVALID_ARGUMENT', `${name(from)} asked to pass a reset to someone we do not know`);
        this.queueAppMessage(to, { type: 'reset-forwarded', id: randomId(this.rng), sentAt: now, peer: from.fingerprint, sealed: m.sealed }, 'control');
        return;
      }
      case 'reset-forwarded': {
        const contact = this.nodeStore.contact(m.peer);
        if (!contact) return fail('INVALID_ARGUMENT', `${name(from)} passed on a reset from someone we do not know`);
        return this.answerResetInvite(contact, m.sealed, now);
      }
      case 'group-invite': {
        const admin = from.identity;
        const g = decodeGroupMembers(m.members, admin);
        const known = this.nodeStore.group(g.groupId);
        if (known && known.admin !== from.fingerprint) return fail('IDENTITY_MISMATCH', 'group invitation from someone other than its admin');
        if (!known) this.nodeStore.saveGroup({ id: g.groupId, name: g.name, admin: g.admin, version: g.version, members: m.members, joined: false, createdAt: now });
        return;
      }
      case 'group-join': {
        const g = this.nodeStore.group(m.groupId);
        const self = this.store.identity();
        if (!g || g.admin !== fingerprint(self.public)) return fail('INVALID_ARGUMENT', 'a join for a group we do not run');
        const list = decodeGroupMembers(g.members, self.public);
        if (!this.nodeStore.setting(groupInviteKey(g.id, from.fingerprint)) && !list.members.includes(from.fingerprint))
          return fail('INVALID_ARGUMENT', `${name(from)} was not invited to ${g.name}`);
        this.publishMembers(g, [...list.members, from.fingerprint], now);
        return;
      }
      case 'group-members': {
        const known = this.nodeStore.group(decodeGroupId(m.members));
        const adminFp = known?.admin ?? from.fingerprint;
        if (adminFp !== from.fingerprint) return fail('IDENTITY_MISMATCH', 'a member list not from the group admin');
        const g = decodeGroupMembers(m.members, from.identity);
        if (known && g.version <= known.version) return;
        const self = fingerprint(this.store.identity().public);
        this.nodeStore.saveGroup({ id: g.groupId, name: g.name, admin: g.admin, version: g.version, members: m.members, joined: g.members.includes(self), createdAt: known?.createdAt ?? now });
        if (g.members.includes(self)) this.introduceToGroup(g.groupId, now);
        return;
      }
      case 'transitive': {
        const expected = this.nodeStore.pendingMediation(m.peer, now);
        if (expected === from.fingerprint) return this.acceptIntroduction(from, m.peer, m.sealed, now);
        // We mediate: pass the sealed invite on, unread, to the contact it is for, if we asked for it.
        const to = this.nodeStore.contact(m.peer);
        const key = forwardKey(from.fingerprint, m.peer);
        if (!to || Number(this.nodeStore.setting(key) ?? 0) < now)
          return fail('INVALID_ARGUMENT', `unsolicited introduction from ${name(from)}: nobody asked for it`);
        this.nodeStore.setSetting(key, '0');
        this.queueAppMessage(to, { type: 'transitive', id: randomId(this.rng), sentAt: now, peer: from.fingerprint, sealed: m.sealed }, 'control');
        return;
      }
    }
  }

  /** As a mediator, we asked `inviter` to invite `invitee`: its sealed answer may pass through us. */
  private allowForward(inviter: string, invitee: string, now: number): void {
    this.nodeStore.setSetting(forwardKey(inviter, invitee), String(now + MEDIATION_TTL_MS));
  }

  /**
   * We asked `mediator` for `target`, and here is target's invite. Crossed auto-KXs (each side
   * inviting the other) keep the one whose inviter has the lower fingerprint, on both sides.
   */
  private acceptIntroduction(mediator: Contact, target: string, sealed: Uint8Array, now: number): void {
    const self = this.store.identity();
    const invite = decodeInvite(open(self.kem.secretKey, sealed));
    if (fingerprint(invite.identity) !== target) fail('IDENTITY_MISMATCH', `the introduced invite is not from the identity ${mediator.alias ?? 'the mediator'} named`);
    const ours = this.nodeStore.pendingKxs().find((p) => p.peer === target && p.role === 'inviter');
    if (ours) {
      if (fingerprint(self.public) < target) return; // ours wins the tiebreak; theirs is dropped
      this.nodeStore.deletePendingKx(ours.rv);
    }
    this.startAcceptor(invite, target, now);
    this.nodeStore.deletePendingMediation(target);
    this.subscribeRendezvousSoon = true;
  }

  /** Listens at every RV a key exchange waits on, and at each contact's reset RV; nowhere else. */
  private subscribeRendezvous(): void {
    if (!this.relaySet) return;
    const rvs = [
      ...this.nodeStore.pendingKxs().map((p) => p.rv),
      ...this.nodeStore.contacts().flatMap((c) => (c.resetRv ? [c.resetRv] : [])),
    ];
    if (rvs.length === 0) this.relaySet.unsubscribe(SUB_RENDEZVOUS);
    else this.relaySet.subscribe(SUB_RENDEZVOUS, [{ kinds: [KIND_RENDEZVOUS], [`#${RENDEZVOUS_TAG}`]: rvs }]);
  }

  private queueRendezvous(send: KXSend): void {
    const event = rendezvousEvent(rvHex(send.rv), send.payload, this.rng, this.clock());
    this.enqueue(event, 'control', null);
  }

  /** Steps 2 and 3 arriving: the pending key exchange at that RV moves on, or the event is refused. */
  private onRendezvousEvent(event: Event): void {
    if (this.nodeStore.hasSeen(event.id)) return;
    const { rv, payload } = decodeRendezvousEvent(event);
    const stored = this.nodeStore.pendingKx(rv);
    if (!stored) {
      const contact = this.nodeStore.contactByResetRv(rv);
      if (contact) return this.onResetRequest(event, contact, payload);
      return fail('INVALID_ARGUMENT', 'no key exchange waits at this rendezvous point (unknown, finished, cancelled or expired)');
    }
    const pending = decodePendingKX(stored.record);
    const self = this.store.identity();
    const now = this.clock();
    const done: ReturnType<typeof onFullKX> & { send?: KXSend } =
      pending.role === 'inviter' ? onHalfKX(self, pending, payload, this.rng, now) : onFullKX(self, pending, payload, now);
    const peer = fingerprint(done.session.peer);
    if (stored.peer !== null && stored.peer !== peer)
      fail('IDENTITY_MISMATCH', 'the answer to a ratchet reset comes from another identity than the contact');
    this.store.transaction(() => {
      this.cipher.installSession(done.session);
      // The invite went out of band, to someone chosen: the contact is trusted from the start.
      const contact = this.nodeStore.addContact(done.session.peer, now);
      this.nodeStore.setTrusted(contact.fingerprint, true, now);
      this.nodeStore.setResetRvs(contact.fingerprint, rvHex(done.resetRV), rvHex(done.peerResetRV), now);
      this.nodeStore.deletePendingKx(rv);
      if (done.send) {
        this.queueRendezvous(done.send);
        this.queueAppMessage(this.nodeStore.contact(peer)!, { type: 'kx-hello', id: randomId(this.rng), sentAt: now }, 'control');
      }
      this.nodeStore.markSeen(event.id, 'key exchange', now);
    });
    this.subscribeRendezvous();
    this.scheduleFlush(0);
    this.emit('kx', { peer, role: pending.role });
    // The inviter's first message can arrive before the full KX it depends on.
    this.retryParked(toHex(done.session.peer.nostrKey));
  }

  // Reading

  /** Stored messages after `seq`, oldest first. */
  messages(afterSeq = 0, limit = 1000): StoredMessage[] {
    return this.nodeStore.messagesAfter(afterSeq, limit);
  }

  /** Incoming messages not yet handed out by `takeUnread`; each is handed out exactly once. */
  takeUnread(): ReceivedMessage[] {
    return this.store.transaction(() => {
      const cursor = Number(this.nodeStore.setting('read_cursor') ?? '0');
      const rows = this.nodeStore.messagesAfter(cursor, 10_000);
      if (rows.length === 0) return [];
      this.nodeStore.setSetting('read_cursor', String(rows[rows.length - 1]!.seq));
      // A catch-up decrypts in relay order, which is only per-second; the sender's clock orders a batch.
      return rows
        .filter((m) => m.direction === 'in')
        .sort((a, b) => a.sentAt - b.sentAt || a.seq - b.seq)
        .map((m) => this.toReceived(m));
    });
  }

  toReceived(m: StoredMessage): ReceivedMessage {
    const c = this.nodeStore.contact(m.peer);
    const g = m.groupId ? this.nodeStore.group(m.groupId) : undefined;
    return {
      id: m.id,
      seq: m.seq,
      from: m.peer,
      alias: c?.alias ?? null,
      text: m.body,
      sentAt: m.sentAt,
      receivedAt: m.receivedAt ?? 0,
      trusted: c?.trusted ?? false,
      group: g ? { id: g.id, name: g.name } : null,
    };
  }

  /** Incoming messages as they arrive, for `for await`. */
  async *incoming(signal?: AbortSignal): AsyncGenerator<ReceivedMessage> {
    for await (const [m] of on(this, 'message', { signal })) yield m as ReceivedMessage;
  }

  contacts(): (Contact & { safetyNumber: string })[] {
    return this.nodeStore.contacts().map((c) => this.withSafetyNumber(c));
  }

  /** 5,200 SHA-512 rounds a side: computed for the contacts asked about only. */
  withSafetyNumber(c: Contact): Contact & { safetyNumber: string } {
    return { ...c, safetyNumber: formatSafetyNumber(safetyNumber(this.identity(), c.identity)) };
  }

  contact(ref: string): Contact {
    return this.nodeStore.resolveContact(ref) ?? fail('INVALID_ARGUMENT', `no contact matches "${ref}": see \`rrelay contacts ls\``);
  }

  peers(): (DiscoveredBundle & { alias: string | null; isContact: boolean })[] {
    return this.nodeStore.discoveredBundles().map((b) => {
      const c = this.nodeStore.contact(b.fingerprint);
      return { ...b, alias: c?.alias ?? null, isContact: c !== undefined };
    });
  }

  status(): {
    whoami: Whoami;
    relays: RelayStatus[];
    outboxPending: number;
    oneTimePreKeys: number;
    published: boolean;
    contacts: number;
    peers: number;
  } {
    const preKeys = this.store.loadPreKeyState();
    const stored = this.nodeStore.relays();
    return {
      whoami: this.whoami(),
      relays:
        this.relaySet?.status() ??
        this.relayUrls().map((url) => ({ url, connected: false, failures: 0, lastSeen: stored.find((r) => r.url === url)?.lastSeenAt ?? null })),
      outboxPending: this.nodeStore.pendingOutbox(),
      oneTimePreKeys: preKeys.oneTime.length,
      published: preKeys.published !== null && this.nodeStore.setting(SETTING_UNPUBLISHED) !== '1',
      contacts: this.nodeStore.contacts().length,
      peers: this.nodeStore.discoveredBundles().length,
    };
  }

  /** Waits until every connected relay has sent its stored events (EOSE), or `timeoutMs` passes. */
  async sync(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.relaySet && !this.relaySet.caughtUp() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return this.relaySet?.caughtUp() ?? false;
  }

  /** Waits until the outbox is empty or `timeoutMs` passes; returns how many entries are still pending. */
  async drain(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.nodeStore.pendingOutbox() > 0 && Date.now() < deadline) {
      await this.flush();
      if (this.nodeStore.pendingOutbox() > 0) await new Promise((r) => setTimeout(r, 50));
    }
    return this.nodeStore.pendingOutbox();
  }
}

type NodeTimeout = ReturnType<typeof setTimeout>;

function groupInviteKey(groupId: string, member: string): string {
  return `group-invite:${groupId}:${member}`;
}

/** The group id of a member list, read before its admin (and so its signature) is known. */
function decodeGroupId(members: Uint8Array): string {
  if (members.length < 17) return fail('MALFORMED', 'group members: truncated');
  return Buffer.from(members.subarray(1, 17)).toString('hex');
}

function forwardKey(inviter: string, invitee: string): string {
  return `forward:${inviter}:${invitee}`;
}

/** Resolves with the first `event` that matches, or rejects after `ms`. */
export function nextEvent<K extends keyof NodeEvents>(
  node: RatchetNode,
  event: K,
  match: (...args: NodeEvents[K]) => boolean = () => true,
  ms = 20_000,
): Promise<NodeEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      node.off(event, handler as never);
      reject(new Error(`no ${event} event within ${ms} ms`));
    }, ms);
    const handler = (...args: NodeEvents[K]) => {
      if (!match(...args)) return;
      clearTimeout(timer);
      node.off(event, handler as never);
      resolve(args);
    };
    node.on(event, handler as never);
  });
}

function whoamiOf(p: PublicIdentity): Whoami {
  const hex = toHex(p.nostrKey);
  return { fingerprint: fingerprint(p), npub: nip19.npubEncode(hex), nostrPubkey: hex, createdAt: p.createdAt };
}
