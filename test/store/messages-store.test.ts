import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3-multiple-ciphers';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { MessagesStore, migrate, openDatabase, Settings } from '../../src/store/index.js';
import { tempDir } from '../helpers.js';

/** A store as an older version left it: migrated up to `version` only. */
function storeAt(t: Parameters<typeof tempDir>[0], version: number): { path: string; old: Database.Database } {
  const path = join(tempDir(t), 'old.db');
  const old = new Database(path);
  for (const m of MIGRATIONS.slice(0, version)) old.exec(m);
  old.pragma(`user_version = ${version}`);
  return { path, old };
}

describe('the messages table across migration 5', () => {
  it('keeps every row and seq of an older store, and takes failed messages after it', (t) => {
    // A store as the version before retry requests left it: schema 4, with history.
    const { path, old } = storeAt(t, 4);
    const insert = old.prepare("INSERT INTO messages (seq, id, peer, direction, body, sent_at, received_at, state, relays_accepted, group_id) VALUES (?, ?, 'p', ?, ?, 1, NULL, ?, 2, NULL)");
    insert.run(3, 'a', 'out', 'sent one', 'sent');
    insert.run(7, 'b', 'in', 'received one', 'received');
    insert.run(9, 'c', 'out', 'delivered one', 'delivered');
    old.prepare("DELETE FROM messages WHERE seq = 9").run(); // the sequence must not reuse a seq handed out before
    old.close();

    const db = openDatabase({ path });
    assert.equal(migrate(db), MIGRATIONS.length);
    const store = new MessagesStore(db, new Settings(db));
    assert.deepEqual(
      store.after(0).map((m) => [m.seq, m.id, m.direction, m.body, m.state, m.relaysAccepted, m.failure, m.resends]),
      [
        [3, 'a', 'out', 'sent one', 'sent', 2, null, 0],
        [7, 'b', 'in', 'received one', 'received', 2, null, 0],
      ],
    );
    const seq = store.insert({ id: 'd', peer: 'p', direction: 'out', body: 'new', sentAt: 2, receivedAt: null, state: 'queued' });
    assert.equal(seq, 10, 'seqs go on after the highest ever handed out');
    assert.equal(store.markFailed('p', 'd', 'why'), true);
    assert.deepEqual([store.outgoing('d')?.state, store.outgoing('d')?.failure], ['failed', 'why']);
    assert.equal(store.markFailed('p', 'd', 'again'), false, 'a failed message fails once');
    assert.deepEqual(store.undelivered('p').map((m) => m.id), ['a']);
    db.close();
  });
});

describe('the messages table’s indexes', () => {
  it('finds an outgoing message by id without scanning the table (every send looks one up)', (t) => {
    const db = openDatabase({ path: join(tempDir(t), 'plan.db') });
    migrate(db);
    const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('x') as { detail: string }[]).map((r) => r.detail).join('; ');
    for (const sql of ["SELECT * FROM messages WHERE direction = 'out' AND id = ?", "UPDATE messages SET relays_accepted = 1 WHERE direction = 'out' AND id = ?"])
      assert.match(plan(sql), /USING INDEX messages_outgoing_id/, sql);
    db.close();
  });

  it('keeps no index that every send writes and no query reads: the undelivered lookup searches by peer', (t) => {
    const db = openDatabase({ path: join(tempDir(t), 'plan.db') });
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    assert.deepEqual(indexes, ['messages_group', 'messages_outgoing_id', 'sqlite_autoindex_messages_1']);
    // Partial: a direct message (no group) writes no entry in it.
    assert.match((db.prepare("SELECT sql FROM sqlite_master WHERE name = 'messages_group'").get() as { sql: string }).sql, /WHERE group_id IS NOT NULL/);
    const plan = (db.prepare("EXPLAIN QUERY PLAN SELECT * FROM messages WHERE direction = 'out' AND peer = ? AND state IN ('queued', 'sent') ORDER BY seq").all('p') as { detail: string }[])
      .map((r) => r.detail)
      .join('; ');
    assert.match(plan, /SEARCH messages USING INDEX sqlite_autoindex_messages_1 \(peer=\? AND direction=\?\)/);
    db.close();
  });
});

describe('conversations, as the web app shows them', () => {
  const open = (t: { after(fn: () => void): void }) => {
    const db = openDatabase({ path: join(tempDir(t), 'c.db') });
    migrate(db);
    t.after(() => db.close());
    return new MessagesStore(db, new Settings(db));
  };
  const add = (s: MessagesStore, id: string, peer: string, direction: 'in' | 'out', groupId: string | null = null, state: 'received' | 'queued' | 'sent' | 'delivered' = direction === 'in' ? 'received' : 'sent') =>
    s.insert({ id, peer, direction, body: `text ${id}`, sentAt: 1000 + Number(id.replace(/\D/g, '')), receivedAt: null, state, groupId });

  it("counts each conversation's unread incoming messages apart from the CLI's cursor, and a read mark only moves forward", (t) => {
    const s = open(t);
    add(s, 'm1', 'alice', 'in');
    add(s, 'm2', 'alice', 'out');
    add(s, 'm3', 'alice', 'in');
    add(s, 'm4', 'bob', 'in');
    add(s, 'm5', 'bob', 'in', 'g1');
    add(s, 'm6', 'carol', 'in', 'g1');
    add(s, 'm7', 'alice', 'out', 'g1');
    add(s, 'm8', 'bob', 'out', 'g1');
    const summary = () => Object.fromEntries(s.summaries().map((c) => ['peer' in c.conversation ? c.conversation.peer : c.conversation.groupId, [c.last.id, c.unread]]));
    assert.deepEqual(summary(), { alice: ['m3', 2], bob: ['m4', 1], g1: ['m8', 2] });
    s.markRead(100); // the CLI's cursor does not touch the web app's marks
    assert.deepEqual(summary(), { alice: ['m3', 2], bob: ['m4', 1], g1: ['m8', 2] });
    s.markConversationRead({ peer: 'alice' });
    s.markConversationRead({ groupId: 'g1' });
    assert.deepEqual(summary(), { alice: ['m3', 0], bob: ['m4', 1], g1: ['m8', 0] });
    add(s, 'm9', 'alice', 'in');
    assert.deepEqual(summary().alice, ['m9', 1], 'what arrives after the mark is unread');
    s.markConversationRead({ peer: 'nobody' }); // nothing to mark: no row, no error
    assert.deepEqual(summary().alice, ['m9', 1]);
  });

  it("lists a group's outgoing message once, in its least advanced state, and a contact's history with its group messages", (t) => {
    const s = open(t);
    add(s, 'm1', 'bob', 'in', 'g1');
    add(s, 'm2', 'alice', 'out', 'g1', 'delivered');
    add(s, 'm2', 'bob', 'out', 'g1', 'sent');
    add(s, 'm3', 'alice', 'out', 'g1', 'delivered');
    add(s, 'm3', 'bob', 'out', 'g1', 'delivered');
    add(s, 'm4', 'alice', 'out', 'g1', 'queued');
    assert.equal(s.markFailed('alice', 'm4', 'no relay took it'), true);
    add(s, 'm4', 'bob', 'out', 'g1', 'delivered');
    add(s, 'm5', 'alice', 'out');
    assert.deepEqual(
      s.history({ groupId: 'g1' }, 10).map((m) => [m.id, m.direction, m.state, m.failure]),
      [
        ['m1', 'in', 'received', null],
        ['m2', 'out', 'sent', null],
        ['m3', 'out', 'delivered', null],
        ['m4', 'out', 'failed', 'no relay took it'],
      ],
    );
    assert.deepEqual(s.history({ groupId: 'g1' }, 2).map((m) => m.id), ['m3', 'm4'], 'the last ones, oldest first');
    assert.deepEqual(s.history({ peer: 'alice' }, 10).map((m) => m.id), ['m2', 'm3', 'm4', 'm5']);
  });

  it("takes a direct history's window after leaving the group messages out, and everyone's last messages", (t) => {
    const s = open(t);
    add(s, 'm1', 'alice', 'in');
    add(s, 'm2', 'alice', 'out');
    for (let i = 3; i < 9; i++) add(s, `m${i}`, 'alice', 'in', 'g1');
    add(s, 'm9', 'bob', 'in');
    add(s, 'm10', 'alice', 'out');
    assert.deepEqual(s.history({ peer: 'alice' }, 3, true).map((m) => m.id), ['m1', 'm2', 'm10'], 'the group messages take no place in the window');
    assert.deepEqual(s.history({ peer: 'alice' }, 3).map((m) => m.id), ['m7', 'm8', 'm10']);
    assert.deepEqual(s.history(null, 2).map((m) => [m.id, m.peer]), [['m9', 'bob'], ['m10', 'alice']], 'with anyone: the last ones, oldest first');
  });
});

describe('the web app\'s read marks across migration 14', () => {
  it("starts each conversation read as far as the CLI's cursor had handed messages out", (t) => {
    const { path, old } = storeAt(t, 13);
    const insert = old.prepare("INSERT INTO messages (id, peer, direction, body, sent_at, state, group_id) VALUES (?, ?, 'in', 'x', 1, 'received', ?)");
    for (const [id, peer, group] of [['a', 'alice', null], ['b', 'alice', null], ['c', 'bob', 'g1'], ['d', 'bob', null]]) insert.run(id, peer, group);
    old.prepare("INSERT INTO settings (key, value) VALUES ('read_cursor', '2')").run();
    old.close();
    const db = openDatabase({ path });
    assert.equal(migrate(db), MIGRATIONS.length);
    const s = new MessagesStore(db, new Settings(db));
    const unread = Object.fromEntries(s.summaries().map((c) => ['peer' in c.conversation ? c.conversation.peer : c.conversation.groupId, c.unread]));
    assert.deepEqual(unread, { alice: 0, g1: 1, bob: 1 });
    db.close();
  });
});
