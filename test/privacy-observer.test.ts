import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { toHex } from '../src/crypto/index.js';
import type { RatchetNode } from '../src/node/index.js';
import { type Event, KIND_BUNDLE, KIND_MESSAGE, KIND_RENDEZVOUS } from '../src/nostr/events.js';
import { PADDING_BUCKETS } from '../src/nostr/padding.js';
import { eventually, nextEvent, relayAndNodes } from './support/nodes.js';

const HOUR = 60 * 60 * 1000;

/**
 * What anyone can do with a relay: a plain WebSocket client, subscribed to every event (no filter
 * at all), recording each one it is sent. Before `close()` it asks once more for everything the relay
 * stored, so an event it could have missed live is still counted.
 */
async function observe(url: string): Promise<{ events: Map<string, Event>; close(): Promise<Event[]> }> {
  const socket = new WebSocket(url);
  const events = new Map<string, Event>();
  const eose = new Map<string, () => void>();
  socket.on('message', (data) => {
    const msg = JSON.parse(String(data)) as unknown[];
    if (msg[0] === 'EVENT') events.set((msg[2] as Event).id, msg[2] as Event);
    else if (msg[0] === 'EOSE') eose.get(msg[1] as string)?.();
  });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const request = (sub: string) =>
    new Promise<void>((resolve) => {
      eose.set(sub, resolve);
      socket.send(JSON.stringify(['REQ', sub, {}]));
    });
  await request('everything');
  return {
    events,
    async close() {
      assert.equal(socket.readyState, WebSocket.OPEN, 'the observer stayed connected the whole time');
      await request('stored');
      socket.close();
      return [...events.values()];
    },
  };
}

/** Every public key of a node an observer may know, as the hex (and npub) it could appear as. */
function publicKeys(node: RatchetNode): string[] {
  const p = node.identity();
  const { fingerprint, npub, nostrPubkey } = node.whoami();
  return [nostrPubkey, npub, fingerprint, toHex(p.signingKey), toHex(p.dhKey), toHex(p.kemKeyDigest)];
}

/** The nodes whose keys appear as the author of `e` or inside any of its tag values. */
function nodesNamedBy(e: Event, keysOf: ReadonlyMap<string, readonly string[]>): string[] {
  const fields = [e.pubkey, ...e.tags.flat()].map((f) => f.toLowerCase());
  return [...keysOf].filter(([, keys]) => keys.some((k) => fields.some((f) => f.includes(k.toLowerCase())))).map(([name]) => name);
}

/** The base64 length of a frame of `n` bytes. */
const base64Length = (n: number) => 4 * Math.ceil(n / 3);

describe('what an observer on the relay learns', () => {
  it('with private addressing (the default): no event links two nodes, no node key signs a message, no signing key twice, sizes only in the padding buckets', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const observer = await observe(relay.url);
    const names = ['alice', 'bob', 'carol', 'dave'] as const;
    const [alice, bob, carol, dave] = await Promise.all(names.map((n) => nodes.open(n, [relay.url])));
    const fp = (n: RatchetNode) => n.whoami().fingerprint;
    const sentTexts: { from: RatchetNode; to: RatchetNode; id: string }[] = [];

    /** A direct message from `a` to `b`: it arrives, and `a` sees it delivered (its receipt came back). */
    const talk = async (a: RatchetNode, b: RatchetNode, text: string) => {
      const got = nextEvent(b, 'message', (m) => m.text === text);
      const { id } = a.messaging.send(fp(b), text);
      const delivered = nextEvent(a, 'delivered', (d) => d.ids.includes(id));
      const [m] = await got;
      assert.equal(m.from, fp(a));
      await delivered;
      sentTexts.push({ from: a, to: b, id });
    };
    const kx = async (inviter: RatchetNode, acceptor: RatchetNode) => {
      const done = Promise.all([nextEvent(inviter, 'kx'), nextEvent(acceptor, 'kx')]);
      acceptor.kx.acceptInvite(inviter.kx.createInvite(HOUR).invite);
      await done;
    };

    // Bundles: alice and dave find bob's, and start with him by PQXDH (first messages, sealed), he answers.
    const bundles = [alice, dave].map((n) => nextEvent(n!, 'bundle', (b) => b.fingerprint === fp(bob!)));
    await Promise.all([alice, bob, carol, dave].map((n) => n!.start()));
    await Promise.all(bundles);
    await talk(alice!, bob!, 'hello bob, from alice');
    await talk(dave!, bob!, 'hello bob, from dave');
    await talk(bob!, alice!, 'hello alice');
    await talk(bob!, dave!, 'hello dave');
    await talk(alice!, bob!, 'a second one');
    await talk(alice!, bob!, 'a third one, same chain');
    await talk(bob!, alice!, 'and back');

    // Invites: carol and dave meet alice by KX.
    await kx(alice!, carol!);
    await kx(alice!, dave!);
    await talk(alice!, carol!, 'hello carol');
    await talk(carol!, alice!, 'hello alice, from carol');

    // A group: alice, carol and dave; carol and dave are introduced through alice.
    const { id: group } = alice!.groups.create('three');
    for (const member of [carol!, dave!]) {
      alice!.groups.invite(group, fp(member));
      await eventually(() => (member.groups.list().some((g) => g.id === group) ? true : undefined), 'the group invitation');
      member.groups.join(group);
    }
    await eventually(() => (carol!.cipher.hasSession(fp(dave!)) && dave!.cipher.hasSession(fp(carol!)) ? true : undefined), 'carol and dave introduced');
    const heard = Promise.all([alice!, carol!].map((n) => nextEvent(n, 'message', (m) => m.text === 'hello, group' && m.group?.id === group)));
    assert.deepEqual(dave!.groups.send(group, 'hello, group').unreachable, []);
    await heard;

    // A reset between alice and carol, then messages on the new session.
    const reset = Promise.all([nextEvent(alice!, 'kx'), nextEvent(carol!, 'kx')]);
    alice!.kx.reset(fp(carol!));
    await reset;
    await talk(alice!, carol!, 'after the reset');
    await talk(carol!, alice!, 'after the reset, back');

    for (const n of [alice, bob, carol, dave]) assert.equal(await n!.drain(10_000), 0, 'every outbox emptied');
    for (const { from, id } of sentTexts) assert.equal(from.messaging.outgoing(id)?.state, 'delivered');
    const seen = await observer.close();

    const keysOf = new Map(names.map((n, i) => [n, publicKeys([alice, bob, carol, dave][i]!)]));
    const nodeNostr = new Set([alice, bob, carol, dave].map((n) => n!.selfNostr));
    const bundleEvents = seen.filter((e) => e.kind === KIND_BUNDLE);
    const others = seen.filter((e) => e.kind !== KIND_BUNDLE);

    // Not vacuous: the observer saw the conversation, every kind of it, and more events than texts.
    assert.deepEqual(new Set(bundleEvents.map((e) => e.pubkey)), nodeNostr, 'every node’s bundle');
    assert.ok(others.some((e) => e.kind === KIND_MESSAGE) && others.some((e) => e.kind === KIND_RENDEZVOUS), 'messages and rendezvous payloads');
    assert.ok(others.length >= 2 * sentTexts.length, `${others.length} events for ${sentTexts.length} texts and their receipts`);

    const linking = seen.filter((e) => nodesNamedBy(e, keysOf).length > 1);
    assert.deepEqual(
      linking.map((e) => ({ kind: e.kind, nodes: nodesNamedBy(e, keysOf), tags: e.tags.map((tag) => tag[0]) })),
      [],
      'no event names two nodes by its author or its tags',
    );
    const byNodeKey = others.filter((e) => nodeNostr.has(e.pubkey));
    assert.deepEqual(
      byNodeKey.map((e) => e.kind),
      [],
      'a node’s own Nostr key signs its bundles only',
    );
    const authors = new Map<string, number>();
    for (const e of others) authors.set(e.pubkey, (authors.get(e.pubkey) ?? 0) + 1);
    assert.deepEqual(
      [...authors.values()].filter((n) => n > 1),
      [],
      'no signing key signs two events other than bundles',
    );
    const allowed = new Set(PADDING_BUCKETS.map(base64Length));
    assert.deepEqual(
      [...new Set(others.map((e) => e.content.length))].filter((n) => !allowed.has(n)).sort((a, b) => a - b),
      [],
      `content lengths only in the padding buckets (${[...allowed].join(', ')} base64 characters)`,
    );
    // And the conversation took the private paths: sealed first messages to inboxes, then mailboxes.
    const shapes = new Set(others.filter((e) => e.kind === KIND_MESSAGE).map((e) => e.tags.map((tag) => tag[0]).join()));
    assert.deepEqual([...shapes].sort(), ['p', 'z'], 'message events carry one p (inbox) or one z (mailbox) tag');
  });

  it('with seed addressing on the sender: its events are the seed’s format, kind 40001, p = recipient, signed by its node key', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const observer = await observe(relay.url);
    const alice = await nodes.open('alice', [relay.url], { addressing: 'seed' });
    const bob = await nodes.open('bob', [relay.url]);
    const bobsBundle = nextEvent(alice, 'bundle', (b) => b.fingerprint === bob.whoami().fingerprint);
    await Promise.all([alice.start(), bob.start()]);
    await bobsBundle;
    const toBob = nextEvent(bob, 'message', (m) => m.text === 'hello in the seed format');
    const first = alice.messaging.send(bob.whoami().fingerprint, 'hello in the seed format');
    const delivered = nextEvent(alice, 'delivered', (d) => d.ids.includes(first.id));
    await toBob;
    await delivered;
    const toAlice = nextEvent(alice, 'message', (m) => m.text === 'answered in private format');
    bob.messaging.send(alice.whoami().fingerprint, 'answered in private format');
    await toAlice;
    const second = alice.messaging.send(bob.whoami().fingerprint, 'and once more');
    await eventually(() => (alice.messaging.outgoing(second.id)?.state === 'delivered' ? true : undefined), 'the second receipt');
    for (const n of [alice, bob]) assert.equal(await n.drain(10_000), 0);
    const seen = await observer.close();

    // Alice's texts and her receipt of bob's answer: at least three events, all in the seed's format.
    const byAlice = seen.filter((e) => e.pubkey === alice.selfNostr && e.kind !== KIND_BUNDLE);
    assert.ok(byAlice.length >= 3, `${byAlice.length} events signed by alice’s node key`);
    for (const e of byAlice) {
      assert.equal(e.kind, KIND_MESSAGE);
      assert.deepEqual(e.tags, [['p', bob.selfNostr]]);
    }
    // So in seed mode the relay does see who writes to whom, as documented.
    assert.ok(seen.some((e) => e.pubkey === alice.selfNostr && e.tags.some((tag) => tag[1] === bob.selfNostr)));
  });
});
