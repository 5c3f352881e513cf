import { fail } from '../errors.js';
import { fingerprint } from '../identity/index.js';
import { GroupsStore, type StoredGroup } from '../store/index.js';
import type { Bundles } from './bundles.js';
import { type Contacts, nameOf } from './contacts.js';
import type { NodeContext } from './context.js';
import type { GroupChange } from './events.js';
import { decodeGroupMembers, encodeGroupMembers, type GroupMembers, signGroupMembers } from './group-members.js';
import type { KeyExchange } from './key-exchange.js';
import type { AppMessageHandler, Messaging } from './messaging.js';
import { assertSendableText } from './app-message.js';

const GROUP_INTRO_ATTEMPTS = 3;
const GROUP_INTRO_INTERVAL_MS = 7 * 24 * 60 * 60 * 1000;

export interface GroupSummary {
  readonly id: string;
  readonly name: string;
  readonly admin: string;
  readonly joined: boolean;
  readonly version: number;
}

export interface GroupMember {
  readonly fingerprint: string;
  readonly alias: string | null;
  readonly admin: boolean;
  readonly reachable: boolean;
  readonly introductionAttempts: number;
}

/**
 * Group chats, minimal: an admin, a signed member list, messages fanned out over the pairwise
 * ratchets, and introductions through the admin to the members a joiner does not know yet.
 */
export class Groups {
  private readonly store: GroupsStore;

  constructor(
    private readonly ctx: NodeContext,
    private readonly contacts: Contacts,
    private readonly bundles: Bundles,
    private readonly messaging: Messaging,
    private readonly kx: KeyExchange,
  ) {
    this.store = new GroupsStore(ctx.db, ctx.settings);
  }

  /** Refuses a name another group we know already has: a command naming it could not tell them apart. */
  create(name: string): { id: string } {
    const taken = this.store.all().find((g) => g.name === name);
    if (taken) fail('INVALID_ARGUMENT', `you already have a group named "${name}" (id ${taken.id.slice(0, 12)}): choose another name, as commands name a group by its name or its id`);
    const self = this.ctx.store.identity();
    const g = signGroupMembers(self, { groupId: this.ctx.newId(), name, version: 1, members: [fingerprint(self.public)] });
    this.ctx.transaction(() => {
      this.store.save({ id: g.groupId, name, admin: g.admin, version: 1, members: encodeGroupMembers(g), joined: true, createdAt: this.ctx.clock() });
      this.changed(g.groupId, name, 'created');
    });
    return { id: g.groupId };
  }

  list(): GroupSummary[] {
    return this.store.all().map(({ id, name, admin, joined, version }) => ({ id, name, admin, joined, version }));
  }

  /** A group's id and name, or null when we do not know it. */
  summary(id: string): { id: string; name: string } | null {
    const g = this.store.get(id);
    return g ? { id: g.id, name: g.name } : null;
  }

  /**
   * A group by id (or a prefix of at least 6 hex digits) or by name. A name can still match several:
   * a group we are invited to may arrive with the name of one we have. The error lists them.
   */
  resolve(ref: string): StoredGroup {
    const all = this.store.all();
    const exact = all.find((g) => g.id === ref.toLowerCase());
    if (exact) return exact;
    const hits = all.filter((g) => g.name === ref || (ref.length >= 6 && g.id.startsWith(ref.toLowerCase())));
    if (hits.length === 1) return hits[0]!;
    if (hits.length === 0) return fail('NOT_FOUND', `no group matches "${ref}": see \`rrelay group ls\``);
    const list = hits.map((g) => `${g.id.slice(0, 12)} "${g.name}" (admin ${g.admin.slice(0, 16)}…${g.joined ? '' : ', invited'})`).join('; ');
    return fail('INVALID_ARGUMENT', `"${ref}" matches ${hits.length} groups: ${list}. Name one by its id, or an id prefix of at least 6 digits`);
  }

  /** As admin: invites a contact; it becomes a member when it joins. */
  invite(groupRef: string, contactRef: string): void {
    const g = this.resolve(groupRef);
    if (g.admin !== this.selfFp()) fail('INVALID_ARGUMENT', `only the admin of ${g.name} invites to it`);
    const contact = this.bundles.resolvePeer(contactRef);
    // A joiner meets the other members through introductions by the admin.
    this.contacts.assertMetByInvite(contact, 'the admin could not introduce them to the other members');
    this.ctx.transaction(() => {
      this.store.markInvited(g.id, contact.fingerprint, this.ctx.clock());
      this.messaging.sendControl(contact, { type: 'group-invite', members: g.members });
    });
  }

  /** Accepts an invitation: asks the admin to add us; the new member list follows. */
  join(groupRef: string): void {
    const g = this.resolve(groupRef);
    const admin = this.contacts.get(g.admin);
    if (!admin) return fail('NO_SESSION', `the admin of ${g.name} is not a contact`);
    this.ctx.transaction(() => this.messaging.sendControl(admin, { type: 'group-join', groupId: g.id }));
  }

  members(ref: string): GroupMember[] {
    const g = this.resolve(ref);
    const self = this.selfFp();
    return this.membersOf(g).members.map((fp) => ({
      fingerprint: fp,
      alias: fp === self ? 'me' : (this.contacts.get(fp)?.alias ?? null),
      admin: fp === g.admin,
      reachable: fp === self || this.ctx.cipher.hasSession(fp),
      introductionAttempts: this.store.introduction(g.id, fp)?.attempts ?? 0,
    }));
  }

  /** A message to every member, one pairwise ratchet each. Members without a session yet are named, not dropped. */
  send(ref: string, text: string): { id: string; sent: string[]; unreachable: string[] } {
    assertSendableText(text);
    const g = this.resolve(ref);
    if (!g.joined) fail('INVALID_ARGUMENT', `join ${g.name} first: \`rrelay group join ${g.id.slice(0, 8)}\``);
    const self = this.selfFp();
    const { id, sentAt } = this.messaging.nextOutgoing();
    const sent: string[] = [];
    const unreachable: string[] = [];
    this.ctx.transaction(() => {
      for (const fp of this.membersOf(g).members) {
        if (fp === self) continue;
        const contact = this.contacts.get(fp);
        if (!contact || !this.ctx.cipher.hasSession(fp)) {
          unreachable.push(fp);
          continue;
        }
        this.messaging.queueText(contact, id, sentAt, text, g.id);
        sent.push(fp);
      }
    });
    return { id, sent, unreachable };
  }

  /** At maintenance: asks again for the introductions still missing, within their limits. */
  retryIntroductions(now: number): void {
    this.ctx.transaction(() => {
      for (const g of this.store.all()) this.introduceToGroup(g, now);
    });
  }

  // Inside a session

  readonly onGroupInvite: AppMessageHandler<'group-invite'> = (from, m, now) => {
    const g = decodeGroupMembers(m.members, from.identity);
    const known = this.store.get(g.groupId);
    if (known && known.admin !== from.fingerprint) return fail('IDENTITY_MISMATCH', 'group invitation from someone other than its admin');
    if (known) return; // invited again: nothing changed
    this.store.save({ id: g.groupId, name: g.name, admin: g.admin, version: g.version, members: m.members, joined: false, createdAt: now });
    this.changed(g.groupId, g.name, 'invited');
  };

  readonly onGroupJoin: AppMessageHandler<'group-join'> = (from, m) => {
    const g = this.store.get(m.groupId);
    const self = this.ctx.self();
    if (!g || g.admin !== fingerprint(self)) return fail('INVALID_ARGUMENT', 'a join for a group we do not run');
    const list = decodeGroupMembers(g.members, self);
    if (!this.store.wasInvited(g.id, from.fingerprint) && !list.members.includes(from.fingerprint)) return fail('INVALID_ARGUMENT', `${nameOf(from)} was not invited to ${g.name}`);
    this.publishMembers(g, [...list.members, from.fingerprint]);
  };

  readonly onGroupMembers: AppMessageHandler<'group-members'> = (from, m, now) => {
    const known = this.store.get(decodeGroupId(m.members));
    if ((known?.admin ?? from.fingerprint) !== from.fingerprint) return fail('IDENTITY_MISMATCH', 'a member list not from the group admin');
    const g = decodeGroupMembers(m.members, from.identity);
    if (known && g.version <= known.version) return;
    const self = this.selfFp();
    const joined = g.members.includes(self);
    const saved = { id: g.groupId, name: g.name, admin: g.admin, version: g.version, members: m.members, joined, createdAt: known?.createdAt ?? now };
    this.store.save(saved);
    this.changed(g.groupId, g.name, joined && !known?.joined ? 'joined' : 'members');
    if (joined) this.introduceToGroup(saved, now);
  };

  readonly onGroupText: AppMessageHandler<'group-text'> = (from, m, now) => {
    const g = this.store.get(m.groupId);
    if (!g || !g.joined) return fail('INVALID_ARGUMENT', 'a message for a group we are not in');
    if (!this.membersOf(g).members.includes(from.fingerprint)) return fail('IDENTITY_MISMATCH', 'a group message from someone who is not a member');
    this.messaging.deliverText(from, m, { id: g.id, name: g.name }, now);
  };

  /**
   * A group we joined, run by `admin`, that lists `peer`: the admin's introductions to its members go
   * ahead without asking the user, who joined the group. (A member list always reaches a member
   * before the introductions it causes: both come from the admin, in order on one ratchet.)
   */
  joinedGroupOf(admin: string, peer: string): string | undefined {
    if (admin === this.selfFp()) return undefined;
    return this.store.all().find((g) => g.joined && g.admin === admin && this.membersOf(g).members.includes(peer))?.id;
  }

  /** Tells, once the transaction commits, that a group we know changed. Call inside a transaction. */
  private changed(id: string, name: string, change: GroupChange): void {
    this.ctx.afterCommit(() => this.ctx.events.emit('group', { id, name, change }));
  }

  private selfFp(): string {
    return fingerprint(this.ctx.self());
  }

  private membersOf(g: StoredGroup): GroupMembers {
    const admin = g.admin === this.selfFp() ? this.ctx.self() : this.contacts.get(g.admin)?.identity;
    if (!admin) return fail('NO_SESSION', `the admin of ${g.name} is not a contact`);
    return decodeGroupMembers(g.members, admin);
  }

  /** As admin: a new signed member list, sent to every member. */
  private publishMembers(g: StoredGroup, members: readonly string[]): void {
    const list = signGroupMembers(this.ctx.store.identity(), { groupId: g.id, name: g.name, version: g.version + 1, members });
    const bytes = encodeGroupMembers(list);
    this.store.save({ ...g, version: list.version, members: bytes });
    this.changed(g.id, g.name, 'members');
    for (const fp of list.members) {
      const contact = fp === list.admin ? undefined : this.contacts.get(fp);
      if (contact) this.messaging.sendControl(contact, { type: 'group-members', members: bytes });
    }
  }

  /**
   * A member asks the admin to introduce it to every member it has no session with. Each
   * introduction is tried at most GROUP_INTRO_ATTEMPTS times, at least GROUP_INTRO_INTERVAL_MS apart.
   */
  private introduceToGroup(g: StoredGroup, now: number): void {
    const self = this.selfFp();
    const admin = this.contacts.get(g.admin);
    if (!g.joined || !admin || g.admin === self) return;
    for (const fp of this.membersOf(g).members) {
      if (fp === self || fp === g.admin || this.ctx.cipher.hasSession(fp)) continue;
      const tried = this.store.introduction(g.id, fp);
      if (tried && (tried.attempts >= GROUP_INTRO_ATTEMPTS || now - tried.lastAttemptAt < GROUP_INTRO_INTERVAL_MS)) continue;
      this.kx.askMediator(admin, fp, now);
      this.store.setIntroduction(g.id, fp, (tried?.attempts ?? 0) + 1, now);
    }
  }
}

/** The group id of a member list, read before its admin (and so its signature) is known. */
function decodeGroupId(members: Uint8Array): string {
  if (members.length < 17) return fail('MALFORMED', 'group members: truncated');
  return Buffer.from(members.subarray(1, 17)).toString('hex');
}
