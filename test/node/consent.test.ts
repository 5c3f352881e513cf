import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemRng } from '../../src/crypto/index.js';
import { generateIdentity } from '../../src/identity/index.js';
import type { AppMessage, RatchetNode } from '../../src/node/index.js';
import { MAX_REQUESTS_PER_MEDIATOR, REQUEST_TTL_MS } from '../../src/node/key-exchange.js';
import { eventually, nextEvent, triangle } from '../support/nodes.js';

async function chat(a: RatchetNode, b: RatchetNode): Promise<void> {
  const got = nextEvent(b, 'message', (m) => m.text === 'hi, introduced');
  a.messaging.send(b.whoami().fingerprint, 'hi, introduced');
  await got;
}

describe('consent before an introduction', () => {
  it('an introduction nobody asked for waits for both sides; accepted, it makes contacts that are untrusted and met via the mediator', async (t) => {
    const { alice, bob, carol, fp } = await triangle(t);
    alice.kx.introduce(fp.bob, fp.carol);
    // Carol would invite bob, bob would answer carol's invite: each waits for its user.
    const [atCarol] = await eventually(() => (carol.kx.requests().length ? carol.kx.requests() : undefined), 'the request at carol');
    const [atBob] = await eventually(() => (bob.kx.requests().length ? bob.kx.requests() : undefined), 'the request at bob');
    assert.deepEqual([atCarol!.kind, atCarol!.mediator, atCarol!.peer], ['invite-request', fp.alice, fp.bob]);
    assert.deepEqual([atBob!.kind, atBob!.mediator, atBob!.peer, atBob!.inviteArrived], ['introduced', fp.alice, fp.carol, false]);
    assert.deepEqual([carol.kx.pending(), bob.kx.pending()], [[], []], 'no key exchange started');
    assert.equal(carol.contacts.get(fp.bob), undefined);
    // Carol consents: her invite reaches bob through alice, and still waits for bob.
    carol.kx.acceptRequest(atCarol!.id.slice(0, 8));
    assert.deepEqual(carol.kx.requests(), []);
    await eventually(() => bob.kx.requests()[0]?.inviteArrived || undefined, "carol's invite at bob");
    assert.equal(bob.contacts.get(fp.carol), undefined);
    // Bob consents: the key exchange completes.
    const done = Promise.all([nextEvent(bob, 'kx'), nextEvent(carol, 'kx')]);
    bob.kx.acceptRequest(atBob!.id);
    await done;
    for (const [node, peer] of [[bob, fp.carol], [carol, fp.bob]] as const) {
      const c = node.contacts.get(peer)!;
      assert.deepEqual([c.trusted, c.verified, c.met], [false, false, { how: 'introduction', via: fp.alice }]);
    }
    assert.deepEqual(alice.contacts.get(fp.bob)!.met, { how: 'invite' });
    assert.equal(alice.contacts.get(fp.bob)!.trusted, true);
    await chat(bob, carol);
  });

  it('a requester that asked (mediate) needs no consent, the target does; declined, the request is dropped and the mediator told', async (t) => {
    const { alice, bob, carol, fp } = await triangle(t);
    bob.kx.mediate(fp.alice, fp.carol);
    const [r] = await eventually(() => (carol.kx.requests().length ? carol.kx.requests() : undefined), 'the request at carol');
    assert.deepEqual([r!.kind, r!.peer], ['invite-request', fp.bob]);
    assert.deepEqual(bob.kx.requests(), [], 'bob asked: nothing waits for him');
    const told = nextEvent(alice, 'refused', (x) => x.what === 'invite-request');
    carol.kx.declineRequest(r!.id);
    const [refusal] = await told;
    assert.deepEqual([refusal.peer, refusal.id], [fp.carol, r!.id]);
    assert.match(refusal.reason, /declined/);
    assert.deepEqual([carol.kx.requests(), carol.kx.pending(), bob.kx.pending()], [[], [], []]);
    assert.equal(carol.contacts.get(fp.bob), undefined);
    assert.throws(() => carol.kx.acceptRequest(r!.id), /no introduction waits/);
  });

  it("the admin of a group we joined introduces its members without asking; they are untrusted, met in the group", async (t) => {
    const { alice, bob, carol, fp } = await triangle(t);
    const { id } = alice.groups.create('friends');
    for (const member of [bob, carol]) {
      alice.groups.invite(id, member.whoami().fingerprint);
      await eventually(() => member.groups.summary(id) ?? undefined, 'the group invitation');
      member.groups.join(id);
      await eventually(() => member.groups.list().find((g) => g.id === id && g.joined), 'membership');
    }
    await eventually(() => bob.contacts.get(fp.carol)?.resetRv ?? undefined, 'carol at bob');
    await eventually(() => carol.contacts.get(fp.bob)?.resetRv ?? undefined, 'bob at carol');
    for (const [node, peer] of [[bob, fp.carol], [carol, fp.bob]] as const) {
      const c = node.contacts.get(peer)!;
      assert.deepEqual([c.trusted, c.met], [false, { how: 'group', via: id }]);
      assert.deepEqual(node.kx.requests(), []);
    }
    await chat(carol, bob);
  });

  it(`holds at most ${MAX_REQUESTS_PER_MEDIATOR} introductions per mediator, refuses the rest, and forgets them when they expire`, async (t) => {
    const { alice, carol, fp } = await triangle(t);
    const carolAtAlice = alice.contacts.get(fp.carol)!;
    const ask = async (n: number) => {
      alice.store.transaction(() => {
        for (let i = 0; i < n; i++) alice.messaging.sendControl(carolAtAlice, { type: 'invite-request', requester: generateIdentity(systemRng, Date.now()).public });
      });
      await alice.outbox.flush();
    };
    const refused: string[] = [];
    alice.on('refused', (r) => void refused.push(r.reason));
    await ask(MAX_REQUESTS_PER_MEDIATOR);
    await eventually(() => (carol.kx.requests().length === MAX_REQUESTS_PER_MEDIATOR ? true : undefined), 'the requests at carol');
    const over = nextEvent(alice, 'refused', (r) => r.what === 'invite-request');
    await ask(1);
    assert.match((await over)[0].reason, new RegExp(`${MAX_REQUESTS_PER_MEDIATOR} introductions by .* wait for the user already`));
    assert.equal(carol.kx.requests().length, MAX_REQUESTS_PER_MEDIATOR);
    assert.equal(refused.length, 1);
    assert.deepEqual(carol.kx.pending(), []);
    // Maintenance after their time forgets them.
    carol.kx.expire(Date.now() + REQUEST_TTL_MS + 1);
    assert.deepEqual(carol.kx.requests(), []);
  });
});

describe('a replayed reset request', () => {
  it('is refused: a reset invite passed on by a mediator is answered once', async (t) => {
    const { alice, bob, carol, fp } = await triangle(t, true);
    // Alice, the mediator, keeps what she passes on.
    const passedOn: Extract<AppMessage, { type: 'reset-forwarded' }>[] = [];
    const send = alice.messaging.sendControl.bind(alice.messaging);
    alice.messaging.sendControl = (contact, m, purpose) => {
      if (m.type === 'reset-forwarded') passedOn.push(m as (typeof passedOn)[number]);
      return send(contact, m, purpose);
    };
    const done = Promise.all([nextEvent(bob, 'kx'), nextEvent(carol, 'kx')]);
    bob.kx.reset(fp.carol, fp.alice);
    await done;
    assert.equal(passedOn.length, 1);
    const { peer, sealed } = passedOn[0]!;
    // Days later (within the reset's life) she passes it on again.
    const refusal = nextEvent(alice, 'refused', (r) => r.what === 'reset-forwarded');
    alice.store.transaction(() => alice.messaging.sendControl(alice.contacts.get(fp.carol)!, { type: 'reset-forwarded', peer, sealed }));
    await alice.outbox.flush();
    assert.match((await refusal)[0].reason, /answered already/);
    assert.deepEqual(carol.kx.pending(), [], 'no key exchange waits for the replay');
    // A real reset still goes through.
    const again = Promise.all([nextEvent(bob, 'kx'), nextEvent(carol, 'kx')]);
    bob.kx.reset(fp.carol, fp.alice);
    await again;
    await chat(bob, carol);
  });
});
