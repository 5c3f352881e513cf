import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { join } from 'node:path';
import { KxStore, openDatabase, Settings } from '../../src/store/index.js';
import { TEST_KDF, tempDir } from '../helpers.js';

const INVITE = 'aa'.repeat(32);
const OTHER = 'bb'.repeat(32);

describe('kx store: spent invites', () => {
  it('keeps a spent invite and its refusals until the invite expires, then drops both', (t) => {
    const db = openDatabase({ path: join(tempDir(t), 'db'), passphrase: 'p', kdf: TEST_KDF });
    t.after(() => db.close());
    const store = new KxStore(db, new Settings(db));
    const pending = (rv: string) => ({ rv, role: 'inviter' as const, record: new Uint8Array([1, 2, 3]), peer: null, createdAt: 10, expiresAt: 1000, met: null, nickname: null });
    store.addSpent(pending(INVITE), 'cd'.repeat(32), 20);
    store.addSpent({ ...pending(OTHER), expiresAt: 2000 }, 'cd'.repeat(32), 20);
    store.addRefusal('01'.repeat(32), INVITE, 30);
    store.addRefusal('02'.repeat(32), INVITE, 31);
    assert.deepEqual(store.spentAt(INVITE), { rv: INVITE, record: new Uint8Array([1, 2, 3]), acceptor: 'cd'.repeat(32), expiresAt: 1000 });
    assert.deepEqual(store.spentRvs().sort(), [INVITE, OTHER]);
    assert.equal(store.refusals(INVITE), 2);
    assert.equal(store.refused('01'.repeat(32)), true);
    assert.throws(() => store.addRefusal('01'.repeat(32), INVITE, 32), /UNIQUE/, 'a half KX is refused once');

    assert.equal(store.expire(999), 0, 'not before the invite expires');
    assert.equal(store.expire(1000), 1, 'expired from expiresAt on, as the invite is');
    assert.equal(store.spentAt(INVITE), undefined);
    assert.deepEqual(store.spentRvs(), [OTHER]);
    assert.equal(store.refused('01'.repeat(32)), false, 'its refusals went with it');
    assert.equal(store.refusals(INVITE), 0);
  });
});
