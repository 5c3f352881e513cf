import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { peekEventFrame } from '../src/nostr/frame.js';

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
/** Strings that try to look like the keys the peek looks for. */
const tricky = fc.oneof(
  fc.string({ unit: 'grapheme' }),
  fc.constantFrom('"id":"' + 'a'.repeat(64) + '"', '"created_at":1', '\\', '\\"', '"', '","id":"' + 'b'.repeat(64), '{"created_at":2}'),
);

describe('peekEventFrame', () => {
  it('reads the subscription, id and created_at of any EVENT frame, whatever its strings hold and in any key order', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9:_-]{1,64}$/),
        hex(64),
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.array(fc.array(tricky, { maxLength: 3 }), { maxLength: 3 }),
        tricky,
        fc.nat(),
        (sub, id, createdAt, tags, content, seed) => {
          const fields: [string, unknown][] = [
            ['content', content],
            ['tags', tags],
            ['id', id],
            ['pubkey', 'c'.repeat(64)],
            ['created_at', createdAt],
            ['kind', 1],
            ['sig', 'd'.repeat(128)],
          ];
          // A relay may order the keys as it likes.
          const shuffled = fields.map((f, i) => [((seed + 1) * (i + 7919)) % 104729, f] as const).sort((a, b) => a[0] - b[0]);
          const frame = JSON.stringify(['EVENT', sub, Object.fromEntries(shuffled.map(([, f]) => f))]);
          assert.deepEqual(peekEventFrame(frame), { sub, id, createdAt });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never throws; any other frame is not an event frame', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const peek = peekEventFrame(text);
        if (!text.startsWith('["EVENT"')) assert.equal(peek, null);
      }),
      { numRuns: 300 },
    );
    for (const frame of ['["EOSE","s"]', '["NOTICE","[\\"EVENT\\",\\"s\\",{}]"]', '["OK","' + 'a'.repeat(64) + '",true,""]', 'not JSON'])
      assert.equal(peekEventFrame(frame), null, frame);
    assert.deepEqual(peekEventFrame('["EVENT","s",{"content":"x"}]'), { sub: 's', id: null, createdAt: null });
  });
});
