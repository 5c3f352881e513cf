import { type Rng, toHex as hex } from '../crypto/index.js';
import { fail } from '../errors.js';
import { generateIdentity, type Identity } from '../identity/index.js';
import { SESSION_LIMITS } from '../limits.js';
import { EMPTY_PREKEY_STATE, type KyberPreKey, type OneTimePreKey, type PreKeyState, type SignedPreKey } from '../prekeys/index.js';
import type { ProtocolStore, SessionState } from '../session/index.js';


/**
 * ProtocolStore in process memory, with the same atomicity as SqliteProtocolStore: every write inside
 * `transaction` is undone if it throws. It keeps nothing across restarts, so a node never uses it; it
 * is the counterpart of libsignal's in-memory stores, for measuring the session API at equal scope.
 */
interface StoredSession {
  readonly key: string;
  readonly state: SessionState;
  readonly active: boolean;
  /** Order of saves: SqliteProtocolStore orders by updated_at, then rowid. */
  readonly seq: number;
}

function mergeById<K extends { readonly id: number }>(old: readonly K[], next: readonly K[]): K[] {
  const ids = new Set(next.map((k) => k.id));
  return [...old.filter((k) => !ids.has(k.id)), ...next].sort((a, b) => a.id - b.id);
}

/**
 * ProtocolStore in process memory, with the same atomicity and ordering as SqliteProtocolStore: every
 * write inside `transaction` is undone if it throws. It keeps nothing across restarts, so a node never
 * uses it; it is the counterpart of libsignal's in-memory stores, for measuring the session API at
 * equal scope.
 */
export class MemoryProtocolStore implements ProtocolStore {
  private readonly sessions = new Map<string, StoredSession[]>();
  private seq = 0;
  private preKeys: PreKeyState = EMPTY_PREKEY_STATE;
  private readonly consumed = new Set<number>();
  private readonly firstMessages = new Set<string>();
  /** Undo actions of the open transaction, oldest first; null outside one. */
  private undo: (() => void)[] | null = null;

  constructor(private readonly self: Identity) {}

  static create(rng: Rng, now: number): MemoryProtocolStore {
    return new MemoryProtocolStore(generateIdentity(rng, now));
  }

  transaction<T>(fn: () => T): T {
    const outer = this.undo === null;
    const log = this.undo ?? [];
    const mark = log.length;
    this.undo = log;
    try {
      return fn();
    } catch (e) {
      for (const step of log.splice(mark).reverse()) step();
      throw e;
    } finally {
      if (outer) this.undo = null;
    }
  }

  /** Records how to undo a write; outside a transaction a write is final at once. */
  private write(undo: () => void): void {
    this.undo?.push(undo);
  }

  identity(): Identity {
    return this.self;
  }

  loadSessions(peer: string): SessionState[] {
    return (this.sessions.get(peer) ?? []).map((s) => s.state);
  }

  saveSession(peer: string, before: SessionState | null, after: SessionState, makeActive: boolean): void {
    const previous = this.sessions.get(peer);
    const key = hex(after.baseKey);
    let rows = (previous ?? []).filter((s) => s.key !== key).map((s) => (makeActive && s.active ? { ...s, active: false } : s));
    rows.push({ key, state: after, active: makeActive, seq: ++this.seq });
    rows.sort((a, b) => Number(b.active) - Number(a.active) || b.seq - a.seq);
    // As in SQLite: only a new session evicts the oldest beyond the bound.
    if (!before) rows = rows.slice(0, SESSION_LIMITS.maxSessionsPerPeer);
    this.sessions.set(peer, rows);
    this.write(() => (previous ? this.sessions.set(peer, previous) : this.sessions.delete(peer)));
  }

  signedPreKey(id: number): SignedPreKey | undefined {
    return this.preKeys.signed.find((k) => k.id === id);
  }

  kyberPreKey(id: number): KyberPreKey | undefined {
    return this.preKeys.kyber.find((k) => k.id === id);
  }

  oneTimePreKey(id: number): OneTimePreKey | undefined {
    const key = this.preKeys.oneTime.find((k) => k.id === id);
    return key && this.consumed.has(id) ? { ...key, privateKey: null } : key;
  }

  consumeOneTimePreKey(id: number, _now: number): void {
    if (this.consumed.has(id) || !this.preKeys.oneTime.some((k) => k.id === id && k.consumedAt === null))
      fail('ONE_TIME_PREKEY_USED', `one-time pre-key ${id} was already used`);
    this.consumed.add(id);
    this.write(() => this.consumed.delete(id));
  }

  acceptedFirstMessage(signedPreKeyId: number, baseKey: Uint8Array): boolean {
    return this.firstMessages.has(`${signedPreKeyId}:${hex(baseKey)}`);
  }

  recordFirstMessage(signedPreKeyId: number, baseKey: Uint8Array, _now: number): void {
    const key = `${signedPreKeyId}:${hex(baseKey)}`;
    this.firstMessages.add(key);
    this.write(() => this.firstMessages.delete(key));
  }

  loadPreKeyState(): PreKeyState {
    return { ...this.preKeys, oneTime: this.preKeys.oneTime.filter((k) => !this.consumed.has(k.id)) };
  }

  /** Like SQLite, never forgets a pre-key record: one-time keys stay (consumed ones without a private key). */
  savePreKeyState(_before: PreKeyState, after: PreKeyState): void {
    const previous = this.preKeys;
    this.preKeys = {
      ...after,
      signed: mergeById(previous.signed, after.signed),
      kyber: mergeById(previous.kyber, after.kyber),
      oneTime: mergeById(previous.oneTime, after.oneTime),
    };
    this.write(() => (this.preKeys = previous));
  }
}
