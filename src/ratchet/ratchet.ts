import { type Bytes, constantTimeEqual, type KeyPair, type Rng, X25519 } from '../crypto/index.js';
import { fail } from '../errors.js';
import { RATCHET_DEFAULTS, type RatchetConfig, WIRE_LIMITS } from '../limits.js';
import { decryptHeader, decryptMessage, encryptHeaderInto, encryptMessageInto, kdfCk, kdfInit, kdfRk } from './kdf.js';
import { decodeHeader, decodeRatchetMessage, encodeHeader, FRAME_HEADER_AT, type Header, newFrame, type RatchetMessage } from './message.js';
import type { RatchetState, SkippedKey } from './state.js';

/** What a decrypt needs from the outside world: the clock, randomness for the next DH key, and limits. */
export interface RatchetEnv {
  readonly rng: Rng;
  readonly now: number;
  readonly config?: Partial<RatchetConfig>;
}

/** RatchetInitAliceHE: the initiator knows the responder's ratchet key (the signed pre-key) and can send at once. */
export function initAlice(sk: Bytes, bobRatchetKey: Bytes, rng: Rng): RatchetState {
  const { rootKey, sharedHka, sharedNhkb } = kdfInit(sk);
  const dhs = X25519.generate(rng);
  const r = kdfRk(rootKey, X25519.dh(dhs.privateKey, bobRatchetKey));
  return {
    dhs,
    dhr: bobRatchetKey,
    rk: r.rk,
    cks: r.ck,
    ckr: null,
    ns: 0,
    nr: 0,
    pn: 0,
    hks: sharedHka,
    hkr: null,
    nhks: r.nhk,
    nhkr: sharedNhkb,
    skipped: [],
  };
}

/** RatchetInitBobHE: the responder waits for the first message before it can send. */
export function initBob(sk: Bytes, bobRatchetKeyPair: KeyPair): RatchetState {
  const { rootKey, sharedHka, sharedNhkb } = kdfInit(sk);
  return {
    dhs: bobRatchetKeyPair,
    dhr: null,
    rk: rootKey,
    cks: null,
    ckr: null,
    ns: 0,
    nr: 0,
    pn: 0,
    hks: null,
    hkr: null,
    nhks: sharedNhkb,
    nhkr: sharedHka,
    skipped: [],
  };
}

/** RatchetEncryptHE. */
export function ratchetEncrypt(
  s: RatchetState,
  plaintext: Bytes,
  ad: Bytes,
  rng: Rng,
): { state: RatchetState; message: Bytes } {
  if (s.cks === null || s.hks === null) fail('NO_SESSION', 'this side cannot send before it has received a message');
  if (plaintext.length > WIRE_LIMITS.maxPlaintextBytes)
    fail('INVALID_ARGUMENT', `message of ${plaintext.length} bytes exceeds the limit of ${WIRE_LIMITS.maxPlaintextBytes}`);
  const { ck, mk } = kdfCk(s.cks);
  const { frame, bodyAt } = newFrame(plaintext.length);
  encryptHeaderInto(s.hks, encodeHeader({ dh: s.dhs.publicKey, pn: s.pn, n: s.ns }), ad, rng, frame, FRAME_HEADER_AT);
  // The body's MAC covers ad || encrypted header || ciphertext, which sit side by side in the frame.
  encryptMessageInto(mk, plaintext, ad, frame, bodyAt, FRAME_HEADER_AT);
  return { state: { ...s, cks: ck, ns: s.ns + 1 }, message: frame };
}

/**
 * RatchetDecryptHE. Pure: on any failure it throws and the caller still holds the old state, so a
 * failed decrypt cannot change anything.
 */
export function ratchetDecrypt(
  s0: RatchetState,
  messageBytes: Bytes,
  ad: Bytes,
  env: RatchetEnv,
): { state: RatchetState; plaintext: Bytes } {
  const config = { ...RATCHET_DEFAULTS, ...env.config };
  const m = decodeRatchetMessage(messageBytes);
  let s = expireSkipped(s0, env.now, config.skippedKeyTtlMs);

  const fromSkipped = trySkippedMessageKeys(s, m, ad);
  if (fromSkipped) return fromSkipped;

  let header: Header;
  let dhRatchet: boolean;
  const current = s.hkr && decryptHeader(s.hkr, m.encHeader, ad);
  if (current) {
    header = decodeHeader(current);
    dhRatchet = false;
    if (header.n < s.nr) fail('DUPLICATE_MESSAGE', 'message was already decrypted, or its skipped key expired');
  } else {
    const next = decryptHeader(s.nhkr, m.encHeader, ad);
    if (!next) fail('DECRYPT_FAILED', 'no header key of this session opens the message');
    header = decodeHeader(next);
    dhRatchet = true;
  }

  if (dhRatchet) {
    s = skipMessageKeys(s, header.pn, env.now, config);
    s = dhRatchetStep(s, header, env.rng);
  }
  s = skipMessageKeys(s, header.n, env.now, config);
  const { ck, mk } = kdfCk(s.ckr!);
  const plaintext = decryptMessage(mk, ad, m.authenticated, m.ciphertext, m.mac);
  if (!plaintext) fail('DECRYPT_FAILED', 'message authentication failed');
  return { state: { ...s, ckr: ck, nr: s.nr + 1 }, plaintext };
}

/**
 * Where a message sits in the sender's chains, read from its authenticated header without changing
 * anything: `chain` 0 is the current receiving chain, 1 the next one. Null when no current key opens
 * it. Lets a receiver put a backlog in order before decrypting it.
 */
export function peekMessagePosition(s: RatchetState, messageBytes: Bytes, ad: Bytes): { chain: 0 | 1; n: number } | null {
  let m;
  try {
    m = decodeRatchetMessage(messageBytes);
  } catch {
    return null;
  }
  const current = s.hkr && decryptHeader(s.hkr, m.encHeader, ad);
  if (current) return { chain: 0, n: decodeHeader(current).n };
  const next = decryptHeader(s.nhkr, m.encHeader, ad);
  return next ? { chain: 1, n: decodeHeader(next).n } : null;
}

function trySkippedMessageKeys(s: RatchetState, m: RatchetMessage, ad: Bytes): { state: RatchetState; plaintext: Bytes } | null {
  // Trial-decrypt once per distinct header key, not once per skipped key.
  const tried: Bytes[] = [];
  for (const candidate of s.skipped) {
    const hk = candidate.headerKey;
    if (tried.some((t) => constantTimeEqual(t, hk))) continue;
    tried.push(hk);
    const opened = decryptHeader(hk, m.encHeader, ad);
    if (!opened) continue;
    const { n } = decodeHeader(opened);
    const index = s.skipped.findIndex((k) => k.n === n && constantTimeEqual(k.headerKey, hk));
    if (index < 0) {
      if (s.hkr && constantTimeEqual(hk, s.hkr)) return null; // a later message of the current chain
      fail('DUPLICATE_MESSAGE', 'message was already decrypted, or its skipped key expired');
    }
    const plaintext = decryptMessage(s.skipped[index]!.messageKey, ad, m.authenticated, m.ciphertext, m.mac);
    if (!plaintext) fail('DECRYPT_FAILED', 'message authentication failed');
    // Forward secrecy: the used key leaves the state.
    return { state: { ...s, skipped: s.skipped.filter((_, i) => i !== index) }, plaintext };
  }
  return null;
}

function skipMessageKeys(s: RatchetState, until: number, now: number, config: RatchetConfig): RatchetState {
  if (s.nr + config.maxSkip < until)
    fail('TOO_MANY_SKIPPED', `message skips ${until - s.nr} keys, more than MAX_SKIP=${config.maxSkip}`);
  if (s.ckr === null || s.hkr === null || s.nr >= until) return s;
  let ckr = s.ckr;
  const added: SkippedKey[] = [];
  for (let n = s.nr; n < until; n++) {
    const step = kdfCk(ckr);
    added.push({ headerKey: s.hkr, n, messageKey: step.mk, createdAt: now });
    ckr = step.ck;
  }
  let skipped = [...s.skipped, ...added];
  if (skipped.length > config.maxSkippedKeys) skipped = skipped.slice(skipped.length - config.maxSkippedKeys);
  return { ...s, ckr, nr: until, skipped };
}

function dhRatchetStep(s: RatchetState, header: Header, rng: Rng): RatchetState {
  let receiving, dhs, sending;
  try {
    receiving = kdfRk(s.rk, X25519.dh(s.dhs.privateKey, header.dh));
    dhs = X25519.generate(rng);
    sending = kdfRk(receiving.rk, X25519.dh(dhs.privateKey, header.dh));
  } catch {
    return fail('DECRYPT_FAILED', 'peer ratchet key is not a valid X25519 key');
  }
  return {
    ...s,
    pn: s.ns,
    ns: 0,
    nr: 0,
    hks: s.nhks,
    hkr: s.nhkr,
    dhr: header.dh,
    rk: sending.rk,
    ckr: receiving.ck,
    nhkr: receiving.nhk,
    dhs,
    cks: sending.ck,
    nhks: sending.nhk,
  };
}

function expireSkipped(s: RatchetState, now: number, ttlMs: number): RatchetState {
  if (s.skipped.every((k) => now - k.createdAt <= ttlMs)) return s;
  return { ...s, skipped: s.skipped.filter((k) => now - k.createdAt <= ttlMs) };
}
