import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openDatabase, SeenEvents } from '../../src/store/index.js';
import { TEST_KDF } from '../helpers.js';

const BOUNDS = { keptMs: 10_000, cursorMarginS: 1, rejectedMs: 1000, maxRows: 10 };

describe('seen events', () => {
  it('forgets refused ids sooner, the rest once kept long enough and every cursor is past them, and the oldest beyond the row bound, refused ones first', (t) => {
    const db = openDatabase({ path: ':memory:', kdf: TEST_KDF });
    t.after(() => db.close());
    const seen = new SeenEvents(db, BOUNDS);
    const ids = () => (db.prepare('SELECT id FROM seen_events ORDER BY seen_at').all() as { id: string }[]).map((r) => r.id);
    for (let i = 0; i < 8; i++) seen.mark(`d${i}`, 'delivered', i * 1000);
    // The twelfth row is more than a tenth over the bound: the two oldest refused ids make room at once.
    for (let i = 0; i < 5; i++) seen.mark(`r${i}`, `rejected: MALFORMED: junk ${i}`, 8000 + i);
    assert.deepEqual(ids(), ['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'r2', 'r3', 'r4']);
    // At maintenance the bound itself holds.
    assert.equal(seen.prune(8100, null), 1);
    assert.deepEqual(ids(), ['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'r3', 'r4']);
    assert.ok(seen.has('d0') && !seen.has('r2'));
    // Refused ids go after `rejectedMs`; the rest stay while a relay has no cursor, or one not past them.
    assert.equal(seen.prune(9100, null), 2);
    assert.equal(seen.prune(9100, 1), 0);
    assert.deepEqual(ids(), ['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7']);
    // Kept `keptMs` ...
    assert.equal(seen.prune(14_500, 6), 5);
    assert.deepEqual(ids(), ['d5', 'd6', 'd7']);
    // ... and every cursor `cursorMarginS` past them.
    assert.equal(seen.prune(50_000, 7), 1);
    assert.deepEqual(ids(), ['d6', 'd7']);
    // Beyond the bound with no refused id left, the oldest of any go.
    for (let i = 0; i < 9; i++) seen.mark(`e${i}`, 'key exchange', 60_000 + i);
    assert.equal(seen.prune(60_100, null), 1);
    assert.deepEqual(ids(), ['d7', ...Array.from({ length: 9 }, (_, i) => `e${i}`)]);
  });
});
