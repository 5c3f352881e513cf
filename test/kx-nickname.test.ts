import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Bytes, concat, utf8 } from '../src/crypto/index.js';
import { type ErrorCode, RatchetRelayError } from '../src/errors.js';
import { generateIdentity, type Identity, identitySign } from '../src/identity/index.js';
import {
  acceptInvite,
  createInvite,
  decodeInvite,
  decodeRMOHalfKX,
  encodeInvite,
  HALF_KX_CONTEXT,
  INVITE_CONTEXT,
  MAX_NICKNAME_CHARS,
  nicknameKey,
  nicknameProblem,
  open,
} from '../src/kx/index.js';
import { DAY, seededRng } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1);
const alice: Identity = generateIdentity(seededRng('nick/alice'), T0 - DAY);
const bob: Identity = generateIdentity(seededRng('nick/bob'), T0 - DAY);

const isCodeWith =
  (code: ErrorCode, message: RegExp) =>
  (e: unknown): boolean =>
    e instanceof RatchetRelayError && e.code === code && message.test(e.message);

/** An invite and the half KX answering it, each carrying the given nickname. */
function messages(inviter: string | null, acceptor: string | null) {
  const created = createInvite(alice, seededRng('nick/a'), T0, DAY, inviter);
  const accepted = acceptInvite(bob, created.invite, seededRng('nick/b'), T0 + 1, acceptor);
  return { invite: encodeInvite(created.invite), half: open(created.pending.kemSecret, accepted.send.payload) };
}

/**
 * `encoded` (a signed message whose last fields are the nickname, `oldLength` bytes, and the
 * signature) with other nickname bytes, signed again by `signer`: what a peer with its own
 * software could send. Only the nickname rule can refuse it.
 */
function withNicknameBytes(encoded: Bytes, oldLength: number, nick: Bytes, signer: Identity, context: string): Bytes {
  const body = concat(encoded.subarray(0, encoded.length - 64 - 1 - oldLength), new Uint8Array([nick.length]), nick);
  return concat(body, identitySign(signer, context, body));
}

/** Names that a peer must not be able to put in front of the user. */
const BAD: [string, RegExp][] = [
  ['', /empty/],
  [' alice', /spaces/],
  ['alice ', /spaces/],
  ['x'.repeat(MAX_NICKNAME_CHARS + 1), /at most 32/],
  ['😀'.repeat(MAX_NICKNAME_CHARS + 1), /at most 32|exceeds the limit of 128/], // on the wire, over 128 bytes
  ['ali\u202ece', /text-direction/], // right-to-left override: shows as "alilec"-like text
  ['ali\u2066ce', /text-direction/],
  ['al\u200bice', /invisible/], // zero-width space: looks like "alice"
  ['ali\nce', /control/],
  ['ali\u0007ce', /control/],
  ['dead', /fingerprint/],
  ['DEADBEEF01', /fingerprint/],
  ['3fa9c2d1e8b74a6f', /fingerprint/],
];

describe('nicknames', () => {
  it('accepts ordinary names, in any script, with emoji sequences', () => {
    for (const ok of ['alice', 'Zoë', 'bob-2', 'abc', '李小龍', 'محمد', '👩\u200d💻 dev', 'x'.repeat(MAX_NICKNAME_CHARS), '😀'.repeat(MAX_NICKNAME_CHARS)])
      assert.equal(nicknameProblem(ok), null, ok);
  });

  it('refuses empty, long, padded, control, invisible and bidi characters, and hex that could pass for a fingerprint', () => {
    for (const [bad, why] of BAD) assert.match(nicknameProblem(bad) ?? 'accepted', why, JSON.stringify(bad));
  });

  it('compares names as they look: case, width and joiners aside', () => {
    assert.equal(nicknameKey('Alice'), nicknameKey('alice'));
    assert.equal(nicknameKey('ａｌｉｃｅ'), nicknameKey('alice'));
    assert.equal(nicknameKey('ali\u200dce'), nicknameKey('alice'));
    assert.notEqual(nicknameKey('alice-2'), nicknameKey('alice'));
  });
});

describe('invite v3 and half KX v3 carry a nickname', () => {
  const nickname = fc.string({ unit: 'grapheme', minLength: 1, maxLength: MAX_NICKNAME_CHARS }).filter((s) => nicknameProblem(s) === null);

  it('round trip: every valid nickname (or none) decodes as it was signed', () => {
    fc.assert(
      fc.property(fc.option(nickname), fc.option(nickname), (inviter, acceptor) => {
        const m = messages(inviter, acceptor);
        assert.equal(decodeInvite(m.invite).nickname, inviter);
        assert.equal(decodeRMOHalfKX(m.half).nickname, acceptor);
        assert.deepEqual(encodeInvite(decodeInvite(m.invite)), m.invite);
      }),
      { numRuns: 25 },
    );
  });

  it('every truncation and every extension is refused', () => {
    const m = messages('Zoë 👩\u200d💻', 'bob');
    for (const [bytes, decode] of [
      [m.invite, decodeInvite],
      [m.half, decodeRMOHalfKX],
    ] as const) {
      for (let n = 0; n < bytes.length; n++) assert.throws(() => decode(bytes.subarray(0, n)), RatchetRelayError);
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (extra) => {
          assert.throws(() => decode(concat(bytes, extra)), isCodeWith('MALFORMED', /trailing|truncated|exceeds/));
        }),
        { numRuns: 50 },
      );
    }
  });

  it('a nickname that breaks the rule is MALFORMED even when correctly signed, and says why', () => {
    const m = messages('alice', 'bob');
    for (const [bad, why] of [...BAD.filter(([b]) => b !== ''), ['x'.repeat(200), /exceeds the limit/] as [string, RegExp]]) {
      const invite = withNicknameBytes(m.invite, 5, utf8(bad), alice, INVITE_CONTEXT);
      assert.throws(() => decodeInvite(invite), isCodeWith('MALFORMED', why), JSON.stringify(bad));
      const half = withNicknameBytes(m.half, 3, utf8(bad), bob, HALF_KX_CONTEXT);
      assert.throws(() => decodeRMOHalfKX(half), isCodeWith('MALFORMED', why), JSON.stringify(bad));
    }
    const notUtf8 = withNicknameBytes(m.invite, 5, new Uint8Array([0x61, 0xc3, 0x28]), alice, INVITE_CONTEXT);
    assert.throws(() => decodeInvite(notUtf8), isCodeWith('MALFORMED', /not valid UTF-8/));
    // The same bytes with the rule kept decode: it is the nickname that is refused, not the re-signing.
    assert.equal(decodeInvite(withNicknameBytes(m.invite, 5, utf8('carol'), alice, INVITE_CONTEXT)).nickname, 'carol');
  });

  it('our own nickname is checked before anything is signed', () => {
    assert.throws(() => createInvite(alice, seededRng('nick/x'), T0, DAY, 'dead'), isCodeWith('INVALID_ARGUMENT', /fingerprint/));
  });
});
