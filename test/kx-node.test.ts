import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startTestRelay } from './support/relay.js';
import { nextEvent, testNodes } from './support/nodes.js';

const HOUR = 60 * 60 * 1000;

describe('invite key exchange between nodes, over rendezvous points', () => {
  it('completes from an out-of-band invite, even with the inviter offline between steps 1 and 2, and messages flow both ways', async (t) => {
    const relay = await startTestRelay();
    t.after(() => relay.stop());
    const nodes = testNodes(t);
    let alice = await nodes.open('alice', [relay.url]);
    const bob = await nodes.open('bob', [relay.url]);
    await alice.start();
    const { invite, rv } = alice.createInvite(24 * HOUR);
    assert.match(invite, /^rrinv1[A-Za-z0-9_-]+$/);
    assert.deepEqual(alice.pendingKeyExchanges().map((p) => [p.rv, p.role]), [[rv, 'inviter']]);
    await alice.close(); // the inviter goes offline after handing the invite over

    await bob.start();
    const accepted = bob.acceptInvite(invite);
    assert.equal(accepted.peer, alice.whoami().fingerprint);
    assert.equal(await bob.drain(10_000), 0, 'the half KX is on the relay');

    alice = await nodes.open('alice', [relay.url]); // back: the half KX waits at the initial RV
    const aliceDone = nextEvent(alice, 'kx');
    const bobDone = nextEvent(bob, 'kx');
    await alice.start();
    assert.equal((await aliceDone)[0].role, 'inviter');
    assert.equal((await bobDone)[0].role, 'acceptor');
    assert.deepEqual(alice.pendingKeyExchanges(), []);
    assert.deepEqual(bob.pendingKeyExchanges(), []);

    const toBob = nextEvent(bob, 'message');
    alice.send(bob.whoami().fingerprint, 'after the KX');
    assert.equal((await toBob)[0].text, 'after the KX');
    const toAlice = nextEvent(alice, 'message');
    bob.send(alice.whoami().fingerprint, 'and back');
    const [m] = await toAlice;
    assert.equal(m.text, 'and back');
    assert.equal(m.trusted, true, 'a contact made by invite is trusted');
  });

  it('ignores a spent invite and refuses a forged rendezvous payload, with nothing changed', async (t) => {
    const { rendezvousEvent } = await import('../src/nostr/events.js');
    const { systemRng } = await import('../src/crypto/index.js');
    const { Relay, useWebSocketImplementation } = await import('nostr-tools/relay');
    const { default: WebSocket } = await import('ws');
    useWebSocketImplementation(WebSocket);
    const relay = await startTestRelay();
    t.after(() => relay.stop());
    const nodes = testNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    const bob = await nodes.open('bob', [relay.url]);
    const carol = await nodes.open('carol', [relay.url]);
    await Promise.all([alice.start(), bob.start(), carol.start()]);
    const { invite } = alice.createInvite(HOUR);
    const done = nextEvent(alice, 'kx');
    bob.acceptInvite(invite);
    await done;
    const contacts = alice.nodeStore.contacts().length;

    // The invite's RV is spent: alice no longer listens there, and carol's half KX goes nowhere.
    carol.acceptInvite(invite);
    assert.equal(await carol.drain(10_000), 0);
    // A forged payload at an RV alice does wait on is opened, refused, and leaves the pending as it was.
    const second = alice.createInvite(HOUR);
    const before = alice.pendingKeyExchanges();
    const refused = nextEvent(alice, 'rejected', (r) => r.eventId !== null);
    const writer = await Relay.connect(relay.url);
    await writer.publish(rendezvousEvent(second.rv, systemRng(3600), systemRng, Date.now()));
    writer.close();
    assert.match((await refused)[0].reason, /DECRYPT_FAILED/);
    assert.deepEqual(alice.pendingKeyExchanges(), before);
    assert.equal(alice.nodeStore.contacts().length, contacts, 'no contact from the spent invite or the forgery');
    assert.throws(() => bob.acceptInvite(`${invite.slice(0, -2)}AA`), /checksum/);
    assert.equal(alice.cancelKeyExchange(second.rv.slice(0, 12)), second.rv);
    assert.deepEqual(alice.pendingKeyExchanges(), []);
    assert.throws(() => bob.cancelKeyExchange('deadbeef'), /no pending key exchange/);
  });
});
