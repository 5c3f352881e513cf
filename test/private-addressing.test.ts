import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { verifyEvent } from 'nostr-tools/pure';
import { type Bytes, systemRng, toHex, utf8 } from '../src/crypto/index.js';
import { isRatchetRelayError, RatchetRelayError } from '../src/errors.js';
import { PRIVACY_LIMITS } from '../src/limits.js';
import {
  checkIncomingEvent,
  decodeMessageEvent,
  decodeRendezvousEvent,
  inboxEvent,
  KIND_MESSAGE,
  mailboxEvent,
  MAX_EVENT_BYTES,
  rendezvousEvent,
  signEvent,
} from '../src/nostr/events.js';
import { mailboxFilters } from '../src/node/mailboxes.js';
import { MAX_PADDED_PAYLOAD, PADDING_BUCKETS, padFrame, unpadFrame } from '../src/nostr/padding.js';
import { receiveTags, sendTag } from '../src/ratchet/index.js';
import { openSealedEnvelope, sealEnvelope } from '../src/session/index.js';
import { makeParty, type Party, seededRng, TestClock } from './helpers.js';

/** Runs `fn`; it either returns or throws a RatchetRelayError, never anything else. */
function rejectsCleanly(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (e) {
    if (!(e instanceof RatchetRelayError)) throw e;
    return true;
  }
}

const payloads = fc.oneof(
  fc.uint8Array({ maxLength: 2000 }),
  fc.integer({ min: 0, max: MAX_PADDED_PAYLOAD }).map((n) => new Uint8Array(n).fill(7)),
);

describe('padded frame', () => {
  it('round-trips every payload up to the largest bucket, in a frame of a bucket size, the smallest that fits', () => {
    fc.assert(
      fc.property(payloads, (p) => {
        const frame = padFrame(p);
        assert.ok(PADDING_BUCKETS.includes(frame.length));
        assert.ok(PADDING_BUCKETS.filter((b) => b < frame.length).every((b) => b - 5 < p.length));
        assert.deepEqual(unpadFrame(frame), p);
      }),
      { numRuns: 200 },
    );
    assert.throws(() => padFrame(new Uint8Array(MAX_PADDED_PAYLOAD + 1)), /exceeds the largest padded frame/);
  });

  it('refuses a changed header or padding byte, a truncation and garbage with a clear error, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 900 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (p, at, x) => {
        const frame = padFrame(p);
        const i = at % frame.length;
        const changed = frame.slice();
        changed[i] = changed[i]! ^ x;
        // The version and the padding are checked here; a change inside the payload (or of its length,
        // over zeros) is the payload's own decoder's to refuse (an AEAD, a trailing-bytes check).
        const refused = rejectsCleanly(() => unpadFrame(changed));
        if (i === 0 || i >= 5 + p.length) assert.ok(refused);
        assert.throws(() => unpadFrame(frame.subarray(0, i)), /no padding bucket/);
      }),
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 5000 }), (junk) => void rejectsCleanly(() => unpadFrame(junk))));
    const lying = padFrame(new Uint8Array(10));
    new DataView(lying.buffer).setUint32(1, 5000);
    assert.throws(() => unpadFrame(lying), /exceeds the frame/);
  });
});

function conversation(seed: string) {
  const clock = new TestClock();
  const alice = makeParty(`${seed}/alice`, clock);
  const bob = makeParty(`${seed}/bob`, clock);
  alice.cipher.startSession(bob.cipher.bundle());
  return { clock, alice, bob };
}

const text = (s: string) => utf8(s);

describe('SealedEnvelope v1', () => {
  const { alice, bob } = conversation('seal');
  const prekey = alice.cipher.encrypt(bob.fingerprint, text('hello'));
  const throwaway = seededRng('throwaway')(32);

  it('opens, for its recipient and event, to the sender identity and the envelope', () => {
    const sealed = sealEnvelope(alice.store.identity(), bob.store.identity().public, throwaway, prekey, systemRng);
    const opened = openSealedEnvelope(bob.store.identity(), sealed, throwaway);
    assert.equal(toHex(opened.sender.signingKey), toHex(alice.store.identity().public.signingKey));
    assert.deepEqual(opened.envelopeBytes, prekey);
    assert.equal(opened.envelope.type, 'prekey');
    // Sealed, a first message fits the 4 KiB bucket.
    assert.equal(padFrame(sealed).length, 4096);
  });

  it('refuses another event (a re-posted seal), another recipient, any changed byte, any truncation and garbage', () => {
    const sealed = sealEnvelope(alice.store.identity(), bob.store.identity().public, throwaway, prekey, systemRng);
    assert.throws(() => openSealedEnvelope(bob.store.identity(), sealed, seededRng('other')(32)), (e) => isRatchetRelayError(e, 'BAD_SIGNATURE'));
    assert.throws(() => openSealedEnvelope(alice.store.identity(), sealed, throwaway), (e) => isRatchetRelayError(e, 'DECRYPT_FAILED'));
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const i = at % sealed.length;
        const changed = sealed.slice();
        changed[i] = changed[i]! ^ x;
        assert.ok(rejectsCleanly(() => openSealedEnvelope(bob.store.identity(), changed, throwaway)));
        assert.ok(rejectsCleanly(() => openSealedEnvelope(bob.store.identity(), sealed.subarray(0, i), throwaway)));
      }),
      { numRuns: 200 },
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => assert.ok(rejectsCleanly(() => openSealedEnvelope(bob.store.identity(), junk, throwaway)))));
  });

  it("refuses a pre-key message sealed by an identity other than the one in the message's header", () => {
    const carol = makeParty('seal/carol', new TestClock());
    const sealed = sealEnvelope(carol.store.identity(), bob.store.identity().public, throwaway, prekey, systemRng);
    assert.throws(() => openSealedEnvelope(bob.store.identity(), sealed, throwaway), (e) => isRatchetRelayError(e, 'IDENTITY_MISMATCH'));
  });
});

describe('mailbox tags', () => {
  /**
   * Alice and Bob send in a random order and each message arrives at a random later moment: the
   * tag it was sent under is among its recipient's receive tags whenever it arrives, and once
   * everything arrived, only the two of the current and next chain are left.
   */
  it('a message is always sent under a tag its recipient listens on, until it arrives; then the old tags go', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(3)), { minLength: 1, maxLength: 24 }), fc.integer({ min: 0, max: 2 ** 30 }), (steps, seed) => {
        const { alice, bob } = conversation(`tags/${seed}`);
        const tagsOf = (p: Party, peer: string) => new Set(p.store.loadSessions(peer).flatMap((s) => receiveTags(s.ratchet)));
        const pending: { to: Party; from: Party; envelope: Bytes; tag: string }[] = [];
        const deliver = (m: (typeof pending)[number], first = false) => {
          // (The first message, which starts the session, goes to the inbox: no tag can be known for it.)
          if (!first) assert.ok(tagsOf(m.to, m.from.fingerprint).has(m.tag), 'the recipient listens on the tag of a message still on its way');
          m.to.cipher.decrypt(m.envelope, { from: m.from.fingerprint });
        };
        const send = (from: Party, to: Party) => {
          const envelope = from.cipher.encrypt(to.fingerprint, text('x'));
          pending.push({ from, to, envelope, tag: sendTag(from.store.loadSessions(to.fingerprint)[0]!.ratchet)! });
        };
        send(alice, bob);
        deliver(pending.shift()!, true); // Bob can send only once he has Alice's first message.
        for (const [aliceSends, delay] of steps) {
          if (aliceSends) send(alice, bob);
          else send(bob, alice);
          // Deliver what is due: an older message at a random later point (out of order).
          if (pending.length > delay) deliver(pending.splice(delay % pending.length, 1)[0]!);
        }
        while (pending.length > 0) deliver(pending.shift()!);
        send(alice, bob);
        deliver(pending.shift()!);
        send(bob, alice);
        deliver(pending.shift()!);
        assert.equal(tagsOf(alice, bob.fingerprint).size, 2);
        assert.equal(tagsOf(bob, alice.fingerprint).size, 2);
      }),
      { numRuns: 40 },
    );
  });
});

describe('the mailbox subscription', () => {
  it('splits its tags over filters of at most 256, each tag in exactly one', () => {
    const tags = Array.from({ length: 600 }, (_, i) => i.toString(16).padStart(64, '0'));
    const filters = mailboxFilters(tags);
    assert.deepEqual(filters.map((f) => f['#z']!.length), [256, 256, 88]);
    assert.deepEqual(filters.flatMap((f) => f['#z']!), tags);
    assert.ok(filters.every((f) => f.kinds?.length === 1 && f.kinds[0] === 40001));
    assert.deepEqual(mailboxFilters([]), []);
  });
});

describe('throwaway-signed events', () => {
  it('the gate leaves a mailbox event\'s signature to the relays but checks its id; every other event\'s signature is checked', async () => {
    const rng = seededRng('gate');
    const now = 1_800_000_000_000;
    const tag = 'ab'.repeat(32);
    const flip = (hex: string) => hex.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const mailbox = mailboxEvent(tag, rng(100), rng, now);
    assert.equal(checkIncomingEvent({ ...mailbox, sig: flip(mailbox.sig) }, now), null);
    assert.equal(checkIncomingEvent({ ...mailbox, id: flip(mailbox.id) }, now), 'bad id or signature');
    assert.equal(checkIncomingEvent({ ...mailbox, content: mailbox.content.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) }, now), 'bad id or signature');
    // A second tag, or another kind, and it is no mailbox event: its signature counts.
    const others = [
      inboxEvent('cd'.repeat(32), () => rng(100), rng, now),
      rendezvousEvent(tag, rng(100), rng, now),
      signEvent(KIND_MESSAGE, [['z', tag], ['p', 'cd'.repeat(32)]], 'x', rng(32), now),
      signEvent(KIND_MESSAGE, [['p', 'cd'.repeat(32)]], 'x', rng(32), now),
    ];
    // Our events (id, key, signature on libsecp256k1) verify under nostr-tools' own implementation.
    for (const e of [mailbox, ...others]) assert.equal(verifyEvent({ ...e }), true);
    for (const e of others) {
      assert.equal(checkIncomingEvent(e, now), null);
      assert.equal(checkIncomingEvent({ ...e, sig: flip(e.sig) }, now), 'bad id or signature');
    }
  });

  it('mailbox and inbox events: one key each, no tag but their own, created_at jittered into the past, content in the buckets; both decode', async () => {
    const rng = seededRng('events');
    const now = 1_800_000_000_000;
    const tag = 'ab'.repeat(32);
    const self = 'cd'.repeat(32);
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const envelope = rng(1 + (i * 97) % 3000);
      const m = mailboxEvent(tag, envelope, rng, now);
      const inbox = inboxEvent(self, () => envelope, rng, now);
      for (const e of [m, inbox]) {
        assert.equal(checkIncomingEvent(e, now), null);
        assert.ok(!seen.has(e.pubkey));
        seen.add(e.pubkey);
        assert.ok(e.created_at <= now / 1000 && e.created_at >= now / 1000 - PRIVACY_LIMITS.createdAtJitterS);
        assert.ok(PADDING_BUCKETS.includes(Buffer.from(e.content, 'base64').length));
      }
      assert.deepEqual(m.tags, [['z', tag]]);
      assert.deepEqual(inbox.tags, [['p', self]]);
      assert.deepEqual(decodeMessageEvent(m, self), { format: 'mailbox', tag, envelope });
      assert.deepEqual(decodeMessageEvent(inbox, self), { format: 'inbox', sealed: envelope });
      const rv = rendezvousEvent(tag, envelope, rng, now);
      assert.deepEqual(decodeRendezvousEvent(rv).payload, envelope);
    }
  });

  it('the largest event fits the relay bound', async () => {
    const e = inboxEvent('cd'.repeat(32), () => new Uint8Array(MAX_PADDED_PAYLOAD), systemRng, Date.now());
    assert.ok(JSON.stringify(e).length <= MAX_EVENT_BYTES, `${JSON.stringify(e).length}`);
  });
});
