import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSafetyNumber, safetyNumber } from '../identity/index.js';
import { nextEvent, RatchetNode } from '../node/index.js';
import { startEmbeddedRelay } from '../relay/index.js';

type Say = (step: string, detail: Record<string, unknown>, human: string) => void;

const sayer =
  (json: boolean): Say =>
  (step, detail, human) =>
    json ? process.stdout.write(`${JSON.stringify({ step, ...detail })}\n`) : process.stdout.write(`${human}\n`);

/** A new identity in `root/who`, on the demo's relay; `nickname`: what its invites call it. */
async function openIdentity(root: string, who: string, relayUrl: string, verbose: boolean, say: Say, nodes: RatchetNode[], nickname?: string): Promise<RatchetNode> {
  const dataDir = join(root, who);
  const passphrase = `demo passphrase for ${who}`;
  const me = await RatchetNode.init({ dataDir, passphrase, ...(nickname === undefined ? {} : { nickname }) });
  const log = verbose ? (l: string) => process.stderr.write(`[${who}] ${l}\n`) : undefined;
  const node = await RatchetNode.open({ dataDir, passphrase, relays: [relayUrl], log });
  nodes.push(node);
  say('identity', { who, fingerprint: me.fingerprint, npub: me.npub }, `• ${who}: new identity ${me.fingerprint.slice(0, 16)}… (${me.npub.slice(0, 20)}…)`);
  return node;
}

/**
 * Two identities in temporary data directories meet through bundles on an embedded relay, exchange
 * messages and receipts, and compare safety numbers. Everything is deleted afterwards.
 */
export async function runDemo(opts: { json: boolean; verbose: boolean }): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'rrelay-demo-'));
  const say = sayer(opts.json);
  const relay = await startEmbeddedRelay({ port: 0, dbPath: join(root, 'relay.db') });
  const nodes: RatchetNode[] = [];
  try {
    say('relay', { url: relay.url }, `• embedded relay on ${relay.url}`);
    const open = (who: string) => openIdentity(root, who, relay.url, opts.verbose, say, nodes);
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

/**
 * `rrelay demo --ui`: an embedded relay and two identities, alice and bob, who meet by an invite
 * (each then names the other by the nickname it carried) and each get a web app, on `port` and the
 * next one (0: any free ports). Runs until `stop` resolves; then everything is deleted.
 */
export async function runUiDemo(opts: { json: boolean; verbose: boolean; port: number; stop: Promise<void> }): Promise<void> {
  const { NodeService } = await import('./node-service.js');
  const { DEFAULT_ASSETS, startWeb } = await import('./web.js');
  const root = mkdtempSync(join(tmpdir(), 'rrelay-demo-'));
  const say = sayer(opts.json);
  const relay = await startEmbeddedRelay({ port: 0, dbPath: join(root, 'relay.db') });
  const nodes: RatchetNode[] = [];
  const webs: Awaited<ReturnType<typeof startWeb>>[] = [];
  try {
    say('relay', { url: relay.url }, `• embedded relay on ${relay.url}`);
    const alice = await openIdentity(root, 'alice', relay.url, opts.verbose, say, nodes, 'alice');
    const bob = await openIdentity(root, 'bob', relay.url, opts.verbose, say, nodes, 'bob');
    const services = [alice, bob].map((n) => new NodeService(n, true));
    await Promise.all(services.map((s) => s.startDaemon(() => {})));
    const met = [nextEvent(alice, 'kx', () => true), nextEvent(bob, 'kx', () => true)];
    bob.kx.acceptInvite(alice.kx.createInvite(60 * 60 * 1000).invite);
    await Promise.all(met);
    say('invite', {}, '• alice invited bob: the key exchange is done, and each names the other by the nickname the invite carried');
    alice.messaging.send(bob.whoami().fingerprint, 'Hi bob! Answer me from your web app.');
    for (const [i, who] of (['alice', 'bob'] as const).entries()) {
      const token = randomBytes(32).toString('hex');
      const log = opts.verbose ? (l: string) => process.stderr.write(`[${who} web] ${l}\n`) : () => {};
      const web = await startWeb({ service: services[i]!, port: opts.port === 0 ? 0 : opts.port + i, token, assets: process.env.RRELAY_WEB_DIR ?? DEFAULT_ASSETS, log });
      webs.push(web);
      say('ui', { who, url: web.url }, `• ${who}'s web app: ${web.url}`);
    }
    say('serving', {}, '• open both addresses in a browser to chat; Ctrl-C stops the demo and deletes both identities and the relay');
    await opts.stop;
  } finally {
    for (const w of webs) await w.close('the demo stopped');
    for (const n of nodes) await n.close();
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  }
}
