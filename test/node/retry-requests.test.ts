import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toHex } from '../../src/crypto/index.js';
import { RatchetRelayError } from '../../src/errors.js';
import { Contacts } from '../../src/node/contacts.js';
import type { NodeEvents } from '../../src/node/index.js';
import { RetryRequests } from '../../src/node/retry-requests.js';
import { RETRY_LIMITS } from '../../src/limits.js';
import { decodeEnvelope, encodeEnvelope, encodeRetryRequest } from '../../src/session/index.js';
import { MessagesStore } from '../../src/store/index.js';
import { TestClock } from '../helpers.js';
import { capabilityContext } from '../support/context.js';

/** A party with the RetryRequests capability alone: what it publishes and sends again is recorded. */
function party(seed: string, clock: TestClock) {
  const { ctx, events } = capabilityContext(seed, clock);
  const contacts = new Contacts(ctx);
  const published: { envelope: Uint8Array; to: string }[] = [];
  const resent: string[] = [];
  const messages = new MessagesStore(ctx.db, ctx.settings);
  const retry = new RetryRequests(
    ctx,
    contacts,
    { publish: (envelope, to) => published.push({ envelope, to: toHex(to.nostrKey) }), resend: (_contact, m) => resent.push(m.id) },
    messages,
  );
  const failed: NodeEvents['failed'][0][] = [];
  events.on('failed', (f) => failed.push(f));
  const identity = ctx.store.identity();
  return { ctx, contacts, retry, published, resent, failed, identity, nostr: toHex(identity.public.nostrKey), messages };
}

/** Alice started a session from Bob's bundle and sent three messages into it, which Bob could not read. */
function setup(seed: string) {
  const clock = new TestClock();
  const alice = party(`${seed}/alice`, clock);
  const bob = party(`${seed}/bob`, clock);
  const bobContact = alice.ctx.transaction(() => alice.contacts.addChosen(bob.identity.public));
  alice.ctx.cipher.startSession(bob.ctx.cipher.bundle());
  const ids = ['01', '02', '03'].map((x) => x.repeat(16));
  for (const [i, id] of ids.entries())
    alice.messages.insert({ id, peer: bobContact.fingerprint, direction: 'out', body: `m${i}`, sentAt: clock.now + i, receivedAt: null, state: 'sent' });
  const baseKey = () => alice.ctx.store.loadSessions(bobContact.fingerprint)[0]!.baseKey;
  /** Bob asks for a retry of Alice's session `key`; the request bytes as Alice receives them. */
  const ask = (key: Uint8Array) => {
    const before = bob.published.length;
    const sent = bob.retry.request(alice.nostr, alice.identity.public, key, 'ONE_TIME_PREKEY_USED');
    if (!sent) return null;
    assert.equal(bob.published.length, before + 1);
    const e = decodeEnvelope(bob.published.at(-1)!.envelope);
    assert.equal(e.type, 'retry-request');
    return e.type === 'retry-request' ? e.request : null;
  };
  const receive = (bytes: Uint8Array, from = bob.nostr) => alice.ctx.transaction(() => alice.retry.onRetryRequest(from, bytes));
  return { clock, alice, bob, bobFp: bobContact.fingerprint, ids, baseKey, ask, receive };
}

describe('retry requests, alone', () => {
  it('a request starts a new session, sends again what is not delivered once, and a second request fails those messages with the reason', () => {
    const { alice, bobFp, ids, baseKey, ask, receive } = setup('retry-flow');
    const first = baseKey();
    const request = ask(first)!;
    assert.equal(ask(first), null, 'one request per failed session');
    receive(request);
    assert.notDeepEqual(baseKey(), first, 'a new session replaced the one that failed');
    assert.deepEqual(alice.resent, ids, 'every undelivered message sent again, in order');
    assert.deepEqual(alice.messages.undelivered(bobFp).map((m) => m.resends), [1, 1, 1]);
    assert.equal(alice.ctx.cipher.hasSession(bobFp), true);

    // The same request again (a relay replays it) names a session already replaced: nothing happens.
    const second = baseKey();
    receive(request);
    assert.deepEqual(baseKey(), second);
    assert.equal(alice.resent.length, 3);

    // Asked again for the new session: each message was sent again once already, so it fails, with the reason.
    receive(ask(second)!);
    assert.equal(alice.resent.length, 3, 'never sent a second time');
    for (const id of ids) {
      const m = alice.messages.outgoing(id)!;
      assert.equal(m.state, 'failed');
      assert.match(m.failure!, /could not read it, even sent again in a new session \(the one-time pre-key we used was taken by another sender\)/);
    }
    assert.deepEqual(alice.failed.map((f) => f.ids), [ids]);
  });

  it('a delivered message is never sent again', () => {
    const { alice, bobFp, ids, baseKey, ask, receive } = setup('retry-delivered');
    alice.messages.markDelivered(bobFp, [ids[1]!]);
    receive(ask(baseKey())!);
    assert.deepEqual(alice.resent, [ids[0], ids[2]]);
  });

  it('refuses, with nothing changed, a request signed by another identity or sent from a stranger', () => {
    const { clock, alice, bob, baseKey, receive } = setup('retry-forged');
    const eve = party('retry-forged/eve', clock);
    const before = baseKey();
    const forged = encodeRetryRequest(eve.identity, { baseKey: before, reason: 'UNKNOWN_PREKEY', requestedAt: clock.now, bundle: eve.ctx.cipher.bundle() }, alice.identity.public);
    assert.throws(() => receive(forged), (e: unknown) => e instanceof RatchetRelayError && e.code === 'IDENTITY_MISMATCH');
    // Bob's signature over a request meant for someone else.
    const elsewhere = encodeRetryRequest(bob.identity, { baseKey: before, reason: 'UNKNOWN_PREKEY', requestedAt: clock.now, bundle: bob.ctx.cipher.bundle() }, eve.identity.public);
    assert.throws(() => receive(elsewhere), (e: unknown) => e instanceof RatchetRelayError && e.code === 'BAD_SIGNATURE');
    const real = encodeRetryRequest(bob.identity, { baseKey: before, reason: 'UNKNOWN_PREKEY', requestedAt: clock.now, bundle: bob.ctx.cipher.bundle() }, alice.identity.public);
    assert.throws(() => receive(real, eve.nostr), (e: unknown) => e instanceof RatchetRelayError && e.code === 'NO_SESSION');
    assert.deepEqual(baseKey(), before);
    assert.deepEqual(alice.resent, []);
    assert.ok(encodeEnvelope({ type: 'retry-request', request: real }).length < 2300, 'a request fits one small event');
  });

  it(`asks one sender at most ${RETRY_LIMITS.perSenderPerHour} times an hour`, () => {
    const { clock, alice, bob } = setup('retry-bound');
    const key = (i: number) => new Uint8Array(32).fill(i + 1);
    const sent = Array.from({ length: RETRY_LIMITS.perSenderPerHour + 3 }, (_, i) => bob.retry.request(alice.nostr, alice.identity.public, key(i), 'UNKNOWN_PREKEY'));
    assert.equal(sent.filter(Boolean).length, RETRY_LIMITS.perSenderPerHour);
    clock.advance(60 * 60 * 1000 + 1);
    assert.equal(bob.retry.request(alice.nostr, alice.identity.public, key(99), 'UNKNOWN_PREKEY'), true);
  });
});
