import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemRng } from '../../src/crypto/index.js';
import type { RatchetNode } from '../../src/node/index.js';
import { decodeMessageEvent, type Event, inboxEvent, KIND_MESSAGE } from '../../src/nostr/events.js';
import { PADDING_BUCKETS } from '../../src/nostr/padding.js';
import { decodeEnvelope, openSealedEnvelope, sealEnvelope } from '../../src/session/index.js';
import { publish } from '../support/histories.js';
import { eventually, meet, nextEvent, relayAndNodes } from '../support/nodes.js';

/** Every message event a node queued (messages, receipts, control), oldest first. */
function queuedEvents(node: RatchetNode): Event[] {
  const rows = node.store.db.prepare('SELECT event FROM outbox ORDER BY created_at, rowid').all() as { event: string }[];
  return rows.map((r) => JSON.parse(r.event) as Event).filter((e) => e.kind === KIND_MESSAGE);
}

/** How a private-mode event is addressed: sealed to an inbox or to a mailbox tag, never by a node's own key. */
function assertPrivate(e: Event, nodes: readonly RatchetNode[]): 'inbox' | 'mailbox' {
  for (const n of nodes) assert.notEqual(e.pubkey, n.selfNostr, 'signed by a throwaway key');
  assert.ok(PADDING_BUCKETS.includes(Buffer.from(e.content, 'base64').length), 'padded to a bucket');
  assert.equal(e.tags.length, 1);
  const [name] = e.tags[0]!;
  assert.ok(name === 'p' || name === 'z');
  return name === 'p' ? 'inbox' : 'mailbox';
}

const send = async (from: RatchetNode, to: RatchetNode, text: string) => {
  const got = nextEvent(to, 'message', (m) => m.text === text);
  const sent = from.messaging.send(to.whoami().fingerprint, text);
  await got;
  return sent.id;
};

const delivered = (node: RatchetNode, id: string) => eventually(() => (node.messaging.outgoing(id)?.state === 'delivered' ? true : undefined), `receipt for ${id.slice(0, 8)} ${JSON.stringify(node.messaging.messages().map((m) => [m.body, m.state]))}`);

describe('private addressing', () => {
  it('first message sealed to the inbox, replies and receipts to rotating mailbox tags, old tags dropped, a restart listening where it left off', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    let bob = await nodes.open('bob', [relay.url]);
    await meet(alice, bob);

    const first = await send(alice, bob, 'hello bob');
    const [firstEvent] = queuedEvents(alice);
    assert.equal(assertPrivate(firstEvent!, [alice, bob]), 'inbox');
    assert.deepEqual(firstEvent!.tags, [['p', bob.selfNostr]]);
    const tagsAtFirst = bob.messaging.mailboxes.tags();
    assert.ok(tagsAtFirst.length > 0, 'bob listens on the new session');

    await send(bob, alice, 'hello alice');
    await delivered(alice, first);
    const fromBob: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = await send(alice, bob, `a${i}`);
      fromBob.push(await send(bob, alice, `b${i}`));
      await delivered(alice, id);
    }
    for (const id of fromBob) await delivered(bob, id);

    // Every event of both: private, no author twice; after the session is confirmed, only mailboxes.
    const all = [...queuedEvents(alice), ...queuedEvents(bob)];
    assert.equal(new Set(all.map((e) => e.pubkey)).size, all.length, 'no signing key used twice');
    const formats = all.map((e) => assertPrivate(e, [alice, bob]));
    assert.ok(formats.filter((f) => f === 'mailbox').length >= 7, 'replies, later messages and receipts went to mailboxes');
    assert.deepEqual(
      queuedEvents(alice).slice(1).map((e) => e.tags[0]![0]),
      queuedEvents(alice).slice(1).map(() => 'z'),
      'once bob answered, alice writes to mailboxes only',
    );
    // The tags moved at every round trip, and none of the first ones is listened on any more.
    const now = bob.messaging.mailboxes.tags();
    assert.ok(now.length > 0);
    assert.deepEqual(now.filter((x) => tagsAtFirst.includes(x)), [], 'the first tags were dropped');
    const used = new Set(queuedEvents(alice).flatMap((e) => e.tags.filter((x) => x[0] === 'z').map((x) => x[1]!)));
    assert.ok(used.size >= 4, `alice's messages went to ${used.size} different tags`);

    // A restart: bob computes his tags from the store and gets what was sent meanwhile.
    await bob.close();
    alice.messaging.send(bob.whoami().fingerprint, 'while you were away 1');
    alice.messaging.send(bob.whoami().fingerprint, 'while you were away 2');
    assert.equal(await alice.drain(10_000), 0);
    bob = await nodes.open('bob', [relay.url]);
    assert.deepEqual(bob.messaging.mailboxes.tags().sort(), [...now].sort(), 'the same tags after a restart');
    const texts: string[] = [];
    bob.on('message', (m) => texts.push(m.text));
    await bob.start();
    await eventually(() => (texts.length === 2 ? true : undefined), 'the backlog after the restart');
    assert.deepEqual(texts.sort(), ['while you were away 1', 'while you were away 2']);
    await send(bob, alice, 'back');
  });

  it('a contact met by invite: sealed to the inbox until the acceptor has answered, then mailboxes', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    const carol = await nodes.open('carol', [relay.url]);
    await Promise.all([alice.start(), carol.start()]);
    const { invite } = alice.kx.createInvite(60 * 60 * 1000);
    const done = Promise.all([nextEvent(alice, 'kx'), nextEvent(carol, 'kx')]);
    carol.kx.acceptInvite(invite);
    await done;
    const first = await send(alice, carol, 'after the KX');
    const reply = await send(carol, alice, 'and back');
    const third = await send(alice, carol, 'now to a mailbox');
    for (const id of [first, third]) await delivered(alice, id);
    await delivered(carol, reply);
    // Alice's hello and first text: carol listens on no tag of the new session before she hears from it.
    const fromAlice = queuedEvents(alice).map((e) => assertPrivate(e, [alice, carol]));
    assert.deepEqual(fromAlice.slice(0, 2), ['inbox', 'inbox']);
    assert.deepEqual(new Set(fromAlice.slice(2)), new Set(['mailbox']));
    for (const e of queuedEvents(carol)) assert.equal(assertPrivate(e, [alice, carol]), 'mailbox');
  });

  it('a seed-mode node and a private-mode node talk to each other: each reads the other format', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const seed = await nodes.open('seed', [relay.url], { addressing: 'seed' });
    const priv = await nodes.open('priv', [relay.url]);
    await meet(seed, priv);
    const a = await send(seed, priv, 'from seed');
    const b = await send(priv, seed, 'from private');
    await send(seed, priv, 'again from seed');
    await send(priv, seed, 'again from private');
    await delivered(seed, a);
    await delivered(priv, b);
    for (const e of queuedEvents(seed)) {
      assert.equal(e.pubkey, seed.selfNostr, 'seed format: signed by the node key');
      assert.deepEqual(e.tags, [['p', priv.selfNostr]]);
      assert.equal(decodeMessageEvent(e, priv.selfNostr).format, 'seed');
    }
    for (const e of queuedEvents(priv)) assertPrivate(e, [seed, priv]);
    // And a private node that starts the session seals its first message to a seed node's inbox.
    const other = await nodes.open('other', [relay.url]);
    await meet(other, seed);
    await send(other, seed, 'sealed to a seed node');
    await send(seed, other, 'answered in the seed format');
  });

  it('refuses a sealed first message whose inner signature is not for its event, or whose sealed identity is not the pre-key header\'s, with state unchanged', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    const bob = await nodes.open('bob', [relay.url]);
    const mallory = await nodes.open('mallory', [relay.url]);
    await meet(alice, bob);
    await mallory.start();
    // Alice's first message, held back in her outbox while she is offline.
    await alice.close();
    const aliceAgain = await nodes.open('alice', [relay.url]);
    aliceAgain.messaging.send(bob.whoami().fingerprint, 'the real one');
    const [real] = queuedEvents(aliceAgain);
    const bobId = bob.store.identity();
    const opened = openSealedEnvelope(bobId, decodeMessageEvent(real!, bob.selfNostr).format === 'inbox' ? (decodeMessageEvent(real!, bob.selfNostr) as { sealed: Uint8Array }).sealed : new Uint8Array(), Buffer.from(real!.pubkey, 'hex'));
    assert.equal(decodeEnvelope(opened.envelopeBytes).type, 'prekey');
    const now = Date.now();
    // Alice's seal, for another throwaway key than the one that signs the event: a re-posted seal.
    const reposted = inboxEvent(bob.selfNostr, () => sealEnvelope(aliceAgain.store.identity(), bobId.public, systemRng(32), opened.envelopeBytes, systemRng), systemRng, now);
    // Mallory seals alice's pre-key message under her own identity.
    const misattributed = inboxEvent(bob.selfNostr, (key) => sealEnvelope(mallory.store.identity(), bobId.public, key, opened.envelopeBytes, systemRng), systemRng, now);
    const before = { otks: bob.store.loadPreKeyState().oneTime.length, contacts: bob.contacts.all().length, tags: bob.messaging.mailboxes.tags().length };
    const reasons = new Map<string, string>();
    bob.on('rejected', (r) => r.eventId && reasons.set(r.eventId, r.reason));
    await publish(relay.url, [reposted, misattributed]);
    await eventually(() => (reasons.size >= 2 ? true : undefined), 'both refused');
    assert.match(reasons.get(reposted.id)!, /BAD_SIGNATURE/);
    assert.match(reasons.get(misattributed.id)!, /IDENTITY_MISMATCH/);
    assert.equal(bob.store.loadSessions(aliceAgain.whoami().fingerprint).length, 0, 'no session');
    assert.deepEqual({ otks: bob.store.loadPreKeyState().oneTime.length, contacts: bob.contacts.all().length, tags: bob.messaging.mailboxes.tags().length }, before);
    assert.deepEqual(bob.messaging.messages(), []);
    // The real one, sent now, starts the session as if nothing had come before.
    const got = nextEvent(bob, 'message');
    await aliceAgain.start();
    assert.equal((await got)[0].text, 'the real one');
  });
});
