import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextEvent, pairOnOneRelay } from '../support/nodes.js';
import { compactPublicIdentity, generateIdentity } from '../../src/identity/index.js';
import { Contacts } from '../../src/node/contacts.js';
import { makeParty, seededRng, TestClock } from '../helpers.js';
import { capabilityContext } from '../support/context.js';

/** The Contacts capability alone, on an in-memory store, and another party to know. */
function setup(seed: string) {
  const clock = new TestClock();
  const { ctx, events } = capabilityContext(seed, clock);
  const bob = makeParty(`${seed}/bob`, clock);
  const warnings: string[] = [];
  events.on('warning', (w) => warnings.push(w.message));
  return { ctx, contacts: new Contacts(ctx), bob: bob.store.identity(), warnings, clock };
}

describe('contacts, alone', () => {
  it('names contacts by alias or fingerprint prefix, and refuses aliases that would be ambiguous', () => {
    const { contacts, bob } = setup('contacts-alias');
    const c = contacts.addChosen(bob.public);
    assert.equal(c.trusted, true, 'a contact the user chose is trusted');
    assert.equal(contacts.setAlias(c.fingerprint.slice(0, 8), 'bob').alias, 'bob');
    assert.equal(contacts.contact('bob').fingerprint, c.fingerprint);
    assert.match(contacts.withSafetyNumber(contacts.contact('bob')).safetyNumber, /^[\d ]{60,}$/);
    for (const bad of ['deadbeef', ' bob', '', 'x'.repeat(65)]) assert.throws(() => contacts.setAlias('bob', bad), /an alias is 1 to 64 characters/);
    assert.throws(() => contacts.contact('carol'), /no contact matches "carol"/);
    assert.equal(contacts.setAlias('bob', null).alias, null);
  });

  it('a message from a stranger makes an untrusted contact; a contact met by key exchange is trusted with its reset mailboxes', () => {
    const { ctx, contacts, bob, clock } = setup('contacts-observe');
    const observed = ctx.transaction(() => contacts.observe(bob.public, 'message', clock.now));
    assert.equal(observed.kind, 'new');
    assert.equal(contacts.get(observed.kind === 'new' ? observed.contact.fingerprint : '')?.trusted, false);
    assert.equal(contacts.observe(bob.public, 'bundle', clock.now).kind, 'known');
    const c = ctx.transaction(() => contacts.addFromKeyExchange(bob.public, 'aa'.repeat(32), 'bb'.repeat(32), { how: 'invite' }, clock.now));
    assert.equal(c.trusted, true);
    assert.equal(c.resetRv, 'aa'.repeat(32));
    assert.equal(contacts.byResetRv('aa'.repeat(32))?.fingerprint, c.fingerprint);
  });

  it('a contact met through a bundle keeps the full identity a later key exchange brings, so it can be reset and introduced', () => {
    const { ctx, contacts, bob, clock } = setup('contacts-upgrade');
    const met = contacts.addChosen(compactPublicIdentity(bob.public));
    assert.equal(met.identity.kemKey, null);
    assert.throws(() => contacts.assertMetByInvite(met, 'x'), /met through a bundle/);
    const c = ctx.transaction(() => contacts.addFromKeyExchange(bob.public, 'aa'.repeat(32), 'bb'.repeat(32), { how: 'invite' }, clock.now));
    assert.equal(c.fingerprint, met.fingerprint);
    assert.deepEqual(c.identity.kemKey, bob.public.kemKey);
    assert.doesNotThrow(() => contacts.assertMetByInvite(c, 'x'));
    assert.equal(contacts.all().length, 1);
  });

  it('warns about a changed identity key only once the change is committed, and holds sending until acknowledged', () => {
    const { ctx, contacts, bob, warnings, clock } = setup('contacts-key-change');
    const before = contacts.addChosen(bob.public);
    const usurper = generateIdentity(seededRng('usurper'), clock.now, bob.nostr);
    assert.throws(() =>
      ctx.transaction(() => {
        contacts.observe(usurper.public, 'bundle', clock.now);
        throw new Error('the bundle was refused after all');
      }),
    );
    assert.deepEqual(warnings, [], 'no warning for a change that rolled back');
    assert.equal(contacts.get(before.fingerprint)?.fingerprint, before.fingerprint);

    const changed = ctx.transaction(() => contacts.observe(usurper.public, 'bundle', clock.now));
    assert.equal(changed.kind, 'key-changed');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /WARNING: the identity key of .* changed/);
    assert.equal(contacts.all().length, 1, 'never a second contact');
    const now = contacts.byNostr(before.nostrPubkey)!;
    assert.throws(() => contacts.assertSendable(now), /changed: compare safety numbers/);
    contacts.setVerified(now.fingerprint, true);
    assert.doesNotThrow(() => contacts.assertSendable(contacts.get(now.fingerprint)!));
  });
});

describe('contacts on a node', () => {
  it('warns loudly when a known contact’s Nostr key speaks for a new identity, and holds sending until acknowledged', async (t) => {
    const { generateIdentity } = await import('../../src/identity/index.js');
    const { currentBundle, encodePreKeyBundle, maintain, EMPTY_PREKEY_STATE } = await import('../../src/prekeys/index.js');
    const { bundleEvent } = await import('../../src/nostr/events.js');
    const { systemRng } = await import('../../src/crypto/index.js');
    const { Relay, useWebSocketImplementation } = await import('nostr-tools/relay');
    const { default: WebSocket } = await import('ws');
    useWebSocketImplementation(WebSocket);
    const { relay, alice, bob, bobFp } = await pairOnOneRelay(t);
    const got = nextEvent(bob, 'message');
    alice.messaging.send(bobFp, 'hello');
    await got;
    const contactsBefore = alice.contacts.all().length;

    // Someone holding Bob's Nostr key binds it to a new identity and publishes its bundle.
    const usurper = generateIdentity(systemRng, Date.now(), bob.store.identity().nostr);
    const keys = maintain(EMPTY_PREKEY_STATE, usurper, Date.now(), systemRng).state;
    const event = bundleEvent(encodePreKeyBundle(currentBundle(keys, usurper)), usurper.nostr.privateKey, Date.now() + 2000);
    const warned = nextEvent(alice, 'warning');
    const writer = await Relay.connect(relay.url);
    await writer.publish(event);
    writer.close();
    const [w] = await warned;
    assert.equal(w.kind, 'identity-changed');
    assert.equal(w.previous, bobFp);
    assert.match(w.message, /WARNING: the identity key of .* changed/);
    assert.equal(alice.contacts.all().length, contactsBefore, 'no second contact appears');
    const contact = alice.contacts.byNostr(bob.selfNostr)!;
    assert.notEqual(contact.fingerprint, bobFp);
    assert.equal(contact.verified, false);
    assert.throws(() => alice.messaging.send(contact.fingerprint, 'to whom?'), /identity key of .* changed/);
    alice.contacts.setTrusted(contact.fingerprint, true);
    assert.doesNotThrow(() => alice.messaging.send(contact.fingerprint, 'acknowledged'));
  });
});
