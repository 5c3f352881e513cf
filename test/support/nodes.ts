import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nextEvent, type NodeOptions, RatchetNode } from '../../src/node/index.js';
import { TEST_KDF } from '../helpers.js';
import { startTestRelay, type TestRelay } from './relay.js';

/** Reconnects and retries fast enough for tests; everything else is the production code path. */
export const FAST_TIMING: NodeOptions['timing'] = {
  outboxRetryBaseMs: 100,
  outboxRetryMaxMs: 1000,
  relay: { reconnectBaseMs: 50, reconnectMaxMs: 500, connectTimeoutMs: 2000, publishTimeoutMs: 2000 },
};

export interface TestNodes {
  readonly root: string;
  /** Creates an identity in its own data directory (once) and opens a node on it. */
  open(name: string, relays: readonly string[], extra?: Partial<NodeOptions>): Promise<RatchetNode>;
  dataDir(name: string): string;
}

export function testNodes(t: { after(fn: () => Promise<void> | void): void }): TestNodes {
  const root = mkdtempSync(join(tmpdir(), 'rrelay-nodes-'));
  const opened: RatchetNode[] = [];
  const created = new Set<string>();
  t.after(async () => {
    for (const n of opened) await n.close().catch(() => {});
    rmSync(root, { recursive: true, force: true });
  });
  const dataDir = (name: string) => join(root, name);
  return {
    root,
    dataDir,
    async open(name, relays, extra = {}) {
      const options: NodeOptions = {
        dataDir: dataDir(name),
        passphrase: `passphrase of ${name}`,
        kdf: TEST_KDF,
        relays,
        timing: FAST_TIMING,
        ...extra,
      };
      if (!created.has(name)) {
        await RatchetNode.init(options);
        created.add(name);
      }
      const node = await RatchetNode.open(options);
      opened.push(node);
      return node;
    },
  };
}

export { nextEvent } from '../../src/node/index.js';

/** Starts both nodes and waits until each has discovered the other's bundle. */
export async function meet(a: RatchetNode, b: RatchetNode): Promise<void> {
  const aSeesB = nextEvent(a, 'bundle', (x) => x.fingerprint === b.whoami().fingerprint);
  const bSeesA = nextEvent(b, 'bundle', (x) => x.fingerprint === a.whoami().fingerprint);
  await Promise.all([a.start(), b.start()]);
  await Promise.all([aSeesB, bSeesA]);
}

/** Polls `check` until it returns a value other than undefined (bounded, so a bug fails instead of hanging). */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, what: string, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

type Teardown = { after(fn: () => Promise<void> | void): void };

/** An independent relay on 127.0.0.1 and a place for nodes on it; all torn down after the test. */
export async function relayAndNodes(t: Teardown): Promise<{ relay: TestRelay; nodes: TestNodes }> {
  const relay = await startTestRelay();
  t.after(() => relay.stop());
  return { relay, nodes: testNodes(t) };
}

/** A relay and two nodes on it that have met. */
export async function pairOnOneRelay(t: Teardown) {
  const { relay, nodes } = await relayAndNodes(t);
  const alice = await nodes.open('alice', [relay.url]);
  const bob = await nodes.open('bob', [relay.url]);
  await meet(alice, bob);
  return { relay, nodes, alice, bob, bobFp: bob.whoami().fingerprint };
}

/** Alice has met bob and carol by invite (and, with `bobMeetsCarol`, bob has met carol too). */
export async function triangle(t: Teardown, bobMeetsCarol = false) {
  const { relay, nodes } = await relayAndNodes(t);
  const [alice, bob, carol] = (await Promise.all(['alice', 'bob', 'carol'].map((n) => nodes.open(n, [relay.url])))) as [RatchetNode, RatchetNode, RatchetNode];
  await Promise.all([alice.start(), bob.start(), carol.start()]);
  const pairs: [RatchetNode, RatchetNode][] = [[alice, bob], [alice, carol], ...(bobMeetsCarol ? [[carol, bob] as [RatchetNode, RatchetNode]] : [])];
  for (const [inviter, acceptor] of pairs) {
    const done = Promise.all([nextEvent(inviter, 'kx'), nextEvent(acceptor, 'kx')]);
    acceptor.kx.acceptInvite(inviter.kx.createInvite(60 * 60_000).invite); // valid for an hour
    await done;
  }
  const fp = { alice: alice.whoami().fingerprint, bob: bob.whoami().fingerprint, carol: carol.whoami().fingerprint };
  return { alice, bob, carol, fp };
}
