import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type CliResult, rrelay, type Running, start } from './support/cli.js';
import { eventually } from './support/nodes.js';
import { SVG_SCALE } from '../src/cli/qr.js';
import { pngModules, qrModules } from './support/qr.js';
import { type EvilRelay, startEvilRelay } from './support/evil-relay.js';
import { startTestRelay, type TestRelay } from './support/relay.js';

/**
 * Every CLI command, run once with a daemon per identity (`daemon`) and once without (`direct`), on
 * fresh data directories and a fresh relay each: the two transcripts (command, exit code, JSON
 * output with keys, ids and times replaced by placeholders) must be equal. Where a step needs a
 * peer to be online, the scenario waits the same way in both modes: it polls until the result is
 * there (without a daemon, running `peers`, which connects, for the identities that must act).
 */

type Who = 'alice' | 'bob' | 'carol' | 'dave';
type Mode = 'daemon' | 'direct';
type Json = Record<string, unknown> & { error?: { code: string; message: string } };

interface Entry {
  readonly cmd: string;
  readonly code: number | null;
  readonly out: unknown[];
}

const POLL_MS = 60_000;
/** Fields of `status` that tell how the node runs (connected, daemon), not what it holds. */
const STATUS_RUNTIME = new Set(['daemon', 'connected', 'failures', 'lastSeen']);

class Scenario {
  readonly transcript: Entry[] = [];
  readonly fp = {} as Record<Who, string>;
  private readonly daemons: Running[] = [];

  constructor(
    readonly mode: Mode,
    readonly root: string,
    readonly relay: TestRelay,
    /** A relay that refuses every event for good. */
    readonly refusing: EvilRelay,
  ) {}

  dir(who: Who): string {
    return join(this.root, who);
  }

  private async exec(who: Who, args: string[], input?: string): Promise<CliResult> {
    const t0 = Date.now();
    const r = await rrelay([...args, '--data-dir', this.dir(who), '--json'], input === undefined ? {} : { input });
    if (process.env.TIMING) process.stderr.write(`TIMING ${this.mode} ${Date.now() - t0} ${who} ${args.join(' ')}\n`);
    return r;
  }

  private record(who: Who, args: string[], r: CliResult, shape?: (out: unknown[]) => unknown[]): void {
    this.transcript.push({ cmd: `${who}: ${args.join(' ')}`, code: r.code, out: this.canon(shape ? shape(r.json) : r.json) as unknown[] });
  }

  /**
   * Lists of identities (peers, contacts, group members: fingerprints, or objects with one) in the
   * order alice, bob, carol, dave: the store keeps them by fingerprint, which differs between runs.
   */
  private canon(v: unknown): unknown {
    const rank = (x: unknown) => {
      const f = typeof x === 'string' ? x : (x as { fingerprint?: unknown } | null)?.fingerprint;
      return (Object.keys(this.fp) as Who[]).findIndex((w) => this.fp[w] === f);
    };
    if (Array.isArray(v)) {
      const items = v.map((x) => this.canon(x));
      return items.length > 0 && items.every((x) => rank(x) >= 0) ? items.sort((a, b) => rank(a) - rank(b)) : items;
    }
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.canon(x)]));
    return v;
  }

  /** Runs a command (with `input` on its stdin), records it, and checks its exit code; returns its first JSON line. */
  async run<T = Json>(who: Who, args: string[], code = 0, shape?: (out: unknown[]) => unknown[], input?: string): Promise<T> {
    const r = await this.exec(who, args, input);
    this.record(who, args, r, shape);
    assert.equal(r.code, code, `[${this.mode}] ${who}: rrelay ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.json[0] as T;
  }

  /** All the JSON lines of a command: a list prints one object per line. */
  async lines<T = Json>(who: Who, args: string[]): Promise<T[]> {
    await this.run(who, args);
    return this.transcript[this.transcript.length - 1]!.out as T[];
  }

  /**
   * Polls `args` until `done` holds for its JSON lines. Without a daemon, the `nudge` identities
   * first run `peers`, a command that connects, so that they act on what waits for them (a daemon
   * does that by itself). Only the final poll is recorded.
   */
  async until<T = Json>(who: Who, args: string[], done: (lines: T[]) => boolean, nudge: Who[] = [], shape?: (out: unknown[]) => unknown[]): Promise<T[]> {
    const r = await eventually(
      async () => {
        if (this.mode === 'direct') for (const n of nudge) await this.exec(n, ['peers']);
        const r = await this.exec(who, args);
        return r.code === 0 && done(r.json as T[]) ? r : undefined;
      },
      `[${this.mode}] ${who}: ${args.join(' ')}`,
      POLL_MS,
    );
    this.record(who, args, r, shape);
    return r.json as T[];
  }

  async startDaemon(who: Who): Promise<void> {
    if (this.mode === 'daemon') this.daemons.push(await start(['daemon', '--data-dir', this.dir(who), '--json'], /"daemon":"running"/));
  }

  async stop(): Promise<void> {
    for (const d of this.daemons.splice(0)) assert.equal(await d.stop('SIGINT'), 0, d.stderr());
  }
}

const noKx = (l: unknown[]) => l.length === 0;

async function scenario(s: Scenario): Promise<void> {
  const { fp } = s;
  const everyone: Who[] = ['alice', 'bob', 'carol', 'dave'];

  // Identities, relays, bundles
  // Carol names herself at init, alice later (a bad name is refused); bob and dave have no nickname.
  await s.run('carol', ['init', '--relay', s.relay.url, '--name', 'ab12'], 2);
  for (const who of everyone) {
    const name = who === 'carol' ? ['--name', 'carol'] : [];
    fp[who] = (await s.run<{ fingerprint: string }>(who, ['init', '--relay', s.relay.url, ...name])).fingerprint;
  }
  for (const who of everyone) await s.startDaemon(who);
  const me = await s.run('alice', ['whoami']);
  assert.deepEqual([me.fingerprint, me.nickname], [fp.alice, null]);
  assert.equal((await s.run('carol', ['whoami'])).nickname, 'carol');
  await s.run('alice', ['nickname', 'al\u202eice'], 2); // a text-direction override
  assert.deepEqual(await s.run('alice', ['nickname', 'alice']), { nickname: 'alice' });
  assert.deepEqual(await s.run('alice', ['nickname']), { nickname: 'alice' });
  assert.equal((await s.run('alice', ['whoami'])).nickname, 'alice');
  await s.run('alice', ['relays', 'ls']);
  await s.run('alice', ['relays', 'add', 'http://not-a-relay'], 2);
  await s.run('alice', ['relays', 'add', 'ws://127.0.0.1:1/']);
  await s.run('alice', ['relays', 'add', 'ws://127.0.0.1:1']);
  const relays = await s.lines<{ url: string }>('alice', ['relays', 'ls']); // NDJSON: one object per relay, not one array
  assert.deepEqual(relays.map((r) => typeof r.url), ['string', 'string']);
  await s.run('alice', ['relays', 'rm', 'ws://127.0.0.1:1']);
  await s.run('alice', ['relays', 'rm', 'ws://127.0.0.1:1'], 2);
  for (const who of everyone) assert.deepEqual(await s.run(who, ['publish']), { published: true, pending: 0 });
  const peers = await s.until<{ fingerprint: string }>('alice', ['peers'], (l) => l.length === 3);
  assert.deepEqual(peers.map((p) => p.fingerprint).sort(), [fp.bob, fp.carol, fp.dave].sort());
  const status = await s.run<{ daemon: boolean; peers: number; published: boolean }>('alice', ['status'], 0, (out) =>
    JSON.parse(JSON.stringify(out, (k, v: unknown) => (STATUS_RUNTIME.has(k) ? undefined : v))) as unknown[],
  );
  assert.equal(status.daemon, s.mode === 'daemon');
  assert.equal(status.published, true);

  // A session from a bundle: alice and bob
  await s.run('alice', ['contacts', 'ls']);
  await s.run('alice', ['send', 'nobody', 'hi'], 4);
  // An unknown contact is exit 4 from every command that names one; a chat with nobody does not open.
  await s.run('alice', ['messages', 'nobody'], 4);
  await s.run('alice', ['contacts', 'alias', 'nobody', 'x'], 4);
  assert.match((await s.run('alice', ['chat', 'nobody'], 4)).error!.message, /no contact or discovered bundle matches "nobody"/);
  assert.equal((await s.run('alice', ['send', fp.bob.slice(0, 16), 'hello', 'bob'])).state, 'sent');
  const atBob = await s.until<{ text: string; from: string }>('bob', ['receive'], (l) => l.length > 0);
  assert.deepEqual(atBob.map((m) => [m.text, m.from]), [['hello bob', fp.alice]]);
  await s.run('bob', ['contacts', 'alias', fp.alice.slice(0, 12), 'alice']);
  await s.run('bob', ['contacts', 'alias', 'alice', 'deadbeefdeadbeef'], 2);
  assert.equal((await s.run('bob', ['contacts', 'alias', 'alice', '-'])).alias, null);
  await s.run('bob', ['contacts', 'alias', fp.alice.slice(0, 12), 'alice']);
  await s.run('bob', ['contacts', 'verify', 'alice']);
  await s.run('bob', ['contacts', 'trust', 'alice']);
  await s.run('bob', ['contacts', 'verify', 'nosuchcontact'], 4);
  const bobContacts = await s.lines<{ alias: string; verified: boolean; trusted: boolean }>('bob', ['contacts', 'ls']);
  assert.deepEqual(bobContacts.map((c) => [c.alias, c.verified, c.trusted]), [['alice', true, true]]);
  await s.run('alice', ['contacts', 'alias', fp.bob.slice(0, 12), 'bob']);
  // The text from stdin: `echo`'s newline is dropped; an empty stdin, or a text over the limit, is bad input.
  await s.run('bob', ['send', 'alice', '-'], 0, undefined, 'hi alice\n');
  await s.run('bob', ['send', 'alice', '--stdin'], 2, undefined, '');
  assert.match((await s.run('bob', ['send', 'alice', '-'], 2, undefined, 'x'.repeat(64 * 1024 + 1))).error!.message, /at most 65536 bytes/);
  const atAlice = await s.until<{ text: string }>('alice', ['receive'], (l) => l.length > 0);
  assert.deepEqual(atAlice.map((m) => m.text), ['hi alice']);
  // A send with the caller's id, retried: stored and sent once; the same id for another text is refused.
  const id = 'c0ffee'.padEnd(32, '0');
  const idOnly = (out: unknown[]) => out.map((o) => ({ id: (o as { id?: string }).id, to: (o as { to?: string }).to }));
  assert.equal((await s.run('bob', ['send', '--id', id, 'alice', 'once'], 0, idOnly)).id, id);
  assert.equal((await s.run('bob', ['send', '--id', id, '--stdin', 'alice'], 0, idOnly, 'once\n')).id, id);
  await s.run('bob', ['send', '--id', id, 'alice', 'twice'], 2);
  await s.run('bob', ['send', '--id', 'nothex', 'alice', 'once'], 2);
  assert.deepEqual((await s.until<{ text: string }>('alice', ['receive'], (l) => l.length > 0)).map((m) => m.text), ['once']);
  // Their states (sent, or delivered already) depend on timing: only ids and texts are compared.
  await s.run('bob', ['messages', 'alice'], 0, (out) => out.map((m) => ({ id: (m as { id: string }).id, text: (m as { text: string }).text })));
  assert.equal((s.transcript.at(-1)!.out as { id: string }[]).filter((m) => m.id === id).length, 1);
  // The receipt for alice's message.
  await s.until<{ direction: string; state: string }>('alice', ['messages', 'bob'], (l) => l.some((m) => m.direction === 'out' && m.state === 'delivered'), ['alice']);
  await s.until<{ state: string }>('bob', ['messages', '--limit', '1'], (l) => l[0]?.state === 'delivered', ['bob']);
  await s.run('bob', ['reset', 'alice'], 4); // met through a bundle: no reset mailbox

  // Invites: carol meets alice, bob and dave
  const invite = async (who: Who) => {
    const file = join(s.root, `invite-for-${who}.txt`);
    const svg = join(s.root, `invite-for-${who}.svg`);
    await s.run('carol', ['invite', 'create', '--out', file, '--qr', svg]);
    const side = qrModules(readFileSync(file, 'utf8').trim()).length * SVG_SCALE;
    assert.match(readFileSync(svg, 'utf8'), new RegExp(`^<svg [^>]*viewBox="0 0 ${side} ${side}"`));
    await s.run(who, ['invite', 'accept', file]);
    await s.until('carol', ['kx', 'ls'], noKx, ['carol']);
    await s.until(who, ['kx', 'ls'], noKx, [who]);
  };
  await s.run('carol', ['kx', 'ls']);
  await s.run('alice', ['invite', 'accept', 'rrinv3garbage'], 2);
  assert.match((await s.run('alice', ['invite', 'accept', join(s.root, 'missing.txt')], 2)).error!.message, /no file .*missing\.txt/);
  for (const who of ['alice', 'bob', 'dave'] as const) await invite(who);
  // Each side names the other by the nickname it chose: carol at alice's, bob's and dave's, alice at carol's.
  for (const who of ['alice', 'bob', 'dave'] as const) {
    const contacts = await s.lines<{ fingerprint: string; alias: string | null }>(who, ['contacts', 'ls']);
    assert.equal(contacts.find((c) => c.fingerprint === fp.carol)?.alias, 'carol', `${who}'s contacts`);
  }
  const atCarol = await s.lines<{ fingerprint: string; alias: string | null }>('carol', ['contacts', 'ls']);
  assert.deepEqual(atCarol.map((c) => [c.fingerprint, c.alias]).sort(), [[fp.alice, 'alice'], [fp.bob, null], [fp.dave, null]].sort());
  // An invite already used: its inviter refuses a second acceptor, whose key exchange then ends.
  await s.run('bob', ['invite', 'accept', join(s.root, 'invite-for-alice.txt')], 0, () => []);
  await s.until('bob', ['kx', 'ls'], noKx, ['carol', 'bob']);
  await s.run('carol', ['invite', 'create', '--ttl', '1', '--qr', join(s.root, 'invite.jpg')], 2); // refused before an invite is made
  const png = join(s.root, 'invite.png');
  const cancelled = await s.run<{ rv: string; invite: string }>('carol', ['invite', 'create', '--ttl', '1', '--qr', png]);
  assert.deepEqual(pngModules(readFileSync(png)), qrModules(cancelled.invite));
  assert.equal((await s.lines('carol', ['kx', 'ls'])).length, 1);
  await s.run('carol', ['kx', 'cancel', 'ffff'], 2);
  await s.run('carol', ['kx', 'cancel', cancelled.rv.slice(0, 12)]);
  assert.deepEqual(await s.lines('carol', ['kx', 'ls']), []);
  await s.run('carol', ['contacts', 'ls'], 0);

  // A ratchet reset, directly and through bob
  await s.run('alice', ['reset', 'nosuchcontact'], 4);
  const reset = await s.run('alice', ['reset', fp.carol.slice(0, 16)]);
  assert.equal(reset.peer, fp.carol);
  await s.until('alice', ['kx', 'ls'], noKx, ['carol', 'alice']);
  await s.until('carol', ['kx', 'ls'], noKx, ['carol']);
  await s.run('alice', ['send', fp.carol.slice(0, 16), 'after', 'the', 'reset']);
  assert.deepEqual((await s.until<{ text: string }>('carol', ['receive'], (l) => l.length > 0)).map((m) => m.text), ['after the reset']);
  await s.run('alice', ['reset', fp.carol.slice(0, 16), '--via', 'nosuchcontact'], 4);
  await s.run('alice', ['reset', fp.carol.slice(0, 16), '--via', 'bob']);
  await s.until('alice', ['kx', 'ls'], noKx, ['bob', 'carol', 'alice']);
  await s.until('carol', ['kx', 'ls'], noKx, ['carol']);
  await s.run('alice', ['send', fp.carol.slice(0, 16), 'after', 'the', 'reset', 'via', 'bob']);
  assert.deepEqual((await s.until<{ text: string }>('carol', ['receive'], (l) => l.length > 0)).map((m) => m.text), ['after the reset via bob']);

  // Introductions: carol introduces bob and dave; alice asks carol for dave
  await s.run('carol', ['introduce', 'bob', fp.dave.slice(0, 16)], 4); // no contact named bob at carol
  await s.run('carol', ['introduce', fp.bob.slice(0, 16), fp.bob.slice(0, 16)], 2);
  await s.run('carol', ['introduce', fp.bob.slice(0, 16), fp.dave.slice(0, 16)]);
  // Neither asked for it: each consents (bob first, so that dave's invite has not reached him yet in either mode).
  const oneRequest = (l: unknown[]) => l.length === 1;
  const forBob = (await s.until<{ id: string }>('bob', ['kx', 'requests'], oneRequest, ['bob']))[0]!;
  const forDave = (await s.until<{ id: string }>('dave', ['kx', 'requests'], oneRequest, ['dave']))[0]!;
  await s.run('dave', ['kx', 'accept', 'ffffff'], 2);
  await s.run('bob', ['kx', 'accept', forBob.id.slice(0, 8)]);
  await s.run('dave', ['kx', 'accept', forDave.id]);
  const hasContact = (f: string) => (l: { fingerprint: string }[]) => l.some((c) => c.fingerprint === f);
  await s.until('bob', ['contacts', 'ls'], hasContact(fp.dave), ['carol', 'bob', 'dave', 'bob']);
  await s.until('dave', ['kx', 'ls'], noKx, ['dave']);
  await s.until('dave', ['contacts', 'ls'], hasContact(fp.bob));
  await s.run('alice', ['mediate', fp.carol.slice(0, 16), fp.dave.slice(0, 16)], 2); // a full fingerprint is needed
  await s.run('alice', ['mediate', fp.carol.slice(0, 16), fp.dave]);
  // Alice asked; dave, the target, consents.
  const fromAlice = (await s.until<{ id: string }>('dave', ['kx', 'requests'], oneRequest, ['carol', 'dave']))[0]!;
  await s.run('dave', ['kx', 'accept', fromAlice.id]);
  await s.run('dave', ['kx', 'requests']);
  await s.until('alice', ['contacts', 'ls'], hasContact(fp.dave), ['carol', 'alice', 'dave', 'alice']);
  await s.until('dave', ['kx', 'ls'], noKx, ['dave']);
  await s.run('dave', ['send', fp.alice.slice(0, 16), 'hi', 'alice,', 'dave', 'here']);
  assert.deepEqual((await s.until<{ text: string; from: string }>('alice', ['receive'], (l) => l.length > 0)).map((m) => [m.text, m.from]), [['hi alice, dave here', fp.dave]]);

  // A group: carol the admin, alice and dave members
  const group = await s.run<{ id: string }>('carol', ['group', 'create', 'friends']);
  const taken = await s.run<Json>('carol', ['group', 'create', 'friends'], 2); // two groups of one name could not be told apart
  assert.match(taken.error!.message, /already have a group named "friends" \(id [0-9a-f]{12}\)/);
  await s.run('dave', ['group', 'create', 'friends']); // carol's invitation arrives with the same name
  await s.run('carol', ['group', 'invite', 'friends', 'nosuchcontact'], 4);
  for (const who of ['alice', 'dave'] as const) {
    await s.run('carol', ['group', 'invite', 'friends', fp[who].slice(0, 16)]);
    await s.until<{ id: string }>(who, ['group', 'ls'], (l) => l.some((g) => g.id === group.id), [who]);
    await s.run(who, ['group', 'join', group.id.slice(0, 8)]);
    await s.until<{ fingerprint: string }>(who, ['group', 'members', group.id], (l) => l.some((m) => m.fingerprint === fp[who]), ['carol', who]);
  }
  const ambiguous = await s.run<Json>('dave', ['group', 'members', 'friends'], 2);
  assert.equal(ambiguous.error!.message.match(/[0-9a-f]{12} "friends"/g)?.length, 2, ambiguous.error!.message);
  assert.match(ambiguous.error!.message, /Name one by its id, or an id prefix/);
  await s.run('alice', ['group', 'send', 'nosuchgroup', 'hi'], 4);
  const members = await s.until<{ fingerprint: string; reachable: boolean }>(
    'alice',
    ['group', 'members', group.id.slice(0, 8)],
    (l) => l.length === 3 && l.every((m) => m.reachable),
    ['alice'],
  );
  assert.deepEqual(members.map((m) => m.fingerprint).sort(), [fp.alice, fp.carol, fp.dave].sort());
  await s.run('alice', ['group', 'ls']);
  const sent = await s.run<{ sent: string[]; unreachable: string[] }>('alice', ['group', 'send', 'friends', 'hello', 'friends']);
  assert.deepEqual([sent.sent.sort(), sent.unreachable], [[fp.carol, fp.dave].sort(), []]);
  for (const who of ['carol', 'dave'] as const) {
    const got = await s.until<{ text: string; group: { name: string } | null }>(who, ['receive'], (l) => l.length > 0);
    assert.deepEqual(got.map((m) => [m.text, m.group?.name]), [['hello friends', 'friends']]);
  }

  assert.deepEqual(await s.run('bob', ['unpublish']), { unpublished: true, pending: 0 });
  // Receipts for the group message, as for any other.
  const toCarol = await s.until<{ text: string; state: string }>('alice', ['messages', fp.carol.slice(0, 16)], (l) => l.at(-1)?.state === 'delivered', ['alice']);
  assert.equal(toCarol.at(-1)!.text, 'hello friends');

  // A message that every relay refuses for good fails, and says why.
  await s.run('bob', ['relays', 'add', s.refusing.url]);
  await s.run('bob', ['relays', 'rm', s.relay.url]);
  await s.run('bob', ['send', 'alice', 'nobody', 'carries', 'this'], 1);
  const [failed] = await s.lines<{ state: string; failure: string }>('bob', ['messages', 'alice', '--limit', '1']);
  assert.equal(failed!.state, 'failed');
  assert.match(failed!.failure, /every relay refused it \(ws:\/\/127\.0\.0\.1:\d+: blocked: members only\)/);
}

/** Replaces what differs between two runs (keys, ids, times, paths, ports) by placeholders, numbered by first appearance. */
function normalize(transcript: readonly Entry[], literals: [string, string][]): unknown {
  const seen = new Map<string, string>();
  const token = /npub1[0-9a-z]+|rrinv\d[A-Za-z0-9_-]+|(?:\d{5} ){11}\d{5}|[0-9a-f]{8,}/g;
  const placeholder = (v: string): string => {
    const full = [...seen.keys()].find((k) => k.length > v.length && k.startsWith(v));
    const key = full ?? v;
    if (!seen.has(key)) seen.set(key, `<${seen.size}>`);
    return full ? `${seen.get(key)}[:${v.length}]` : seen.get(key)!;
  };
  const text = (s: string) => literals.reduce((acc, [from, to]) => acc.split(from).join(to), s).replace(token, placeholder);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return text(v);
    if (typeof v === 'number') return v > 1e12 ? '<time>' : v;
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return transcript.map((e) => ({ cmd: text(e.cmd), code: e.code, out: walk(e.out) }));
}

describe('every CLI command gives the same result with and without a daemon', () => {
  it('runs one scenario both ways and compares the transcripts', async (t) => {
    const run = async (mode: Mode) => {
      const relay = await startTestRelay();
      const refusing = await startEvilRelay({ refuse: 'blocked: members only' });
      const root = mkdtempSync(join(tmpdir(), `rrelay-${mode}-`));
      const s = new Scenario(mode, root, relay, refusing);
      t.after(async () => {
        await s.stop().catch(() => {});
        await relay.stop();
        await refusing.close();
        rmSync(root, { recursive: true, force: true });
      });
      await scenario(s);
      await s.stop();
      return normalize(s.transcript, [
        [root, '<root>'],
        [relay.url, '<relay>'],
        [refusing.url, '<refusing relay>'],
      ]);
    };
    const [daemon, direct] = await Promise.all([run('daemon'), run('direct')]);
    assert.deepEqual(direct, daemon);
  });
});
