import { randomBytes } from 'node:crypto';
import { AbstractRelay, type Subscription } from 'nostr-tools/abstract-relay';
import type { Filter } from 'nostr-tools/filter';
import { SocksProxyAgent } from 'socks-proxy-agent';
import WebSocket from 'ws';
import { checkIncomingEvent, type Event, MAX_EVENT_BYTES } from './events.js';
import { peekEventFrame } from './frame.js';

/**
 * Each relay gets two connections, so that no connection ties the node's key to what it reads or
 * sends anonymously: `identity` carries what is signed by or names the node's Nostr key (its inbox
 * subscription, its bundle and seed-format publishes), `anonymous` everything else (docs/protocol.md,
 * "Connections").
 */
export type Lane = 'identity' | 'anonymous';
export const LANES: readonly Lane[] = ['identity', 'anonymous'];

export interface RelaySetOptions {
  /** Called once per verified event that matched a subscription; `relay` is the URL it came from. */
  readonly onEvent: (event: Event, relay: string, subscription: string) => void;
  /** Called for every event refused at the gate, with the reason. */
  readonly onReject?: (reason: string, relay: string) => void;
  /** Lets the owner skip events it has already processed without parsing them. */
  readonly alreadyHave?: (id: string) => boolean;
  /** A relay is connected once both its lanes are; it is disconnected as soon as either drops (`error`: why, as `status()` says). */
  readonly onStatus?: (relay: string, connected: boolean, error: string | null) => void;
  /** A relay still not connected has a new reason (its `status().error`): a first failure, or a different one. */
  readonly onReason?: (relay: string, error: string | null) => void;
  /** Called once a subscription's stored events have all been read (to the relay's empty answer) and handed over. */
  readonly onBacklogDone?: (relay: string, subscription: string) => void;
  /** The persisted cursor per relay (created_at, seconds: every stored event older was read), for `since` on reconnect. */
  readonly lastSeen: (relay: string) => number | null;
  readonly clock?: () => number;
  readonly log?: (line: string) => void;
  readonly timing?: Partial<RelayTiming>;
  /** The node's Nostr key: events it signed are published on the identity lane, all others on the anonymous one. */
  readonly identityPubkey?: string;
  /** Every connection goes through this SOCKS5 proxy (a URL `validateProxyUrl` accepted), never directly. */
  readonly proxy?: string;
}

export interface RelayTiming {
  connectTimeoutMs: number;
  publishTimeoutMs: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  /** `since` on resubscribe is the last event seen minus this, for relays that store late or out of order. */
  sinceMarginS: number;
  pingEveryMs: number;
  /**
   * The WebSocket frame cap: ws buffers a whole frame before anything can look at it, and closes
   * the connection on a larger one. Well above any event a relay accepts, so that an oversize event
   * costs only itself (it is dropped unparsed, see MAX_PARSED_FRAME), never the connection.
   */
  maxMessageBytes: number;
  /** A connection that ends sooner than this after opening counts as a failed connect: backoff keeps growing. */
  stableSessionMs: number;
}

export const DEFAULT_RELAY_TIMING: RelayTiming = {
  connectTimeoutMs: 5000,
  publishTimeoutMs: 5000,
  reconnectBaseMs: 500,
  reconnectMaxMs: 60_000,
  sinceMarginS: 600,
  pingEveryMs: 30_000,
  maxMessageBytes: 2 * 1024 * 1024,
  stableSessionMs: 30_000,
};

export interface RelayStatus {
  readonly url: string;
  /** Both lanes are connected. */
  readonly connected: boolean;
  /** Failed connects in a row, of the lane that failed most. */
  readonly failures: number;
  readonly lastSeen: number | null;
  /** Why a lane that is down last failed (it names the lane, and the proxy if there is one); null while both are up. */
  readonly error: string | null;
}

export interface PublishResult {
  readonly accepted: string[];
  readonly rejected: { url: string; reason: string }[];
}

interface WantedSubscription {
  readonly key: string;
  readonly filters: Filter[];
  readonly lane: Lane;
}

/** A bound on paging back through one relay's stored events (at 500 a page: half a million events). */
const MAX_PAGES = 1000;
/**
 * NIP-01 `limit` on every query for stored events: one answer is at most this many events, also from
 * a relay with no cap of its own (strfry caps at 500). Past it the pager pages on with `until`.
 */
export const PAGE_LIMIT = 500;
/**
 * A frame longer than this (characters) is dropped before anything parses it: the largest event the
 * gate accepts plus the `["EVENT","<subscription id>",…]` around it. An EVENT frame still counts as
 * an event handed over (for paging and the cursor), from what `peekEventFrame` reads of it.
 */
export const MAX_PARSED_FRAME = MAX_EVENT_BYTES + 1024;

/** Counts of one answer to a query for stored events: frames, frames with new ids, the oldest created_at. */
interface Answer {
  count: number;
  fresh: number;
  oldest: number;
}

/** Notes one event frame of a subscription, kept or not: its id and created_at, as far as known. */
type FrameSink = (id: string | null, createdAt: number | null) => void;

/** What an event frame nostr-tools parsed but did not pass says of itself. */
function idOf(raw: unknown): string | null {
  const id = (raw as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? id : null;
}
function createdAtOf(raw: unknown): number | null {
  const t = (raw as { created_at?: unknown } | null)?.created_at;
  return typeof t === 'number' && Number.isSafeInteger(t) && t >= 0 ? t : null;
}

/**
 * nostr-tools rejects pending publishes and closes subscriptions when a connection ends, but leaves
 * their timers (publish timeout, EOSE timeout) running: after a stalled relay they would keep the
 * process alive for minutes. Called before the connection is dropped or once it is lost.
 */
function releaseTimers(relay: AbstractRelay): void {
  const pending = (relay as unknown as { openEventPublishes?: Map<string, { timeout?: NodeJS.Timeout }> }).openEventPublishes;
  for (const p of pending?.values() ?? []) clearTimeout(p.timeout);
  for (const sub of relay.openSubs.values()) clearEoseTimer(sub);
}

function clearEoseTimer(sub: Subscription): void {
  clearTimeout((sub as unknown as { eoseTimeoutHandle?: NodeJS.Timeout }).eoseTimeoutHandle);
}

/** Subscription.close() leaves its EOSE timer running too. */
function closeSubscription(sub: Subscription | undefined): void {
  if (!sub) return;
  clearEoseTimer(sub);
  sub.close();
}

/**
 * The agent for one relay connection through `proxy` (a URL `validateProxyUrl` accepted). Each gets
 * a fresh random SOCKS username and password: Tor's IsolateSOCKSAuth (on by default) then never
 * puts two connections, the identity and the anonymous lane of one relay say, on one circuit.
 */
export function proxyAgent(proxy: string): SocksProxyAgent {
  const u = new URL(proxy);
  u.username = randomBytes(12).toString('hex');
  u.password = randomBytes(12).toString('hex');
  return new SocksProxyAgent(u);
}

/** One lane of one relay: its own socket, reconnect schedule and subscriptions. */
class LaneLink {
  private relay: AbstractRelay | undefined;
  private readonly subs = new Map<string, Subscription>();
  /** Per subscription id on this connection (pages included): where its event frames are counted. */
  private readonly sinks = new Map<string, FrameSink>();
  /** Subscriptions whose stored events this relay has finished sending (EOSE). */
  readonly eosed = new Set<string>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Failed connects and sessions in a row; a session that lasts `stableSessionMs` ends the run. */
  failures = 0;
  /** Why the last connection failed or ended; null while connected. */
  error: string | null = null;
  /** When the current connection opened (clock ms), or null while there is none. */
  private openedAt: number | null = null;
  /** Subscriptions whose stored events are not all read yet (on this connection). */
  readonly reading = new Set<string>();
  private readonly url: string;
  private readonly set: RelaySet;

  constructor(
    private readonly link: RelayLink,
    readonly lane: Lane,
  ) {
    this.url = link.url;
    this.set = link.set;
  }

  get connected(): boolean {
    return this.relay?.connected ?? false;
  }

  async connect(): Promise<void> {
    if (this.stopped) return;
    const timing = this.set.timing;
    const maxPayload = timing.maxMessageBytes;
    const proxy = this.set.options.proxy;
    // With a proxy, the socket is made by the agent, through the proxy, and never directly.
    const agent = proxy === undefined ? undefined : proxyAgent(proxy);
    let socketError: string | undefined;
    class BoundedWebSocket extends WebSocket {
      constructor(address: string) {
        // Bound every relay message: ws closes the socket on a larger frame instead of buffering it.
        super(address, { maxPayload, agent });
        // nostr-tools removes its error handler and then closes a socket that is still connecting
        // (connect timeout, close()): ws reports that as an 'error' event, which with no listener
        // would end the process. nostr-tools' own handler, while set, reports the rest. The error
        // is kept for the status: nostr-tools says only "connection failed".
        this.on('error', (e) => (socketError = e.message));
      }
    }
    let relay: AbstractRelay;
    try {
      relay = new AbstractRelay(this.url, {
        verifyEvent: (event) => this.gate(event),
        websocketImplementation: BoundedWebSocket as unknown as typeof globalThis.WebSocket,
        enablePing: true,
      });
    } catch (e) {
      this.error = `${this.lane} lane: ${String(e)}; not connecting`;
      this.set.log(`${this.url}: ${this.error}`);
      return;
    }
    relay.publishTimeout = timing.publishTimeoutMs;
    relay.pingFrequency = timing.pingEveryMs;
    // nostr-tools leaves this timer running after close(); keep it short.
    relay.pingTimeout = Math.min(timing.pingEveryMs, 5000);
    relay.onnotice = (msg) => this.set.log(`${this.url}: NOTICE ${msg.slice(0, 200)}`);
    // Why, as far as the socket said: nostr-tools says only "connection failed" or "closed".
    const why = (what: string, otherwise = '') => `${what}${proxy === undefined ? '' : ` through the proxy ${proxy}`}${socketError === undefined ? otherwise : `: ${socketError}`}`;
    relay.onclose = () => this.lost(why(this.openedAt === null ? 'cannot connect' : 'connection closed'));
    // nostr-tools binds this at connect: every frame passes `frame` first.
    const parse = relay._onmessage.bind(relay);
    relay._onmessage = (ev) => this.frame(ev.data, parse);
    this.relay = relay;
    try {
      await relay.connect({ timeout: timing.connectTimeoutMs });
    } catch (e) {
      this.lost(why('cannot connect', `: ${String(e)}`));
      return;
    }
    if (this.stopped) return relay.close();
    this.openedAt = this.set.clock();
    this.error = null;
    this.set.log(`${this.url}: ${this.lane} lane connected`);
    for (const want of this.set.wanted.values()) if (want.lane === this.lane) this.subscribe(want);
    this.link.laneChanged();
  }

  /**
   * Every frame from the relay, before nostr-tools parses it. An EVENT frame too large for the gate,
   * or carrying an event already held, is dropped unparsed; it still counts as handed over.
   */
  private frame(data: unknown, parse: (ev: MessageEvent) => void): void {
    // NIP-01 is text only.
    if (typeof data !== 'string') return this.set.log(`${this.url}: binary frame dropped`);
    const peek = peekEventFrame(data);
    const sink = peek && this.sinks.get(peek.sub);
    if (data.length > MAX_PARSED_FRAME) {
      if (!peek) return this.set.log(`${this.url}: frame of ${data.length} characters exceeds ${MAX_PARSED_FRAME}; dropped`);
      this.set.options.onReject?.(`event frame of ${data.length} characters exceeds ${MAX_PARSED_FRAME}`, this.url);
    } else if (!sink || peek.id === null || !this.set.options.alreadyHave?.(peek.id)) return parse({ data } as MessageEvent);
    sink?.(peek.id, peek.createdAt);
    this.link.advanceSeen();
  }

  private gate(event: unknown): boolean {
    const reason = checkIncomingEvent(event, this.set.clock());
    if (reason) this.set.options.onReject?.(reason, this.url);
    return reason === null;
  }

  private lost(reason: string): void {
    if (this.relay === undefined) return;
    releaseTimers(this.relay);
    this.relay = undefined;
    this.subs.clear();
    this.sinks.clear();
    this.eosed.clear();
    this.reading.clear();
    this.error = `${this.lane} lane: ${reason}`;
    this.link.laneChanged();
    const t = this.set.timing;
    // A relay that drops every connection at once (a frame over the cap, say) backs off as one that refuses it.
    if (this.openedAt !== null && this.set.clock() - this.openedAt >= t.stableSessionMs) this.failures = 0;
    this.openedAt = null;
    if (this.stopped) return;
    this.failures++;
    const backoff = Math.min(t.reconnectMaxMs, t.reconnectBaseMs * 2 ** Math.min(this.failures - 1, 16));
    const delay = backoff / 2 + Math.random() * (backoff / 2);
    this.set.log(`${this.url}: ${this.lane} lane: ${reason}; retrying in ${Math.round(delay)} ms`);
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }

  subscribe(want: WantedSubscription): void {
    const relay = this.relay;
    if (!relay?.connected) return;
    closeSubscription(this.subs.get(want.key));
    this.reading.add(want.key);
    this.eosed.delete(want.key);
    const margin = this.set.timing.sinceMarginS;
    const seen = this.link.seen;
    const since = seen === null ? undefined : Math.max(0, seen - margin);
    const filters = want.filters.map((f) => (since === undefined || (f.since ?? 0) > since ? f : { ...f, since }));
    const stored = (f: Filter, until?: number): Filter => ({ ...f, ...(until === undefined ? {} : { until }), limit: Math.min(f.limit ?? PAGE_LIMIT, PAGE_LIMIT) });
    // Stored events come newest first and a relay caps each answer: page back with `until` to the
    // end of the backlog, then hand everything over oldest first, as a ratchet wants it.
    let backlog: Map<string, Event> | null = new Map();
    // The id of every event frame read in the backlog: kept, already held, refused or oversize.
    const read = new Set<string>();
    let largestAnswer = 0;
    // 'done': read to the end. 'truncated': too many pages; hand over what came. 'lost': the connection
    // or the subscription ended first; hand over nothing, as the next subscription reads it all again
    // from the unchanged cursor, oldest first (the part read so far is the newest).
    const finish = (how: 'done' | 'truncated' | 'lost') => {
      if (!backlog) return;
      const events = [...backlog.values()].sort((a, b) => a.created_at - b.created_at);
      backlog = null;
      if (how === 'lost') return;
      if (how === 'done' && this.subs.get(want.key) === sub) {
        this.eosed.add(want.key);
        this.reading.delete(want.key);
      }
      const have = this.set.options.alreadyHave;
      for (const e of events) if (!have?.(e.id)) this.deliver(e, want.key);
      this.link.advanceSeen();
      if (how === 'done') this.set.options.onBacklogDone?.(this.url, want.key);
    };
    /**
     * Counts every event frame of subscription `id` in `answer`: the relay handed it over whether it
     * was kept or not, so it moves the cursor and the pager. `keep` gets the verified ones.
     */
    const track = (id: string, answer: Answer, keep: (event: Event) => void) => {
      const sink: FrameSink = (eventId, createdAt) => {
        if (createdAt !== null) this.link.handedOver(createdAt);
        if (!backlog) return;
        answer.count++;
        if (eventId === null || !read.has(eventId)) answer.fresh++;
        if (eventId !== null) read.add(eventId);
        if (createdAt !== null) answer.oldest = Math.min(answer.oldest, createdAt);
      };
      this.sinks.set(id, sink);
      return {
        id,
        onevent: (event: Event) => {
          sink(event.id, event.created_at);
          keep(event);
        },
        oninvalidevent: (raw: unknown) => {
          sink(idOf(raw), createdAtOf(raw));
          this.link.advanceSeen();
        },
        untrack: () => this.sinks.get(id) === sink && this.sinks.delete(id),
      };
    };
    const page = (until: number, round: number) => {
      // A filter whose `since` has reached `until` is done: its `since` second was read by the
      // connection that set the cursor, and relays refuse since ≥ until (snstr: a NOTICE, no EOSE).
      const pageFilters = filters.filter((f) => f.since === undefined || f.since < until).map((f) => stored(f, until));
      if (pageFilters.length === 0) return finish('done');
      const answer: Answer = { count: 0, fresh: 0, oldest: until };
      let answered = false;
      const tracked = track(`${want.key}-page${round}`, answer, (event) => backlog?.set(event.id, event));
      const older = relay.subscribe(pageFilters, {
        ...tracked,
        oneose: () => {
          answered = true;
          closeSubscription(older);
          if (!backlog) return;
          const { count, fresh, oldest } = answer;
          largestAnswer = Math.max(largestAnswer, count);
          // An empty answer: nothing at or before `until` is left unread.
          if (count === 0) return finish('done');
          if (round >= MAX_PAGES) {
            this.set.log(`${this.url}: subscription ${want.key}: backlog longer than ${MAX_PAGES} pages; the rest is read on the next connection`);
            return finish('truncated');
          }
          // `until` is inclusive, so a page repeats the events of its oldest second. A page that
          // brings nothing new is that second alone, and a full one means more events share it
          // than the relay returns at once: step past it, or the same page would come back forever.
          if (fresh > 0) return page(oldest, round + 1);
          // Past the first page an earlier answer was cut, so one as large is full too.
          if (round > 1 && count >= largestAnswer) this.set.log(`${this.url}: subscription ${want.key}: ${count} events at created_at ${oldest} fill an answer; any more at that second are past what this relay returns`);
          page(oldest - 1, round + 1);
        },
        onclose: () => {
          tracked.untrack();
          if (!answered) finish('lost');
        },
        eoseTimeout: 60_000,
      });
    };
    const first: Answer = { count: 0, fresh: 0, oldest: Number.POSITIVE_INFINITY };
    const tracked = track(want.key, first, (event) => (backlog ? backlog.set(event.id, event) : this.deliver(event, want.key)));
    const sub: Subscription = relay.subscribe(
      filters.map((f) => stored(f)),
      {
        ...tracked,
        oneose: () => {
          if (!backlog) return;
          largestAnswer = first.count;
          if (first.count === 0) return finish('done');
          // No frame said its created_at (a relay that lies): page from our clock.
          page(Number.isFinite(first.oldest) ? first.oldest : Math.floor(this.set.clock() / 1000), 1);
        },
        onclose: (reason) => {
          tracked.untrack();
          if (this.subs.get(want.key) === sub) this.subs.delete(want.key);
          finish('lost');
          if (!this.stopped && reason && !reason.startsWith('relay connection')) this.set.log(`${this.url}: subscription ${want.key} closed: ${reason}`);
        },
        eoseTimeout: 60_000,
      },
    );
    this.subs.set(want.key, sub);
  }

  /** Hands one verified event over. */
  private deliver(event: Event, key: string): void {
    this.set.options.onEvent(event, this.url, key);
    this.link.advanceSeen();
  }

  unsubscribe(key: string): void {
    closeSubscription(this.subs.get(key));
    this.subs.delete(key);
    this.eosed.delete(key);
    this.reading.delete(key);
    this.link.advanceSeen();
  }

  async publish(event: Event): Promise<void> {
    const relay = this.relay;
    if (!relay?.connected) throw new Error('not connected');
    await relay.publish(event);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const relay = this.relay;
    this.relay = undefined;
    if (relay) {
      releaseTimers(relay);
      relay.close();
    }
  }
}

/** One relay: its two lanes and the cursor they share. Nothing here touches another relay. */
class RelayLink {
  readonly lanes: Readonly<Record<Lane, LaneLink>>;
  /** The cursor: every stored event older than this (created_at, seconds) has been read, on both lanes. */
  seen: number | null;
  /** The newest created_at this relay handed over on either lane; it becomes `seen` once no backlog is left unread. */
  private newest: number | null = null;
  /** What `onStatus` last said, and the error `status()` gave then or `onReason` gave since. */
  private reported = false;
  private reportedError: string | null = null;

  constructor(
    readonly url: string,
    readonly set: RelaySet,
  ) {
    // A stored cursor ahead of our clock (an older version, a clock set back) must not skip what comes until then.
    const stored = set.options.lastSeen(url);
    this.seen = stored === null ? null : Math.min(stored, Math.floor(set.clock() / 1000));
    this.lanes = { identity: new LaneLink(this, 'identity'), anonymous: new LaneLink(this, 'anonymous') };
  }

  /** Both lanes are up. */
  get connected(): boolean {
    return LANES.every((l) => this.lanes[l].connected);
  }

  get anyConnected(): boolean {
    return LANES.some((l) => this.lanes[l].connected);
  }

  connect(): Promise<void[]> {
    return Promise.all(LANES.map((l) => this.lanes[l].connect()));
  }

  /** A lane connected or dropped: tells the owner when the relay as a whole did. */
  laneChanged(): void {
    const now = this.connected;
    const { error } = this.status();
    if (now !== this.reported) {
      this.reported = now;
      this.set.options.onStatus?.(this.url, now, error);
    } else if (error !== this.reportedError) this.set.options.onReason?.(this.url, error);
    this.reportedError = error;
    this.advanceSeen();
  }

  /**
   * The relay handed over an event of this created_at: it raises the newest read, never past our own
   * clock, so that an event dated in the future (relays take some up to 15 min ahead) cannot move
   * the cursor past events that are still to come.
   */
  handedOver(createdAt: number): void {
    const at = Math.min(createdAt, Math.floor(this.set.clock() / 1000));
    if (this.newest === null || at > this.newest) this.newest = at;
  }

  /**
   * The cursor (`since` on the next connection) moves up to the newest event read only while no
   * subscription on this relay, on either lane, has stored events left unread: everything older than
   * the newest event is then known to have been read. Never while a lane that has subscriptions is
   * disconnected: what was left unread when it was lost is known again only once every subscription
   * is back.
   */
  advanceSeen(): void {
    if (this.newest === null || !this.anyConnected) return;
    for (const l of LANES) {
      const lane = this.lanes[l];
      if (lane.reading.size > 0 || (!lane.connected && this.set.hasWanted(l))) return;
    }
    if (this.seen === null || this.newest > this.seen) this.seen = this.newest;
  }

  status(): RelayStatus {
    const lanes = LANES.map((l) => this.lanes[l]);
    const down = lanes.filter((l) => !l.connected);
    return {
      url: this.url,
      connected: down.length === 0,
      failures: Math.max(...lanes.map((l) => l.failures)),
      lastSeen: this.seen,
      error: down.map((l) => l.error).find((e) => e !== null) ?? (down.length > 0 ? `${down.map((l) => l.lane).join(' and ')} not connected yet` : null),
    };
  }

  stop(): void {
    for (const l of LANES) this.lanes[l].stop();
  }
}

/** Several relays at once: subscribe on all, publish to all, track each relay's OK. */
export class RelaySet {
  readonly timing: RelayTiming;
  readonly clock: () => number;
  readonly wanted = new Map<string, WantedSubscription>();
  private readonly links = new Map<string, RelayLink>();

  constructor(
    urls: readonly string[],
    readonly options: RelaySetOptions,
  ) {
    this.timing = { ...DEFAULT_RELAY_TIMING, ...options.timing };
    this.clock = options.clock ?? Date.now;
    for (const url of urls) this.links.set(url, new RelayLink(url, this));
  }

  log(line: string): void {
    this.options.log?.(line);
  }

  /**
   * Connects to every relay. Resolves as soon as one is connected (or all have had their first
   * try): a relay that stalls its handshake must not hold up the others; it keeps trying on its own.
   */
  async start(): Promise<void> {
    const attempts = [...this.links.values()].map((l) => l.connect().then(() => (l.connected ? true : Promise.reject())));
    await Promise.any(attempts).catch(() => Promise.allSettled(attempts));
  }

  stop(): void {
    for (const l of this.links.values()) l.stop();
  }

  /** Adds a relay while running: it connects on its own and gets every current subscription. False: already there. */
  add(url: string): boolean {
    if (this.links.has(url)) return false;
    const link = new RelayLink(url, this);
    this.links.set(url, link);
    void link.connect();
    return true;
  }

  /** Drops a relay: its connection, subscriptions and timers end; it leaves `status()`. False: not there. */
  remove(url: string): boolean {
    const link = this.links.get(url);
    if (!link) return false;
    this.links.delete(url);
    const wasConnected = link.connected;
    link.stop();
    if (wasConnected) this.options.onStatus?.(url, false, null);
    return true;
  }

  /** Subscribes on every relay, on one lane: `identity` only for what names the node's key (its inbox). */
  subscribe(key: string, filters: Filter[], lane: Lane = 'anonymous'): void {
    const before = this.wanted.get(key);
    if (before && before.lane !== lane) this.unsubscribe(key);
    const want = { key, filters, lane };
    this.wanted.set(key, want);
    for (const l of this.links.values()) l.lanes[lane].subscribe(want);
  }

  unsubscribe(key: string): void {
    const want = this.wanted.get(key);
    this.wanted.delete(key);
    if (want) for (const l of this.links.values()) l.lanes[want.lane].unsubscribe(key);
  }

  /** Whether any subscription is wanted on `lane`. */
  hasWanted(lane: Lane): boolean {
    for (const w of this.wanted.values()) if (w.lane === lane) return true;
    return false;
  }

  /** The lane an event goes out on: the identity lane for what the node's key signed, else the anonymous one. */
  laneOf(event: Event): Lane {
    return this.options.identityPubkey !== undefined && event.pubkey === this.options.identityPubkey ? 'identity' : 'anonymous';
  }

  /**
   * Publishes to every relay at once. `first` resolves with the first relay that accepted (or null
   * when none did), so a stalled relay never holds up the outbox; `all` resolves with every answer.
   */
  publish(event: Event): { first: Promise<string | null>; all: Promise<PublishResult> } {
    const links = [...this.links.values()];
    const lane = this.laneOf(event);
    const each = links.map((l) => l.lanes[lane].publish(event).then(() => l.url));
    const first = Promise.any(each).catch(() => null);
    const all = Promise.allSettled(each).then((results) => {
      const out: PublishResult = { accepted: [], rejected: [] };
      results.forEach((r, i) => {
        const url = links[i]!.url;
        if (r.status === 'fulfilled') out.accepted.push(url);
        else out.rejected.push({ url, reason: r.reason instanceof Error ? r.reason.message : String(r.reason) });
      });
      return out;
    });
    return { first, all };
  }

  /** True once every connected lane of every relay has sent all its stored events for each of its subscriptions. */
  caughtUp(): boolean {
    for (const l of this.links.values())
      for (const want of this.wanted.values()) {
        const lane = l.lanes[want.lane];
        if (lane.connected && !lane.eosed.has(want.key)) return false;
      }
    return true;
  }

  /** Both lanes of the relay are connected. */
  isConnected(url: string): boolean {
    return this.links.get(url)?.connected ?? false;
  }

  /** Publishes to one relay only (one that missed the event while it was away), on the event's lane. */
  async publishTo(url: string, event: Event): Promise<boolean> {
    try {
      await this.links.get(url)?.lanes[this.laneOf(event)].publish(event);
      return this.links.has(url);
    } catch {
      return false;
    }
  }

  /** Relays with at least one lane connected: something can be published. */
  connectedCount(): number {
    let n = 0;
    for (const l of this.links.values()) if (l.anyConnected) n++;
    return n;
  }

  status(): RelayStatus[] {
    return [...this.links.values()].map((l) => l.status());
  }

  lastSeen(url: string): number | null {
    return this.links.get(url)?.seen ?? null;
  }
}
