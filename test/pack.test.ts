import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Bytes, systemRng, toHex } from '../src/crypto/index.js';
import { RatchetRelayError } from '../src/errors.js';
import { decodeMessageEvent, KIND_MESSAGE, mailboxEvent } from '../src/nostr/events.js';
import {
  decodePackedFrame,
  encodePackedFrame,
  isPackedMailboxEvent,
  PACK_LIMITS,
  PACKED_FRAME_VERSION,
  packedMailboxEvent,
  packGroups,
  packPartId,
  unpackMailboxEvent,
} from '../src/nostr/pack.js';
import { PADDING_BUCKETS } from '../src/nostr/padding.js';

/** The decoder's verdict: the envelopes, or the RatchetRelayError it refused with (any other throw fails the test). */
function verdict(frame: Bytes): Bytes[] | RatchetRelayError {
  try {
    return decodePackedFrame(frame);
  } catch (e) {
    assert.ok(e instanceof RatchetRelayError, `not a clean refusal: ${String(e)}`);
    assert.ok(e.code === 'MALFORMED' || e.code === 'UNSUPPORTED_VERSION', e.code);
    return e;
  }
}

/** 2 to 64 non-empty envelopes whose pack fits the size bound. */
const packs = fc
  .array(fc.uint8Array({ minLength: 1, maxLength: 600 }), { minLength: PACK_LIMITS.minEnvelopes, maxLength: PACK_LIMITS.maxEnvelopes })
  .filter((es) => es.reduce((s, e) => s + 2 + e.length, 2) <= PACK_LIMITS.maxFrameBytes);

const TAG = 'ab'.repeat(32);

describe('packed frame v1', () => {
  it('round-trips every pack within its bounds, through the event too: each envelope comes out as a mailbox event of its own', () => {
    fc.assert(
      fc.property(packs, (envelopes) => {
        const frame = encodePackedFrame(envelopes);
        assert.equal(frame[0], PACKED_FRAME_VERSION);
        assert.deepEqual(decodePackedFrame(frame), envelopes);
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(packs, (envelopes) => {
        const event = packedMailboxEvent(TAG, envelopes, systemRng, Date.now());
        assert.ok(isPackedMailboxEvent(event));
        // Padded like any mailbox content: a bucket's size, at most the 16 KiB one.
        assert.ok(PADDING_BUCKETS.slice(0, 4).includes(Buffer.from(event.content, 'base64').length));
        const parts = unpackMailboxEvent(event);
        assert.deepEqual(
          parts.map((p) => decodeMessageEvent(p, 'cd'.repeat(32))),
          envelopes.map((envelope) => ({ format: 'mailbox', tag: TAG, envelope })),
        );
        assert.deepEqual(
          parts.map((p) => p.id),
          envelopes.map((_, i) => packPartId(event.id, i)),
        );
        assert.equal(new Set(parts.map((p) => p.id)).size, parts.length, 'every part has an id of its own');
        assert.ok(parts.every((p) => p.kind === KIND_MESSAGE && p.pubkey === event.pubkey && p.created_at === event.created_at && p.tags === event.tags));
      }),
      { numRuns: 20 },
    );
  });

  it('refuses every truncation and every extension, and a changed version or count, with a clear error', () => {
    fc.assert(
      fc.property(packs, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 255 }), (envelopes, at, extra, x) => {
        const frame = encodePackedFrame(envelopes);
        assert.ok(verdict(frame.subarray(0, at % frame.length)) instanceof RatchetRelayError, 'a truncation decoded');
        const longer = new Uint8Array(frame.length + extra.length);
        longer.set(frame);
        longer.set(extra, frame.length);
        assert.ok(verdict(longer) instanceof RatchetRelayError, 'an extension decoded');
        for (const i of [0, 1]) {
          const changed = frame.slice();
          changed[i] = changed[i]! ^ x;
          assert.ok(verdict(changed) instanceof RatchetRelayError, `byte ${i} changed and the frame still decoded`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('garbage is refused with a clear error or decodes within the bounds, never a throw of another kind', () => {
    const framed = fc.uint8Array({ maxLength: 3000 }).map((b) => Uint8Array.of(PACKED_FRAME_VERSION, ...b));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 3000 }), framed), (junk) => {
        const v = verdict(junk);
        if (v instanceof RatchetRelayError) return;
        assert.ok(v.length >= PACK_LIMITS.minEnvelopes && v.length <= PACK_LIMITS.maxEnvelopes && v.every((e) => e.length > 0));
      }),
      { numRuns: 500 },
    );
  });

  it('enforces its bounds, encoding and decoding', () => {
    const one = new Uint8Array([1, 2, 3]);
    assert.throws(() => encodePackedFrame([one]), /2 to 64 envelopes/);
    assert.throws(() => encodePackedFrame(Array(65).fill(one)), /2 to 64 envelopes/);
    assert.throws(() => encodePackedFrame([one, new Uint8Array(PACK_LIMITS.maxFrameBytes)]), /exceeds/);
    assert.throws(() => encodePackedFrame([one, new Uint8Array(0)]), /empty envelope/);
    // Well-formed but for a bound: the count, an empty envelope, the size.
    const frame = (count: number, lengths: number[]) => {
      const out = [PACKED_FRAME_VERSION, count];
      for (const n of lengths) out.push(n >> 8, n & 0xff, ...new Array<number>(n).fill(9));
      return Uint8Array.from(out);
    };
    assert.equal(decodePackedFrame(frame(2, [1, 1])).length, 2);
    assert.throws(() => decodePackedFrame(frame(1, [3])), /1 envelopes is outside 2\.\.64/);
    assert.throws(() => decodePackedFrame(frame(65, Array(65).fill(1))), /65 envelopes is outside/);
    assert.throws(() => decodePackedFrame(frame(2, [0, 1])), /envelope 0 is empty/);
    assert.throws(() => decodePackedFrame(frame(2, [1, PACK_LIMITS.maxFrameBytes])), /exceeds/);
    assert.throws(() => decodePackedFrame(Uint8Array.of(0x01, 2)), /version 1 is not supported/);
  });

  it('a single-envelope mailbox event is no pack; a pack whose content is no padded packed frame is refused whole', () => {
    const single = mailboxEvent(TAG, Uint8Array.of(1, 2, 3), systemRng, Date.now());
    assert.equal(isPackedMailboxEvent(single), false);
    assert.throws(() => unpackMailboxEvent(single), /version 1 is not supported/);
    const pack = packedMailboxEvent(TAG, [Uint8Array.of(1), Uint8Array.of(2)], systemRng, Date.now());
    assert.throws(() => unpackMailboxEvent({ ...pack, content: `${pack.content.slice(0, -4)}!!!!` }), /not base64/);
    assert.throws(() => unpackMailboxEvent({ ...pack, tags: [['p', TAG]] }), /not a mailbox event/);
    assert.equal(packPartId(pack.id, 0).length, 64);
    assert.notEqual(packPartId(pack.id, 0), packPartId(pack.id, 1));
  });
});

describe('grouping waiting envelopes into packs', () => {
  const items = fc.array(
    fc.record({ tag: fc.constantFrom('a', 'b', 'c'), envelope: fc.oneof(fc.integer({ min: 1, max: 1500 }), fc.integer({ min: 1, max: 20_000 })).map((n) => new Uint8Array(n)) }),
    { maxLength: 300 },
  );

  it('keeps every envelope once, each tag in its order, each group of one tag and within the bounds (or alone)', () => {
    fc.assert(
      fc.property(items, (list) => {
        const withSeq = list.map((x, seq) => ({ ...x, seq }));
        const groups = packGroups(withSeq);
        assert.deepEqual(
          groups.flat().map((x) => x.seq).sort((a, b) => a - b),
          withSeq.map((x) => x.seq),
        );
        for (const tag of ['a', 'b', 'c']) {
          const order = groups.flat().filter((x) => x.tag === tag).map((x) => x.seq);
          assert.deepEqual(order, [...order].sort((a, b) => a - b));
        }
        for (const g of groups) {
          assert.ok(g.length >= 1 && g.every((x) => x.tag === g[0]!.tag));
          if (g.length > 1) encodePackedFrame(g.map((x) => x.envelope)); // throws beyond a bound
        }
        // Groups come in the order of their first envelope.
        const firsts = groups.map((g) => g[0]!.seq);
        assert.deepEqual(firsts, [...firsts].sort((a, b) => a - b));
      }),
      { numRuns: 200 },
    );
  });

  it('fills a pack: 100 small envelopes of one tag make two packs, 64 and 36', () => {
    const groups = packGroups(Array.from({ length: 100 }, () => ({ tag: toHex(new Uint8Array(32)), envelope: new Uint8Array(100) })));
    assert.deepEqual(groups.map((g) => g.length), [64, 36]);
  });
});
