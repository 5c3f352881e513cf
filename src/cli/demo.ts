import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSafetyNumber, safetyNumber } from '../identity/index.js';
import { nextEvent, RatchetNode } from '../node/index.js';
import { startEmbeddedRelay } from '../relay/index.js';

type Say = (step: string, detail: Record<string, unknown>, human: string) => void;

/**
 * Two identities in temporary data directories meet through bundles on an embedded relay, exchange
 * messages and receipts, and compare safety numbers. Everything is deleted afterwards.
 */
export async function runDemo(opts: { json: boolean; verbose: boolean }): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'rrelay-demo-'));
  const say: Say = (step, detail, human) =>
    opts.json ? process.stdout.write(`${JSON.stringify({ step, ...detail })}\n`) : process.stdout.write(`${human}\n`);
  const relay = await startEmbeddedRelay({ port: 0, dbPath: join(root, 'relay.db') });
  const nodes: RatchetNode[] = [];
  try {
    say('relay', { url: relay.url }, `• embedded relay on ${relay.url}`);
    const open = async (who: string) => {
      const dataDir = join(root, who);
      const passphrase = `demo passphrase for ${who}`;
      const me = await RatchetNode.init({ dataDir, passphrase });
      const log = opts.verbose ? (l: string) => process.stderr.write(`[${who}] ${l}\n`) : undefined;
      const node = await RatchetNode.open({ dataDir, passphrase, relays: [relay.url], log });
      nodes.push(node);
      say('identity', { who, fingerprint: me.fingerprint, npub: me.npub }, `• ${who}: new identity ${me.fingerprint.slice(0, 16)}… (${me.npub.slice(0, 20)}…)`);
      return node;
    };
    const alice = await open('alice');
    const bob = await open('bob');
    const bobFp = bob.whoami().fingerprint;
    const aliceFp = alice.whoami().fingerprint;

    const aliceSeesBob = nextEvent(alice, 'bundle', (b) => b.fingerprint === bobFp);
    const bobPublished = nextEvent(bob, 'published', () => true);
    await bob.start();
    await bobPublished;
    await alice.start();
    await aliceSeesBob;
    say('discovered', { who: 'alice', peer: bobFp }, `• bob published his pre-key bundle (kind 30078); alice discovered it`);

    const bobGets = nextEvent(bob, 'message', () => true);
    const republished = nextEvent(bob, 'published', () => true);
    const delivered = nextEvent(alice, 'delivered', (d) => d.peer === bobFp);
    const sent = alice.messaging.send(bobFp, 'Hello Bob! This session started from your bundle, with PQXDH.');
    say('send', { who: 'alice', id: sent.id }, `• alice → bob: PQXDH initial message, queued as ${sent.id.slice(0, 8)}`);
    const [m1] = await bobGets;
    say('receive', { who: 'bob', from: m1.from, text: m1.text }, `• bob received from ${m1.from.slice(0, 16)}…: "${m1.text}"`);
    await republished;
    say('republished', { who: 'bob' }, '• bob used a one-time pre-key, so he published a fresh bundle at once');

    const aliceGets = nextEvent(alice, 'message', () => true);
    bob.messaging.send(aliceFp, 'Hi Alice, received. The ratchet has turned.');
    const [m2] = await aliceGets;
    say('receive', { who: 'alice', from: m2.from, text: m2.text }, `• alice received: "${m2.text}"`);
    await delivered;
    say('delivered', { who: 'alice', id: sent.id }, `• alice's first message is marked delivered (bob's receipt came back)`);

    const number = safetyNumber(alice.identity(), bob.identity());
    say('safety-number', { safetyNumber: number }, `• safety number, the same on both sides:\n    ${formatSafetyNumber(number)}`);
    say('done', {}, '• done: both data directories and the relay are deleted');
  } finally {
    for (const n of nodes) await n.close();
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  }
}
