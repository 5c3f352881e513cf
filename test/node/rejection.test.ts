import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import WebSocket from 'ws';
import { encodePreKeyBundle } from '../../src/prekeys/index.js';
import type { RatchetNode } from '../../src/node/index.js';
import { KIND_BUNDLE, KIND_MESSAGE } from '../../src/nostr/events.js';
import { startEvilRelay } from '../support/evil-relay.js';
import { startTestRelay } from '../support/relay.js';
import { eventually, nextEvent, testNodes } from '../support/nodes.js';

/** Everything a rejected event must leave alone. */
function snapshot(node: RatchetNode): unknown {
  return ['sessions', 'skipped_keys', 'messages', 'contacts', 'discovered_bundles', 'one_time_prekeys', 'outbox'].map((t) =>
    node.store.db.prepare(`SELECT * FROM ${t} ORDER BY rowid`).all(),
  );
}

useWebSocketImplementation(WebSocket);

describe('hostile input from a relay', () => {
  it('rejects forged, malformed, oversize, mis-bound and replayed events with a logged reason and no state change', async (t) => {
    const honest = await startTestRelay();
    const evil = await startEvilRelay();
    t.after(async () => {
      await honest.stop();
      await evil.close();
    });
    const nodes = testNodes(t);
    const log: string[] = [];
    const alice = await nodes.open('alice', [honest.url]);
    const bob = await nodes.open('bob', [honest.url, evil.url], { log: (l) => log.push(l) });
    const aSeesB = nextEvent(alice, 'bundle');
    await Promise.all([alice.start(), bob.start()]);
    await aSeesB;
    const first = nextEvent(bob, 'message');
    alice.messaging.send(bob.whoami().fingerprint, 'the only real message');
    await first;
    await alice.drain(5000);
    await new Promise((r) => setTimeout(r, 200)); // let the receipt and republish settle
    const before = snapshot(bob);

    const aliceKey = alice.store.identity().nostr.privateKey;
    const now = Math.floor(Date.now() / 1000);
    const toBob = (content: string) =>
      finalizeEvent({ kind: KIND_MESSAGE, created_at: now, tags: [['p', bob.selfNostr]], content }, aliceKey);
    // Alice's real first message, as the honest relay holds it: sealed to bob's inbox, the one event with his `p` tag.
    const reader = await Relay.connect(honest.url);
    const real = await new Promise<Record<string, unknown>>((resolve) => {
      const sub = reader.subscribe([{ kinds: [KIND_MESSAGE], '#p': [bob.selfNostr] }], {
        onevent: (e) => {
          sub.close();
          resolve(e as unknown as Record<string, unknown>);
        },
      });
    });
    reader.close();

    const cases: { name: string; event: Record<string, unknown>; reason: RegExp }[] = [
      { name: 'content changed after signing', event: { ...toBob('AAAA'), content: 'AAAB' }, reason: /bad id or signature/ },
      { name: 'forged signature', event: { ...toBob('AAAA'), sig: 'ab'.repeat(64) }, reason: /bad id or signature/ },
      { name: 'not base64', event: toBob('!!! not base64 !!!'), reason: /MALFORMED: message event: content is not base64/ },
      { name: 'garbage envelope', event: toBob(Buffer.from('garbage').toString('base64')), reason: /MALFORMED|UNSUPPORTED_VERSION/ },
      { name: 'oversize', event: toBob('A'.repeat(100_000)), reason: /exceeds/ },
      {
        name: 'bundle bound to another Nostr key',
        event: finalizeEvent(
          {
            kind: KIND_BUNDLE,
            created_at: now,
            tags: [
              ['d', 'radix_prekey_bundle_v1'],
              ['v', '1'],
            ],
            content: Buffer.from(encodePreKeyBundle(alice.cipher.bundle())).toString('base64'),
          },
          generateSecretKey(),
        ),
        reason: /IDENTITY_MISMATCH: bundle identity does not bind the Nostr key/,
      },
      {
        name: 'replayed ciphertext in a new event',
        // A later created_at, so that this is a new event and not the very same one (that is the next check).
        // The seal's signature names the throwaway key of the event it came in: under any other key it is refused.
        event: finalizeEvent({ kind: KIND_MESSAGE, created_at: (real.created_at as number) + 1, tags: [['p', bob.selfNostr]], content: real.content as string }, aliceKey),
        reason: /BAD_SIGNATURE: sealed envelope/,
      },
    ];
    // The evil relay sends each event on every subscription that names its kind (bob's inbox and his
    // mailboxes for a message): one dropped unparsed (oversize) is refused once per copy.
    const rejections: string[] = [];
    bob.on('rejected', (r) => r.relay.startsWith(evil.url) && rejections.push(r.reason));
    let next = 0;
    for (const c of cases) {
      evil.push(c.event);
      const at = await eventually(() => {
        const i = rejections.findIndex((reason, i) => i >= next && c.reason.test(reason));
        return i >= 0 ? i : undefined;
      }, `${c.name}: refused with ${c.reason}`, 5000);
      next = at + 1;
      const r = { reason: rejections[at]! };
      assert.ok(log.some((l) => l.includes(r.reason)), `${c.name}: the reason is logged`);
      assert.deepEqual(snapshot(bob), before, `${c.name}: nothing changed`);
    }

    // The very same event again (a relay replaying it): de-duplicated by id, delivered once.
    evil.push(real);
    evil.pushRaw('this is not JSON');
    const probe = nextEvent(bob, 'rejected', (r) => r.relay.startsWith(evil.url), 5000);
    evil.push({ ...toBob('AAAA'), content: 'probe' });
    await probe; // later events are still processed after the garbage frame
    assert.deepEqual(snapshot(bob), before, 'replayed event: nothing changed');
    assert.equal(bob.messaging.messages().filter((m) => m.direction === 'in').length, 1);
  });
});
