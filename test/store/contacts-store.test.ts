import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemRng } from '../../src/crypto/index.js';
import { fingerprint, generateIdentity } from '../../src/identity/index.js';
import { ContactsStore, openDatabase } from '../../src/store/index.js';

describe('ContactsStore.resolve', () => {
  it('finds a contact by its whole fingerprint in either case, a unique prefix or its alias, and nothing else', () => {
    const store = new ContactsStore(openDatabase({ path: ':memory:' }));
    const [a, b] = [generateIdentity(systemRng, 1).public, generateIdentity(systemRng, 1).public];
    for (const p of [a, b]) store.add(p, { how: 'bundle' }, true, 1);
    const [fa, fb] = [fingerprint(a), fingerprint(b)];
    store.setAlias(fb, 'bob', 2);
    assert.equal(store.resolve(fa)?.fingerprint, fa);
    assert.equal(store.resolve(fa.toUpperCase())?.fingerprint, fa);
    assert.equal(store.resolve(fa.slice(0, 12))?.fingerprint, fa);
    assert.equal(store.resolve('bob')?.fingerprint, fb);
    // A whole fingerprint that is no contact's: nothing, even though it starts like one.
    assert.equal(store.resolve(fa.slice(0, 63) + (fa[63] === '0' ? '1' : '0')), undefined);
    assert.equal(store.resolve('carol'), undefined);
  });
});
