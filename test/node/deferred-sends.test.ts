import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFERRED_LIMITS } from '../../src/limits.js';
import { KIND_MESSAGE } from '../../src/nostr/events.js';
import type { RatchetNode } from '../../src/node/index.js';
import { startRelayProxy } from '../support/ok-dropping-proxy.js';
import { incoming } from '../support/histories.js';
import { eventually, nextEvent, relayAndNodes } from '../support/nodes.js';

const HOUR = 60 * 60 * 1000;
type Teardown = { after(fn: () => Promise<void> | void): void };

/**
 * Alice invites bob; bob reaches the relay through a proxy that holds back every message event
 * (kind 40001) until `release`: bob gets the full KX, and his `kx`, but not alice's hello, so his
 * session cannot send yet.
 */
async function helloHeldBack(t: Teardown, bobClock?: () => number) {
  const { relay, nodes } = await relayAndNodes(t);
  let holding = true;
  const held: (() => void)[] = [];
  const proxy = await startRelayProxy(relay.url, {
    fromRelay: (text, forward) => {
      const frame = JSON.parse(text) as unknown[];
      if (holding && frame[0] === 'EVENT' && (frame[2] as { kind?: number }).kind === KIND_MESSAGE) held.push(() => forward(text));
      else forward(text);
    },
  });
  t.after(() => proxy.close());
  const alice = await nodes.open('alice', [relay.url]);
  const bob = await nodes.open('bob', [proxy.url], bobClock ? { clock: bobClock } : {});
  await Promise.all([alice.start(), bob.start()]);
  const done = Promise.all([nextEvent(alice, 'kx'), nextEvent(bob, 'kx')]);
  bob.kx.acceptInvite(alice.kx.createInvite(HOUR).invite);
  await done;
  const aliceFp = alice.whoami().fingerprint;
  assert.equal(bob.store.loadSessions(aliceFp)[0]!.ratchet.hks, null, 'the hello is held back: bob cannot send yet');
  const release = () => {
    holding = false;
    held.splice(0).forEach((f) => f());
  };
  return { nodes, alice, bob, aliceFp, proxy, release };
}

/** The message ids of a node's text events in its outbox (a pack's several in its order), in the order they were queued. */
const queuedTexts = (node: RatchetNode) =>
  (node.store.db.prepare("SELECT message_id, message_ids FROM outbox WHERE purpose = 'message' ORDER BY created_at, rowid").all() as { message_id: string; message_ids: string | null }[]).flatMap(
    (r) => (r.message_ids === null ? [r.message_id] : (JSON.parse(r.message_ids) as string[])),
  );

describe('sends to a session that cannot send yet', () => {
  it('texts the acceptor sends right after its kx wait, queued, for the inviter’s hello, then go in order', async (t) => {
    const { alice, bob, aliceFp, release } = await helloHeldBack(t);
    const first = bob.messaging.send(aliceFp, 'right after the key exchange');
    const second = bob.messaging.send(aliceFp, 'and another');
    assert.equal(first.state, 'queued');
    assert.equal(bob.messaging.outgoing(second.id)!.state, 'queued');
    assert.deepEqual(queuedTexts(bob), [], 'nothing is encrypted before the session can send');

    const delivered = new Set<string>();
    bob.on('delivered', (d) => d.ids.forEach((id) => delivered.add(id)));
    release();
    await eventually(() => (delivered.has(first.id) && delivered.has(second.id) ? true : undefined), 'both delivered');
    assert.deepEqual(queuedTexts(bob), [first.id, second.id]);
    assert.deepEqual(
      incoming(alice).map((m) => m.body).sort(),
      ['and another', 'right after the key exchange'],
    );
  });

  it('a restart while the text waits loses nothing, and it goes once', async (t) => {
    const { nodes, alice, bob, aliceFp, proxy, release } = await helloHeldBack(t);
    const sent = bob.messaging.send(aliceFp, 'across a restart');
    await bob.close();
    release();
    const again = await nodes.open('bob', [proxy.url]);
    assert.equal(again.messaging.outgoing(sent.id)!.state, 'queued');
    const delivered = nextEvent(again, 'delivered', (d) => d.ids.includes(sent.id));
    await again.start();
    await delivered;
    assert.deepEqual(queuedTexts(again), [sent.id]);
    assert.deepEqual(incoming(alice).map((m) => m.id), [sent.id]);
    assert.equal(again.messaging.outgoing(sent.id)!.state, 'delivered');
  });

  it('a control message the acceptor sends at once (a group invitation) waits too, then arrives', async (t) => {
    const { alice, bob, aliceFp, release } = await helloHeldBack(t);
    const { id } = bob.groups.create('right away');
    bob.groups.invite(id, aliceFp);
    assert.deepEqual(alice.groups.list(), []);
    release();
    await eventually(() => (alice.groups.list().some((g) => g.id === id) ? true : undefined), 'the invitation at alice');
  });
  it('beyond its bound a send is refused, and what waited too long fails with a reason the sender sees', async (t) => {
    let now = Date.now();
    const { bob, aliceFp } = await helloHeldBack(t, () => now);
    const first = bob.messaging.send(aliceFp, 'never answered');
    for (let i = 1; i < DEFERRED_LIMITS.maxPerContact; i++) bob.messaging.send(aliceFp, `waiting ${i}`);
    assert.throws(() => bob.messaging.send(aliceFp, 'one too many'), /cannot send before its first message, and 1000 messages .* already wait for it/);
    const outgoing = bob.messaging.messages(0, 10_000).filter((m) => m.direction === 'out');
    assert.equal(outgoing.length, DEFERRED_LIMITS.maxPerContact, 'the refused one is not kept');
    now += DEFERRED_LIMITS.maxWaitMs + 1;
    const failed = nextEvent(bob, 'failed', (f) => f.ids.includes(first.id));
    bob.maintain();
    assert.match((await failed)[0].reason, /no first message from the contact in 30 days/);
    assert.ok(outgoing.every((m) => bob.messaging.outgoing(m.id)!.state === 'failed'));
    assert.deepEqual(queuedTexts(bob), [], 'none of them went');
  });
  it('a text waiting when the session is replaced by one that can send goes in the new one', async (t) => {
    const { alice, bob, aliceFp } = await helloHeldBack(t);
    const sent = bob.messaging.send(aliceFp, 'before the reset');
    // Bob resets: he is the new session's inviter, so it can send at once; alice's hello stays held back.
    const done = Promise.all([nextEvent(alice, 'kx'), nextEvent(bob, 'kx')]);
    bob.kx.reset(aliceFp);
    await done;
    await eventually(() => (incoming(alice).some((m) => m.id === sent.id) ? true : undefined), 'the text at alice');
    assert.deepEqual(queuedTexts(bob), [sent.id]);
  });
});
