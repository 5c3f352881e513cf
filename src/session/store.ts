import type { Identity } from '../identity/index.js';
import type { KyberPreKey, OneTimePreKey, PreKeyState, SignedPreKey } from '../prekeys/index.js';
import type { SessionState } from './session.js';

/**
 * What the protocol needs from storage, and nothing more (cf. libsignal's storage traits). The
 * protocol never knows which database is behind it. Peers are named by identity fingerprint (hex).
 */
export interface ProtocolStore {
  /** Runs fn atomically: everything it writes commits together, or nothing does. */
  transaction<T>(fn: () => T): T;
  identity(): Identity;
  /** The peer's sessions, the active one first, then older ones newest first. */
  loadSessions(peer: string): SessionState[];
  /** Upserts by (peer, baseKey). `before` is what loadSessions returned for it, so storage can write only the difference. */
  saveSession(peer: string, before: SessionState | null, after: SessionState, makeActive: boolean): void;
  signedPreKey(id: number): SignedPreKey | undefined;
  kyberPreKey(id: number): KyberPreKey | undefined;
  oneTimePreKey(id: number): OneTimePreKey | undefined;
  consumeOneTimePreKey(id: number, now: number): void;
  /** Whether a first message with this (signed pre-key id, base key) was accepted before. */
  acceptedFirstMessage(signedPreKeyId: number, baseKey: Uint8Array): boolean;
  /** Remembers an accepted first message until the signed pre-key it names expires. */
  recordFirstMessage(signedPreKeyId: number, baseKey: Uint8Array, now: number): void;
  loadPreKeyState(): PreKeyState;
  savePreKeyState(before: PreKeyState, after: PreKeyState): void;
}
