import type { AddressInfo } from 'node:net';
import {
  type BroadcastPlugin,
  type Client,
  type ClientContext,
  type Event,
  type HandleMessagePlugin,
  type HandleMessageResult,
  type IncomingMessage,
  type Logger,
  type OutgoingMessage,
  createOutgoingClosedMessage,
  createOutgoingEventMessage,
  createOutgoingNoticeMessage,
  createOutgoingOkMessage,
  EventUtils,
} from '@nostr-relay/common';
import { NostrRelay } from '@nostr-relay/core';
import { fromHex, Secp256k1Schnorr } from '../crypto/index.js';
import { type Filter as NostrToolsFilter, matchFilters } from 'nostr-tools/filter';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { parseIncomingMessage } from './incoming-message.js';
import { SqliteEventRepository } from './sqlite-event-repository.js';

export interface EmbeddedRelay {
  readonly url: string;
  readonly port: number;
  /** For tests and measurements: how many fsyncs made stored events durable so far (one per burst: group commit). */
  syncCount(): number;
  close(): Promise<void>;
}

export interface EmbeddedRelayOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 7447; 0 picks a free port. */
  port?: number;
  /** SQLite file for events, or ':memory:'. */
  dbPath: string;
  /** Largest WebSocket message accepted; a client sending more is disconnected (close code 1009). Default 128 KiB. */
  maxMessageBytes?: number;
  log?: (line: string) => void;
}

export const DEFAULT_RELAY_PORT = 7447;
export const DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024;
const MAX_SUBSCRIPTIONS_PER_CLIENT = 20;
/** Frames a client may have waiting; one that sends faster than we answer is dropped. */
const MAX_QUEUED_MESSAGES = 256;

/**
 * Two gaps in @nostr-relay/core 0.0.40, closed through its plugin hooks:
 * - its live broadcast matches ids, authors, kinds, since and until but ignores #tag conditions, so a
 *   `#p` subscription would receive every event of its kinds; delivery here uses nostr-tools'
 *   matchFilters, which checks every NIP-01 condition;
 * - past maxSubscriptionsPerClient it silently evicts the oldest subscription; here the new REQ is
 *   refused with CLOSED instead.
 */
class SubscriptionRouter implements HandleMessagePlugin, BroadcastPlugin {
  private readonly contexts = new Map<Client, ClientContext>();

  async handleMessage(ctx: ClientContext, message: IncomingMessage, next: () => Promise<HandleMessageResult>): Promise<HandleMessageResult> {
    this.contexts.set(ctx.client, ctx);
    if (message[0] === 'REQ' && !ctx.subscriptions.has(message[1]) && ctx.subscriptions.size >= MAX_SUBSCRIPTIONS_PER_CLIENT) {
      ctx.sendMessage(createOutgoingClosedMessage(message[1], `rate-limited: at most ${MAX_SUBSCRIPTIONS_PER_CLIENT} open subscriptions`));
      return { messageType: 'REQ', events: [] };
    }
    return next();
  }

  // Replaces the core's broadcast: `next` is deliberately not called.
  async broadcast(event: Event): Promise<void> {
    for (const ctx of this.contexts.values()) {
      for (const [subscriptionId, filters] of ctx.subscriptions.entries()) {
        if (matchFilters(filters as NostrToolsFilter[], event)) ctx.sendMessage(createOutgoingEventMessage(subscriptionId, event));
      }
    }
  }

  forget(client: Client): void {
    this.contexts.delete(client);
  }
}

/**
 * Group commit. The repository commits each event without an fsync; what the relay then sends (an
 * OK true among it) waits, in order, per client, until one `sync` at the end of this turn of the
 * event loop has made every event written in it durable. So no OK true is sent for an event a
 * power cut could still take, and a burst costs one fsync instead of one per event. A client's next
 * frame does not wait for the fsync: only what is sent back does.
 */
class GroupCommit {
  private readonly waiting = new Map<WebSocket, string[]>();
  private scheduled = false;

  constructor(
    private readonly repository: SqliteEventRepository,
    private readonly log: (line: string) => void,
  ) {}

  /** The `Client` the core sends through, for `ws`. */
  clientOf(ws: WebSocket): Client {
    const commit = this;
    return {
      get readyState() {
        return ws.readyState;
      },
      send: (data: string) => commit.send(ws, data),
    };
  }

  private send(ws: WebSocket, data: string): void {
    const queue = this.waiting.get(ws);
    if (queue) return void queue.push(data);
    if (!this.repository.needsSync) return ws.send(data);
    this.waiting.set(ws, [data]);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** One fsync for everything written since the last, then what waited for it. */
  flush(): void {
    this.scheduled = false;
    const waiting = [...this.waiting];
    this.waiting.clear();
    try {
      this.repository.sync();
    } catch (e) {
      // Nothing that waited is sent: an OK true now could be a lie. Its senders time out and try again.
      this.log(`relay error: could not sync the event store: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    for (const [ws, messages] of waiting) if (ws.readyState === ws.OPEN) for (const m of messages) ws.send(m);
  }
}

function lineLogger(log: (line: string) => void): Logger {
  const write =
    (level: string) =>
    (message: string, ...args: unknown[]): void => {
      const detail = args.map((a) => (a instanceof Error ? a.stack ?? a.message : String(a))).join(' ');
      log(`relay ${level}: ${message}${detail === '' ? '' : ` ${detail}`}`);
    };
  return { setLogLevel: () => {}, debug: () => {}, info: write('info'), warn: write('warn'), error: write('error') };
}

function send(ws: WebSocket, message: OutgoingMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
}

function listen(host: string, port: number, maxPayload: number): Promise<WebSocketServer> {
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({ host, port, maxPayload });
    const onError = (error: Error): void => {
      wss.close();
      reject(error);
    };
    wss.once('error', onError);
    wss.once('listening', () => {
      wss.off('error', onError);
      resolve(wss);
    });
  });
}

/**
 * @nostr-relay/common checks each event's signature with noble's pure-JS Schnorr: measured at about
 * half the relay's CPU per event. The same BIP-340 check (sig over the id, by the pubkey, any bad
 * input false) runs on native libsecp256k1 (src/crypto/secp256k1.ts), ~27x faster. Its static method is the library's one
 * seam for that check; the id is checked before it, by the library, as ever.
 */
EventUtils.isSigValid = (event: Event): boolean => {
  try {
    return Secp256k1Schnorr.verify(fromHex(event.pubkey), fromHex(event.id), fromHex(event.sig));
  } catch {
    return false;
  }
};

/** Starts a Nostr relay for this machine: @nostr-relay/core over ws, events in SQLite. */
export async function startEmbeddedRelay(opts: EmbeddedRelayOptions): Promise<EmbeddedRelay> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? (() => {});
  const repository = new SqliteEventRepository(opts.dbPath);
  const router = new SubscriptionRouter();
  const commit = new GroupCommit(repository, log);
  const relay = new NostrRelay(repository, {
    logger: lineLogger(log),
    maxSubscriptionsPerClient: MAX_SUBSCRIPTIONS_PER_CLIENT,
    // Its filter cache answers a repeated REQ for up to a second with stale results (a replaced event),
    // and its result cache is keyed by event id alone: a forged copy rejected first would get the
    // genuine event rejected too for ten minutes.
    filterResultCacheTtl: 0,
    eventHandlingResultCacheTtl: 0,
  }).register(router);

  let wss: WebSocketServer;
  try {
    wss = await listen(host, opts.port ?? DEFAULT_RELAY_PORT, opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
  } catch (e) {
    await repository.destroy();
    throw e;
  }
  const port = (wss.address() as AddressInfo).port;
  const url = `ws://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const inFlight = new Set<Promise<void>>();
  let closing: Promise<void> | undefined;

  async function handleFrame(ws: WebSocket, client: Client, data: RawData, isBinary: boolean): Promise<void> {
    // Also keeps a closed client's queued frames from recreating its context in the core.
    if (closing !== undefined || ws.readyState !== ws.OPEN) return;
    if (isBinary) return send(ws, createOutgoingNoticeMessage('invalid: binary frames are not supported'));
    const parsed = parseIncomingMessage(data.toString());
    if (!parsed.ok) return send(ws, parsed.reply);
    const message = parsed.message;
    try {
      await relay.handleMessage(client, message);
    } catch (e) {
      log(`relay error: ${message[0]} failed: ${e instanceof Error ? e.message : String(e)}`);
      if (message[0] === 'EVENT') send(ws, createOutgoingOkMessage(message[1].id, false, 'error: could not store the event'));
      else if (message[0] === 'REQ') send(ws, createOutgoingClosedMessage(message[1], 'error: could not run the query'));
    }
  }

  wss.on('connection', (ws, req) => {
    const client = commit.clientOf(ws);
    relay.handleConnection(client, req.socket.remoteAddress);
    // One frame at a time per client, so a CLOSE cannot overtake the REQ it closes.
    let tail: Promise<void> = Promise.resolve();
    let queued = 0;
    ws.on('message', (data, isBinary) => {
      if (++queued > MAX_QUEUED_MESSAGES) {
        log('relay warn: dropping a client that sends faster than it is answered');
        ws.terminate();
        return;
      }
      const task = tail.then(() => handleFrame(ws, client, data, isBinary)).finally(() => {
        queued--;
        inFlight.delete(task);
      });
      inFlight.add(task);
      tail = task;
    });
    // ws closes the socket itself after an error (oversized frame 1009, bad UTF-8 1007); without a
    // listener the error would be thrown and take the process down.
    ws.on('error', (error) => log(`relay info: client ${req.socket.remoteAddress ?? '?'} dropped: ${error.message}`));
    ws.on('close', () => {
      relay.handleDisconnect(client);
      router.forget(client);
    });
  });
  wss.on('error', (error) => log(`relay error: ${error.message}`));
  log(`relay info: listening on ${url}`);

  async function shutdown(): Promise<void> {
    for (const ws of wss.clients) ws.terminate();
    // Called back once the listening socket and every connection are closed: the port is free.
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await Promise.allSettled([...inFlight]);
    await relay.destroy();
    await repository.destroy();
  }

  return {
    url,
    port,
    syncCount: () => repository.syncs,
    close: () => (closing ??= shutdown()),
  };
}
