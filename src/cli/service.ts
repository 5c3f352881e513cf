import { fail } from '../errors.js';
import { type ContactWithSafetyNumber, type NodeEvents, RatchetNode, type ReceivedMessage, type SentMessage, type Whoami } from '../node/index.js';

export interface ContactView {
  fingerprint: string;
  alias: string | null;
  nostrPubkey: string;
  verified: boolean;
  trusted: boolean;
  keyChangedAt: number | null;
  safetyNumber: string;
}

export interface PeerView {
  fingerprint: string;
  nostrPubkey: string;
  alias: string | null;
  isContact: boolean;
  publishedAt: number;
}

export interface StatusView extends ReturnType<RatchetNode['status']> {
  daemon: boolean;
}

export interface HistoryEntry {
  id: string;
  peer: string;
  alias: string | null;
  direction: 'in' | 'out';
  text: string;
  sentAt: number;
  state: 'queued' | 'sent' | 'delivered' | 'received';
  relaysAccepted: number;
}

/** A live event for `receive --follow` and `chat`. */
export type FollowEvent =
  | { type: 'message'; message: ReceivedMessage }
  | { type: 'delivered'; peer: string; ids: readonly string[] }
  | { type: 'sent'; message: SentMessage }
  | { type: 'warning'; message: string }
  | { type: 'relay'; url: string; connected: boolean }
  | { type: 'kx'; peer: string; role: 'inviter' | 'acceptor' }
  /** The stream is over: the daemon went away. */
  | { type: 'ended'; reason: string };

/** Everything the CLI can ask of a node, whether the node runs in this process or in a daemon. */
export interface NodeApi {
  whoami(): Promise<Whoami>;
  status(): Promise<StatusView>;
  relays(): Promise<{ url: string; lastSeenAt: number | null }[]>;
  addRelay(url: string): Promise<boolean>;
  removeRelay(url: string): Promise<boolean>;
  publish(): Promise<{ pending: number }>;
  unpublish(): Promise<{ pending: number }>;
  peers(): Promise<PeerView[]>;
  contacts(): Promise<ContactView[]>;
  setAlias(ref: string, alias: string | null): Promise<ContactView>;
  setVerified(ref: string, verified: boolean): Promise<ContactView>;
  setTrusted(ref: string, trusted: boolean): Promise<ContactView>;
  send(ref: string, text: string, waitMs: number): Promise<SentMessage>;
  receive(): Promise<ReceivedMessage[]>;
  /** The conversation with one contact (or all), newest last, with each sent message's state. */
  history(ref: string | null, limit: number): Promise<HistoryEntry[]>;
  follow(onEvent: (e: FollowEvent) => void): Promise<() => void>;
  createInvite(ttlMs: number): Promise<{ invite: string; rv: string; expiresAt: number }>;
  acceptInvite(invite: string): Promise<{ peer: string; rv: string }>;
  keyExchanges(): Promise<ReturnType<RatchetNode["kx"]["pending"]>>;
  cancelKeyExchange(ref: string): Promise<string>;
  resetSession(ref: string, via?: string): Promise<{ rv: string; peer: string }>;
  introduce(a: string, b: string): Promise<{ a: string; b: string }>;
  mediate(mediator: string, target: string): Promise<{ mediator: string; target: string }>;
  group(action: GroupAction): Promise<unknown>;
  close(): Promise<void>;
}

/** The group subcommands, one RPC method: `{ op, ... }`. */
export type GroupAction =
  | { op: 'create'; name: string }
  | { op: 'invite'; group: string; contact: string }
  | { op: 'join'; group: string }
  | { op: 'ls' }
  | { op: 'members'; group: string }
  | { op: 'send'; group: string; text: string };

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

/** The NodeApi of a RatchetNode in this process. `connect` starts it on first need. */
export class NodeService implements NodeApi {
  private started: Promise<void> | undefined;

  constructor(
    readonly node: RatchetNode,
    private readonly daemon: boolean,
  ) {}

  /** Connects and waits for the relays' stored events, once. */
  private connect(): Promise<void> {
    this.started ??= (async () => {
      await this.node.start();
      await this.node.sync(5000);
    })();
    return this.started;
  }

  async whoami(): Promise<Whoami> {
    return this.node.whoami();
  }

  async status(): Promise<StatusView> {
    return { ...this.node.status(), daemon: this.daemon };
  }

  async relays() {
    return this.node.relays();
  }

  async addRelay(url: string): Promise<boolean> {
    return this.node.addRelay(validateRelayUrl(url));
  }

  async removeRelay(url: string): Promise<boolean> {
    const removed = this.node.removeRelay(url) || this.node.removeRelay(validateRelayUrl(url));
    if (!removed) fail('INVALID_ARGUMENT', `"${url}" is not a configured relay: see \`rrelay relays ls\``);
    return removed;
  }

  async publish() {
    await this.connect();
    this.node.bundles.publish();
    return { pending: await this.node.drain(10_000) };
  }

  async unpublish() {
    await this.connect();
    this.node.bundles.unpublish();
    return { pending: await this.node.drain(10_000) };
  }

  async peers(): Promise<PeerView[]> {
    if (!this.daemon) await this.connect();
    return this.node.bundles.peers().map((p) => ({
      fingerprint: p.fingerprint,
      nostrPubkey: p.nostrPubkey,
      alias: p.alias,
      isContact: p.isContact,
      publishedAt: p.eventCreatedAt,
    }));
  }

  async contacts(): Promise<ContactView[]> {
    return this.node.contacts.list().map(contactView);
  }

  async setAlias(ref: string, alias: string | null): Promise<ContactView> {
    return contactView(this.node.contacts.setAlias(ref, alias));
  }

  async setVerified(ref: string, verified: boolean): Promise<ContactView> {
    return contactView(this.node.contacts.setVerified(ref, verified));
  }

  async setTrusted(ref: string, trusted: boolean): Promise<ContactView> {
    return contactView(this.node.contacts.setTrusted(ref, trusted));
  }

  async send(ref: string, text: string, waitMs: number): Promise<SentMessage> {
    if (text.length === 0) fail('INVALID_ARGUMENT', 'refusing to send an empty message');
    await this.connect();
    const sent = this.node.messaging.send(ref, text);
    if (waitMs > 0) await this.node.drain(waitMs);
    const m = this.node.messaging.outgoing(sent.id)!;
    return m;
  }

  async receive(): Promise<ReceivedMessage[]> {
    if (!this.daemon) await this.connect();
    return this.node.messaging.takeUnread();
  }

  async history(ref: string | null, limit: number): Promise<HistoryEntry[]> {
    const peer = ref === null ? null : this.node.contacts.contact(ref).fingerprint;
    const rows = this.node.messaging.messages(0, 1_000_000).filter((m) => peer === null || m.peer === peer);
    return rows.slice(-limit).map((m) => ({
      id: m.id,
      peer: m.peer,
      alias: this.node.contacts.get(m.peer)?.alias ?? null,
      direction: m.direction,
      text: m.body,
      sentAt: m.sentAt,
      state: m.state,
      relaysAccepted: m.relaysAccepted,
    }));
  }

  async follow(onEvent: (e: FollowEvent) => void): Promise<() => void> {
    await this.connect();
    const handlers: { [K in keyof NodeEvents]?: (...args: NodeEvents[K]) => void } = {
      message: (message) => {
        this.node.messaging.takeUnread(); // shown live: not unread any more
        onEvent({ type: 'message', message });
      },
      delivered: (d) => onEvent({ type: 'delivered', peer: d.peer, ids: d.ids }),
      sent: (message) => onEvent({ type: 'sent', message }),
      warning: (w) => onEvent({ type: 'warning', message: w.message }),
      relay: (r) => onEvent({ type: 'relay', url: r.url, connected: r.connected }),
      kx: (k) => onEvent({ type: 'kx', peer: k.peer, role: k.role }),
    };
    for (const [name, h] of Object.entries(handlers)) this.node.on(name as keyof NodeEvents, h as never);
    for (const message of this.node.messaging.takeUnread()) onEvent({ type: 'message', message });
    return () => {
      for (const [name, h] of Object.entries(handlers)) this.node.off(name as keyof NodeEvents, h as never);
    };
  }

  async createInvite(ttlMs: number) {
    await this.connect();
    return this.node.kx.createInvite(ttlMs);
  }

  async acceptInvite(invite: string) {
    await this.connect();
    const r = this.node.kx.acceptInvite(invite);
    if (!this.daemon) await this.node.drain(10_000);
    return r;
  }

  async keyExchanges() {
    return this.node.kx.pending();
  }

  async cancelKeyExchange(ref: string) {
    return this.node.kx.cancel(ref);
  }

  async introduce(a: string, b: string) {
    await this.connect();
    const r = this.node.kx.introduce(a, b);
    if (!this.daemon) await this.node.drain(10_000);
    return r;
  }

  async mediate(mediator: string, target: string) {
    await this.connect();
    const r = this.node.kx.mediate(mediator, target);
    if (!this.daemon) await this.node.drain(10_000);
    return r;
  }

  async group(a: GroupAction): Promise<unknown> {
    const n = this.node;
    switch (a.op) {
      case 'create':
        return n.groups.create(a.name);
      case 'ls':
        return n.groups.list();
      case 'members':
        return n.groups.members(a.group);
    }
    await this.connect();
    if (a.op === 'invite') n.groups.invite(a.group, a.contact);
    else if (a.op === 'join') n.groups.join(a.group);
    const result = a.op === 'send' ? n.groups.send(a.group, a.text) : { ok: true };
    if (!this.daemon) await n.drain(10_000);
    return result;
  }

  async resetSession(ref: string, via?: string) {
    await this.connect();
    const r = this.node.kx.reset(ref, via);
    if (!this.daemon) await this.node.drain(10_000);
    return r;
  }

  async close(): Promise<void> {
    await this.node.close();
  }
}

function contactView(c: ContactWithSafetyNumber): ContactView {
  return {
    fingerprint: c.fingerprint,
    alias: c.alias,
    nostrPubkey: c.nostrPubkey,
    verified: c.verified,
    trusted: c.trusted,
    keyChangedAt: c.keyChangedAt,
    safetyNumber: c.safetyNumber,
  };
}
