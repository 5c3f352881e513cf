import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Bytes, fromUtf8, utf8, X25519 } from '../src/crypto/index.js';
import { isRatchetRelayError, RatchetRelayError } from '../src/errors.js';
import {
  decodeRatchetState,
  encodeRatchetState,
  initAlice,
  initBob,
  ratchetDecrypt,
  ratchetEncrypt,
  type RatchetState,
} from '../src/ratchet/index.js';
import { seededRng } from './helpers.js';

const AD = utf8('associated data: both identities');

function pair(seed: string | number) {
  const rng = seededRng(seed);
  const sk = rng(32);
  const bobKey = X25519.generate(rng);
  return { rng, alice: initAlice(sk, bobKey.publicKey, rng), bob: initBob(sk, bobKey) };
}

function rejects(fn: () => unknown, code: RatchetRelayError['code']): void {
  assert.throws(fn, (e: unknown) => isRatchetRelayError(e, code), `expected ${code}`);
}

describe('Double Ratchet with header encryption', () => {
  it('delivers every non-dropped message exactly once under reordering, drops and duplicates', () => {
    type Action =
      | { kind: 'send'; from: 0 | 1 }
      | { kind: 'deliver'; to: 0 | 1; pick: number }
      | { kind: 'replay'; to: 0 | 1; pick: number }
      | { kind: 'drop'; to: 0 | 1; pick: number }
      | { kind: 'misdeliver'; to: 0 | 1; pick: number };
    const side = fc.constantFrom<0 | 1>(0, 1);
    const action: fc.Arbitrary<Action> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('send' as const), from: side }) },
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('deliver' as const), to: side, pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('replay' as const), to: side, pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), to: side, pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('misdeliver' as const), to: side, pick: fc.nat() }) },
    );
    fc.assert(
      fc.property(fc.integer(), fc.array(action, { maxLength: 80 }), (seed, actions) => {
        const { rng, alice, bob } = pair(seed);
        const states: RatchetState[] = [alice, bob];
        // The first message must reach Bob before he can send at all.
        const inFlight: { text: string; message: Bytes }[][] = [[], []];
        const delivered: Bytes[][] = [[], []];
        let counter = 0;
        const send = (from: 0 | 1) => {
          const text = `m${counter++} from ${from}`;
          const r = ratchetEncrypt(states[from]!, utf8(text), AD, rng);
          states[from] = r.state;
          inFlight[1 - from]!.push({ text, message: r.message });
        };
        const now = 0;
        send(0);
        const first = inFlight[1]!.shift()!;
        const d0 = ratchetDecrypt(states[1]!, first.message, AD, { rng, now });
        assert.equal(fromUtf8(d0.plaintext), first.text);
        states[1] = d0.state;
        delivered[1]!.push(first.message);

        for (const a of actions) {
          if (a.kind === 'send') send(a.from);
          else if (a.kind === 'deliver' || a.kind === 'drop') {
            const q = inFlight[a.to]!;
            if (q.length === 0) continue;
            const [m] = q.splice(a.pick % q.length, 1);
            if (a.kind === 'drop') continue;
            const r = ratchetDecrypt(states[a.to]!, m!.message, AD, { rng, now });
            assert.equal(fromUtf8(r.plaintext), m!.text);
            states[a.to] = r.state;
            delivered[a.to]!.push(m!.message);
          } else if (a.kind === 'replay') {
            const d = delivered[a.to]!;
            if (d.length === 0) continue;
            const before = states[a.to]!;
            const snapshot = encodeRatchetState(before);
            rejectsReplay(() => ratchetDecrypt(before, d[a.pick % d.length]!, AD, { rng, now }));
            assert.deepEqual(encodeRatchetState(before), snapshot);
          } else {
            // A message meant for the other side never decrypts here.
            const q = inFlight[1 - a.to]!;
            if (q.length === 0) continue;
            assert.throws(() => ratchetDecrypt(states[a.to]!, q[a.pick % q.length]!.message, AD, { rng, now }), RatchetRelayError);
          }
        }
        // Whatever is still in flight was not delivered; delivering it now still works exactly once.
        for (const to of [0, 1] as const)
          for (const m of inFlight[to]!) {
            const r = ratchetDecrypt(states[to]!, m.message, AD, { rng, now });
            assert.equal(fromUtf8(r.plaintext), m.text);
            states[to] = r.state;
            rejectsReplay(() => ratchetDecrypt(states[to]!, m.message, AD, { rng, now }));
          }
      }),
      { numRuns: 150 },
    );
  });

  it('rejects a change to any byte of a message and leaves the state unchanged', () => {
    const { rng, alice, bob } = pair('tamper');
    const sent = [ratchetEncrypt(alice, utf8('first'), AD, rng)];
    sent.push(ratchetEncrypt(sent[0]!.state, utf8('second, sent before the first arrives'), AD, rng));
    // Bob holds a skipped key after message 2, so tampering is also tried against the skipped-key path.
    let b = ratchetDecrypt(bob, sent[1]!.message, AD, { rng, now: 0 }).state;
    const snapshot = encodeRatchetState(b);
    const message = sent[0]!.message;
    for (let i = 0; i < message.length; i++) {
      for (const flip of [0x01, 0x80]) {
        const bad = message.slice();
        bad[i]! ^= flip;
        assert.throws(() => ratchetDecrypt(b, bad, AD, { rng, now: 0 }), RatchetRelayError, `byte ${i}`);
      }
    }
    assert.throws(() => ratchetDecrypt(b, message, utf8('other AD'), { rng, now: 0 }), RatchetRelayError);
    assert.throws(() => ratchetDecrypt(b, message.subarray(0, message.length - 1), AD, { rng, now: 0 }), RatchetRelayError);
    assert.deepEqual(encodeRatchetState(b), snapshot);
    b = ratchetDecrypt(b, message, AD, { rng, now: 0 }).state;
    assert.equal(b.skipped.length, 0, 'a used skipped key is deleted');
  });

  it('rejects garbage with a typed error and no state change', () => {
    const { rng, bob } = pair('garbage');
    const snapshot = encodeRatchetState(bob);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        assert.throws(() => ratchetDecrypt(bob, bytes, AD, { rng, now: 0 }), RatchetRelayError);
      }),
    );
    assert.deepEqual(encodeRatchetState(bob), snapshot);
  });

  it('recovers from a state compromise once the victim has made a fresh DH key', () => {
    const { rng, alice, bob } = pair('pcs');
    let a = alice;
    let b = bob;
    const send = (from: 'a' | 'b', text: string): Bytes => {
      const e = ratchetEncrypt(from === 'a' ? a : b, utf8(text), AD, rng);
      if (from === 'a') {
        a = e.state;
        b = ratchetDecrypt(b, e.message, AD, { rng, now: 0 }).state;
      } else {
        b = e.state;
        a = ratchetDecrypt(a, e.message, AD, { rng, now: 0 }).state;
      }
      return e.message;
    };
    send('a', 'hello');
    // A passive attacker copies Bob's whole state and then reads every message Alice sends.
    let attacker = b;
    const eavesdrop = (m: Bytes): string => {
      const r = ratchetDecrypt(attacker, m, AD, { rng: seededRng('attacker'), now: 0 });
      attacker = r.state;
      return fromUtf8(r.plaintext);
    };
    assert.equal(eavesdrop(send('a', 'same chain')), 'same chain');
    send('b', 'reply under the key the attacker stole');
    assert.equal(eavesdrop(send('a', 'next chain, still exposed')), 'next chain, still exposed');
    send('b', 'reply under a key made after the compromise');
    const healed = send('a', 'after the DH step');
    assert.throws(() => eavesdrop(healed), RatchetRelayError);
  });

  it('refuses a jump beyond MAX_SKIP and keeps the state', () => {
    const { rng, alice, bob } = pair('maxskip');
    let a = alice;
    const messages: Bytes[] = [];
    for (let i = 0; i < 12; i++) {
      const e = ratchetEncrypt(a, utf8(`n=${i}`), AD, rng);
      a = e.state;
      messages.push(e.message);
    }
    const config = { maxSkip: 10 };
    rejects(() => ratchetDecrypt(bob, messages[11]!, AD, { rng, now: 0, config }), 'TOO_MANY_SKIPPED');
    const ok = ratchetDecrypt(bob, messages[10]!, AD, { rng, now: 0, config });
    assert.equal(fromUtf8(ok.plaintext), 'n=10');
    assert.equal(ok.state.skipped.length, 10);
  });

  it('bounds the number of skipped keys and expires old ones', () => {
    const { rng, alice, bob } = pair('bounds');
    let a = alice;
    const messages: Bytes[] = [];
    for (let i = 0; i < 30; i++) {
      const e = ratchetEncrypt(a, utf8(`n=${i}`), AD, rng);
      a = e.state;
      messages.push(e.message);
    }
    const config = { maxSkippedKeys: 8, skippedKeyTtlMs: 1000 };
    let b = ratchetDecrypt(bob, messages[20]!, AD, { rng, now: 0, config }).state;
    assert.equal(b.skipped.length, 8, 'only the newest 8 skipped keys are kept');
    rejects(() => ratchetDecrypt(b, messages[0]!, AD, { rng, now: 0, config }), 'DUPLICATE_MESSAGE');
    assert.equal(fromUtf8(ratchetDecrypt(b, messages[19]!, AD, { rng, now: 0, config }).plaintext), 'n=19');
    // Past the TTL the skipped keys are gone: the late message fails, and the next success drops them.
    rejects(() => ratchetDecrypt(b, messages[19]!, AD, { rng, now: 1001, config }), 'DUPLICATE_MESSAGE');
    b = ratchetDecrypt(b, messages[21]!, AD, { rng, now: 1001, config }).state;
    assert.equal(b.skipped.length, 0);
  });

  it('cannot send from the responder before it has received', () => {
    const { rng, bob } = pair('bob-first');
    rejects(() => ratchetEncrypt(bob, utf8('too early'), AD, rng), 'NO_SESSION');
  });

  it('hides counters and ratchet keys: two messages share no header bytes', () => {
    const { rng, alice } = pair('hidden');
    const m1 = ratchetEncrypt(alice, utf8('x'), AD, rng);
    const m2 = ratchetEncrypt(m1.state, utf8('x'), AD, rng);
    const pub = Buffer.from(alice.dhs.publicKey);
    assert.equal(Buffer.from(m1.message).indexOf(pub), -1, 'ratchet public key is not in the clear');
    assert.notDeepEqual(m1.message.subarray(1, 60), m2.message.subarray(1, 60));
  });
  it('produces the same wire bytes and states as ever (known-answer transcript)', () => {
    // Pinned from the code before the per-message KDFs and frame encoding were rewritten for speed:
    // every byte on the wire and in the state must stay what it was.
    const { rng, alice, bob } = pair('known answer');
    const s: RatchetState[] = [alice, bob];
    const transcript = createHash('sha256');
    const send = (from: 0 | 1, text: string): Bytes => {
      const r = ratchetEncrypt(s[from]!, utf8(text), AD, rng);
      s[from] = r.state;
      transcript.update(r.message);
      return r.message;
    };
    const receive = (to: 0 | 1, m: Bytes): void => {
      const r = ratchetDecrypt(s[to]!, m, AD, { rng, now: 7 });
      s[to] = r.state;
      transcript.update(r.plaintext);
    };
    const a = [send(0, ''), send(0, 'second'), send(0, 'x'.repeat(1000))];
    receive(1, a[0]!);
    receive(1, a[2]!); // skips a[1]
    const b = [send(1, 'reply one'), send(1, 'y'.repeat(17))];
    receive(0, b[1]!);
    receive(0, b[0]!);
    receive(1, a[1]!);
    receive(1, send(0, 'after the DH step'));
    transcript.update(encodeRatchetState(s[0]!)).update(encodeRatchetState(s[1]!));
    assert.equal(transcript.digest('hex'), 'a43b5d89ac519de3101145e2d34d222f39ee60cb4875d19b510e43b259f2518a');
  });
});

describe('ratchet state encoding', () => {
  it('round-trips any reachable state, skipped keys included', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 20 }), (seed, sends, skipTo) => {
        const { rng, alice, bob } = pair(seed);
        let a = alice;
        const messages: Bytes[] = [];
        for (let i = 0; i <= sends; i++) {
          const e = ratchetEncrypt(a, utf8(String(i)), AD, rng);
          a = e.state;
          messages.push(e.message);
        }
        const b = ratchetDecrypt(bob, messages[Math.min(skipTo, sends)]!, AD, { rng, now: 5 }).state;
        for (const s of [a, b]) {
          const decoded = decodeRatchetState(encodeRatchetState(s));
          assert.deepEqual(encodeRatchetState(decoded), encodeRatchetState(s));
          assert.deepEqual(decoded.skipped, s.skipped);
        }
      }),
      { numRuns: 30 },
    );
  });

  it('rejects truncated, extended and wrong-version state', () => {
    const { alice } = pair('state-decoder');
    const bytes = encodeRatchetState(alice);
    rejectsCode(() => decodeRatchetState(bytes.subarray(0, bytes.length - 1)), 'MALFORMED');
    rejectsCode(() => decodeRatchetState(new Uint8Array([...bytes, 0])), 'MALFORMED');
    const v2 = bytes.slice();
    v2[0] = 2;
    rejectsCode(() => decodeRatchetState(v2), 'UNSUPPORTED_VERSION');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (junk) => {
        try {
          decodeRatchetState(junk);
        } catch (e) {
          assert.ok(e instanceof RatchetRelayError, String(e));
        }
      }),
    );
  });
});

/**
 * A replay is refused. Within a chain we can name it a duplicate; once its chain's header key is gone,
 * a replay is indistinguishable from a message under an unknown key.
 */
function rejectsReplay(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => isRatchetRelayError(e, 'DUPLICATE_MESSAGE') || isRatchetRelayError(e, 'DECRYPT_FAILED'));
}

function rejectsCode(fn: () => unknown, code: RatchetRelayError['code']): void {
  rejects(fn, code);
}
