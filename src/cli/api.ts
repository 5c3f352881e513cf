import { z } from 'zod';
import { fail } from '../errors.js';
import { type ContactWithSafetyNumber, nameOf } from '../node/index.js';
import type { Conversation, Met } from '../store/index.js';
import { type NodeService, validateRelayUrl } from './node-service.js';

/**
 * The daemon's JSON-RPC API, defined once: a table of methods with named parameters, each with a
 * zod schema for its params and for its result, a one-line description and a handler. The daemon
 * (`rpc.ts`) and the in-process path (`LocalApi`) both answer through `respond` (`dispatch.ts`), so
 * they validate and return the same thing; the CLI's types come from the same table.
 *
 * The handlers are the CLI's only calls into the node's capabilities; `NodeService`
 * (`node-service.ts`) holds the node's lifecycle for them.
 */

// Schemas of what the methods return

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const alias = z.string().nullable();
const time = z.number(); // milliseconds since the epoch

/** `nickname`: the name our invites and half key exchanges carry (null: none). */
export const Whoami = z.object({ fingerprint: hex64, npub: z.string(), nostrPubkey: hex64, createdAt: time, nickname: z.string().nullable() });
/** `connected`: both lanes (identity, anonymous); `lastSeen`: the last event's created_at, in seconds as Nostr counts; `error`: why a lane that is down last failed. */
const RelayStatus = z.object({ url: z.string(), connected: z.boolean(), failures: z.number().int(), lastSeen: z.number().nullable(), error: z.string().nullable() });
const Status = z.object({
  whoami: Whoami,
  relays: z.array(RelayStatus),
  outboxPending: z.number().int(),
  oneTimePreKeys: z.number().int(),
  published: z.boolean(),
  contacts: z.number().int(),
  peers: z.number().int(),
  addressing: z.enum(['private', 'seed']),
  proxy: z.string().nullable(),
  daemon: z.boolean(),
});
const ContactView = z.object({
  fingerprint: hex64,
  alias,
  nostrPubkey: hex64,
  verified: z.boolean(),
  trusted: z.boolean(),
  keyChangedAt: time.nullable(),
  safetyNumber: z.string(),
  /** How we met (null: before this was recorded); `via`: the mediator's fingerprint or the group id; `text`: for people. */
  met: z.object({ how: z.enum(['bundle', 'message', 'invite', 'introduction', 'group']), via: z.string().nullable(), text: z.string() }).nullable(),
});
const MessageState = z.enum(['queued', 'sent', 'delivered', 'received', 'failed']);
/** `failure`: why a failed message failed. */
const SentMessage = z.object({ id: z.string(), to: hex64, state: MessageState, relaysAccepted: z.number().int(), failure: z.string().nullable() });
export const ReceivedMessage = z.object({
  id: z.string(),
  seq: z.number().int(),
  from: hex64,
  alias,
  text: z.string(),
  sentAt: time,
  receivedAt: time,
  trusted: z.boolean(),
  group: z.object({ id: z.string(), name: z.string() }).nullable(),
});
const HistoryEntry = z.object({
  id: z.string(),
  peer: hex64,
  alias,
  direction: z.enum(['in', 'out']),
  text: z.string(),
  sentAt: time,
  state: MessageState,
  relaysAccepted: z.number().int(),
  failure: z.string().nullable(),
  /** The group it was sent in (null: directly). */
  group: z.string().nullable(),
});
/** A contact or a joined group, as the web app lists them: `unread` counts what the web app has not shown. */
const ConversationView = z.object({
  kind: z.enum(['contact', 'group']),
  id: z.string(),
  name: z.string(),
  lastText: z.string().nullable(),
  lastAt: time.nullable(),
  lastDirection: z.enum(['in', 'out']).nullable(),
  unread: z.number().int(),
});
const PendingKx = z.object({ rv: hex64, role: z.enum(['inviter', 'acceptor']), peer: hex64.nullable(), createdAt: time, expiresAt: time });
/** An introduction waiting for the user's consent (`kx accept` / `kx decline`). */
const IntroductionRequest = z.object({
  id: z.string(),
  kind: z.enum(['invite-request', 'introduced']),
  mediator: hex64,
  mediatorAlias: alias,
  peer: hex64,
  inviteArrived: z.boolean(),
  receivedAt: time,
  expiresAt: time,
});
const Group = z.object({ id: z.string(), name: z.string(), admin: hex64, joined: z.boolean(), version: z.number().int() });
const GroupMember = z.object({ fingerprint: hex64, alias, admin: z.boolean(), reachable: z.boolean(), introductionAttempts: z.number().int() });
const Pending = z.object({ pending: z.number().int() });
const Ok = z.object({ ok: z.literal(true) });

/** A live event of `follow`, sent as `{"method":"event","params":<event>}`. */
export const FollowEvent = z.discriminatedUnion('type', [
  /** `ackUpTo`: what to `ack` once this event and every one before it on the stream were written. */
  z.object({ type: z.literal('message'), message: ReceivedMessage, ackUpTo: z.number().int() }),
  z.object({ type: z.literal('delivered'), peer: hex64, ids: z.array(z.string()) }),
  z.object({ type: z.literal('sent'), message: SentMessage }),
  z.object({ type: z.literal('failed'), peer: hex64, ids: z.array(z.string()), reason: z.string() }),
  z.object({ type: z.literal('warning'), message: z.string() }),
  z.object({ type: z.literal('relay'), url: z.string(), connected: z.boolean(), error: z.string().nullable() }),
  z.object({ type: z.literal('kx'), peer: hex64, alias, role: z.enum(['inviter', 'acceptor']) }),
  z.object({ type: z.literal('refused'), peer: hex64, alias, what: z.string(), reason: z.string() }),
  /** A key exchange we answered (as acceptor, at `rv`) was refused by the inviter: it will not complete. */
  z.object({ type: z.literal('kx-failed'), peer: hex64, alias, rv: hex64, code: z.string(), reason: z.string() }),
  /** An introduction waiting for the user's consent (`kxRequests`) arrived, got its peer's invite, was answered or expired. */
  z.object({
    type: z.literal('request'),
    id: z.string(),
    kind: z.enum(['invite-request', 'introduced']),
    mediator: hex64,
    mediatorAlias: alias,
    peer: hex64,
    change: z.enum(['arrived', 'invite', 'accepted', 'declined', 'expired']),
  }),
  /** A group we know (`groups`) changed: created, an invitation to it arrived, we joined it, or its member list changed. */
  z.object({ type: z.literal('group'), id: z.string(), name: z.string(), change: z.enum(['created', 'invited', 'joined', 'members']) }),
  /** The stream is over: the daemon went away (made by the client, never sent). */
  z.object({ type: z.literal('ended'), reason: z.string() }),
]);
export type FollowEvent = z.infer<typeof FollowEvent>;
export type ReceivedMessage = z.infer<typeof ReceivedMessage>;

// Schemas of parameters

const none = z.strictObject({});
const ref = z.string().min(1); // an alias or a fingerprint (prefix)
const text = z.string().min(1, 'refusing to send an empty message');
/** A message id: 16 random bytes, hex, as `Messaging.nextOutgoing` makes them. */
export const messageId = z.string().regex(/^[0-9a-f]{32}$/, 'a message id is 32 lowercase hex digits (16 random bytes)');

// The table

/** Where a streaming method (`follow`) sends its events, and how it is told the caller went away. */
export interface Stream {
  readonly emit: (e: FollowEvent) => void;
  readonly onEnd: (stop: () => void) => void;
}

export interface MethodSpec<P extends z.ZodObject, R extends z.ZodType> {
  readonly description: string;
  readonly params: P;
  readonly result: R;
  readonly handler: (s: NodeService, params: z.output<P>, stream: Stream | undefined) => Promise<z.input<R>> | z.input<R>;
}

/** How many messages one `receive` hands out (the rest come with the next one). */
const RECEIVE_LIMIT = 10_000;

const method = <P extends z.ZodObject, R extends z.ZodType>(spec: MethodSpec<P, R>) => spec;

/** Queues something to send; without a daemon, waits (bounded) until a relay took it, so nothing is left behind. */
async function queued<T>(s: NodeService, fn: () => T): Promise<T> {
  await s.connect();
  const r = fn();
  if (!s.daemon) await s.node.drain(10_000);
  return r;
}

/** Publishes (or unpublishes) the bundle and waits, daemon or not, until a relay took it: how many events are still pending. */
async function bundle(s: NodeService, fn: () => void): Promise<{ pending: number }> {
  await s.connect();
  fn();
  return { pending: await s.node.drain(10_000) };
}

export const API = {
  whoami: method({
    description: 'this identity: fingerprint and Nostr key',
    params: none,
    result: Whoami,
    handler: (s) => s.node.whoami(),
  }),
  setNickname: method({
    description: 'sets the nickname our invites (and answers to invites) carry, which the peer names us by; null removes it',
    params: z.strictObject({ nickname: z.string().nullable() }),
    result: Whoami,
    handler: (s, p) => (s.node.kx.setNickname(p.nickname), s.node.whoami()),
  }),
  status: method({
    description: 'identity, relays (connected or not), outbox, pre-key pool; `daemon` tells whether a daemon answered',
    params: none,
    result: Status,
    handler: (s) => ({ ...s.node.status(), daemon: s.daemon }),
  }),
  settings: method({
    description: 'how this node connects and addresses messages: `proxy` (null: directly) and `addressing`, as `--proxy` and `--addressing` set them',
    params: none,
    result: z.object({ proxy: z.string().nullable(), addressing: z.enum(['private', 'seed']) }),
    handler: (s) => s.settings,
  }),
  relays: method({
    description: 'the configured relays',
    params: none,
    result: z.array(z.object({ url: z.string(), lastSeenAt: z.number().nullable() })),
    handler: (s) => s.node.relays(),
  }),
  addRelay: method({
    description: 'adds a relay (ws:// or wss://); a running node connects to it at once',
    params: z.strictObject({ url: z.string() }),
    result: z.object({ url: z.string(), added: z.boolean() }),
    handler: (s, p) => {
      const url = validateRelayUrl(p.url);
      return { url, added: s.node.addRelay(url) };
    },
  }),
  removeRelay: method({
    description: 'removes a relay; a running node drops its connection at once',
    params: z.strictObject({ url: z.string() }),
    result: z.object({ url: z.string(), removed: z.literal(true) }),
    handler: (s, p) => {
      const configured = s.node.relays().map((r) => r.url);
      const url = configured.includes(p.url) ? p.url : validateRelayUrl(p.url);
      if (!configured.includes(url) || !s.node.removeRelay(url)) fail('INVALID_ARGUMENT', `"${p.url}" is not a configured relay: see \`rrelay relays ls\``);
      return { url, removed: true as const };
    },
  }),
  publish: method({
    description: 'publishes the pre-key bundle now; `pending` 0 once a relay accepted it',
    params: none,
    result: Pending,
    handler: (s) => bundle(s, () => s.node.bundles.publish()),
  }),
  unpublish: method({
    description: 'replaces the bundle on the relays with an empty one',
    params: none,
    result: Pending,
    handler: (s) => bundle(s, () => s.node.bundles.unpublish()),
  }),
  peers: method({
    description: 'identities whose pre-key bundles were found on the relays',
    params: none,
    result: z.array(z.object({ fingerprint: hex64, nostrPubkey: hex64, alias, isContact: z.boolean(), publishedAt: time })),
    handler: async (s) => {
      await s.connect();
      return s.node.bundles.peers().map((p) => ({ fingerprint: p.fingerprint, nostrPubkey: p.nostrPubkey, alias: p.alias, isContact: p.isContact, publishedAt: p.eventCreatedAt }));
    },
  }),
  contacts: method({
    description: 'contacts with their safety numbers',
    params: none,
    result: z.array(ContactView),
    handler: (s) => s.node.contacts.list().map((c) => contactView(s, c)),
  }),
  setAlias: method({
    description: 'names a contact (null removes the name)',
    params: z.strictObject({ contact: ref, alias: z.string().nullable() }),
    result: ContactView,
    handler: (s, p) => contactView(s, s.node.contacts.setAlias(p.contact, p.alias)),
  }),
  setVerified: method({
    description: 'marks a contact verified (or not) after comparing safety numbers',
    params: z.strictObject({ contact: ref, verified: z.boolean() }),
    result: ContactView,
    handler: (s, p) => contactView(s, s.node.contacts.setVerified(p.contact, p.verified)),
  }),
  setTrusted: method({
    description: 'trusts a contact (or not); trusting acknowledges a changed identity key',
    params: z.strictObject({ contact: ref, trusted: z.boolean() }),
    result: ContactView,
    handler: (s, p) => contactView(s, s.node.contacts.setTrusted(p.contact, p.trusted)),
  }),
  send: method({
    description: 'sends a text to a contact or discovered peer, waiting up to waitMs for a relay to accept it; with an id, a retry returns the stored message instead of sending again',
    params: z.strictObject({ contact: ref, text, waitMs: z.number().int().nonnegative().max(600_000).default(10_000), id: messageId.optional() }),
    result: SentMessage,
    handler: async (s, p) => {
      await s.connect();
      const sent = s.node.messaging.send(p.contact, p.text, p.id);
      if (p.waitMs > 0) await s.node.drain(p.waitMs);
      return s.node.messaging.outgoing(sent.id)!;
    },
  }),
  receive: method({
    description: 'incoming messages not marked read yet, oldest first (at most 10000); they stay unread until `ack`',
    params: none,
    result: z.array(ReceivedMessage),
    handler: async (s) => {
      await s.connect();
      return s.node.messaging.unread(RECEIVE_LIMIT);
    },
  }),
  ack: method({
    description: 'marks every incoming message with seq up to upTo read, once the caller has written it; returns the read cursor',
    params: z.strictObject({ upTo: z.number().int().nonnegative() }),
    result: z.object({ readUpTo: z.number().int() }),
    handler: (s, p) => ({ readUpTo: s.node.messaging.markRead(p.upTo) }),
  }),
  history: method({
    description: 'the stored conversation with one contact (its group messages too, unless `direct`), one group (`group`), or all, newest last, with each sent message’s state',
    params: z.strictObject({ contact: ref.nullish(), group: ref.nullish(), limit: z.number().int().positive().default(50), direct: z.boolean().default(false) }),
    result: z.array(HistoryEntry),
    handler: (s, p) => {
      if (p.direct && p.contact == null) fail('INVALID_ARGUMENT', '`direct` takes a contact: a group has no direct messages');
      const rows = s.node.messaging.history(conversationOf(s, p), p.limit, p.direct);
      return rows.map((m) => ({
        id: m.id,
        peer: m.peer,
        alias: s.node.contacts.get(m.peer)?.alias ?? null,
        direction: m.direction,
        text: m.body,
        sentAt: m.sentAt,
        state: m.state,
        relaysAccepted: m.relaysAccepted,
        failure: m.failure,
        group: m.groupId,
      }));
    },
  }),
  conversations: method({
    description: 'every contact and joined group, with its last message and how many messages the web app has not shown; latest first',
    params: none,
    result: z.array(ConversationView),
    handler: (s) => conversations(s),
  }),
  readConversation: method({
    description: "marks a conversation (a contact's or a group's) read in the web app; the CLI's `receive` cursor is its own",
    params: z.strictObject({ contact: ref.nullish(), group: ref.nullish() }),
    result: z.object({ id: z.string(), unread: z.literal(0) }),
    handler: (s, p) => {
      const c = conversationOf(s, p) ?? fail('INVALID_ARGUMENT', 'readConversation takes a contact or a group');
      s.node.messaging.markConversationRead(c);
      return { id: 'peer' in c ? c.peer : c.groupId, unread: 0 as const };
    },
  }),
  follow: method({
    description: 'streaming: turns the connection into `event` notifications (messages, receipts, warnings, relays, key exchanges)',
    params: none,
    result: z.literal(true),
    handler: async (s, _p, stream) => {
      if (!stream) return fail('INVALID_ARGUMENT', 'follow streams events: it needs a connection that stays open');
      // Subscribed before connecting: without a daemon, what the first sync brings (a refusal, a key exchange) is shown too.
      stream.onEnd(s.follow(stream.emit));
      await s.connect();
      return true as const;
    },
  }),
  serveUi: method({
    description: 'streaming: serves the web app on 127.0.0.1:port (0: any free port, or the one served) while this connection stays open; the URL carries its secret token',
    params: z.strictObject({ port: z.number().int().min(0).max(65535) }),
    result: z.object({ url: z.string(), port: z.number().int() }),
    handler: async (s, p, stream) => {
      if (!stream || !s.ui) return fail('INVALID_ARGUMENT', 'serveUi serves the web app while its connection stays open: it needs a daemon (`rrelay ui` starts one)');
      const lease = await s.ui.acquire(p.port);
      stream.onEnd(lease.release);
      return { url: lease.url, port: lease.port };
    },
  }),
  createInvite: method({
    description: 'makes an invite to hand over out of band; its key exchange waits at the returned rendezvous point',
    params: z.strictObject({ ttlMs: z.number().int().positive() }),
    result: z.object({ invite: z.string(), rv: hex64, expiresAt: time }),
    handler: async (s, p) => {
      await s.connect();
      return s.node.kx.createInvite(p.ttlMs);
    },
  }),
  acceptInvite: method({
    description: "accepts an invite string: the half key exchange goes to the inviter; `nickname`: the inviter's, which names the contact once the exchange completes",
    params: z.strictObject({ invite: z.string() }),
    result: z.object({ peer: hex64, rv: hex64, nickname: z.string().nullable() }),
    handler: (s, p) => queued(s, () => s.node.kx.acceptInvite(p.invite)),
  }),
  keyExchanges: method({
    description: 'pending key exchanges',
    params: none,
    result: z.array(PendingKx),
    handler: (s) => s.node.kx.pending(),
  }),
  cancelKeyExchange: method({
    description: 'cancels a pending key exchange by its rendezvous point (or a prefix of at least 8 hex digits)',
    params: z.strictObject({ rv: z.string() }),
    result: z.object({ cancelled: hex64 }),
    handler: (s, p) => ({ cancelled: s.node.kx.cancel(p.rv) }),
  }),
  resetSession: method({
    description: "starts a contact's ratchet over with a fresh key exchange, directly or through a mediator (`via`)",
    params: z.strictObject({ contact: ref, via: ref.nullish() }),
    result: z.object({ rv: hex64, peer: hex64 }),
    handler: (s, p) => queued(s, () => s.node.kx.reset(p.contact, p.via ?? undefined)),
  }),
  kxRequests: method({
    description: "introductions waiting for the user's consent",
    params: none,
    result: z.array(IntroductionRequest),
    handler: (s) => s.node.kx.requests(),
  }),
  kxAccept: method({
    description: 'consents to an introduction (its id, or a prefix of at least 6 hex digits): its key exchange goes ahead',
    params: z.strictObject({ id: z.string() }),
    result: IntroductionRequest,
    handler: (s, p) => queued(s, () => s.node.kx.acceptRequest(p.id)),
  }),
  kxDecline: method({
    description: 'declines an introduction (its id, or a prefix of at least 6 hex digits); the mediator is told',
    params: z.strictObject({ id: z.string() }),
    result: IntroductionRequest,
    handler: (s, p) => queued(s, () => s.node.kx.declineRequest(p.id)),
  }),
  introduce: method({
    description: 'as a mediator, introduces two contacts met by invite: b invites a through us',
    params: z.strictObject({ a: ref, b: ref }),
    result: z.object({ a: hex64, b: hex64 }),
    handler: (s, p) => queued(s, () => s.node.kx.introduce(p.a, p.b)),
  }),
  mediate: method({
    description: 'asks a contact (the mediator) to introduce us to an identity it knows (a full fingerprint)',
    params: z.strictObject({ mediator: ref, target: z.string() }),
    result: z.object({ mediator: hex64, target: hex64 }),
    handler: (s, p) => queued(s, () => s.node.kx.mediate(p.mediator, p.target)),
  }),
  groupCreate: method({
    description: 'creates a group with us as its admin',
    params: z.strictObject({ name: z.string().min(1) }),
    result: z.object({ id: z.string() }),
    handler: (s, p) => s.node.groups.create(p.name),
  }),
  groupInvite: method({
    description: 'as admin, invites a contact (met by invite) to a group (id, id prefix or name)',
    params: z.strictObject({ group: ref, contact: ref }),
    result: Ok,
    handler: (s, p) => queued(s, () => (s.node.groups.invite(p.group, p.contact), { ok: true as const })),
  }),
  groupJoin: method({
    description: 'accepts an invitation to a group: asks its admin to add us',
    params: z.strictObject({ group: ref }),
    result: Ok,
    handler: (s, p) => queued(s, () => (s.node.groups.join(p.group), { ok: true as const })),
  }),
  groups: method({
    description: 'groups joined or invited to',
    params: none,
    result: z.array(Group),
    handler: (s) => s.node.groups.list(),
  }),
  groupMembers: method({
    description: 'the members of a group, and whether we have a session with each yet',
    params: z.strictObject({ group: ref }),
    result: z.array(GroupMember),
    handler: (s, p) => s.node.groups.members(p.group),
  }),
  groupSend: method({
    description: 'sends a text to every member; members without a session yet are listed in `unreachable`',
    params: z.strictObject({ group: ref, text }),
    result: z.object({ id: z.string(), sent: z.array(hex64), unreachable: z.array(hex64) }),
    handler: (s, p) => queued(s, () => s.node.groups.send(p.group, p.text)),
  }),
};

export type Method = keyof typeof API;
export const METHODS = Object.keys(API) as Method[];
/** What a caller passes (defaults may be left out). */
export type Params<M extends Method> = z.input<(typeof API)[M]['params']>;
export type Result<M extends Method> = z.output<(typeof API)[M]['result']>;

/** A contact or a group named by a request (at most one of them). */
function conversationOf(s: NodeService, p: { contact?: string | null | undefined; group?: string | null | undefined }): Conversation | null {
  if (p.contact != null && p.group != null) fail('INVALID_ARGUMENT', 'give a contact or a group, not both');
  if (p.contact != null) return { peer: s.node.contacts.contact(p.contact).fingerprint };
  if (p.group != null) return { groupId: s.node.groups.resolve(p.group).id };
  return null;
}

const PREVIEW = 200;

function conversations(s: NodeService): z.input<typeof ConversationView>[] {
  const byKey = new Map(s.node.messaging.conversations().map((c) => ['peer' in c.conversation ? c.conversation.peer : c.conversation.groupId, c]));
  const view = (kind: 'contact' | 'group', id: string, name: string) => {
    const c = byKey.get(id);
    return { kind, id, name, lastText: c ? c.last.body.slice(0, PREVIEW) : null, lastAt: c ? c.last.sentAt : null, lastDirection: c?.last.direction ?? null, unread: c?.unread ?? 0 };
  };
  const list = [
    ...s.node.contacts.list().map((c) => view('contact', c.fingerprint, nameOf(c))),
    ...s.node.groups.list().filter((g) => g.joined).map((g) => view('group', g.id, g.name)),
  ];
  return list.sort((a, b) => (b.lastAt ?? -1) - (a.lastAt ?? -1) || a.name.localeCompare(b.name));
}

function contactView(s: NodeService, c: ContactWithSafetyNumber): z.input<typeof ContactView> {
  return {
    met: c.met && { how: c.met.how, via: 'via' in c.met ? c.met.via : null, text: metText(s, c.met) },
    fingerprint: c.fingerprint,
    alias: c.alias,
    nostrPubkey: c.nostrPubkey,
    verified: c.verified,
    trusted: c.trusted,
    keyChangedAt: c.keyChangedAt,
    safetyNumber: c.safetyNumber,
  };
}

/** "introduction via bob", "group friends", "invite", ... */
function metText(s: NodeService, met: Met): string {
  if (met.how === 'introduction') {
    const mediator = s.node.contacts.get(met.via);
    return `introduction via ${mediator ? nameOf(mediator) : met.via.slice(0, 16)}`;
  }
  if (met.how === 'group') return `group ${s.node.groups.summary(met.via)?.name ?? met.via.slice(0, 8)}`;
  return met.how;
}
