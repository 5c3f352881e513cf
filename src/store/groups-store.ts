import type { Bytes } from '../crypto/index.js';
import type { Db } from './database.js';
import type { Settings } from './node-state.js';
import { blob, bytesOf, prepareAll, type Row } from './rows.js';

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

/** Group chats, the invitations we sent as admin, and the introductions a member asked for. */
export class GroupsStore {
  private readonly q;

  constructor(
    db: Db,
    private readonly settings: Settings,
  ) {
    this.q = prepareAll(db, {
      all: 'SELECT * FROM groups ORDER BY created_at',
      byId: 'SELECT * FROM groups WHERE id = ?',
      upsert: `INSERT INTO groups (id, name, admin, version, members, joined, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version, members = excluded.members, joined = excluded.joined`,
      intro: 'SELECT attempts, last_attempt_at FROM group_introductions WHERE group_id = ? AND member = ?',
      setIntro: `INSERT INTO group_introductions (group_id, member, attempts, last_attempt_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (group_id, member) DO UPDATE SET attempts = excluded.attempts, last_attempt_at = excluded.last_attempt_at`,
    });
  }

  all(): StoredGroup[] {
    return (this.q.all.all() as Row[]).map(toGroup);
  }

  get(id: string): StoredGroup | undefined {
    const r = this.q.byId.get(id) as Row | undefined;
    return r && toGroup(r);
  }

  save(g: StoredGroup): void {
    this.q.upsert.run(g.id, g.name, g.admin, g.version, blob(g.members), g.joined ? 1 : 0, g.createdAt);
  }

  introduction(groupId: string, member: string): { attempts: number; lastAttemptAt: number } | undefined {
    const r = this.q.intro.get(groupId, member) as { attempts: number; last_attempt_at: number } | undefined;
    return r && { attempts: r.attempts, lastAttemptAt: r.last_attempt_at };
  }

  setIntroduction(groupId: string, member: string, attempts: number, at: number): void {
    this.q.setIntro.run(groupId, member, attempts, at);
  }

  /** As admin: `member` was invited to `groupId`, so its join is welcome. */
  markInvited(groupId: string, member: string, now: number): void {
    this.settings.set(inviteKey(groupId, member), String(now));
  }

  wasInvited(groupId: string, member: string): boolean {
    return this.settings.get(inviteKey(groupId, member)) !== undefined;
  }
}

function inviteKey(groupId: string, member: string): string {
  return `group-invite:${groupId}:${member}`;
}

function toGroup(r: Row): StoredGroup {
  return {
    id: r.id as string,
    name: r.name as string,
    admin: r.admin as string,
    version: r.version as number,
    members: bytesOf(r.members),
    joined: r.joined === 1,
    createdAt: r.created_at as number,
  };
}
