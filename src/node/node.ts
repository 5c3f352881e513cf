import { EventEmitter, on } from 'node:events';
import { existsSync } from 'node:fs';
import { type Rng, systemRng } from '../crypto/index.js';
import { fail, isRatchetRelayError } from '../errors.js';
import type { PublicIdentity } from '../identity/index.js';
import type { PreKeyConfig, RatchetConfig } from '../limits.js';
import { type Event, KIND_BUNDLE, KIND_MESSAGE, KIND_RENDEZVOUS, reasonOf } from '../nostr/events.js';
import { isPackedMailboxEvent, unpackMailboxEvent } from '../nostr/pack.js';
import { validateProxyUrl } from '../nostr/proxy.js';
import { RelaySet, type RelayStatus, type RelayTiming } from '../nostr/relay-set.js';
import { SessionCipher } from '../session/index.js';
import { checkNickname } from '../kx/index.js';
import { type KdfParams, KxStore, openDatabase, RelayList, Settings, SqliteProtocolStore } from '../store/index.js';
import { BUNDLE_FILTER, Bundles } from './bundles.js';
import { Contacts } from './contacts.js';
import { type EventHandler, NodeContext } from './context.js';
import { ensureDataDir, lockDataDir, paths } from './data-dir.js';
import { type NodeEvents, type ReceivedMessage, type Whoami, whoamiOf } from './events.js';
import { Groups } from './groups.js';
import { KeyExchange } from './key-exchange.js';
import { type Addressing, type AppMessageRoutes, messageFilter, Messaging } from './messaging.js';
import { Outbox, type OutboxTiming } from './outbox.js';

export interface NodeTiming extends OutboxTiming {
  /** Key maintenance runs this often while connected, besides on every connect. */
  maintenanceEveryMs: number;
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
  /** Relays to use instead of the ones stored with `relays add`; `init` stores them as the first ones. */
  readonly relays?: readonly string[];
  readonly clock?: () => number;
  readonly rng?: Rng;
  readonly kdf?: KdfParams;
  readonly log?: (line: string) => void;
  readonly timing?: Partial<NodeTiming>;
  readonly preKeys?: Partial<PreKeyConfig>;
  readonly ratchet?: Partial<RatchetConfig>;
  /** How our message events are addressed (see `Addressing`); `private` unless told otherwise. A node reads both. */
  readonly addressing?: Addressing;
  /**
   * Every relay connection goes through this SOCKS5 proxy (Tor, say): `socks5h://host:port` (relay
   * names resolved by the proxy) or `socks5://host:port`. Each connection uses its own random SOCKS
   * credentials, so that Tor puts the identity and anonymous lanes on separate circuits.
   */
  readonly proxy?: string;
  /** `init` only: the nickname our invites carry (checked by `checkNickname`); none if absent. */
  readonly nickname?: string;
}

export interface NodeStatus {
  whoami: Whoami;
  relays: RelayStatus[];
  outboxPending: number;
  oneTimePreKeys: number;
  published: boolean;
  contacts: number;
  peers: number;
  /** How our message events are addressed, and the proxy relay connections go through (null: none). */
  addressing: Addressing;
  proxy: string | null;
}

const SUB_BUNDLES = 'rr-bundles';
/**
 * Incoming events handled in one transaction at most: what arrives in one turn of the event loop
 * (a relay's whole backlog, say) commits in transactions of this many, not one per event.
 */
const EVENTS_PER_COMMIT = 512;
const SUB_MESSAGES = 'rr-messages';

/**
 * A ratchet-relay node: one identity, its store, and its relays. This class is the composition
 * root: it owns the lifecycle (open, start, maintain, close) and wires the capabilities, each of
 * which owns its handlers and its tables. It follows the seed's lifecycle: maintenance and
 * publishing on connect, republish when a one-time key is used, keys maintained on a timer.
 */
export class RatchetNode extends EventEmitter<NodeEvents> {
  readonly contacts: Contacts;
  readonly outbox: Outbox;
  readonly bundles: Bundles;
  readonly messaging: Messaging;
  readonly kx: KeyExchange;
  readonly groups: Groups;
  private readonly ctx: NodeContext;
  private readonly relayList: RelayList;
  private readonly timing: NodeTiming;
  private started: Promise<void> | undefined;
  private maintenanceTimer: ReturnType<typeof setInterval> | undefined;
  /** Events handed over by the relays and not handled yet: they are handled together on the next turn of the event loop. */
  private arriving: { event: Event; relay: string }[] = [];
  private readonly arrivingIds = new Set<string>();
  private incomingScheduled = false;

  /** Incoming Nostr events, by kind: which capability handles each. */
  private readonly eventRoutes: Readonly<Record<number, EventHandler>>;

  /** What arrives inside a session, by application message type: which capability handles each. */
  private readonly appRoutes: AppMessageRoutes;

  private constructor(
    private readonly options: NodeOptions,
    private readonly unlock: () => Promise<void>,
  ) {
    super();
    const clock = options.clock ?? Date.now;
    const rng = options.rng ?? systemRng;
    this.timing = { ...DEFAULT_NODE_TIMING, ...options.timing };
    // NORMAL commits, and one fsync (syncToDisk) before each batch of events is published.
    const db = openDatabase({ path: paths(options.dataDir).db, passphrase: options.passphrase, kdf: options.kdf, synchronous: 'NORMAL' });
    const store = new SqliteProtocolStore(db, clock);
    if (!store.hasIdentity()) {
      db.close();
      fail('NOT_FOUND', `no identity in ${options.dataDir}: run \`rrelay init\` first`);
    }
    const cipher = new SessionCipher(store, { rng, clock, preKeys: options.preKeys, ratchet: options.ratchet });
    const ctx = (this.ctx = new NodeContext(store, cipher, clock, rng, options.log ?? (() => {}), this));
    this.relayList = new RelayList(db);

    this.contacts = new Contacts(ctx);
    this.outbox = new Outbox(
      ctx,
      this.timing,
      (entry, event, acceptedBy, first) => {
        this.messaging.onAccepted(entry, acceptedBy);
        this.bundles.onAccepted(entry, event, acceptedBy, first);
      },
      (entry, event, reason) => this.messaging.onRefusedByRelays(entry, event, reason),
    );
    this.bundles = new Bundles(ctx, this.contacts, this.outbox);
    this.messaging = new Messaging(
      ctx,
      this.contacts,
      this.bundles,
      this.outbox,
      {
        routes: () => this.appRoutes,
        groupOf: (id) => this.groups.summary(id),
      },
      options.addressing ?? 'private',
    );
    this.kx = new KeyExchange(ctx, this.contacts, this.bundles, this.messaging, this.outbox, (admin, peer) => this.groups.joinedGroupOf(admin, peer));
    this.groups = new Groups(ctx, this.contacts, this.bundles, this.messaging, this.kx);

    this.eventRoutes = {
      [KIND_BUNDLE]: (event) => this.bundles.onBundleEvent(event),
      [KIND_MESSAGE]: (event, relay) => this.messaging.onMessageEvent(event, relay),
      [KIND_RENDEZVOUS]: (event) => this.kx.onRendezvousEvent(event),
    };
    this.appRoutes = {
      text: this.messaging.onText,
      receipt: this.messaging.onReceipt,
      'kx-hello': this.messaging.onKxHello,
      'mediate-identity': this.kx.onMediateIdentity,
      'invite-request': this.kx.onInviteRequest,
      transitive: this.kx.onTransitive,
      introduced: this.kx.onIntroduced,
      'reset-via': this.kx.onResetVia,
      'reset-forwarded': this.kx.onResetForwarded,
      'group-invite': this.groups.onGroupInvite,
      'group-join': this.groups.onGroupJoin,
      'group-members': this.groups.onGroupMembers,
      'group-text': this.groups.onGroupText,
      refused: (from, m, now) => {
        this.kx.onRefused(from, m, now);
        this.messaging.onRefused(from, m, now);
      },
    };
  }

  /** Creates the data directory, the encrypted store and a new identity. Fails if one exists. */
  static async init(options: NodeOptions): Promise<Whoami> {
    ensureDataDir(options.dataDir);
    if (existsSync(paths(options.dataDir).db)) fail('INVALID_ARGUMENT', `${options.dataDir} already holds an identity`);
    const nickname = options.nickname === undefined ? null : checkNickname(options.nickname);
    const unlock = await lockDataDir(options.dataDir);
    try {
      const db = openDatabase({ path: paths(options.dataDir).db, passphrase: options.passphrase, kdf: options.kdf });
      const store = new SqliteProtocolStore(db);
      const clock = options.clock ?? Date.now;
      store.ensureIdentity(options.rng ?? systemRng, clock());
      new SessionCipher(store, { rng: options.rng ?? systemRng, clock, preKeys: options.preKeys }).maintain();
      const relays = new RelayList(db);
      for (const url of options.relays ?? []) relays.add(url, clock());
      if (nickname !== null) new KxStore(db, new Settings(db)).setNickname(nickname);
      const me = whoamiOf(store.identity().public, nickname);
      db.close();
      return me;
    } finally {
      await unlock();
    }
  }

  /** Opens an initialized data directory. Holds its lock until close(). */
  static async open(options: NodeOptions): Promise<RatchetNode> {
    if (options.proxy !== undefined) options = { ...options, proxy: validateProxyUrl(options.proxy) };
    if (!existsSync(paths(options.dataDir).db)) fail('NOT_FOUND', `no identity in ${options.dataDir}: run \`rrelay init\` first`);
    const unlock = await lockDataDir(options.dataDir);
    try {
      return new RatchetNode(options, unlock);
    } catch (e) {
      await unlock();
      throw e;
    }
  }

  get cipher(): SessionCipher {
    return this.ctx.cipher;
  }

  get store(): SqliteProtocolStore {
    return this.ctx.store;
  }

  whoami(): Whoami {
    return whoamiOf(this.identity(), this.kx.nickname());
  }

  identity(): PublicIdentity {
    return this.ctx.self();
  }

  get selfNostr(): string {
    return this.ctx.selfNostr;
  }

  // Relays

  /** The relays in use: those given in the options, else the stored list. */
  relayUrls(): string[] {
    return [...(this.options.relays ?? this.relayList.all().map((r) => r.url))];
  }

  relays(): { url: string; lastSeenAt: number | null }[] {
    return this.relayList.all();
  }

  /** Adds a relay to the stored list; a running node connects to it at once. */
  addRelay(url: string): boolean {
    const added = this.relayList.add(url, this.ctx.clock());
    if (added) this.ctx.relays?.add(url);
    return added;
  }

  /** Whether any relay is connected now (never before `start`). */
  isConnected(): boolean {
    return (this.ctx.relays?.connectedCount() ?? 0) > 0;
  }

  /** Removes a relay from the stored list; a running node drops it at once. */
  removeRelay(url: string): boolean {
    const removed = this.relayList.remove(url);
    if (removed) this.ctx.relays?.remove(url);
    return removed;
  }

  // Lifecycle

  /** Connects, runs maintenance, publishes if anything changed (or never published), subscribes. Idempotent. */
  start(): Promise<void> {
    // A start that failed (no relay configured, say) may be tried again.
    this.started ??= this.connect().catch((e: unknown) => {
      this.started = undefined;
      throw e;
    });
    return this.started;
  }

  private async connect(): Promise<void> {
    const urls = this.relayUrls();
    if (urls.length === 0) fail('INVALID_ARGUMENT', 'no relays configured: add one with `rrelay relays add <ws-url>`');
    const relays = new RelaySet(urls, {
      onEvent: (event, relay) => this.queueEvent(event, relay),
      onReject: (reason, relay) => this.ctx.reject(relay, null, reason),
      onBacklogDone: (url) => {
        // The cursor passes these events: they are handled (and committed) before it is stored.
        this.handleIncoming();
        this.persistCursor(url);
        this.messaging.retryHeldBack();
      },
      alreadyHave: (id) => this.arrivingIds.has(id) || this.ctx.seen.has(id),
      onStatus: (url, connected, error) => {
        if (!connected) {
          this.handleIncoming();
          this.persistCursor(url);
        }
        this.emit('relay', { url, connected, error });
        if (connected) {
          this.outbox.scheduleFlush(0);
          void this.outbox.catchUpRelay(url);
        }
      },
      onReason: (url, error) => this.emit('relay', { url, connected: false, error }),
      lastSeen: (url) => this.relayList.lastSeen(url),
      clock: this.ctx.clock,
      log: this.ctx.log,
      timing: this.timing.relay,
      identityPubkey: this.ctx.selfNostr,
      proxy: this.options.proxy,
    });
    this.ctx.relays = relays;
    for (const url of urls) this.relayList.add(url, this.ctx.clock());
    await relays.start();
    this.maintain();
    relays.subscribe(SUB_BUNDLES, [BUNDLE_FILTER]);
    // The inbox names the node's key: on the identity lane, away from every anonymous subscription.
    relays.subscribe(SUB_MESSAGES, [messageFilter(this.ctx.selfNostr)], 'identity');
    this.messaging.mailboxes.subscribe();
    this.kx.subscribe();
    this.maintenanceTimer = setInterval(() => this.maintain(), this.timing.maintenanceEveryMs);
    this.maintenanceTimer.unref();
    this.messaging.sendOwedReceipts();
    this.outbox.scheduleFlush(0);
  }

  /** Flushes what it can, disconnects, and releases the store and the lock. */
  async close(): Promise<void> {
    if (this.ctx.closed) return;
    clearInterval(this.maintenanceTimer);
    // Handed over means past the cursor: handled before the cursors are stored.
    this.handleIncoming();
    this.messaging.sendReceipts();
    this.messaging.mailboxes.close();
    this.ctx.closed = true;
    await this.outbox.close();
    const relays = this.ctx.relays;
    if (relays) for (const r of relays.status()) this.persistCursor(r.url);
    relays?.stop();
    this.ctx.db.close();
    await this.unlock();
  }

  /** The node's maintenance tick: keys and bundle, expired key exchanges, old outbox entries and seen ids, missing group introductions. */
  maintain(): void {
    const now = this.ctx.clock();
    this.outbox.prune(now);
    this.ctx.seen.prune(now, this.relayList.oldestCursor());
    this.messaging.maintain(now);
    this.kx.expire(now);
    this.groups.retryIntroductions(now);
    this.bundles.maintain();
  }

  /** An event a relay handed over: handled with whatever else arrives in this turn of the event loop. */
  private queueEvent(event: Event, relay: string): void {
    if (this.ctx.closed || this.arrivingIds.has(event.id)) return;
    this.arriving.push({ event, relay });
    this.arrivingIds.add(event.id);
    if (this.incomingScheduled) return;
    this.incomingScheduled = true;
    setImmediate(() => this.handleIncoming());
  }

  /**
   * Handles the queued events, in transactions of up to EVENTS_PER_COMMIT events: one commit for a
   * burst instead of one per event. Each decrypt still runs in a savepoint of its own, so one that
   * is refused changes nothing and takes nothing else with it. Messages go in their senders' chain
   * order (see `Messaging.chainOrder`), so a backlog that relays hand over out of order is not held back.
   * A packed mailbox event is handled as its envelopes, each as a mailbox event of its own (see
   * `unpackMailboxEvent`); the pack is marked seen with the last of them, so a crash before that
   * reads it again, and its envelopes already handled are skipped by their own seen marks.
   */
  private handleIncoming(): void {
    this.incomingScheduled = false;
    if (this.arriving.length === 0) return;
    const arrived = this.arriving;
    this.arriving = [];
    this.arrivingIds.clear();
    if (this.ctx.closed || !this.ctx.db.open) return;
    const packs: string[] = [];
    const batch = arrived.flatMap((x) => {
      if (x.event.kind !== KIND_MESSAGE || !isPackedMailboxEvent(x.event) || this.ctx.seen.has(x.event.id)) return [x];
      try {
        const parts = unpackMailboxEvent(x.event).map((event) => ({ event, relay: x.relay }));
        packs.push(x.event.id);
        return parts;
      } catch (e) {
        this.ctx.transaction(() => this.refuse(x.event, x.relay, e));
        return [];
      }
    });
    const messages = this.messaging.chainOrder(batch.filter((x) => x.event.kind === KIND_MESSAGE));
    const ordered = [...batch.filter((x) => x.event.kind !== KIND_MESSAGE), ...messages];
    for (let i = 0; i < ordered.length && this.ctx.db.open; i += EVENTS_PER_COMMIT) {
      this.ctx.transaction(() => {
        for (const { event, relay } of ordered.slice(i, i + EVENTS_PER_COMMIT)) this.onEvent(event, relay);
        if (i + EVENTS_PER_COMMIT < ordered.length || !this.ctx.db.open) return;
        const now = this.ctx.clock();
        for (const id of packs) this.ctx.seen.mark(id, 'unpacked', now);
      });
    }
  }

  /**
   * Routes one incoming event to its capability. A handler that throws refuses the event: it is
   * marked seen with the reason, so it is never tried again, and nothing else changed (each handler
   * changes state in transactions of its own, savepoints here, and keeps on purpose what it did
   * before refusing: a retry request it sent, say).
   */
  private onEvent(event: Event, relay: string): void {
    if (this.ctx.closed || !this.ctx.db.open || this.ctx.seen.has(event.id)) return;
    const handle = this.eventRoutes[event.kind];
    if (!handle) return this.ctx.reject(relay, event.id, `no handler for kind ${event.kind}`);
    try {
      handle(event, relay);
    } catch (e) {
      this.refuse(event, relay, e);
    }
  }

  /** Refuses an event for good: marked seen with the reason (inside a transaction), and reported once that commits. */
  private refuse(event: Event, relay: string, e: unknown): void {
    const reason = reasonOf(e);
    if (!isRatchetRelayError(e)) this.ctx.log(`unexpected error on event ${event.id.slice(0, 12)}: ${e instanceof Error ? e.stack : reason}`);
    if (!this.ctx.db.open) return;
    this.ctx.seen.mark(event.id, `rejected: ${reason}`, this.ctx.clock());
    this.ctx.afterCommit(() => this.ctx.reject(relay, event.id, reason));
  }

  private persistCursor(url: string): void {
    const seen = this.ctx.relays?.lastSeen(url);
    if (seen !== null && seen !== undefined && this.ctx.db.open) this.relayList.markSeen(url, seen);
  }

  // Reading

  /** Incoming messages as they arrive, for `for await`. */
  async *incoming(signal?: AbortSignal): AsyncGenerator<ReceivedMessage> {
    for await (const [m] of on(this, 'message', { signal })) yield m as ReceivedMessage;
  }

  status(): NodeStatus {
    const stored = this.relayList.all();
    return {
      whoami: this.whoami(),
      relays:
        this.ctx.relays?.status() ??
        this.relayUrls().map((url) => ({ url, connected: false, failures: 0, lastSeen: stored.find((r) => r.url === url)?.lastSeenAt ?? null, error: null })),
      outboxPending: this.outbox.pending(),
      oneTimePreKeys: this.ctx.store.loadPreKeyState().oneTime.length,
      published: this.bundles.isPublished(),
      contacts: this.contacts.all().length,
      peers: this.bundles.count(),
      addressing: this.options.addressing ?? 'private',
      proxy: this.options.proxy ?? null,
    };
  }

  /** Waits until every connected relay has sent its stored events (EOSE), or `timeoutMs` passes. */
  async sync(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.ctx.relays && !this.ctx.relays.caughtUp() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return this.ctx.relays?.caughtUp() ?? false;
  }

  /** Waits until the outbox is empty or `timeoutMs` passes; returns how many entries are still pending. */
  drain(timeoutMs: number): Promise<number> {
    return this.outbox.drain(timeoutMs);
  }
}
