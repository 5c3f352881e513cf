import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Rng } from '../src/crypto/index.js';
import { fingerprint } from '../src/identity/index.js';
import type { PreKeyConfig, RatchetConfig } from '../src/limits.js';
import { SessionCipher } from '../src/session/index.js';
import { type KdfParams, openDatabase, SqliteProtocolStore } from '../src/store/index.js';

/** A deterministic Rng for tests: SHA-256 in counter mode over a seed. Never for production. */
export function seededRng(seed: string | number): Rng {
  let counter = 0;
  let pool = new Uint8Array(0);
  return (length) => {
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      if (pool.length === 0) pool = new Uint8Array(createHash('sha256').update(`${seed}/${counter++}`).digest());
      const take = Math.min(pool.length, length - filled);
      out.set(pool.subarray(0, take), filled);
      pool = pool.subarray(take);
      filled += take;
    }
    return out;
  };
}

/** scrypt cost for tests only: the default takes ~100 ms per open. */
export const TEST_KDF: KdfParams = { N: 1 << 10 };

export const DAY = 24 * 60 * 60 * 1000;

export class TestClock {
  constructor(public now = Date.UTC(2026, 0, 1)) {}
  readonly read = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

export interface Party {
  readonly store: SqliteProtocolStore;
  readonly cipher: SessionCipher;
  readonly fingerprint: string;
}

export interface PartyOptions {
  path?: string;
  passphrase?: string;
  preKeys?: Partial<PreKeyConfig>;
  ratchet?: Partial<RatchetConfig>;
}

/** A party on a real SQLite database (in memory unless a path is given), with injected clock and randomness. */
export function makeParty(seed: string, clock: TestClock, options: PartyOptions = {}): Party {
  const rng = seededRng(seed);
  const db = openDatabase({ path: options.path ?? ':memory:', passphrase: options.passphrase, kdf: TEST_KDF });
  const store = new SqliteProtocolStore(db, clock.read);
  const identity = store.ensureIdentity(rng, clock.now);
  const cipher = new SessionCipher(store, { rng, clock: clock.read, preKeys: options.preKeys, ratchet: options.ratchet });
  cipher.maintain();
  return { store, cipher, fingerprint: fingerprint(identity.public) };
}

export function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'rrelay-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
