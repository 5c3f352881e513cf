import { type Bytes, constantTimeEqual, type KeyPair, type Rng } from '../crypto/index.js';
import { fail } from '../errors.js';
import { fingerprint, type PublicIdentity, sameIdentity } from '../identity/index.js';
import type { PreKeyConfig, RatchetConfig } from '../limits.js';
import {
  currentBundle,
  maintain,
  type MaintenanceReport,
  markPublished,
  oneTimePreKeyForUse,
  type PreKeyBundle,
  rotatingPreKeyForUse,
} from '../prekeys/index.js';
import { peekMessagePosition, type RatchetEnv } from '../ratchet/index.js';
import { decodeMessageEnvelope } from './envelope.js';
import { decryptInSession, decryptWithAny, encryptInSession, findByBaseKey, initiateSession, respondSession, type SessionState } from './session.js';
import type { PqxdhHeader, ResponderPreKeys } from '../pqxdh/index.js';
import type { ProtocolStore } from './store.js';

export interface CipherEnv {
  readonly rng: Rng;
  readonly clock: () => number;
  readonly ratchet?: Partial<RatchetConfig>;
  readonly preKeys?: Partial<PreKeyConfig>;
}

export interface Decrypted {
  readonly peer: PublicIdentity;
  readonly peerFingerprint: string;
  readonly plaintext: Bytes;
  /** A new session was created by this message. */
  readonly newSession: boolean;
  /** This message consumed one of our one-time pre-keys: time to republish the bundle. */
  readonly consumedOneTimePreKey: boolean;
}

/**
 * The imperative shell around the pure session functions: load, transition, save, all inside one
 * store transaction, so that a decrypt, its ratchet advance, the one-time key it consumes and the
 * delivery of its plaintext commit together or not at all.
 */
export class SessionCipher {
  /** The responder session of the last `peekInitialPosition`, for the accept that follows it. */
  private peeked: { header: PqxdhHeader; session: SessionState } | undefined;
  /** Our Kyber pre-keys in use, one object each, so that their native ML-KEM imports are reused. */
  private readonly kyberPreKeys = new LongLivedKeys(LONG_LIVED_KEYS_BOUND);

  constructor(
    private readonly store: ProtocolStore,
    private readonly env: CipherEnv,
  ) {}

  private ratchetEnv(): RatchetEnv {
    return { rng: this.env.rng, now: this.env.clock(), config: this.env.ratchet };
  }

  /** Starts a session from a bundle that decodePreKeyBundle verified. Returns the peer's fingerprint. */
  startSession(bundle: PreKeyBundle): string {
    const self = this.store.identity();
    if (sameIdentity(bundle.identity, self.public)) fail('INVALID_ARGUMENT', 'cannot start a session with our own identity');
    const peer = fingerprint(bundle.identity);
    const session = initiateSession(self, bundle, this.env.rng, this.env.clock());
    this.saveNew(peer, session);
    return peer;
  }

  /** Installs a session made elsewhere (by the invite key exchange) as the peer's active one. */
  installSession(session: SessionState): string {
    const peer = fingerprint(session.peer);
    this.saveNew(peer, session);
    return peer;
  }

  private saveNew(peer: string, session: SessionState): void {
    this.store.transaction(() => {
      // Loaded first, so that the store keeps the peer's sessions in memory: the first encrypt follows at
      // once, and would otherwise read back and decode the session just written, header and identity.
      this.store.loadSessions(peer);
      this.store.saveSession(peer, null, session, true);
    });
  }

  /** The position of a normal message in `peer`'s active session (see peekMessagePosition), or null. */
  peekPosition(peer: string, envelopeBytes: Bytes): { chain: 0 | 1; n: number } | null {
    let envelope;
    try {
      envelope = decodeMessageEnvelope(envelopeBytes);
    } catch {
      return null;
    }
    const active = this.store.loadSessions(peer)[0];
    return active ? peekMessagePosition(active.ratchet, envelope.message, active.associatedData) : null;
  }

  /**
   * The position of a pre-key message in the session it would start (when no session has its base
   * key yet), read from its authenticated header without changing anything; null when unreadable.
   */
  peekInitialPosition(envelopeBytes: Bytes): { chain: 0 | 1; n: number } | null {
    try {
      const envelope = decodeMessageEnvelope(envelopeBytes);
      if (envelope.type !== 'prekey') return null;
      const header = envelope.header;
      if (findByBaseKey(this.store.loadSessions(fingerprint(header.identity)), header.ephemeralKey) >= 0) return null;
      if (this.store.acceptedFirstMessage(header.signedPreKeyId, header.ephemeralKey)) return null;
      const now = this.env.clock();
      const fresh = respondSession(this.store.identity(), header, this.responderKeys(header, now), now);
      // The accept that usually follows this peek at once reuses its PQXDH instead of running it again.
      this.peeked = { header, session: fresh };
      return peekMessagePosition(fresh.ratchet, envelope.message, fresh.associatedData);
    } catch {
      return null;
    }
  }

  /** The session the last peek derived, if it was for this very header; used at most once. */
  private takePeeked(header: PqxdhHeader): SessionState | undefined {
    const p = this.peeked;
    this.peeked = undefined;
    return p && samePqxdhHeader(p.header, header) ? p.session : undefined;
  }

  /** Our pre-keys that a PQXDH header names; throws when one is unknown, expired or spent. */
  private responderKeys(header: PqxdhHeader, now: number): ResponderPreKeys {
    const config = this.env.preKeys;
    const otkId = header.oneTimePreKeyId;
    // The signed pre-key is checked first, as before, so that a header with both wrong names it.
    const signedPreKey = rotatingPreKeyForUse('signed', this.store.signedPreKey(header.signedPreKeyId), header.signedPreKeyId, now, config);
    const kyberId = header.kyberPreKeyId;
    let kyberPreKey: KeyPair;
    try {
      kyberPreKey = rotatingPreKeyForUse('Kyber', this.store.kyberPreKey(kyberId), kyberId, now, config);
    } catch (e) {
      this.kyberPreKeys.delete(kyberId);
      throw e;
    }
    return {
      signedPreKey,
      kyberPreKey: this.kyberPreKeys.use(kyberId, kyberPreKey),
      oneTimePreKey: otkId === null ? null : oneTimePreKeyForUse(this.store.oneTimePreKey(otkId), otkId),
    };
  }

  hasSession(peer: string): boolean {
    return this.store.loadSessions(peer).length > 0;
  }

  encrypt(peer: string, plaintext: Bytes): Bytes {
    return this.store.transaction(() => {
      const active = this.store.loadSessions(peer)[0];
      if (!active) return fail('NO_SESSION', `no session with ${peer.slice(0, 16)}…: start one from the peer's bundle`);
      const r = encryptInSession(active, plaintext, this.env.rng);
      this.store.saveSession(peer, active, r.state, true);
      return r.envelope;
    });
  }

  /**
   * Decrypts an envelope. `deliver` runs inside the same transaction, so a crash can neither lose a
   * message whose ratchet step committed nor deliver it twice. Any throw leaves the store untouched.
   */
  decrypt(envelopeBytes: Bytes, options: { from?: string; deliver?: (d: Decrypted) => void } = {}): Decrypted {
    const envelope = decodeMessageEnvelope(envelopeBytes);
    return this.store.transaction(() => {
      const env = this.ratchetEnv();
      let d: Decrypted;
      if (envelope.type === 'normal') {
        if (!options.from) return fail('INVALID_ARGUMENT', 'a normal message needs its sender');
        const sessions = this.store.loadSessions(options.from);
        const r = decryptWithAny(sessions, envelope.message, env);
        this.store.saveSession(options.from, sessions[r.index]!, r.state, true);
        d = { peer: r.state.peer, peerFingerprint: options.from, plaintext: r.plaintext, newSession: false, consumedOneTimePreKey: false };
      } else {
        const header = envelope.header;
        const peer = fingerprint(header.identity);
        if (options.from !== undefined && options.from !== peer)
          fail('IDENTITY_MISMATCH', 'initial message names an identity other than its sender');
        const sessions = this.store.loadSessions(peer);
        const known = findByBaseKey(sessions, header.ephemeralKey);
        if (known >= 0) {
          // A later message of a session we already accepted: the initiator has not heard back yet.
          const r = decryptInSession(sessions[known]!, envelope.message, env);
          this.store.saveSession(peer, sessions[known]!, r.state, true);
          d = { peer: header.identity, peerFingerprint: peer, plaintext: r.plaintext, newSession: false, consumedOneTimePreKey: false };
        } else {
          // Its session may have been evicted since: the record outlives it, so a replay cannot revive it.
          if (this.store.acceptedFirstMessage(header.signedPreKeyId, header.ephemeralKey))
            fail('DUPLICATE_MESSAGE', 'this initial message was already accepted');
          const otkId = header.oneTimePreKeyId;
          // Checked again now, whatever was peeked: a key may have been used or expired since.
          const keys = this.responderKeys(header, env.now);
          const fresh = this.takePeeked(header) ?? respondSession(this.store.identity(), header, keys, env.now);
          const r = decryptInSession({ ...fresh, createdAt: env.now }, envelope.message, env);
          if (otkId !== null) this.store.consumeOneTimePreKey(otkId, env.now);
          this.store.recordFirstMessage(header.signedPreKeyId, header.ephemeralKey, env.now);
          this.store.saveSession(peer, null, r.state, true);
          d = { peer: header.identity, peerFingerprint: peer, plaintext: r.plaintext, newSession: true, consumedOneTimePreKey: otkId !== null };
        }
      }
      options.deliver?.(d);
      return d;
    });
  }

  /** Key maintenance (rotation, expiry, refill), committed atomically. */
  maintain(): MaintenanceReport {
    const r = this.store.transaction(() => {
      const before = this.store.loadPreKeyState();
      const r = maintain(before, this.store.identity(), this.env.clock(), this.env.rng, this.env.preKeys);
      this.store.savePreKeyState(before, r.state);
      return r;
    });
    // A private key erased from the store must not live on here.
    const live = new Set(r.state.kyber.flatMap((k) => (k.privateKey ? [k.id] : [])));
    this.kyberPreKeys.retain((id) => live.has(id));
    return r.report;
  }

  bundle(): PreKeyBundle {
    return currentBundle(this.store.loadPreKeyState(), this.store.identity(), this.env.preKeys);
  }

  /** Records that `bundle` went out; call once a relay accepted it. */
  markPublished(bundle: PreKeyBundle): void {
    this.store.transaction(() => {
      const before = this.store.loadPreKeyState();
      this.store.savePreKeyState(before, markPublished(before, bundle, this.env.clock()));
    });
  }
}

export type { SessionState };

/** Kyber pre-keys held at once: the current one and those replaced but within their grace period. */
const LONG_LIVED_KEYS_BOUND = 8;

/**
 * The store hands out a new object for every read of a pre-key, and the ML-KEM layer caches a
 * secret key's native import per object (docs/crypto.md): without this, on a Node with native ML-KEM
 * every initial message would import the Kyber pre-key again, which costs more than its decapsulation.
 * (X25519 takes raw keys, so the signed pre-key needs nothing of the kind.) An entry is reused only
 * for byte-equal keys.
 */
class LongLivedKeys {
  private readonly pairs = new Map<number, KeyPair>();

  constructor(private readonly bound: number) {}

  use(key: number, pair: KeyPair): KeyPair {
    const known = this.pairs.get(key);
    if (known && constantTimeEqual(known.privateKey, pair.privateKey) && constantTimeEqual(known.publicKey, pair.publicKey)) return known;
    this.pairs.delete(key);
    if (this.pairs.size >= this.bound) this.pairs.delete(this.pairs.keys().next().value!);
    this.pairs.set(key, pair);
    return pair;
  }

  delete(key: number): void {
    this.pairs.delete(key);
  }

  retain(keep: (key: number) => boolean): void {
    for (const key of [...this.pairs.keys()]) if (!keep(key)) this.pairs.delete(key);
  }
}

function samePqxdhHeader(a: PqxdhHeader, b: PqxdhHeader): boolean {
  return (
    a.signedPreKeyId === b.signedPreKeyId &&
    a.kyberPreKeyId === b.kyberPreKeyId &&
    a.oneTimePreKeyId === b.oneTimePreKeyId &&
    constantTimeEqual(a.ephemeralKey, b.ephemeralKey) &&
    constantTimeEqual(a.kemCiphertext, b.kemCiphertext) &&
    sameIdentity(a.identity, b.identity)
  );
}
