import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestRelay } from '../support/relay.js';
import { FAST_TIMING, nextEvent, testNodes } from '../support/nodes.js';

describe('key maintenance on a timer', () => {
  it('rotates and republishes while connected, without a reconnect', async (t) => {
    const relay = await startTestRelay();
    t.after(() => relay.stop());
    const nodes = testNodes(t);
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
