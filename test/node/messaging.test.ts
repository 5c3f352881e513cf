import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RatchetNode, ReceivedMessage } from '../../src/node/index.js';
import { startTestRelay } from '../support/relay.js';
import { eventually, meet, nextEvent, pairOnOneRelay, relayAndNodes, testNodes } from '../support/nodes.js';

function collect(node: RatchetNode): ReceivedMessage[] {
  const got: ReceivedMessage[] = [];
  node.on('message', (m) => got.push(m));
  return got;
}

describe('nodes on Nostr relays', () => {
  it('meet through bundles, exchange messages and receipts, and republish after a one-time key is used', async (t) => {
    const { alice, bob, bobFp } = await pairOnOneRelay(t);

    const republished = nextEvent(bob, 'published');
    const delivered = nextEvent(alice, 'delivered');
    const received = nextEvent(bob, 'message');
    const sent = alice.messaging.send(bobFp, 'hello bob');
    const [m] = await received;
    assert.equal(m.text, 'hello bob');
    assert.equal(m.from, alice.whoami().fingerprint);
    assert.equal(m.trusted, false, 'a message from an unknown sender makes an untrusted contact');
    await republished;
    assert.equal(bob.status().oneTimePreKeys, 99);
    const [d] = await delivered;
    assert.deepEqual(d.ids, [sent.id]);
    assert.equal(alice.messaging.outgoing(sent.id)?.state, 'delivered');

    // The async-iterator face of the same event API.
    const incoming = alice.incoming();
    bob.messaging.send(m.from, 'hello alice');
    const { value: reply } = await incoming.next();
    assert.equal(reply?.text, 'hello alice');
    await incoming.return(undefined);
  });

  it('loses nothing and delivers nothing twice when one of three relays stops mid-conversation', async (t) => {
    const relays = await Promise.all([startTestRelay(), startTestRelay(), startTestRelay()]);
    t.after(() => Promise.all(relays.map((r) => r.stop())).then(() => {}));
    const urls = relays.map((r) => r.url);
    const nodes = testNodes(t);
    const alice = await nodes.open('alice', urls);
    const bob = await nodes.open('bob', urls);
    await meet(alice, bob);
    const atBob = collect(bob);
    const atAlice = collect(alice);
    const bobFp = bob.whoami().fingerprint;
    const aliceFp = alice.whoami().fingerprint;
    const texts: string[] = [];
    for (let i = 0; i < 10; i++) {
      texts.push(`a${i}`);
      alice.messaging.send(bobFp, `a${i}`);
      if (i === 0) await eventually(() => (atBob.length > 0 ? true : undefined), 'first message');
      if (i === 4) await relays[1]!.stop();
      if (i % 3 === 0) bob.messaging.send(aliceFp, `b${i}`);
    }
    await eventually(() => (atBob.length >= 10 ? true : undefined), 'all ten messages at bob');
    await eventually(() => (atAlice.length >= 4 ? true : undefined), 'bob’s four replies at alice');
    await new Promise((r) => setTimeout(r, 300)); // room for a duplicate to show up, if one were coming
    assert.deepEqual(atBob.map((m) => m.text).sort(), [...texts].sort());
    assert.equal(new Set(atBob.map((m) => m.id)).size, 10);
    assert.deepEqual(atAlice.map((m) => m.text).sort(), ['b0', 'b3', 'b6', 'b9']);
    assert.equal(bob.messaging.messages().filter((m) => m.direction === 'in').length, 10, 'stored exactly once');
  });

  it('orders a backlog by its authenticated headers when the relay cannot (gaps beyond MAX_SKIP)', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    // A small MAX_SKIP makes any disorder of a 200-message backlog within one second fatal without ordering.
    let bob = await nodes.open('bob', [relay.url], { ratchet: { maxSkip: 20 } });
    await meet(alice, bob);
    const first = nextEvent(bob, 'message');
    alice.messaging.send(bob.whoami().fingerprint, 'first');
    await first;
    await bob.close();
    const texts = Array.from({ length: 200 }, (_, i) => `backlog ${i}`);
    for (const text of texts) alice.messaging.send(bob.whoami().fingerprint, text);
    assert.equal(await alice.drain(10_000), 0);
    bob = await nodes.open('bob', [relay.url], { ratchet: { maxSkip: 20 } });
    bob.messaging.takeUnread();
    await bob.start();
    await eventually(() => (bob.messaging.messages().filter((m) => m.direction === 'in').length === 201 ? true : undefined), 'the whole backlog');
    assert.deepEqual(bob.messaging.takeUnread().map((m) => m.text), texts);
  });

  it('hands a relay that was away the events it missed, so a peer that reads only that relay gets them', async (t) => {
    const [r1, r2] = await Promise.all([startTestRelay(), startTestRelay()]);
    t.after(async () => {
      await r1.stop();
      await r2.stop();
    });
    const nodes = testNodes(t);
    const alice = await nodes.open('alice', [r1.url, r2.url]);
    const bob = await nodes.open('bob', [r2.url]);
    await meet(alice, bob);
    await r2.stop();
    const sent = nextEvent(alice, 'sent');
    alice.messaging.send(bob.whoami().fingerprint, 'sent while r2 was down');
    assert.equal((await sent)[0].relaysAccepted, 1, 'only r1 took it');
    const received = nextEvent(bob, 'message');
    await r2.start();
    assert.equal((await received)[0].text, 'sent while r2 was down');
  });

  it('delivers everything, in order, to a receiver that was offline while it was sent', async (t) => {
    const pair = await pairOnOneRelay(t);
    const { relay, nodes, alice, bobFp } = pair;
    let bob = pair.bob;
    const first = nextEvent(bob, 'message');
    alice.messaging.send(bobFp, 'while you are here');
    await first;
    assert.equal(bob.messaging.takeUnread().length, 1);
    await bob.close();

    const texts = Array.from({ length: 30 }, (_, i) => `offline ${String(i).padStart(2, '0')}`);
    for (const text of texts) alice.messaging.send(bobFp, text);
    assert.equal(await alice.drain(10_000), 0, 'the relay accepted every message');

    bob = await nodes.open('bob', [relay.url]);
    await bob.start();
    await eventually(() => (bob.messaging.messages().filter((m) => m.direction === 'in').length === 31 ? true : undefined), 'the backlog');
    assert.deepEqual(
      bob.messaging.takeUnread().map((m) => m.text),
      texts,
    );
    assert.deepEqual(bob.messaging.takeUnread(), [], 'each message is handed out once');
  });
});
