import type { z } from 'zod';
import { fail } from '../errors.js';
import type { NodeEvents, RatchetNode } from '../node/index.js';
import { ackPoints } from './acks.js';
import type { FollowEvent, Whoami } from './api.js';
import { DEFAULT_SETTINGS, type Settings } from './settings.js';

// The node behind the table: its lifecycle

export function validateRelayUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail('INVALID_ARGUMENT', `"${url}" is not a URL: relays look like ws://127.0.0.1:7447 or wss://relay.example`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') fail('INVALID_ARGUMENT', `"${url}" is not a WebSocket URL (ws:// or wss://)`);
  return u.href.replace(/\/$/, '');
}

/** The node's code is loaded only where a node runs in this process: a command a daemon answers starts faster. */
const loadNode = () => import('../node/node.js');

/** A follower's backlog is handed over in pages: each page ordered by the senders' clocks. */
const BACKLOG_PAGE = 1000;

/**
 * How long closing waits for the outbox (while a relay is connected): a command without a daemon on
 * its way out, a daemon told to stop (SIGTERM, SIGINT).
 */
const CLOSE_DRAIN_MS = 10_000;

/** What `serveUi` gets: the web app served on 127.0.0.1 until every holder released it. */
export interface UiLease {
  readonly url: string;
  readonly port: number;
  release(): void;
}

/** The web app's server (src/cli/web.ts), which a daemon has and the in-process path has not: cli/ points down to node/, never the reverse. */
export interface UiHost {
  /** Serves the web app on `port` (0: any free one, or the one already served), shared by every holder. */
  acquire(port: number): Promise<UiLease>;
}

/**
 * A RatchetNode in this process, for the handlers: in a daemon (started once, at startup) or for one
 * command (started on first need, and its outbox drained before it closes).
 */
export class NodeService {
  private started: Promise<void> | undefined;
  /** Set by a daemon: `serveUi` needs it. */
  ui: UiHost | undefined;

  constructor(
    readonly node: RatchetNode,
    readonly daemon: boolean,
    /** What the node runs with: `--proxy` and `--addressing`. */
    readonly settings: Settings = DEFAULT_SETTINGS,
    /** Told, without a daemon, when a command connected and no relay could be reached: it shows only what is stored, and queues what it sends. */
    private readonly warn: (message: string) => void = () => {},
  ) {}

  static async open(opts: {
    dataDir: string;
    passphrase: string;
    log: (line: string) => void;
    daemon: boolean;
    settings: Settings;
    warn?: (message: string) => void;
  }): Promise<NodeService> {
    const { RatchetNode } = await loadNode();
    const { proxy, addressing } = opts.settings;
    const node = await RatchetNode.open({ dataDir: opts.dataDir, passphrase: opts.passphrase, log: opts.log, addressing, ...(proxy === null ? {} : { proxy }) });
    return new NodeService(node, opts.daemon, opts.settings, opts.warn);
  }

  /** `rrelay init`: a new identity, with its relays. */
  static async init(opts: { dataDir: string; passphrase: string; relays: readonly string[]; nickname?: string }): Promise<z.infer<typeof Whoami>> {
    const { RatchetNode } = await loadNode();
    const { kdfFromEnv } = await import('../store/database.js');
    const nickname = opts.nickname === undefined ? {} : { nickname: opts.nickname };
    return RatchetNode.init({ dataDir: opts.dataDir, passphrase: opts.passphrase, relays: opts.relays, kdf: kdfFromEnv(), ...nickname });
  }

  /** The daemon: connects now and logs what the node reports. Later `connect`s reuse this start. */
  async startDaemon(log: (line: string) => void): Promise<z.infer<typeof Whoami>> {
    const n = this.node;
    n.on('message', (m) => log(`message ${m.id.slice(0, 8)} from ${m.alias ?? `${m.from.slice(0, 16)}…`}`));
    n.on('warning', (w) => log(w.message));
    n.on('rejected', (r) => log(`rejected event from ${r.relay}: ${r.reason}`));
    n.on('relay', (r) => log(`${r.url} ${r.connected ? 'connected' : `not connected: ${r.error ?? 'removed'}`}`));
    this.started = n.start();
    await this.started;
    return n.whoami();
  }

  /**
   * Connects once, and without a daemon waits for the relays' stored events, or warns that no relay
   * could be reached (and why, per relay). A daemon's node is already started.
   */
  connect(): Promise<void> {
    this.started ??= (async () => {
      await this.node.start();
      await this.node.sync(5000);
      if (!this.daemon && !this.node.isConnected()) {
        const why = this.node.status().relays.map((r) => `${r.url}: ${r.error ?? 'not connected'}`);
        this.warn(`no relay could be reached (${why.join(', ')}); working from what is stored, and anything to send stays queued`);
      }
    })();
    return this.started;
  }

  /**
   * Subscribes `onEvent` to the node's events, after handing over every unread message; returns the
   * unsubscribe. Nothing is marked read here: the client acknowledges (`ack`) what it has written,
   * so a follower that dies gets everything it did not acknowledge when it comes back.
   */
  follow(onEvent: (e: FollowEvent) => void): () => void {
    const n = this.node;
    const handlers: { [K in keyof NodeEvents]?: (...args: NodeEvents[K]) => void } = {
      // Emitted in the order they were stored, after everything before them on this stream.
      message: (message) => onEvent({ type: 'message', message, ackUpTo: message.seq }),
      delivered: (d) => onEvent({ type: 'delivered', peer: d.peer, ids: [...d.ids] }),
      sent: (message) => onEvent({ type: 'sent', message }),
      failed: (f) => onEvent({ type: 'failed', peer: f.peer, ids: [...f.ids], reason: f.reason }),
      warning: (w) => onEvent({ type: 'warning', message: w.message }),
      relay: (r) => onEvent({ type: 'relay', url: r.url, connected: r.connected, error: r.error }),
      // The contact is named (by the peer's nickname, if it sent one) before the event: say who it is.
      kx: (k) => onEvent({ type: 'kx', peer: k.peer, alias: n.contacts.get(k.peer)?.alias ?? null, role: k.role }),
      refused: (r) => onEvent({ type: 'refused', peer: r.peer, alias: r.alias, what: r.what, reason: r.reason }),
      'kx-failed': (f) => onEvent({ type: 'kx-failed', ...f }),
      request: (r) => onEvent({ type: 'request', ...r, mediatorAlias: n.contacts.get(r.mediator)?.alias ?? null }),
      group: (g) => onEvent({ type: 'group', ...g }),
    };
    for (const [name, h] of Object.entries(handlers)) n.on(name as keyof NodeEvents, h as never);
    for (let after = 0, page = n.messaging.unread(BACKLOG_PAGE); page.length > 0; page = n.messaging.unread(BACKLOG_PAGE, after)) {
      const points = ackPoints(page.map((m) => m.seq));
      page.forEach((message, i) => onEvent({ type: 'message', message, ackUpTo: points[i]! }));
      after = Math.max(...page.map((m) => m.seq));
    }
    return () => {
      for (const [name, h] of Object.entries(handlers)) n.off(name as keyof NodeEvents, h as never);
    };
  }

  /**
   * Closes the node, once what is queued is sent (bounded by CLOSE_DRAIN_MS): without a daemon, what
   * this command queued (an answer to a key exchange it received, receipts for the messages it
   * took), else it would wait for the next command that happens to connect; in a daemon told to
   * stop, what its last moments queued.
   */
  async close(): Promise<void> {
    if (this.started) {
      await this.started.catch(() => {});
      this.node.messaging.sendReceipts(); // batched for a moment: queue them now
      // With no relay connected, nothing could take it: it stays queued for the next node to run.
      if (this.node.isConnected()) await this.node.drain(CLOSE_DRAIN_MS);
    }
    await this.node.close();
  }
}
