import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Bytes, concat, fromUtf8, type Rng, utf8 } from '../src/crypto/index.js';
import { type ErrorCode, RatchetRelayError } from '../src/errors.js';
import { fingerprint, generateIdentity, type Identity } from '../src/identity/index.js';
import { decodeMessageEnvelope, decryptInSession, encryptInSession, type SessionState } from '../src/session/index.js';
import {
  acceptInvite,
  createInvite,
  decodeInvite,
  decodePendingKX,
  decodeRMOFullKX,
  decodeRMOHalfKX,
  decodeRMOKXRefused,
  encodeInvite,
  encodePendingKX,
  encodeRMOFullKX,
  encodeRMOHalfKX,
  encodeRMOKXRefused,
  INVITE_STRING_PREFIX,
  inviteFromString,
  inviteToString,
  isExpired,
  onFullKX,
  onHalfKX,
  onStep3,
  open,
  openHalfKX,
  type PendingKX,
  refuseHalfKX,
  rvHex,
  seal,
  SEAL_OVERHEAD_BYTES,
  signFullKX,
  signHalfKX,
  signKXRefused,
} from '../src/kx/index.js';
import { DAY, seededRng } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1);

const isCode =
  (...codes: ErrorCode[]) =>
  (e: unknown): boolean =>
    e instanceof RatchetRelayError && codes.includes(e.code);

const isCodeWith =
  (code: ErrorCode, message: RegExp) =>
  (e: unknown): boolean =>
    e instanceof RatchetRelayError && e.code === code && message.test(e.message);

// Identities are expensive-ish (ML-KEM keygen); the same seed always gives the same identity.
const identities = new Map<string, Identity>();
function identity(name: string): Identity {
  let id = identities.get(name);
  if (!id) identities.set(name, (id = generateIdentity(seededRng(`identity/${name}`), T0 - DAY)));
  return id;
}

/** One complete exchange, every step kept, with the pendings passed through their stored form. */
function exchange(seed: string) {
  const alice = identity('alice');
  const bob = identity('bob');
  const rngA = seededRng(`${seed}/alice`);
  const rngB = seededRng(`${seed}/bob`);
  const created = createInvite(alice, rngA, T0, DAY);
  const inviteString = inviteToString(created.invite);
  const invite = inviteFromString(inviteString);
  const accepted = acceptInvite(bob, invite, rngB, T0 + 1000);
  const pendingA = decodePendingKX(encodePendingKX(created.pending));
  const pendingB = decodePendingKX(encodePendingKX(accepted.pending));
  const half = onHalfKX(alice, pendingA, accepted.send.payload, rngA, T0 + 2000);
  const full = onFullKX(bob, pendingB, half.send.payload, T0 + 3000);
  return { alice, bob, rngA, rngB, created, inviteString, invite, accepted, pendingA, pendingB, half, full };
}

function send(from: SessionState, text: string, rng: Rng): { state: SessionState; message: Bytes } {
  const r = encryptInSession(from, utf8(text), rng);
  const env = decodeMessageEnvelope(r.envelope);
  assert.equal(env.type, 'normal', 'a KX session carries no PQXDH header');
  return { state: r.state, message: env.message };
}

function receive(to: SessionState, message: Bytes, rng: Rng, now: number): { state: SessionState; text: string } {
  const r = decryptInSession(to, message, { rng, now });
  return { state: r.state, text: fromUtf8(r.plaintext) };
}

function flip(b: Bytes, at: number, bit = 0): Bytes {
  const out = b.slice();
  out[at]! ^= 1 << bit;
  return out;
}

/** Every byte array anywhere inside `v`, concatenated: all that a state object could hand to a store. */
function allBytes(v: unknown): Bytes {
  if (v instanceof Uint8Array) return v;
  if (v === null || typeof v !== 'object') return new Uint8Array(0);
  return concat(...Object.values(v).map(allBytes));
}

/** First, middle and last byte of a region [start, end). */
function probes(start: number, end: number): number[] {
  return [...new Set([start, Math.floor((start + end - 1) / 2), end - 1])];
}

describe('invite key exchange', () => {
  it('invite → half KX → full KX gives two sessions that talk both ways', () => {
    const x = exchange('happy');
    const { alice, bob } = x;

    // Each message goes where the other side listens, and the reset mailboxes cross over.
    assert.deepEqual(x.accepted.send.rv, x.created.invite.initialRV);
    assert.deepEqual(x.half.send.rv, x.accepted.pending.step3RV);
    assert.equal(rvHex(x.half.resetRV), rvHex(x.full.peerResetRV));
    assert.equal(rvHex(x.full.resetRV), rvHex(x.half.peerResetRV));
    assert.equal(rvHex(x.half.resetRV), rvHex(x.created.invite.resetRV));
    assert.notEqual(rvHex(x.half.resetRV), rvHex(x.full.resetRV));

    const sa = x.half.session;
    const sb = x.full.session;
    assert.equal(fingerprint(sa.peer), fingerprint(bob.public));
    assert.equal(fingerprint(sb.peer), fingerprint(alice.public));
    assert.deepEqual(sa.associatedData, sb.associatedData);
    assert.deepEqual(sa.baseKey, sb.baseKey);
    assert.equal(sa.role, 'initiator');
    assert.equal(sb.role, 'responder');
    assert.equal(sa.createdAt, T0 + 2000);
    assert.equal(sb.createdAt, T0 + 3000);

    // The acceptor is Bob: it cannot send before the inviter's first message.
    assert.throws(() => encryptInSession(sb, utf8('too early'), x.rngB), isCode('NO_SESSION'));

    let a = sa;
    let b = sb;
    const m1 = send(a, 'hello bob', x.rngA);
    a = m1.state;
    const m2 = send(a, 'are you there?', x.rngA);
    a = m2.state;
    const r2 = receive(b, m2.message, x.rngB, T0 + 4000); // out of order
    b = r2.state;
    assert.equal(r2.text, 'are you there?');
    const r1 = receive(b, m1.message, x.rngB, T0 + 4000);
    b = r1.state;
    assert.equal(r1.text, 'hello bob');

    const m3 = send(b, 'hi alice', x.rngB);
    b = m3.state;
    const r3 = receive(a, m3.message, x.rngA, T0 + 5000);
    a = r3.state;
    assert.equal(r3.text, 'hi alice');

    const m4 = send(a, 'new chain', x.rngA);
    assert.equal(receive(b, m4.message, x.rngB, T0 + 6000).text, 'new chain');
  });

  it('a third party with the invite cannot open the half KX nor the full KX', () => {
    const x = exchange('third');
    const carol = identity('carol');
    const carols = createInvite(carol, seededRng('c/invite'), T0, DAY);
    assert.throws(() => onHalfKX(carol, carols.pending, x.accepted.send.payload, seededRng('c'), T0 + 2000), isCode('DECRYPT_FAILED'));
    const carolAccepts = acceptInvite(carol, x.invite, seededRng('c/accept'), T0 + 1000);
    assert.throws(() => onFullKX(carol, carolAccepts.pending, x.half.send.payload, T0 + 3000), isCode('DECRYPT_FAILED'));
  });

  it('forward secrecy: once done, nothing kept holds the ephemeral KEM secrets, and the identity KEM keys open nothing', () => {
    const x = exchange('forward-secrecy');
    const ephemeralSecrets = [x.created.pending.kemSecret, x.accepted.pending.kemSecret];
    // What each side keeps after its step: the session (as the store encodes it) and the reset RVs;
    // the caller deletes the pending KX row.
    const kept = [x.half, x.full].map((done) => Buffer.from(allBytes({ session: done.session, resetRV: done.resetRV, peerResetRV: done.peerResetRV })));
    for (const state of kept) for (const secret of ephemeralSecrets) assert.equal(state.indexOf(secret), -1);
    // Someone who recorded both sealed messages and later stole both identities' private keys.
    for (const [sealed, who] of [
      [x.accepted.send.payload, x.alice],
      [x.half.send.payload, x.bob],
    ] as const) {
      for (const thief of [x.alice, x.bob]) assert.throws(() => open(thief.kem.secretKey, sealed), isCode('DECRYPT_FAILED'), fingerprint(who.public));
    }
    // The ephemeral secrets are what opened them, and the invite carries no identity KEM key.
    assert.doesNotThrow(() => open(x.created.pending.kemSecret, x.accepted.send.payload));
    assert.doesNotThrow(() => open(x.accepted.pending.kemSecret, x.half.send.payload));
    assert.equal(x.invite.identity.kemKey, null);
  });

  it('the pendings round-trip through their stored form', () => {
    const x = exchange('pending');
    assert.deepEqual(x.pendingA, x.created.pending);
    assert.deepEqual(x.pendingB, x.accepted.pending);
    assert.deepEqual(encodePendingKX(x.pendingB), encodePendingKX(x.accepted.pending));
  });

  it('wire sizes match docs/protocol.md', () => {
    const x = exchange('sizes');
    const half = decodeRMOHalfKX(open(x.created.pending.kemSecret, x.accepted.send.payload));
    const full = decodeRMOFullKX(open(x.accepted.pending.kemSecret, x.half.send.payload), x.alice.public);
    assert.equal(SEAL_OVERHEAD_BYTES, 1608);
    // Without nicknames (their length byte 0).
    assert.equal(encodeInvite(x.invite).length, 1984);
    assert.equal(x.inviteString.length, 2657);
    assert.equal(encodeRMOHalfKX(half).length, 3568);
    assert.equal(x.accepted.send.payload.length, 3568 + 1608);
    assert.equal(encodeRMOFullKX(full).length, 1935);
    assert.equal(x.half.send.payload.length, 1935 + 1608);
    assert.equal(encodePendingKX(x.created.pending).length, 3242);
    assert.equal(encodePendingKX(x.accepted.pending).length, 3640);
  });

  it('refuses an invite from our own identity', () => {
    const alice = identity('alice');
    const { invite } = createInvite(alice, seededRng('own'), T0, DAY);
    assert.throws(() => acceptInvite(alice, invite, seededRng('own2'), T0), isCodeWith('INVALID_ARGUMENT', /own identity/));
  });

  it('refuses a non-positive invite lifetime', () => {
    assert.throws(() => createInvite(identity('alice'), seededRng('ttl'), T0, 0), isCode('INVALID_ARGUMENT'));
  });
});

describe('invite strings', () => {
  const { invite } = createInvite(identity('alice'), seededRng('string'), T0, DAY);
  const s = inviteToString(invite);

  it('round-trip, and the bytes decode to the same invite', () => {
    assert.ok(s.startsWith(INVITE_STRING_PREFIX));
    const back = inviteFromString(s);
    assert.deepEqual(back, invite);
    assert.equal(inviteToString(back), s);
    assert.deepEqual(decodeInvite(encodeInvite(invite)), invite);
  });

  it('one changed character fails the checksum', () => {
    const at = INVITE_STRING_PREFIX.length + 100;
    const changed = s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);
    assert.throws(() => inviteFromString(changed), isCodeWith('MALFORMED', /checksum/));
  });

  it('any one changed character anywhere after the prefix fails the checksum, the last one included', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const positions = fc.oneof(fc.constant(s.length - 1), fc.integer({ min: INVITE_STRING_PREFIX.length, max: s.length - 1 }));
    fc.assert(
      fc.property(positions, fc.integer({ min: 1, max: 63 }), (at, shift) => {
        const next = alphabet[(alphabet.indexOf(s[at]!) + shift) % 64]!;
        const changed = s.slice(0, at) + next + s.slice(at + 1);
        assert.throws(() => inviteFromString(changed), isCodeWith('MALFORMED', /checksum/));
      }),
      { numRuns: 300 },
    );
  });

  it('a truncated string fails the checksum', () => {
    for (const cut of [1, 2, 3, 4, 5, 100]) assert.throws(() => inviteFromString(s.slice(0, s.length - cut)), isCodeWith('MALFORMED', /checksum/));
  });

  it('a wrong prefix, or characters outside base64url, are malformed', () => {
    for (const older of ['rrinv1', 'rrinv2'])
      assert.throws(() => inviteFromString(older + s.slice(INVITE_STRING_PREFIX.length)), isCodeWith('MALFORMED', /another version.*rrinv3/));
    assert.throws(() => inviteFromString(s.slice(INVITE_STRING_PREFIX.length)), isCode('MALFORMED'));
    assert.throws(() => inviteFromString(s + '='), isCodeWith('MALFORMED', /invalid character/));
    assert.throws(() => inviteFromString(` ${s}`), isCode('MALFORMED'));
  });

  it('an invite whose lifetime was extended (checksum recomputed) fails its signature', () => {
    const bytes = encodeInvite(invite);
    const expiresAtOffset = bytes.length - 64 - 1 - 8; // before the (empty) nickname and the signature
    const tampered = flip(bytes, expiresAtOffset + 2, 3); // later, not earlier
    assert.throws(() => decodeInvite(tampered), isCode('BAD_SIGNATURE'));
    assert.throws(() => decodeInvite(encodeInvite({ ...invite, expiresAt: invite.expiresAt + DAY })), isCode('BAD_SIGNATURE'));
  });

  it('an invite signed by another identity than the one inside fails', () => {
    const { invite: mallorys } = createInvite(identity('mallory'), seededRng('m'), T0, DAY);
    const forged = encodeInvite({ ...invite, signature: mallorys.signature });
    assert.throws(() => decodeInvite(forged), isCode('BAD_SIGNATURE'));
  });
});

describe('expiry', () => {
  it('acceptInvite refuses an expired invite, and accepts it a millisecond before', () => {
    const { invite } = createInvite(identity('alice'), seededRng('exp'), T0, DAY);
    assert.equal(isExpired(invite, T0 + DAY - 1), false);
    assert.equal(isExpired(invite, T0 + DAY), true);
    assert.throws(() => acceptInvite(identity('bob'), invite, seededRng('b'), T0 + DAY), isCodeWith('INVALID_ARGUMENT', /expired/));
    assert.throws(() => acceptInvite(identity('bob'), invite, seededRng('b'), T0 + 2 * DAY), isCodeWith('INVALID_ARGUMENT', /expired/));
    assert.doesNotThrow(() => acceptInvite(identity('bob'), invite, seededRng('b'), T0 + DAY - 1));
  });

  it('onHalfKX refuses a half KX that arrives after the invite expired, and changes nothing', () => {
    const alice = identity('alice');
    const created = createInvite(alice, seededRng('late/a'), T0, DAY);
    const accepted = acceptInvite(identity('bob'), created.invite, seededRng('late/b'), T0 + DAY - 1);
    const before = encodePendingKX(created.pending);
    assert.throws(
      () => onHalfKX(alice, created.pending, accepted.send.payload, seededRng('late/a2'), T0 + DAY),
      isCodeWith('INVALID_ARGUMENT', /expired/),
    );
    assert.deepEqual(encodePendingKX(created.pending), before);
    // The very same half KX was fine a moment earlier.
    assert.doesNotThrow(() => onHalfKX(alice, created.pending, accepted.send.payload, seededRng('late/a2'), T0 + DAY - 1));
  });
});

describe('tampering', () => {
  const x = exchange('tamper');
  const { alice, bob } = x;
  const halfPayload = x.accepted.send.payload;
  const fullPayload = x.half.send.payload;
  const halfPlain = open(x.created.pending.kemSecret, halfPayload);
  const fullPlain = open(x.accepted.pending.kemSecret, fullPayload);
  const halfKemKey = x.invite.kemKey; // what the half KX is sealed to
  const fullKemKey = decodeRMOHalfKX(halfPlain).kemKey; // what the full KX is sealed to

  /** Byte regions of a sealed message: KEM ciphertext, nonce, Poly1305 tag, encrypted body. */
  const sealedRegions = (len: number): Record<string, [number, number]> => ({
    'KEM ciphertext': [0, 1568],
    nonce: [1568, 1592],
    tag: [1592, 1608],
    body: [1608, len],
  });

  function assertUnchanged(p: PendingKX, before: Bytes): void {
    assert.deepEqual(encodePendingKX(p), before);
  }

  for (const [name, payload, run, pending] of [
    ['half KX', halfPayload, (p: Bytes) => onHalfKX(alice, x.pendingA, p, seededRng('t'), T0 + 2000), x.pendingA],
    ['full KX', fullPayload, (p: Bytes) => onFullKX(bob, x.pendingB, p, T0 + 3000), x.pendingB],
  ] as const) {
    it(`a changed byte in any region of the sealed ${name} fails to decrypt and changes nothing`, () => {
      const before = encodePendingKX(pending);
      const payloadBefore = payload.slice();
      let tried = 0;
      for (const [region, [start, end]] of Object.entries(sealedRegions(payload.length))) {
        for (const at of probes(start, end)) {
          for (const bit of [0, 7]) {
            assert.throws(() => run(flip(payload, at, bit)), isCode('DECRYPT_FAILED'), `${region} byte ${at} bit ${bit}`);
            tried++;
          }
        }
      }
      assert.equal(tried, 24);
      for (const cut of [1, 16, payload.length - SEAL_OVERHEAD_BYTES, payload.length - 1]) {
        assert.throws(() => run(payload.subarray(0, payload.length - cut)), isCode('DECRYPT_FAILED'), `cut ${cut}`);
      }
      assert.throws(() => run(new Uint8Array([...payload, 0])), isCode('DECRYPT_FAILED'));
      assertUnchanged(pending, before);
      assert.deepEqual(payload, payloadBefore);
      // And the genuine message still works with the untouched pending.
      assert.doesNotThrow(() => run(payload));
    });
  }

  // Field regions of the plaintexts (offsets in docs/protocol.md): a resealed change fails a signature.
  // Both carry a full identity at the same offsets.
  const identityFields: Record<string, [number, number]> = {
    'identity signing key': [6, 38],
    'identity DH key': [38, 70],
    'identity Nostr key': [70, 102],
    'identity createdAt (low bytes; the top ones are range-checked)': [104, 110],
    'identity KEM key': [111, 1679],
    'identity self-signature': [1679, 1743],
    'identity Nostr binding': [1743, 1807],
  };
  const halfFields: Record<string, [number, number]> = {
    ...identityFields,
    'ephemeral key': [1807, 1839],
    'ephemeral KEM key': [1839, 3407],
    initialRV: [3407, 3439],
    step3RV: [3439, 3471],
    resetRV: [3471, 3503],
    signature: [3504, 3568], // after the nickname's length byte (0: none)
  };
  const fullFields: Record<string, [number, number]> = {
    ...identityFields,
    'ephemeral key': [1807, 1839],
    step3RV: [1839, 1871],
    signature: [1871, 1935],
  };

  it('a half KX changed inside and sealed again fails a signature check', () => {
    assert.equal(halfPlain.length, 3568);
    const before = encodePendingKX(x.pendingA);
    for (const [field, [start, end]] of Object.entries(halfFields)) {
      for (const at of probes(start, end)) {
        const resealed = seal(halfKemKey, flip(halfPlain, at), seededRng(`reseal/${at}`));
        assert.throws(() => onHalfKX(alice, x.pendingA, resealed, seededRng('t'), T0 + 2000), isCode('BAD_SIGNATURE'), `${field} byte ${at}`);
      }
    }
    // Structural bytes: version, length prefix, identity version, top byte of createdAt (beyond 2^53), form, nickname length.
    for (const at of [0, 1, 4, 5, 102, 110, 3503]) {
      const resealed = seal(halfKemKey, flip(halfPlain, at), seededRng(`reseal/${at}`));
      assert.throws(() => onHalfKX(alice, x.pendingA, resealed, seededRng('t'), T0 + 2000), isCode('MALFORMED', 'UNSUPPORTED_VERSION', 'BAD_SIGNATURE'), `byte ${at}`);
    }
    assertUnchanged(x.pendingA, before);
  });

  it('a full KX changed inside and sealed again fails a signature check', () => {
    assert.equal(fullPlain.length, 1935);
    const before = encodePendingKX(x.pendingB);
    for (const [field, [start, end]] of Object.entries(fullFields)) {
      for (const at of probes(start, end)) {
        const resealed = seal(fullKemKey, flip(fullPlain, at), seededRng(`reseal/${at}`));
        assert.throws(() => onFullKX(bob, x.pendingB, resealed, T0 + 3000), isCode('BAD_SIGNATURE'), `${field} byte ${at}`);
      }
    }
    const resealed = seal(fullKemKey, flip(fullPlain, 0), seededRng('reseal/0'));
    assert.throws(() => onFullKX(bob, x.pendingB, resealed, T0 + 3000), isCode('UNSUPPORTED_VERSION'));
    for (const at of [1, 4, 5, 102, 110]) {
      const structural = seal(fullKemKey, flip(fullPlain, at), seededRng(`reseal/${at}`));
      assert.throws(() => onFullKX(bob, x.pendingB, structural, T0 + 3000), isCode('MALFORMED', 'UNSUPPORTED_VERSION', 'BAD_SIGNATURE'), `byte ${at}`);
    }
    assertUnchanged(x.pendingB, before);
  });

  it('a half KX fed to the acceptor, or a full KX to the inviter, is refused', () => {
    assert.throws(() => onFullKX(bob, x.pendingA, fullPayload, T0), isCode('INVALID_ARGUMENT'));
    assert.throws(() => onHalfKX(alice, x.pendingB, halfPayload, seededRng('t'), T0), isCode('INVALID_ARGUMENT'));
    // A full KX sealed to the invite's key (wrong recipient) does not decode as a half KX (its version is another).
    const misrouted = seal(halfKemKey, fullPlain, seededRng('mis'));
    assert.throws(() => onHalfKX(alice, x.pendingA, misrouted, seededRng('t'), T0 + 2000), isCode('MALFORMED', 'UNSUPPORTED_VERSION'));
  });
});

describe('replies that do not match the pending KX', () => {
  it('a half KX for another invite (different initialRV) is rejected', () => {
    const alice = identity('alice');
    const bob = identity('bob');
    const one = createInvite(alice, seededRng('one'), T0, DAY);
    const two = createInvite(alice, seededRng('two'), T0, DAY);
    const toTwo = acceptInvite(bob, two.invite, seededRng('b2'), T0);
    const before = encodePendingKX(one.pending);
    // Sealed to invite one's key, the half KX does not open for invite one: reseal it, as a thief of both could.
    assert.throws(() => onHalfKX(alice, one.pending, toTwo.send.payload, seededRng('a'), T0), isCode('DECRYPT_FAILED'));
    const resealed = seal(one.invite.kemKey, open(two.pending.kemSecret, toTwo.send.payload), seededRng('b3'));
    assert.throws(
      () => onHalfKX(alice, one.pending, resealed, seededRng('a'), T0),
      isCodeWith('INVALID_ARGUMENT', /does not match the pending KX/),
    );
    assert.deepEqual(encodePendingKX(one.pending), before);
    assert.doesNotThrow(() => onHalfKX(alice, two.pending, toTwo.send.payload, seededRng('a'), T0));
  });

  it('a full KX whose step3RV differs is rejected', () => {
    const alice = identity('alice');
    const bob = identity('bob');
    const created = createInvite(alice, seededRng('s3'), T0, DAY);
    const first = acceptInvite(bob, created.invite, seededRng('s3/b1'), T0);
    const second = acceptInvite(bob, created.invite, seededRng('s3/b2'), T0);
    assert.notDeepEqual(first.pending.step3RV, second.pending.step3RV);
    const answer = onHalfKX(alice, created.pending, second.send.payload, seededRng('s3/a'), T0);
    const before = encodePendingKX(first.pending);
    assert.throws(() => onFullKX(bob, first.pending, answer.send.payload, T0), isCode('DECRYPT_FAILED'));
    const firstKemKey = openHalfKX(alice, created.pending, first.send.payload, T0).half.kemKey;
    const resealed = seal(firstKemKey, open(second.pending.kemSecret, answer.send.payload), seededRng('s3/r'));
    assert.throws(
      () => onFullKX(bob, first.pending, resealed, T0),
      isCodeWith('INVALID_ARGUMENT', /does not match the pending KX/),
    );
    assert.deepEqual(encodePendingKX(first.pending), before);
    assert.doesNotThrow(() => onFullKX(bob, second.pending, answer.send.payload, T0));
  });

  it('a full KX from someone other than the inviter, or signed by someone else, is rejected', () => {
    const alice = identity('alice');
    const bob = identity('bob');
    const carol = identity('carol');
    const alices = createInvite(alice, seededRng('fa'), T0, DAY);
    const withAlice = acceptInvite(bob, alices.invite, seededRng('fb'), T0);
    const half = openHalfKX(alice, alices.pending, withAlice.send.payload, T0).half;
    const carols = createInvite(carol, seededRng('fc'), T0, DAY);
    const withCarol = acceptInvite(bob, carols.invite, seededRng('fb2'), T0);
    const fromCarol = onHalfKX(carol, carols.pending, withCarol.send.payload, seededRng('fc2'), T0);
    // Carol's own full KX, resealed to the half KX Bob sent Alice: Carol is not the inviter.
    const carolsFull = seal(half.kemKey, open(withCarol.pending.kemSecret, fromCarol.send.payload), seededRng('fc3'));
    const before = encodePendingKX(withAlice.pending);
    assert.throws(() => onFullKX(bob, withAlice.pending, carolsFull, T0), isCode('IDENTITY_MISMATCH'));
    // Alice's identity inside, Carol's signature.
    const forged = signFullKX(carol, { identity: alice.public, ephemeralKey: seededRng('fc4')(32), step3RV: half.step3RV });
    assert.throws(() => onFullKX(bob, withAlice.pending, seal(half.kemKey, encodeRMOFullKX(forged), seededRng('fc5')), T0), isCode('BAD_SIGNATURE'));
    assert.deepEqual(encodePendingKX(withAlice.pending), before);
  });
});

describe('a half KX for a spent invite is refused', () => {
  /** Bob completed alice's invite; carol answers it too, and alice refuses carol's half KX. */
  function refused(seed: string) {
    const x = exchange(seed);
    const carol = identity('carol');
    const late = acceptInvite(carol, x.invite, seededRng(`${seed}/carol`), T0 + 4000);
    const { half: carolsHalf } = openHalfKX(x.alice, x.created.pending, late.send.payload, T0 + 5000);
    const send = refuseHalfKX(x.alice, carolsHalf, 'invite-used', seededRng(`${seed}/refuse`));
    return { ...x, carol, late, carolsHalf, send };
  }

  it('the acceptor gets a verified refusal at its step3RV, and a full KX still completes through onStep3', () => {
    const r = refused('refusal');
    assert.equal(rvHex(r.send.rv), rvHex(r.late.pending.step3RV));
    assert.equal(rvHex(r.carolsHalf.step3RV), rvHex(r.late.pending.step3RV));
    const before = encodePendingKX(r.late.pending);
    assert.deepEqual(onStep3(r.carol, r.late.pending, r.send.payload, T0 + 6000), { refused: 'invite-used' });
    assert.deepEqual(encodePendingKX(r.late.pending), before);
    const done = onStep3(r.bob, r.pendingB, r.half.send.payload, T0 + 3000);
    assert.ok('session' in done && fingerprint(done.session.peer) === fingerprint(r.alice.public));
    // A refusal is no full KX: the old entry point refuses it.
    assert.throws(() => onFullKX(r.carol, r.late.pending, r.send.payload, T0 + 6000), isCode('UNSUPPORTED_VERSION'));
  });

  it('wire sizes match docs/protocol.md', () => {
    const r = refused('refusal-sizes');
    assert.equal(open(r.late.pending.kemSecret, r.send.payload).length, 130);
    assert.equal(r.send.payload.length, 130 + 1608);
  });

  it('cannot be replayed against another half KX, even of the same acceptor and invite', () => {
    const r = refused('refusal-replay');
    const again = acceptInvite(r.carol, r.invite, seededRng('refusal-replay/carol2'), T0 + 4000);
    const before = encodePendingKX(again.pending);
    assert.throws(() => onStep3(r.carol, again.pending, r.send.payload, T0 + 6000), isCode('DECRYPT_FAILED'));
    const againKemKey = openHalfKX(r.alice, r.created.pending, again.send.payload, T0 + 5000).half.kemKey;
    const resealed = seal(againKemKey, open(r.late.pending.kemSecret, r.send.payload), seededRng('refusal-replay/reseal'));
    assert.throws(() => onStep3(r.carol, again.pending, resealed, T0 + 6000), isCodeWith('INVALID_ARGUMENT', /answers another half KX/));
    assert.deepEqual(encodePendingKX(again.pending), before);
    // Another acceptor cannot even open it.
    const dave = identity('dave');
    const davesPending = acceptInvite(dave, r.invite, seededRng('refusal-replay/dave'), T0 + 4000).pending;
    assert.throws(() => onStep3(dave, davesPending, r.send.payload, T0 + 6000), isCode('DECRYPT_FAILED'));
  });

  it('a refusal signed by anyone but the inviter is rejected', () => {
    const r = refused('refusal-forged');
    const forged = signKXRefused(identity('mallory'), { reason: 'invite-used', step3RV: r.late.pending.step3RV, ephemeralKey: r.late.pending.ephemeral.publicKey });
    const payload = seal(r.carolsHalf.kemKey, encodeRMOKXRefused(forged), seededRng('refusal-forged/seal'));
    assert.throws(() => onStep3(r.carol, r.late.pending, payload, T0 + 6000), isCode('BAD_SIGNATURE'));
  });

  it('round-trips any binding, verified against the inviter only', () => {
    const alice = identity('alice');
    const bob = identity('bob');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (step3RV, ephemeralKey) => {
        const m = signKXRefused(alice, { reason: 'invite-used', step3RV, ephemeralKey });
        const bytes = encodeRMOKXRefused(m);
        assert.deepEqual(decodeRMOKXRefused(bytes, alice.public), m);
        assert.throws(() => decodeRMOKXRefused(bytes, bob.public), isCode('BAD_SIGNATURE'));
      }),
      { numRuns: 50 },
    );
  });

  it('an unknown reason is malformed, even when signed', () => {
    const x = exchange('refusal-reason');
    const good = encodeRMOKXRefused(signKXRefused(x.alice, { reason: 'invite-used', step3RV: x.accepted.pending.step3RV, ephemeralKey: x.accepted.pending.ephemeral.publicKey }));
    const unknown = good.slice();
    unknown[1] = 2;
    assert.throws(() => decodeRMOKXRefused(unknown, x.alice.public), isCodeWith('MALFORMED', /unknown reason 2/));
  });
});

describe('a half KX signed by another identity than the one inside', () => {
  it('is rejected by the decoder and by onHalfKX', () => {
    const alice = identity('alice');
    const bob = identity('bob');
    const mallory = identity('mallory');
    const created = createInvite(alice, seededRng('forge'), T0, DAY);
    const rng = seededRng('forge/m');
    const forged = signHalfKX(mallory, {
      identity: bob.public,
      ephemeralKey: rng(32),
      kemKey: rng(1568),
      initialRV: created.invite.initialRV,
      step3RV: rng(32),
      resetRV: rng(32),
      nickname: null,
    });
    const bytes = encodeRMOHalfKX(forged);
    assert.throws(() => decodeRMOHalfKX(bytes), isCode('BAD_SIGNATURE'));
    const before = encodePendingKX(created.pending);
    assert.throws(
      () => onHalfKX(alice, created.pending, seal(created.invite.kemKey, bytes, rng), seededRng('forge/a'), T0),
      isCode('BAD_SIGNATURE'),
    );
    assert.deepEqual(encodePendingKX(created.pending), before);
    // The same body signed by Bob himself is fine: it is the signer that was wrong.
    assert.doesNotThrow(() => decodeRMOHalfKX(encodeRMOHalfKX(signHalfKX(bob, { ...forged }))));
  });
});

describe('kx decoders throw only RatchetRelayError', () => {
  const x = exchange('decoders');
  const halfBytes = open(x.created.pending.kemSecret, x.accepted.send.payload);
  const fullBytes = open(x.accepted.pending.kemSecret, x.half.send.payload);
  const refusalBytes = encodeRMOKXRefused(signKXRefused(x.alice, { reason: 'invite-used', step3RV: x.accepted.pending.step3RV, ephemeralKey: x.accepted.pending.ephemeral.publicKey }));
  const samples: Record<string, { bytes: Bytes; decode: (b: Bytes) => unknown; signed: boolean }> = {
    invite: { bytes: encodeInvite(x.invite), decode: decodeInvite, signed: true },
    'half KX': { bytes: halfBytes, decode: decodeRMOHalfKX, signed: true },
    'full KX': { bytes: fullBytes, decode: (b) => decodeRMOFullKX(b, x.alice.public), signed: true },
    'KX refusal': { bytes: refusalBytes, decode: (b) => decodeRMOKXRefused(b, x.alice.public), signed: true },
    'pending KX (inviter)': { bytes: encodePendingKX(x.created.pending), decode: decodePendingKX, signed: false },
    'pending KX (acceptor)': { bytes: encodePendingKX(x.accepted.pending), decode: decodePendingKX, signed: false },
  };

  const onlyTyped = (decode: (b: Bytes) => unknown) => (bytes: Bytes) => {
    try {
      decode(bytes);
    } catch (e) {
      assert.ok(e instanceof RatchetRelayError, `untyped error: ${String(e)}`);
    }
  };

  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('append' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  );

  for (const [name, { bytes, decode, signed }] of Object.entries(samples)) {
    describe(name, () => {
      it('decodes its own encoding', () => {
        assert.doesNotThrow(() => decode(bytes));
      });

      it('random bytes', () => {
        fc.assert(fc.property(fc.uint8Array({ maxLength: 4000 }), onlyTyped(decode)), { numRuns: 200 });
      });

      it('random bytes behind a valid version byte', () => {
        fc.assert(fc.property(fc.uint8Array({ maxLength: 4000 }), (b) => onlyTyped(decode)(new Uint8Array([bytes[0]!, ...b]))), { numRuns: 200 });
      });

      it('mutations of a valid encoding', () => {
        fc.assert(
          fc.property(mutation, (m) => {
            let b: Bytes;
            if (m.kind === 'flip') b = flip(bytes, m.at % bytes.length, m.bit);
            else if (m.kind === 'truncate') b = bytes.subarray(0, m.at % bytes.length);
            else b = new Uint8Array([...bytes, ...m.extra]);
            // Truncations and appends never decode (every field is fixed or length-checked); nor does a
            // flip in a signed format. A stored pending KX is not signed: a flipped RV still decodes.
            const mustFail = m.kind !== 'flip' || signed;
            let decoded = false;
            try {
              decode(b);
              decoded = true;
            } catch (e) {
              assert.ok(e instanceof RatchetRelayError, `untyped error: ${String(e)}`);
            }
            if (mustFail) assert.equal(decoded, false, `${m.kind} of ${name} still decodes`);
          }),
          { numRuns: 200 },
        );
      });

      it('rejects trailing bytes and other versions', () => {
        assert.throws(() => decode(new Uint8Array([...bytes, 0])), isCode('MALFORMED'));
        const v = bytes.slice();
        v[0] = 0xee;
        assert.throws(() => decode(v), isCode('UNSUPPORTED_VERSION'));
      });
    });
  }

  it('pending KX: a corrupt ephemeral key pair and an unknown role are malformed', () => {
    const acceptor = encodePendingKX(x.accepted.pending);
    assert.throws(() => decodePendingKX(flip(acceptor, 2 + 32)), isCodeWith('MALFORMED', /does not match/));
    assert.throws(() => decodePendingKX(flip(acceptor, 1, 2)), isCodeWith('MALFORMED', /role/));
  });

  it('invite strings: random text and random base64url after the prefix', () => {
    const b64 = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), maxLength: 3000 });
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 3000 }), b64.map((t) => INVITE_STRING_PREFIX + t)), (t) => {
        try {
          inviteFromString(t);
          assert.fail('random text decoded as an invite');
        } catch (e) {
          assert.ok(e instanceof RatchetRelayError && e.code === 'MALFORMED', `unexpected error: ${String(e)}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('open: random and mutated sealed bytes give DECRYPT_FAILED only', () => {
    const sealed = x.accepted.send.payload;
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 4000 }), fc.nat().map((at) => flip(sealed, at % sealed.length))), (b) => {
        assert.throws(() => open(x.created.pending.kemSecret, b), isCode('DECRYPT_FAILED'));
      }),
      { numRuns: 200 },
    );
  });
});
