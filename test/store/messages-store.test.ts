import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3-multiple-ciphers';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { MessagesStore, migrate, openDatabase, Settings } from '../../src/store/index.js';
import { tempDir } from '../helpers.js';

describe('the messages table across migration 5', () => {
  it('keeps every row and seq of an older store, and takes failed messages after it', (t) => {
    const path = join(tempDir(t), 'old.db');
    // A store as the version before retry requests left it: schema 4, with history.
    const old = new Database(path);
    for (const m of MIGRATIONS.slice(0, 4)) old.exec(m);
    old.pragma('user_version = 4');
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
    assert.deepEqual(indexes, ['messages_outgoing_id', 'sqlite_autoindex_messages_1']);
    const plan = (db.prepare("EXPLAIN QUERY PLAN SELECT * FROM messages WHERE direction = 'out' AND peer = ? AND state IN ('queued', 'sent') ORDER BY seq").all('p') as { detail: string }[])
      .map((r) => r.detail)
      .join('; ');
    assert.match(plan, /SEARCH messages USING INDEX sqlite_autoindex_messages_1 \(peer=\? AND direction=\?\)/);
    db.close();
  });
});
