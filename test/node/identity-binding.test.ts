import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import WebSocket from 'ws';
import { Ed25519, systemRng, utf8 } from '../../src/crypto/index.js';
import { RatchetRelayError } from '../../src/errors.js';
import {
  compactPublicIdentity,
  decodePublicIdentity,
  encodePublicIdentity,
  generateIdentity,
  type Identity,
  type PublicIdentity,
} from '../../src/identity/index.js';
import { acceptInvite, inviteFromString, rvHex } from '../../src/kx/index.js';
import { rendezvousEvent } from '../../src/nostr/events.js';
import { decodePreKeyBundle, encodePreKeyBundle } from '../../src/prekeys/index.js';
import { Writer } from '../../src/wire/codec.js';
import { makeParty, seededRng, TestClock } from '../helpers.js';
import { nextEvent, relayAndNodes } from '../support/nodes.js';

useWebSocketImplementation(WebSocket);

const HOUR = 60 * 60 * 1000;
const REASON = /the Nostr key does not sign this identity/;

/**
 * Eve's identity claiming `nostrKey`: every key but the Nostr key is Eve's, and Eve's Ed25519 key
 * signs the lot, as anyone can. Only the Nostr key's own signature is out of her reach.
 */
function claimingNostrKey(eve: Identity, nostrKey: Uint8Array): Identity {
  const p = eve.public;
  const body = new Writer()
    .fixed(utf8('ratchet-relay/public-identity/v1'), 32)
    .fixed(p.signingKey, 32)
    .fixed(p.dhKey, 32)
    .fixed(nostrKey, 32)
    .fixed(p.kemKeyDigest, 32)
    .u64(p.createdAt)
    .finish();
  const forged: PublicIdentity = { ...p, nostrKey, signature: Ed25519.sign(eve.signing.privateKey, body) };
  return { ...eve, public: forged };
}

const refused = (e: unknown) => e instanceof RatchetRelayError && e.code === 'BAD_SIGNATURE' && REASON.test(e.message);

describe('the Nostr key signs the identity', () => {
  it('refuses a public identity, full or compact, and a bundle, whose Nostr key was swapped', () => {
    const eve = generateIdentity(seededRng('eve'), 1);
    const victim = generateIdentity(seededRng('victim'), 1);
    const forged = claimingNostrKey(eve, victim.public.nostrKey).public;
    assert.throws(() => decodePublicIdentity(encodePublicIdentity(forged)), refused);
    assert.throws(() => decodePublicIdentity(encodePublicIdentity(compactPublicIdentity(forged))), refused);

    // A real bundle, its pre-keys signed by Mallory's identity key, but naming Victim's Nostr key.
    const mallory = makeParty('mallory', new TestClock());
    const bundle = mallory.cipher.bundle();
    assert.ok(decodePreKeyBundle(encodePreKeyBundle(bundle)));
    const swapped = claimingNostrKey(mallory.store.identity(), victim.public.nostrKey).public;
    assert.throws(() => decodePreKeyBundle(encodePreKeyBundle({ ...bundle, identity: swapped })), refused);
  });

  it("refuses Eve's half KX claiming Victim's Nostr key: the inviter says why and stores no contact", async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    const alice = await nodes.open('alice', [relay.url]);
    await alice.start();
    const { invite } = alice.kx.createInvite(HOUR);

    const eve = generateIdentity(systemRng, Date.now());
    const victim = generateIdentity(systemRng, Date.now());
    const { send } = acceptInvite(claimingNostrKey(eve, victim.public.nostrKey), inviteFromString(invite), systemRng, Date.now());
    const outcome = Promise.race([
      nextEvent(alice, 'rejected', (r) => REASON.test(r.reason)).then(([r]) => r.reason),
      new Promise<string>((resolve) => alice.on('kx', () => resolve('completed'))), // what happened before the binding
    ]);
    const writer = await Relay.connect(relay.url);
    await writer.publish(rendezvousEvent(rvHex(send.rv), send.payload, systemRng, Date.now()));
    writer.close();

    assert.match(await outcome, REASON);
    assert.deepEqual(alice.store.db.prepare('SELECT fingerprint FROM contacts').all(), []);
    assert.equal(alice.kx.pending().length, 1, 'the invite still waits for its real acceptor');
  });
});
