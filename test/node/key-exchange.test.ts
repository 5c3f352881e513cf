import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import WebSocket from 'ws';
import { systemRng } from '../../src/crypto/index.js';
import { createInvite, encodeInvite, seal } from '../../src/kx/index.js';
import { decodeRendezvousEvent, type Event, KIND_RENDEZVOUS, RENDEZVOUS_TAG, rendezvousEvent } from '../../src/nostr/events.js';
import type { NodeEvents } from '../../src/node/index.js';
import { KX_GRACE_MS } from '../../src/node/key-exchange.js';
import { eventually, nextEvent, relayAndNodes } from '../support/nodes.js';

const HOUR = 60 * 60 * 1000;

useWebSocketImplementation(WebSocket);

/** Posts `payload` at a rendezvous point as anyone could: a plain Nostr client, a throwaway key. */
async function postAtRendezvous(url: string, rv: string, payload: Uint8Array): Promise<void> {
  const writer = await Relay.connect(url);
  await writer.publish(rendezvousEvent(rv, payload, systemRng, Date.now()));
  writer.close();
}

/** The payloads a relay holds at a rendezvous point, oldest first. */
async function payloadsAt(url: string, rv: string): Promise<Uint8Array[]> {
  const reader = await Relay.connect(url);
  const events: Event[] = [];
  await new Promise<void>((resolve) => {
    const sub = reader.subscribe([{ kinds: [KIND_RENDEZVOUS], [`#${RENDEZVOUS_TAG}`]: [rv] }], {
      onevent: (e) => void events.push(e),
      oneose: () => {
        sub.close();
        resolve();
      },
    });
  });
  reader.close();
  return events.sort((a, b) => a.created_at - b.created_at).map((e) => decodeRendezvousEvent(e).payload);
}

describe('invite key exchange between nodes, over rendezvous points', () => {
  it('completes from an out-of-band invite, even with the inviter offline between steps 1 and 2, and messages flow both ways', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    let alice = await nodes.open('alice', [relay.url]);
    const bob = await nodes.open('bob', [relay.url]);
    await alice.start();
    const { invite, rv } = alice.kx.createInvite(24 * HOUR);
    assert.match(invite, /^rrinv3[A-Za-z0-9_-]+$/);
    assert.deepEqual(alice.kx.pending().map((p) => [p.rv, p.role]), [[rv, 'inviter']]);
    await alice.close(); // the inviter goes offline after handing the invite over

    await bob.start();
    const accepted = bob.kx.acceptInvite(invite);
    assert.equal(accepted.peer, alice.whoami().fingerprint);
    assert.equal(await bob.drain(10_000), 0, 'the half KX is on the relay');

    alice = await nodes.open('alice', [relay.url]); // back: the half KX waits at the initial RV
    const aliceDone = nextEvent(alice, 'kx');
    const bobDone = nextEvent(bob, 'kx');
    await alice.start();
    assert.equal((await aliceDone)[0].role, 'inviter');
    assert.equal((await bobDone)[0].role, 'acceptor');
    assert.deepEqual(alice.kx.pending(), []);
    assert.deepEqual(bob.kx.pending(), []);

    const toBob = nextEvent(bob, 'message');
    alice.messaging.send(bob.whoami().fingerprint, 'after the KX');
    assert.equal((await toBob)[0].text, 'after the KX');
    const toAlice = nextEvent(alice, 'message');
    bob.messaging.send(alice.whoami().fingerprint, 'and back');
    const [m] = await toAlice;
    assert.equal(m.text, 'and back');
    assert.equal(m.trusted, true, 'a contact made by invite is trusted');
  });

  it('completes with the acceptor restarted between steps 2 and 3', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    let bob = await nodes.open('bob', [relay.url]);
    await Promise.all([alice.start(), bob.start()]);
    const { invite } = alice.kx.createInvite(HOUR);
    const answered = nextEvent(alice, 'kx');
    await bob.close(); // gone before the full KX can arrive
    bob = await nodes.open('bob', [relay.url]);
    bob.kx.acceptInvite(invite); // step 2 from the reopened store, not yet connected: queued in the outbox
    await bob.close();
    bob = await nodes.open('bob', [relay.url]);
    await bob.start(); // publishes the half KX from its outbox
    await answered;
    await bob.close(); // restarted between steps 2 and 3: the pending KX survives in the store
    bob = await nodes.open('bob', [relay.url]);
    assert.equal(bob.kx.pending().length, 1);
    const done = nextEvent(bob, 'kx');
    await bob.start();
    assert.equal((await done)[0].role, 'acceptor');
    const got = nextEvent(bob, 'message', (m) => m.text === 'after restarts');
    alice.messaging.send(bob.whoami().fingerprint, 'after restarts');
    await got;
  });

  it('drops a pending key exchange once its invite has expired', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    let now = Date.now();
    const alice = await nodes.open('alice', [relay.url], { clock: () => now });
    alice.kx.createInvite(HOUR);
    assert.equal(alice.kx.pending().length, 1);
    now += HOUR - 1;
    alice.maintain();
    assert.equal(alice.kx.pending().length, 1, 'not before it expires');
    now += 2;
    alice.maintain();
    assert.deepEqual(alice.kx.pending(), []);
  });

  it('tells an acceptor whose inviter never answered that the key exchange failed, once, when it expires', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    let now = Date.now();
    const alice = await nodes.open('alice', [relay.url]);
    const bob = await nodes.open('bob', [relay.url], { clock: () => now });
    const { invite } = alice.kx.createInvite(HOUR);
    const aliceFp = alice.whoami().fingerprint;
    await alice.close(); // never answers
    const failures: NodeEvents['kx-failed'][0][] = [];
    bob.on('kx-failed', (e) => failures.push(e));
    const { rv } = bob.kx.acceptInvite(invite);
    // Alice's clock made the invite a moment after bob's `now` was read: a minute either side.
    now += HOUR + KX_GRACE_MS - 60_000;
    bob.maintain();
    assert.deepEqual(failures, [], 'not while it may still be answered');
    assert.equal(bob.kx.pending().length, 1);
    now += 120_000;
    bob.maintain();
    bob.maintain();
    assert.deepEqual(bob.kx.pending(), []);
    assert.deepEqual(failures, [{ peer: aliceFp, alias: null, rv, code: 'expired', reason: 'no answer came before it expired' }]);
  });

  it('tells a second acceptor of a spent invite that it was used, once per half KX; a duplicate of the first is not refused', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    const bob = await nodes.open('bob', [relay.url]);
    const carol = await nodes.open('carol', [relay.url]);
    await Promise.all([alice.start(), bob.start(), carol.start()]);
    const [aliceFp, bobFp, carolFp] = [alice.whoami().fingerprint, bob.whoami().fingerprint, carol.whoami().fingerprint];
    const { invite, rv: inviteRv } = alice.kx.createInvite(HOUR);
    const done = Promise.all([nextEvent(alice, 'kx'), nextEvent(bob, 'kx')]);
    const bobRv = bob.kx.acceptInvite(invite).rv;
    await done;

    // Bob's half KX again, reposted by anyone: its exchange is done, so it gets no answer at all.
    const [bobHalf] = await payloadsAt(relay.url, inviteRv);
    const duplicate = nextEvent(alice, 'rejected', (r) => r.eventId !== null);
    await postAtRendezvous(relay.url, inviteRv, bobHalf!);
    assert.match((await duplicate)[0].reason, /duplicate half KX: its sender already completed this invite/);

    // Carol answers the same invite: alice refuses it, and carol is told why and stops waiting.
    const failed = nextEvent(carol, 'kx-failed');
    const carolRv = carol.kx.acceptInvite(invite).rv;
    assert.equal(carol.kx.pending().length, 1);
    const [f] = await failed;
    assert.deepEqual([f.peer, f.rv, f.code], [aliceFp, carolRv, 'invite-used']);
    assert.match(f.reason, /invite was already used/);
    assert.deepEqual(carol.kx.pending(), []);
    assert.equal(carol.contacts.get(aliceFp), undefined);

    // Carol's half KX again: answered once only.
    const carolHalf = (await payloadsAt(relay.url, inviteRv)).find((p) => Buffer.compare(p, bobHalf!) !== 0)!;
    const again = nextEvent(alice, 'rejected', (r) => r.eventId !== null);
    await postAtRendezvous(relay.url, inviteRv, carolHalf);
    assert.match((await again)[0].reason, /refused already/);
    assert.equal(await alice.drain(10_000), 0);
    assert.equal((await payloadsAt(relay.url, carolRv)).length, 1, 'one refusal for carol');
    assert.equal((await payloadsAt(relay.url, bobRv)).length, 1, 'bob got its full KX, and no refusal');

    // Bob's exchange carries on; carol is nobody's contact.
    const toBob = nextEvent(bob, 'message', (m) => m.text === 'still here');
    alice.messaging.send(bobFp, 'still here');
    await toBob;
    const toAlice = nextEvent(alice, 'message', (m) => m.text === 'me too');
    bob.messaging.send(aliceFp, 'me too');
    await toAlice;
    assert.deepEqual(alice.contacts.all().map((c) => c.fingerprint), [bobFp]);
    assert.equal(alice.contacts.get(carolFp), undefined);
  });

  it('refuses a forged rendezvous payload, with nothing changed', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    const bob = await nodes.open('bob', [relay.url]);
    await Promise.all([alice.start(), bob.start()]);
    const { invite } = alice.kx.createInvite(HOUR);
    const done = nextEvent(alice, 'kx');
    bob.kx.acceptInvite(invite);
    await done;
    const contacts = alice.contacts.all().length;

    // A forged payload at an RV alice does wait on is opened, refused, and leaves the pending as it was.
    const second = alice.kx.createInvite(HOUR);
    const before = alice.kx.pending();
    const refused = nextEvent(alice, 'rejected', (r) => r.eventId !== null);
    await postAtRendezvous(relay.url, second.rv, systemRng(3600));
    assert.match((await refused)[0].reason, /DECRYPT_FAILED/);
    assert.deepEqual(alice.kx.pending(), before);
    assert.equal(alice.contacts.all().length, contacts, 'no contact from the forgery');
    assert.throws(() => bob.kx.acceptInvite(`${invite.slice(0, -2)}AA`), /checksum/);
    assert.equal(alice.kx.cancel(second.rv.slice(0, 12)), second.rv);
    assert.deepEqual(alice.kx.pending(), []);
    assert.throws(() => bob.kx.cancel('deadbeef'), /no pending key exchange/);
  });
});

describe('ratchet reset through the reset rendezvous point', () => {
  async function invited(t: { after(fn: () => Promise<void> | void): void }) {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    const bob = await nodes.open('bob', [relay.url]);
    await Promise.all([alice.start(), bob.start()]);
    const done = Promise.all([nextEvent(alice, 'kx'), nextEvent(bob, 'kx')]);
    bob.kx.acceptInvite(alice.kx.createInvite(HOUR).invite);
    await done;
    return { relay, nodes, alice, bob, aliceFp: alice.whoami().fingerprint, bobFp: bob.whoami().fingerprint };
  }

  async function talk(a: import('../../src/node/index.js').RatchetNode, b: import('../../src/node/index.js').RatchetNode, text: string) {
    const got = nextEvent(b, 'message', (m) => m.text === text);
    a.messaging.send(b.whoami().fingerprint, text);
    await got;
  }

  for (const side of ['inviter', 'acceptor'] as const)
    it(`replaces the session and rotates both reset RVs, started by the ${side}`, async (t) => {
      const { alice, bob, aliceFp, bobFp } = await invited(t);
      const [from, to, toFp, fromFp] = side === 'inviter' ? [alice, bob, bobFp, aliceFp] : [bob, alice, aliceFp, bobFp];
      await talk(alice, bob, 'before');
      const oldAtTo = to.contacts.get(fromFp)!.resetRv!;
      const oldAtFrom = from.contacts.get(toFp)!.resetRv!;
      const done = Promise.all([nextEvent(from, 'kx'), nextEvent(to, 'kx')]);
      from.kx.reset(toFp);
      const [[a], [b]] = await done;
      assert.equal(a.role, 'inviter');
      assert.equal(b.role, 'acceptor');
      await talk(alice, bob, 'after, alice to bob');
      await talk(bob, alice, 'after, bob to alice');
      assert.notEqual(to.contacts.get(fromFp)!.resetRv, oldAtTo);
      assert.notEqual(from.contacts.get(toFp)!.resetRv, oldAtFrom);
      // The old reset RVs are dead: no contact and no key exchange answers there any more.
      for (const [node, rv] of [[to, oldAtTo], [from, oldAtFrom]] as const) {
        assert.equal(node.contacts.byResetRv(rv), undefined);
        assert.equal(node.kx.pending().find((p) => p.rv === rv), undefined);
      }
      assert.deepEqual([...alice.kx.pending(), ...bob.kx.pending()], []);
    });

  it('settles crossed resets to exactly one key exchange', async (t) => {
    const { alice, bob, aliceFp, bobFp } = await invited(t);
    const kxs: string[] = [];
    alice.on('kx', (k) => kxs.push(`alice:${k.role}`));
    bob.on('kx', (k) => kxs.push(`bob:${k.role}`));
    const done = Promise.all([nextEvent(alice, 'kx'), nextEvent(bob, 'kx')]);
    alice.kx.reset(bobFp);
    bob.kx.reset(aliceFp);
    await done;
    await talk(alice, bob, 'after crossing');
    await talk(bob, alice, 'and back');
    assert.equal(kxs.length, 2, `one exchange, two ends: ${kxs.join(', ')}`);
    assert.deepEqual(kxs.map((k) => k.split(':')[1]).sort(), ['acceptor', 'inviter']);
    assert.deepEqual([...alice.kx.pending(), ...bob.kx.pending()], []);
  });

  it('refuses a duplicate reset request while the first is being answered', async (t) => {
    const { relay, alice, bob, aliceFp, bobFp } = await invited(t);
    const mailbox = bob.contacts.get(aliceFp)!.resetRv!;
    alice.kx.reset(bobFp);
    assert.equal(await alice.drain(10_000), 0);
    await alice.close(); // alice is gone before she can finish it: bob's answer stays open
    await eventually(() => (bob.kx.pending().length === 1 ? true : undefined), 'bob answering the first request');
    const before = bob.kx.pending();
    const again = createInvite(alice.store.identity(), systemRng, Date.now(), HOUR).invite;
    const refused = nextEvent(bob, 'rejected', (r) => r.eventId !== null);
    await postAtRendezvous(relay.url, mailbox, seal(bob.store.identity().kem.publicKey, encodeInvite(again), systemRng));
    assert.match((await refused)[0].reason, /duplicate reset request/);
    assert.deepEqual(bob.kx.pending(), before);
  });

  it('refuses a reset request from another identity than the contact, with nothing changed', async (t) => {
    const { relay, nodes, bob, aliceFp } = await invited(t);
    const mallory = await nodes.open('mallory', [relay.url]);
    const mailbox = bob.contacts.get(aliceFp)!.resetRv!;
    const forged = createInvite(mallory.store.identity(), systemRng, Date.now(), HOUR).invite;
    const before = bob.kx.pending();
    const refused = nextEvent(bob, 'rejected', (r) => r.eventId !== null);
    await postAtRendezvous(relay.url, mailbox, seal(bob.store.identity().kem.publicKey, encodeInvite(forged), systemRng));
    assert.match((await refused)[0].reason, /IDENTITY_MISMATCH: reset request signed by an identity other than/);
    assert.deepEqual(bob.kx.pending(), before);
    assert.equal(bob.contacts.get(aliceFp)!.resetRv, mailbox);
  });
});

describe('introductions (auto-KX through a mediator)', () => {
  /** Alice has met bob and carol by invite; bob and carol do not know each other. */
  async function triangle(t: { after(fn: () => Promise<void> | void): void }) {
    const { relay, nodes } = await relayAndNodes(t);
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => nodes.open(n, [relay.url])));
    await Promise.all([alice!.start(), bob!.start(), carol!.start()]);
    for (const other of [bob!, carol!]) {
      const done = Promise.all([nextEvent(alice!, 'kx'), nextEvent(other, 'kx')]);
      other.kx.acceptInvite(alice!.kx.createInvite(HOUR).invite);
      await done;
    }
    return { alice: alice!, bob: bob!, carol: carol! };
  }

  async function chat(a: import('../../src/node/index.js').RatchetNode, b: import('../../src/node/index.js').RatchetNode) {
    const got = nextEvent(b, 'message', (m) => m.text === 'hi from an introduction');
    a.messaging.send(b.whoami().fingerprint, 'hi from an introduction');
    await got;
    const back = nextEvent(a, 'message', (m) => m.text === 'and back');
    b.messaging.send(a.whoami().fingerprint, 'and back');
    await back;
  }

  /** Each of `nodes` consents to the introduction that waits for it (test/node/consent.test.ts tests the consent itself). */
  async function consent(...nodes: import('../../src/node/index.js').RatchetNode[]) {
    for (const n of nodes) n.kx.acceptRequest((await eventually(() => n.kx.requests()[0], 'an introduction to consent to')).id);
  }

  it('a mediator introduces two of its contacts, who then message each other', async (t) => {
    const { alice, bob, carol } = await triangle(t);
    const done = Promise.all([nextEvent(bob, 'kx'), nextEvent(carol, 'kx')]);
    alice.kx.introduce(bob.whoami().fingerprint, carol.whoami().fingerprint);
    await consent(bob, carol);
    const [[b], [c]] = await done;
    assert.equal(b.peer, carol.whoami().fingerprint);
    assert.equal(c.peer, bob.whoami().fingerprint);
    await chat(bob, carol);
  });

  it('settles crossed requests (each asks the mediator for the other) to exactly one key exchange', async (t) => {
    const { alice, bob, carol } = await triangle(t);
    const kxs: string[] = [];
    bob.on('kx', (k) => kxs.push(`bob:${k.role}`));
    carol.on('kx', (k) => kxs.push(`carol:${k.role}`));
    const done = Promise.all([nextEvent(bob, 'kx'), nextEvent(carol, 'kx')]);
    const aliceFp = alice.whoami().fingerprint;
    bob.kx.mediate(aliceFp, carol.whoami().fingerprint);
    carol.kx.mediate(aliceFp, bob.whoami().fingerprint);
    await done;
    await chat(bob, carol);
    assert.equal(kxs.length, 2, kxs.join(', '));
    assert.deepEqual(kxs.map((k) => k.split(':')[1]).sort(), ['acceptor', 'inviter']);
    assert.deepEqual([...bob.kx.pending(), ...carol.kx.pending()], []);
  });

  it('resets a ratchet through a mediator that cannot read the reset (transitive reset)', async (t) => {
    const { alice, bob, carol } = await triangle(t);
    const met = Promise.all([nextEvent(bob, 'kx'), nextEvent(carol, 'kx')]);
    alice.kx.introduce(bob.whoami().fingerprint, carol.whoami().fingerprint);
    await consent(carol, bob);
    await met;
    const carolFp = carol.whoami().fingerprint;
    const bobFp = bob.whoami().fingerprint;
    const oldRv = carol.contacts.get(bobFp)!.resetRv;
    const done = Promise.all([nextEvent(bob, 'kx'), nextEvent(carol, 'kx')]);
    bob.kx.reset(carolFp, alice.whoami().fingerprint);
    const [[b], [c]] = await done;
    assert.deepEqual([b.role, c.role], ['inviter', 'acceptor']);
    assert.notEqual(carol.contacts.get(bobFp)!.resetRv, oldRv, 'the reset RVs rotated');
    await chat(bob, carol);
  });

  it('tells the requester when a mediator refuses: a reset via someone who does not know the peer, an introduction to a stranger', async (t) => {
    const { alice, bob, carol } = await triangle(t);
    const [bobFp, carolFp] = [bob.whoami().fingerprint, carol.whoami().fingerprint];
    // Carol knows alice only: she cannot pass a reset on to bob.
    const refused = nextEvent(alice, 'refused');
    const { rv } = alice.kx.reset(bobFp, carolFp);
    assert.ok(alice.kx.pending().some((p) => p.rv === rv));
    const [r] = await refused;
    assert.deepEqual([r.peer, r.what], [carolFp, 'reset-via']);
    assert.match(r.reason, /someone we do not know/);
    assert.equal(alice.kx.pending().some((p) => p.rv === rv), false, 'the reset no longer waits');
    // Nor can she introduce alice to an identity she has never met.
    const refusedAgain = nextEvent(alice, 'refused');
    alice.kx.mediate(carolFp, 'cd'.repeat(32));
    const [m] = await refusedAgain;
    assert.deepEqual([m.peer, m.what], [carolFp, 'mediate-identity']);
    // The refusals cost no session anything.
    const got = nextEvent(carol, 'message');
    alice.messaging.send(carolFp, 'still friends');
    assert.equal((await got)[0].text, 'still friends');
    assert.ok(carol.kx.pending().length === 0 && bob.kx.pending().length === 0, 'no key exchange was started anywhere');
  });

  it('refuses an unsolicited introduction, with nothing changed', async (t) => {
    const { alice, bob, carol } = await triangle(t);
    // Alice hands bob an invite from carol that bob never asked for.
    const invite = createInvite(carol.store.identity(), systemRng, Date.now(), HOUR).invite;
    const sealed = seal(bob.store.identity().kem.publicKey, encodeInvite(invite), systemRng);
    const before = bob.kx.pending();
    const refused = nextEvent(bob, 'rejected', (r) => /unsolicited introduction/.test(r.reason));
    const bobContact = alice.contacts.get(bob.whoami().fingerprint)!;
    alice.store.transaction(() => alice.messaging.sendControl(bobContact, { type: 'transitive', peer: carol.whoami().fingerprint, sealed }));
    await alice.outbox.flush();
    await refused;
    assert.deepEqual(bob.kx.pending(), before);
    assert.equal(bob.contacts.get(carol.whoami().fingerprint), undefined);
    // The session with alice carried on: the refusal did not cost it a message.
    const got = nextEvent(bob, 'message');
    alice.messaging.send(bob.whoami().fingerprint, 'still in step');
    assert.equal((await got)[0].text, 'still in step');
  });
});
