import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemRng } from '../../src/crypto/index.js';
import { generateIdentity } from '../../src/identity/index.js';
import type { NodeEvents, RatchetNode } from '../../src/node/index.js';
import { REQUEST_TTL_MS } from '../../src/node/key-exchange.js';
import { eventually, nextEvent, triangle } from '../support/nodes.js';

/**
 * The events that tell a follower (the web app) of what it otherwise learns only by asking: an
 * introduction waiting for consent, a group we know. Once per committed change; none for a refused
 * message, nor for one that changes nothing.
 */

/** Every `event` the node emits from now on. */
function record<K extends 'request' | 'group'>(node: RatchetNode, event: K): NodeEvents[K][0][] {
  const seen: NodeEvents[K][0][] = [];
  node.on(event, ((e: NodeEvents[K][0]) => void seen.push(e)) as never);
  return seen;
}

/** `from` sends `to` a text and waits for it: whatever `from` sent `to` before was handled by then (one ratchet, in order). */
async function settled(from: RatchetNode, to: RatchetNode): Promise<void> {
  const text = `sync ${Math.random()}`;
  const got = nextEvent(to, 'message', (m) => m.text === text);
  from.messaging.send(to.whoami().fingerprint, text);
  await got;
}

const changes = (events: readonly { change: string }[]) => events.map((e) => e.change);

describe('events for introduction requests and groups', () => {
  it('an introduction request: once when it arrives, gets its invite, is answered or expires; none when it is malformed or waits already', async (t) => {
    const { alice, bob, carol, fp } = await triangle(t, false);
    const [atBob, atCarol] = [record(bob, 'request'), record(carol, 'request')];
    alice.kx.introduce(fp.bob, fp.carol);
    const [toCarol] = await eventually(() => (carol.kx.requests().length ? carol.kx.requests() : undefined), 'the request at carol');
    const [toBob] = await eventually(() => (bob.kx.requests().length ? bob.kx.requests() : undefined), 'the request at bob');
    assert.deepEqual(atCarol, [{ id: toCarol!.id, kind: 'invite-request', mediator: fp.alice, peer: fp.bob, change: 'arrived' }]);
    assert.deepEqual(atBob, [{ id: toBob!.id, kind: 'introduced', mediator: fp.alice, peer: fp.carol, change: 'arrived' }]);

    // Asked again: it waits already. A requester without its full identity: malformed. Neither is told.
    alice.kx.introduce(fp.bob, fp.carol);
    const rejected = nextEvent(carol, 'rejected', (r) => /full identity/.test(r.reason));
    alice.store.transaction(() =>
      alice.messaging.sendControl(alice.contacts.get(fp.carol)!, { type: 'invite-request', requester: { ...generateIdentity(systemRng, Date.now()).public, kemKey: null } }),
    );
    await alice.outbox.flush();
    await rejected;
    await Promise.all([settled(alice, bob), settled(alice, carol)]);
    assert.deepEqual([changes(atBob), changes(atCarol)], [['arrived'], ['arrived']]);
    assert.equal(carol.kx.requests().length, 1);

    // Carol consents; her invite reaches bob's request; bob lets it expire.
    carol.kx.acceptRequest(toCarol!.id);
    assert.deepEqual(changes(atCarol), ['arrived', 'accepted']);
    await eventually(() => bob.kx.requests()[0]?.inviteArrived || undefined, "carol's invite at bob");
    assert.deepEqual(changes(atBob), ['arrived', 'invite']);
    bob.kx.expire(Date.now() + REQUEST_TTL_MS + 1);
    assert.deepEqual(bob.kx.requests(), []);
    assert.deepEqual(atBob.slice(1), [{ id: toBob!.id, kind: 'introduced', mediator: fp.alice, peer: fp.carol, change: 'invite' }, { ...atBob[1]!, change: 'expired' }]);
    bob.kx.expire(Date.now() + REQUEST_TTL_MS + 1);
    assert.equal(atBob.length, 3, 'nothing expired twice');

    // Introduced again, bob declines.
    alice.kx.introduce(fp.bob, fp.carol);
    const [again] = await eventually(() => (bob.kx.requests().length ? bob.kx.requests() : undefined), 'the request at bob again');
    bob.kx.declineRequest(again!.id);
    assert.deepEqual(changes(atBob), ['arrived', 'invite', 'expired', 'arrived', 'declined']);
    assert.equal(atBob[4]!.id, again!.id);
  });

  it('a group: created, invited (once, however often), joined, members; none for a forged invitation', async (t) => {
    const { alice, bob, carol, fp } = await triangle(t, true);
    const [atAlice, atBob, atCarol] = [record(alice, 'group'), record(bob, 'group'), record(carol, 'group')];
    const { id } = alice.groups.create('hike');
    const secret = alice.groups.create('secret');
    assert.deepEqual(atAlice, [
      { id, name: 'hike', change: 'created' },
      { id: secret.id, name: 'secret', change: 'created' },
    ]);

    alice.groups.invite(id, fp.bob);
    alice.groups.invite(id, fp.bob);
    await eventually(() => bob.groups.summary(id) ?? undefined, 'the invitation at bob');
    // Carol passes on alice's signed list of a group bob was not invited to: its signature is not hers.
    const refused = nextEvent(carol, 'refused', (r) => r.what === 'group-invite');
    carol.store.transaction(() => carol.messaging.sendControl(carol.contacts.get(fp.bob)!, { type: 'group-invite', members: alice.groups.resolve(secret.id).members }));
    await carol.outbox.flush();
    await refused;
    await settled(alice, bob);
    assert.deepEqual(atBob, [{ id, name: 'hike', change: 'invited' }]);
    assert.equal(bob.groups.summary(secret.id), null);

    bob.groups.join(id);
    await eventually(() => bob.groups.list().find((g) => g.id === id && g.joined), 'bob joined');
    assert.deepEqual(changes(atBob), ['invited', 'joined']);
    assert.deepEqual(changes(atAlice), ['created', 'created', 'members']);

    alice.groups.invite(id, fp.carol);
    await eventually(() => carol.groups.summary(id) ?? undefined, 'the invitation at carol');
    carol.groups.join(id);
    await eventually(() => carol.groups.list().find((g) => g.id === id && g.joined), 'carol joined');
    await eventually(() => (bob.groups.list().find((g) => g.id === id)!.version === 3 ? true : undefined), 'the new list at bob');
    assert.deepEqual(changes(atCarol), ['invited', 'joined']);
    assert.deepEqual(changes(atBob), ['invited', 'joined', 'members']);
    assert.deepEqual(changes(atAlice), ['created', 'created', 'members', 'members']);
  });
});
