import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FAST_TIMING, nextEvent, relayAndNodes } from '../support/nodes.js';

describe('key maintenance on a timer', () => {
  it('rotates and republishes while connected, without a reconnect', async (t) => {
    const { relay, nodes } = await relayAndNodes(t);
    // Real time (relays refuse events far from their clock), with a signed pre-key that ages in a second.
    const bob = await nodes.open('bob', [relay.url], { preKeys: { signedPreKeyRotationMs: 1000 }, timing: { ...FAST_TIMING, maintenanceEveryMs: 100 } });
    const first = nextEvent(bob, 'published');
    await bob.start();
    await first;
    const before = bob.store.loadPreKeyState().signed.length;
    await nextEvent(bob, 'published');
    assert.equal(bob.store.loadPreKeyState().signed.length, before + 1, 'the signed pre-key rotated');
  });
});
