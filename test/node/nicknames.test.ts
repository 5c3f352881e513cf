import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { concat, sha256, toBase64Url, utf8 } from '../../src/crypto/index.js';
import { RatchetRelayError } from '../../src/errors.js';
import { identitySign } from '../../src/identity/index.js';
import { createInvite, encodeInvite, INVITE_CONTEXT, INVITE_STRING_PREFIX } from '../../src/kx/index.js';
import type { RatchetNode } from '../../src/node/index.js';
import type { FollowEvent } from '../../src/cli/api.js';
import { NodeService } from '../../src/cli/node-service.js';
import { seededRng } from '../helpers.js';
import { nextEvent, pairOnOneRelay, relayAndNodes } from '../support/nodes.js';

const HOUR = 60 * 60 * 1000;

/** `inviter` invites `acceptor`; resolves once both sides completed the key exchange. Returns what accepting said. */
async function inviteAndAccept(inviter: RatchetNode, acceptor: RatchetNode) {
  const done = [nextEvent(inviter, 'kx'), nextEvent(acceptor, 'kx')];
  const accepted = acceptor.kx.acceptInvite(inviter.kx.createInvite(HOUR).invite);
  await Promise.all(done);
  return accepted;
}

const aliasAt = (node: RatchetNode, of: RatchetNode) => node.contacts.get(of.whoami().fingerprint)?.alias;

describe('nicknames in invites and half key exchanges', () => {
  it('both sides name the new contact by the nickname the other chose', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url], { nickname: 'alice' });
    const bob = await nodes.open('bob', [relay.url]);
    assert.equal(bob.kx.setNickname('Bob 🚲'), 'Bob 🚲');
    assert.equal(alice.whoami().nickname, 'alice');
    await Promise.all([alice.start(), bob.start()]);
    const followed: FollowEvent[] = [];
    const stop = new NodeService(alice, true).follow((e) => followed.push(e));
    const accepted = await inviteAndAccept(alice, bob);
    stop();
    assert.equal(accepted.nickname, 'alice', 'the acceptor sees who invited it at once');
    assert.deepEqual(followed.find((e) => e.type === 'kx'), { type: 'kx', peer: bob.whoami().fingerprint, alias: 'Bob 🚲', role: 'inviter' }, 'a follower is told the name too');
    assert.equal(aliasAt(alice, bob), 'Bob 🚲');
    assert.equal(aliasAt(bob, alice), 'alice');
    assert.equal(bob.contacts.contact('alice').fingerprint, alice.whoami().fingerprint, 'the name is a ref like any alias');
  });

  it('a name already taken (as it looks) gets the first free suffix, and a node without a nickname names nobody', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    const carol = await nodes.open('carol', [relay.url], { nickname: 'Bob' });
    const bob = await nodes.open('bob', [relay.url], { nickname: 'bob' });
    const dave = await nodes.open('dave', [relay.url], { nickname: 'bob' });
    await Promise.all([alice, carol, bob, dave].map((n) => n.start()));
    await inviteAndAccept(alice, carol);
    await inviteAndAccept(bob, alice);
    await inviteAndAccept(alice, dave);
    assert.deepEqual([aliasAt(alice, carol), aliasAt(alice, bob), aliasAt(alice, dave)], ['Bob', 'bob-2', 'bob-3']);
    assert.deepEqual([aliasAt(carol, alice), aliasAt(bob, alice), aliasAt(dave, alice)], [null, null, null]);
  });

  it('never replaces an alias the user gave', async (t) => {
    const { alice, bob, bobFp } = await pairOnOneRelay(t);
    alice.messaging.send(bobFp, 'hi'); // bob, met through his bundle, is a contact: alice names him
    alice.contacts.setAlias(bobFp, 'robert');
    alice.kx.setNickname('alice');
    bob.kx.setNickname('bob');
    await inviteAndAccept(alice, bob);
    assert.equal(aliasAt(alice, bob), 'robert');
    assert.equal(aliasAt(bob, alice), 'alice', 'bob had not named alice: her nickname names her');
  });

  it('an invite whose nickname breaks the rule is refused, and nothing is kept', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url], { nickname: 'alice' });
    const bob = await nodes.open('bob', [relay.url]);
    // Alice's own software signs an invite that names her by a prefix of Bob's fingerprint.
    const good = encodeInvite(createInvite(alice.store.identity(), seededRng('bad-nick'), Date.now(), HOUR, 'alice').invite);
    const spoof = utf8(`${bob.whoami().fingerprint.slice(0, 8)}`);
    const body = concat(good.subarray(0, good.length - 64 - 1 - 5), new Uint8Array([spoof.length]), spoof);
    const bytes = concat(body, identitySign(alice.store.identity(), INVITE_CONTEXT, body));
    const text = INVITE_STRING_PREFIX + toBase64Url(concat(bytes, sha256(bytes).subarray(0, 4)));
    assert.throws(
      () => bob.kx.acceptInvite(text),
      (e: unknown) => e instanceof RatchetRelayError && e.code === 'MALFORMED' && /invite: refused nickname: .*fingerprint/.test(e.message),
    );
    assert.deepEqual(bob.kx.pending(), []);
  });
});
