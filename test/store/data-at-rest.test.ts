import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { utf8 } from '../../src/crypto/index.js';
import { lockDataDir, paths } from '../../src/node/data-dir.js';
import { decodePreKeyBundle, encodePreKeyBundle } from '../../src/prekeys/index.js';
import { decodeSaltFile, DEFAULT_KDF, encodeSaltFile, kdfFromEnv, LEGACY_KDF, openDatabase } from '../../src/store/index.js';
import { makeParty, TEST_KDF, TestClock, tempDir } from '../helpers.js';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('data at rest', () => {
  it('creates the data directory 0700 and the store, its salt, WAL, SHM and lock 0600', async (t) => {
    const dir = join(tempDir(t), 'data');
    const warnings: string[] = [];
    const warn = (line: string) => warnings.push(line);
    const unlock = await lockDataDir(dir, warn);
    const db = openDatabase({ path: paths(dir).db, passphrase: 'p', kdf: TEST_KDF, warn });
    db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    assert.equal(mode(dir), 0o700);
    for (const file of [paths(dir).db, `${paths(dir).db}.salt`, `${paths(dir).db}-wal`, `${paths(dir).db}-shm`, paths(dir).lock])
      assert.equal(mode(file), 0o600, file);
    assert.deepEqual(warnings, [], 'nothing to tighten in a new directory');
    db.close();
    await unlock();
  });

  it('tightens an existing data directory and its files, with a warning for each', async (t) => {
    const dir = join(tempDir(t), 'data');
    let unlock = await lockDataDir(dir, () => {});
    let db = openDatabase({ path: paths(dir).db, passphrase: 'p', kdf: TEST_KDF, warn: () => {} });
    db.pragma('wal_autocheckpoint = 0'); // keep the WAL file when the connection closes
    db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    db.close();
    await unlock();
    const files = [paths(dir).db, `${paths(dir).db}.salt`, paths(dir).lock];
    chmodSync(dir, 0o755);
    for (const file of files) chmodSync(file, 0o644);
    writeFileSync(`${paths(dir).db}-wal`, '', { mode: 0o644 });
    chmodSync(`${paths(dir).db}-wal`, 0o644);

    const warnings: string[] = [];
    const warn = (line: string) => warnings.push(line);
    unlock = await lockDataDir(dir, warn);
    db = openDatabase({ path: paths(dir).db, passphrase: 'p', kdf: TEST_KDF, warn });
    assert.equal(db.prepare('SELECT x FROM t').pluck().get(), 1);
    assert.equal(mode(dir), 0o700);
    for (const file of [...files, `${paths(dir).db}-wal`]) assert.equal(mode(file), 0o600, file);
    assert.equal(warnings.length, 5, warnings.join('\n'));
    assert.ok(warnings.every((w) => /was mode 0(755|644), readable by others: changed to 0(700|600)/.test(w)));
    db.close();
    await unlock();
  });

  it('stores the scrypt cost beside the salt, and still opens a store whose salt file predates it (N = 2^15)', (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'store.db');
    let db = openDatabase({ path, passphrase: 'old', kdf: LEGACY_KDF });
    db.exec("CREATE TABLE t (x); INSERT INTO t VALUES ('kept')");
    db.close();
    const stored = decodeSaltFile(new Uint8Array(readFileSync(`${path}.salt`)));
    assert.equal(stored.kdf.N, 1 << 15);
    // What the program wrote before the cost was stored: the 16 bytes of salt alone.
    writeFileSync(`${path}.salt`, stored.salt);
    db = openDatabase({ path, passphrase: 'old' }); // the default cost is higher: only the stored one unlocks it
    assert.equal(db.prepare('SELECT x FROM t').pluck().get(), 'kept');
    db.close();

    const fresh = join(dir, 'fresh.db');
    openDatabase({ path: fresh, passphrase: 'new', kdf: TEST_KDF }).close();
    assert.deepEqual(decodeSaltFile(new Uint8Array(readFileSync(`${fresh}.salt`))).kdf, TEST_KDF);
    openDatabase({ path: fresh, passphrase: 'new', kdf: { N: 1 << 12 } }).close(); // the stored cost wins
    assert.throws(() => encodeSaltFile({ salt: new Uint8Array(16), kdf: { N: 3000 } }), /power of two/);
    assert.deepEqual(kdfFromEnv({}), DEFAULT_KDF);
    assert.deepEqual(kdfFromEnv({ RRELAY_SCRYPT_LOG2N: '12' }), { N: 1 << 12 });
    assert.throws(() => kdfFromEnv({ RRELAY_SCRYPT_LOG2N: '9' }), /from 10 to 22/);
  });

  it('leaves no byte of a consumed one-time private key in the database file or its WAL (no passphrase)', (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'bob.db');
    const clock = new TestClock();
    const alice = makeParty('alice', clock);
    const bob = makeParty('bob', clock, { path });
    const bundle = decodePreKeyBundle(encodePreKeyBundle(bob.cipher.bundle()));
    const keys = bundle.oneTimePreKeys.map((k) => ({ id: k.id, secret: Buffer.from(bob.store.oneTimePreKey(k.id)!.privateKey!) }));
    const onDisk = () => Buffer.concat([readFileSync(path), existsSync(`${path}-wal`) ? readFileSync(`${path}-wal`) : Buffer.alloc(0)]);
    bob.store.db.pragma('wal_checkpoint(TRUNCATE)');
    assert.ok(keys.every((k) => onDisk().includes(k.secret)), 'the keys are in the file before use');

    alice.cipher.startSession(bundle);
    assert.ok(bob.cipher.decrypt(alice.cipher.encrypt(bob.fingerprint, utf8('hi'))).consumedOneTimePreKey);
    const consumed = keys.filter((k) => bob.store.oneTimePreKey(k.id)!.consumedAt !== null);
    assert.equal(consumed.length, 1);
    assert.equal(onDisk().includes(consumed[0]!.secret), false, 'the consumed key is gone from the disk');
    assert.ok(keys.filter((k) => k !== consumed[0]).every((k) => onDisk().includes(k.secret)), 'unused keys stay');
    bob.store.db.close();
  });
});

