import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually, nextEvent, pairOnOneRelay, relayAndNodes } from '../support/nodes.js';

const HOUR = 60 * 60 * 1000;

describe('group chats', () => {
  it('a new member of a group of 4 ends up with working ratchets to all 3 others, through the admin', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const names = ['admin', 'bob', 'carol', 'dave'];
    const [admin, bob, carol, dave] = await Promise.all(names.map((n) => nodes.open(n, [relay.url])));
    const all = [admin!, bob!, carol!, dave!];
    await Promise.all(all.map((n) => n.start()));
    for (const member of [bob!, carol!, dave!]) {
      const done = Promise.all([nextEvent(admin!, 'kx'), nextEvent(member, 'kx')]);
      member.kx.acceptInvite(admin!.kx.createInvite(HOUR).invite);
      await done;
    }
    const { id } = admin!.groups.create('four');
    const fp = (n: typeof admin) => n!.whoami().fingerprint;
    const joinAndWait = async (member: typeof admin, others: (typeof admin)[]) => {
      admin!.groups.invite(id, fp(member));
      await eventually(() => (member!.groups.list().find((g) => g.id === id) ? true : undefined), 'the invitation');
      member!.groups.join(id);
      // Joined, and a session with every other member (introductions through the admin).
      await eventually(() => (member!.groups.list().find((g) => g.id === id)?.joined && others.every((o) => member!.cipher.hasSession(fp(o))) ? true : undefined), 'introductions');
    };
    await joinAndWait(bob, [admin]);
    await joinAndWait(carol, [admin, bob]);
    assert.ok(admin!.groups.members(id).every((m) => m.reachable));

    // Dave is new: before joining he reaches only the admin; after, everyone.
    await joinAndWait(dave, [admin, bob, carol]);
    const members = dave!.groups.members(id);
    assert.equal(members.length, 4);
    assert.ok(members.every((m) => m.reachable), JSON.stringify(members));

    // A member who is away cannot be introduced yet: a message to the group names it instead of dropping it.
    let eveNow = Date.now();
    const eve = await nodes.open('eve', [relay.url], { clock: () => eveNow });
    await eve.start();
    const met = Promise.all([nextEvent(admin!, 'kx'), nextEvent(eve, 'kx')]);
    eve.kx.acceptInvite(admin!.kx.createInvite(HOUR).invite);
    await met;
    await bob!.close();
    admin!.groups.invite(id, fp(eve));
    await eventually(() => (eve.groups.list().find((g) => g.id === id) ? true : undefined), 'eve’s invitation');
    eve.groups.join(id);
    await eventually(() => (eve.groups.list().find((g) => g.id === id)?.joined && eve.cipher.hasSession(fp(carol)) && eve.cipher.hasSession(fp(dave)) ? true : undefined), 'eve meets the members who are online');
    const partial = eve.groups.send(id, 'while bob is away');
    assert.deepEqual(partial.unreachable, [fp(bob)]);
    const bobRow = eve.groups.members(id).find((m) => m.fingerprint === fp(bob))!;
    assert.equal(bobRow.reachable, false);
    assert.equal(bobRow.introductionAttempts, 1);
    // Retries at maintenance: at most 3 attempts, at least 7 days apart.
    const DAY = 24 * HOUR;
    const attempts = () => eve.groups.members(id).find((m) => m.fingerprint === fp(bob))!.introductionAttempts;
    const at = (days: number) => {
      eveNow += days * DAY;
      eve.maintain();
      return attempts();
    };
    assert.deepEqual([at(1), at(5), at(1), at(6), at(1), at(30)], [1, 1, 2, 2, 3, 3]);
    eveNow = Date.now();

    await eventually(() => (dave!.cipher.hasSession(fp(eve)) ? true : undefined), 'dave’s end of the session with eve');
    const heard = Promise.all([admin, carol].map((n) => nextEvent(n!, 'message', (m) => m.text === 'hello, group')));
    const sent = dave!.groups.send(id, 'hello, group');
    assert.equal(sent.sent.length, 4, 'admin, bob, carol and eve: bob is away, but dave has a session with him');
    assert.deepEqual(sent.unreachable, []);
    for (const [m] of await heard) {
      assert.equal(m.group?.id, id);
      assert.equal(m.group?.name, 'four');
      assert.equal(m.from, fp(dave));
    }
  });
});

describe('requests a contact met through a bundle could never complete', () => {
  it('are refused at once, with the reason, and queue nothing', async (t) => {
    const { alice, bobFp } = await pairOnOneRelay(t);
    const { id } = alice.groups.create('bundle friends');
    const pending = alice.status().outboxPending;
    assert.throws(() => alice.groups.invite(id, bobFp), /met through a bundle: the admin could not introduce them/);
    assert.throws(() => alice.kx.mediate(bobFp, 'ab'.repeat(32)), /met through a bundle: it cannot mediate/);
    assert.throws(() => alice.kx.reset(bobFp), /no reset mailbox/);
    assert.equal(alice.status().outboxPending, pending, 'nothing was queued');
    assert.deepEqual(alice.groups.members(id).map((m) => m.alias), ['me'], 'bob was not invited');
  });
});
