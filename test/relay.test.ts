import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import type { Filter } from 'nostr-tools/filter';
import { type Event, finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import WebSocket from 'ws';
import { type EmbeddedRelay, startEmbeddedRelay } from '../src/relay/index.js';
import { startTestRelay } from './support/relay.js';

// Node 20 has no global WebSocket.
useWebSocketImplementation(WebSocket);

const T0 = 1_700_000_000;
const PREKEY_D = 'radix_prekey_bundle_v1';

/** Cleanups run last-registered first, so a relay closes before its directory goes. */
function cleanups(t: TestContext): (fn: () => unknown) => void {
  const fns: (() => unknown)[] = [];
  t.after(async () => {
    for (const fn of fns.reverse()) await fn();
  });
  return (fn) => fns.push(fn);
}

function tempDbPath(defer: (fn: () => unknown) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'rrelay-relay-test-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'events.db');
}

async function embedded(defer: (fn: () => unknown) => void, dbPath: string, port = 0): Promise<EmbeddedRelay> {
  const relay = await startEmbeddedRelay({ dbPath, port });
  defer(() => relay.close());
  return relay;
}

async function connect(defer: (fn: () => unknown) => void, url: string): Promise<Relay> {
  const client = await Relay.connect(url);
  defer(() => client.close());
  return client;
}

function sign(secretKey: Uint8Array, kind: number, createdAt: number, tags: string[][] = [], content = ''): Event {
  return finalizeEvent({ kind, created_at: createdAt, tags, content }, secretKey);
}

/** Stored events matching the filter, in the order the relay sent them. */
function query(client: Relay, filter: Filter): Promise<Event[]> {
  return new Promise((resolve, reject) => {
    const events: Event[] = [];
    const sub = client.subscribe([filter], {
      onevent: (event) => events.push(event),
      oneose: () => {
        resolve(events);
        sub.close();
      },
      onclose: (reason) => reject(new Error(`subscription closed before EOSE: ${reason}`)),
    });
  });
}

const ids = (events: readonly Event[]): string[] => events.map((e) => e.id);

/** The NIP-01 fields only: events from the wire and from finalizeEvent differ in a symbol property. */
const fields = ({ id, pubkey, created_at, kind, tags, content, sig }: Event) => ({ id, pubkey, created_at, kind, tags, content, sig });

test('embedded relay: publishes kind 1 and answers ids, authors, kinds, since/until and limit', async (t) => {
  const defer = cleanups(t);
  const relay = await embedded(defer, tempDbPath(defer));
  assert.equal(relay.url, `ws://127.0.0.1:${relay.port}`);
  const client = await connect(defer, relay.url);
  const alice = generateSecretKey();
  const bob = generateSecretKey();
  const a1 = sign(alice, 1, T0, [], 'one');
  const a2 = sign(alice, 1, T0 + 10, [['t', 'x']], 'two');
  const a3 = sign(alice, 1, T0 + 20, [], 'three');
  const b1 = sign(bob, 1, T0 + 5, [], 'bob');
  for (const event of [a1, a2, a3, b1]) await assert.doesNotReject(client.publish(event), 'OK true');

  assert.deepEqual((await query(client, { ids: [a2.id] })).map(fields), [fields(a2)]);
  assert.deepEqual(ids(await query(client, { authors: [getPublicKey(alice)] })), ids([a3, a2, a1]), 'newest first');
  assert.deepEqual(ids(await query(client, { kinds: [1] })), ids([a3, a2, b1, a1]));
  assert.deepEqual(ids(await query(client, { kinds: [1], since: T0 + 5, until: T0 + 10 })), ids([a2, b1]), 'bounds inclusive');
  assert.deepEqual(ids(await query(client, { authors: [getPublicKey(alice)], limit: 2 })), ids([a3, a2]), 'limit keeps the newest');
  assert.deepEqual(await query(client, { authors: [getPublicKey(alice)], kinds: [2] }), [], 'conditions are ANDed');
  assert.deepEqual(ids(await query(client, { ids: [a1.id, b1.id] })), ids([b1, a1]), 'values within a field are ORed');
});

test('embedded relay: a newer kind 30078 replaces the older, per author and d tag; lowest id wins a tie', async (t) => {
  const defer = cleanups(t);
  const relay = await embedded(defer, tempDbPath(defer));
  const client = await connect(defer, relay.url);
  const alice = generateSecretKey();
  const bob = generateSecretKey();
  const d = [['d', PREKEY_D]];
  const aliceBundles: Filter = { kinds: [30078], authors: [getPublicKey(alice)], '#d': [PREKEY_D] };

  const v1 = sign(alice, 30078, T0, d, 'v1');
  await client.publish(v1);
  assert.deepEqual(ids(await query(client, aliceBundles)), [v1.id]);
  const v2 = sign(alice, 30078, T0 + 10, d, 'v2');
  await client.publish(v2);
  // The same filter again: a result cache would still answer v1.
  assert.deepEqual(ids(await query(client, aliceBundles)), [v2.id]);
  await client.publish(sign(alice, 30078, T0 + 5, d, 'late and outdated'));
  assert.deepEqual(ids(await query(client, aliceBundles)), [v2.id], 'an older version does not come back');

  const [low, high] = [sign(alice, 30078, T0 + 20, d, 'x'), sign(alice, 30078, T0 + 20, d, 'y')].sort((a, b) => (a.id < b.id ? -1 : 1));
  assert.ok(low !== undefined && high !== undefined);
  await client.publish(high);
  assert.deepEqual(ids(await query(client, aliceBundles)), [high.id]);
  await client.publish(low);
  assert.deepEqual(ids(await query(client, aliceBundles)), [low.id], 'equal created_at: the lower id replaces');
  await client.publish(high);
  assert.deepEqual(ids(await query(client, aliceBundles)), [low.id], 'equal created_at: the higher id does not');

  const otherD = sign(alice, 30078, T0 + 30, [['d', 'something_else']], 'other');
  const bobs = sign(bob, 30078, T0 + 1, d, 'bob v1');
  await client.publish(otherD);
  await client.publish(bobs);
  assert.deepEqual(ids(await query(client, { kinds: [30078], '#d': [PREKEY_D] })), [low.id, bobs.id], 'other authors are kept');
  assert.deepEqual(ids(await query(client, { kinds: [30078], authors: [getPublicKey(alice)] })), [otherD.id, low.id]);

  const meta1 = sign(alice, 0, T0, [], '{"name":"a"}');
  const meta2 = sign(alice, 0, T0 + 1, [], '{"name":"b"}');
  await client.publish(meta1);
  await client.publish(meta2);
  assert.deepEqual(ids(await query(client, { kinds: [0], authors: [getPublicKey(alice)] })), [meta2.id], 'kind 0 is replaceable');
});

test('embedded relay: #p selects kind 40001 by recipient', async (t) => {
  const defer = cleanups(t);
  const relay = await embedded(defer, tempDbPath(defer));
  const client = await connect(defer, relay.url);
  const alice = generateSecretKey();
  const bob = getPublicKey(generateSecretKey());
  const carol = getPublicKey(generateSecretKey());
  const toBob = sign(alice, 40001, T0, [['p', bob]], 'ciphertext');
  await client.publish(toBob);

  assert.deepEqual(ids(await query(client, { kinds: [40001], '#p': [bob] })), [toBob.id]);
  assert.deepEqual(await query(client, { kinds: [40001], '#p': [carol] }), []);
  assert.deepEqual(ids(await query(client, { '#p': [carol, bob] })), [toBob.id]);
  assert.deepEqual(await query(client, { '#p': [bob], authors: [carol] }), []);
});

test('embedded relay: live subscriptions honour #p (the core alone would not)', async (t) => {
  const defer = cleanups(t);
  const relay = await embedded(defer, tempDbPath(defer));
  const publisher = await connect(defer, relay.url);
  const subscriber = await connect(defer, relay.url);
  const alice = generateSecretKey();
  const bob = getPublicKey(generateSecretKey());
  const carol = getPublicKey(generateSecretKey());

  const received: Event[] = [];
  const mismatched: unknown[] = [];
  let arrived!: () => void;
  const bobsArrived = new Promise<void>((resolve) => (arrived = resolve));
  let eose!: () => void;
  const eosed = new Promise<void>((resolve) => (eose = resolve));
  const sub = subscriber.subscribe([{ kinds: [40001], '#p': [bob] }], {
    onevent: (event) => {
      received.push(event);
      arrived();
    },
    // nostr-tools checks filters itself and routes what does not match here.
    oninvalidevent: (event) => mismatched.push(event),
    oneose: () => eose(),
  });
  defer(() => sub.close());
  await eosed;

  const toCarol = sign(alice, 40001, T0, [['p', carol]]);
  const toBob = sign(alice, 40001, T0 + 1, [['p', bob]]);
  await publisher.publish(toCarol);
  await publisher.publish(toBob);
  await bobsArrived;
  // One connection delivers in order: had the relay sent toCarol, it would be here by now.
  assert.deepEqual(ids(received), [toBob.id]);
  assert.deepEqual(mismatched, []);
});

test('embedded relay: ephemeral kinds reach live subscribers but are not stored', async (t) => {
  const defer = cleanups(t);
  const relay = await embedded(defer, tempDbPath(defer));
  const publisher = await connect(defer, relay.url);
  const subscriber = await connect(defer, relay.url);
  const alice = generateSecretKey();
  const ephemeral = sign(alice, 20001, T0, [], 'typing');

  let eose!: () => void;
  const eosed = new Promise<void>((resolve) => (eose = resolve));
  const live = new Promise<Event>((resolve) => {
    const sub = subscriber.subscribe([{ kinds: [20001] }], { onevent: resolve, oneose: () => eose() });
    defer(() => sub.close());
  });
  await eosed;
  await publisher.publish(ephemeral);
  assert.equal((await live).id, ephemeral.id);
  assert.deepEqual(await query(publisher, { kinds: [20001] }), []);
});

test('embedded relay: rejects forged events with OK false, then accepts the genuine one', async (t) => {
  const defer = cleanups(t);
  const relay = await embedded(defer, tempDbPath(defer));
  const client = await connect(defer, relay.url);
  const alice = generateSecretKey();
  const genuine = sign(alice, 1, T0, [], 'hello');
  const someoneElses = sign(generateSecretKey(), 1, T0, [], 'hello');

  await assert.rejects(client.publish({ ...genuine, sig: someoneElses.sig }), /^Error: invalid: signature is wrong/);
  await assert.rejects(client.publish({ ...genuine, content: 'tampered' }), /^Error: invalid: id is wrong/);
  await assert.rejects(client.publish({ ...genuine, pubkey: someoneElses.pubkey }), /^Error: invalid/);
  assert.deepEqual(await query(client, { authors: [genuine.pubkey, someoneElses.pubkey] }), []);
  // Same id as the first forgery: a result cached by id would reject it.
  await client.publish(genuine);
  assert.deepEqual((await query(client, { ids: [genuine.id] })).map(fields), [fields(genuine)]);
});

test('embedded relay: kind 5 deletes its author’s events only, and they stay deleted', async (t) => {
  const defer = cleanups(t);
  const relay = await embedded(defer, tempDbPath(defer));
  const client = await connect(defer, relay.url);
  const alice = generateSecretKey();
  const mallory = generateSecretKey();
  const note = sign(alice, 1, T0, [], 'regret');
  const bundle = sign(alice, 30078, T0 + 1, [['d', PREKEY_D]], 'bundle');
  await client.publish(note);
  await client.publish(bundle);

  await client.publish(sign(mallory, 5, T0 + 2, [['e', note.id], ['a', `30078:${getPublicKey(alice)}:${PREKEY_D}`]]));
  assert.deepEqual(ids(await query(client, { authors: [getPublicKey(alice)] })), [bundle.id, note.id], "another author's request is ignored");

  const deletion = sign(alice, 5, T0 + 2, [['e', note.id], ['a', `30078:${getPublicKey(alice)}:${PREKEY_D}`]]);
  await client.publish(deletion);
  assert.deepEqual(ids(await query(client, { authors: [getPublicKey(alice)] })), [deletion.id], 'the request itself is kept');
  await client.publish(note);
  await client.publish(bundle);
  assert.deepEqual(ids(await query(client, { authors: [getPublicKey(alice)] })), [deletion.id], 'republishing does not undo it');
  const newer = sign(alice, 30078, T0 + 3, [['d', PREKEY_D]], 'new bundle');
  await client.publish(newer);
  assert.deepEqual(ids(await query(client, { kinds: [30078] })), [newer.id], 'a version newer than the deletion is accepted');
});

test('embedded relay: events persist across a restart on the same database and port', async (t) => {
  const defer = cleanups(t);
  const dbPath = tempDbPath(defer);
  const first = await startEmbeddedRelay({ dbPath, port: 0 });
  const alice = generateSecretKey();
  const note = sign(alice, 1, T0, [], 'kept');
  const bundle = sign(alice, 30078, T0 + 1, [['d', PREKEY_D]], 'bundle');
  const client = await Relay.connect(first.url);
  await client.publish(note);
  await client.publish(bundle);
  client.close();
  await first.close();
  await first.close(); // idempotent

  // Binding the same port again proves close() resolved only once the port was free.
  const second = await embedded(defer, dbPath, first.port);
  assert.equal(second.port, first.port);
  const again = await connect(defer, second.url);
  assert.deepEqual(ids(await query(again, { authors: [getPublicKey(alice)] })), ids([bundle, note]));
});

test('embedded relay: a burst of events costs a few fsyncs, not one each; every event it said OK to is there after a restart', async (t) => {
  const defer = cleanups(t);
  const dbPath = tempDbPath(defer);
  const first = await startEmbeddedRelay({ dbPath, port: 0 });
  const alice = generateSecretKey();
  const burst = Array.from({ length: 200 }, (_, i) => sign(alice, 1, T0 + i, [], `burst ${i}`));
  const client = await Relay.connect(first.url);
  const before = first.syncCount();
  await Promise.all(burst.map((e) => client.publish(e)));
  const syncs = first.syncCount() - before;
  assert.ok(syncs >= 1 && syncs < burst.length / 4, `${syncs} fsyncs for ${burst.length} events`);
  client.close();
  await first.close();
  const second = await embedded(defer, dbPath, first.port);
  const again = await connect(defer, second.url);
  assert.equal((await query(again, { authors: [getPublicKey(alice)], limit: 1000 })).length, burst.length);
});

test('embedded relay: a client sending garbage does not disturb another client', async (t) => {
  const defer = cleanups(t);
  const relay = await startEmbeddedRelay({ dbPath: tempDbPath(defer), port: 0, maxMessageBytes: 64 * 1024 });
  defer(() => relay.close());
  const subscriber = await connect(defer, relay.url);
  const publisher = await connect(defer, relay.url);
  const alice = generateSecretKey();

  let eose!: () => void;
  const eosed = new Promise<void>((resolve) => (eose = resolve));
  const live = new Promise<Event>((resolve) => {
    const sub = subscriber.subscribe([{ kinds: [1], authors: [getPublicKey(alice)] }], { onevent: resolve, oneose: () => eose() });
    defer(() => sub.close());
  });
  await eosed;

  const garbage = new WebSocket(relay.url);
  defer(() => garbage.terminate());
  await once(garbage, 'open');
  const reply = async (frame: string | Buffer): Promise<unknown[]> => {
    garbage.send(frame);
    const [data] = (await once(garbage, 'message')) as [Buffer];
    return JSON.parse(data.toString()) as unknown[];
  };
  assert.equal((await reply('this is not JSON'))[0], 'NOTICE');
  assert.equal((await reply('{"not":"an array"}'))[0], 'NOTICE');
  assert.equal((await reply('["constructor"]'))[0], 'NOTICE');
  assert.equal((await reply('["EVENT", 5]'))[0], 'NOTICE');
  assert.deepEqual((await reply('["EVENT", {"id": "abc"}]')).slice(0, 3), ['OK', 'abc', false]);
  assert.deepEqual((await reply('["REQ", "s", {"ids": "not a list"}]')).slice(0, 2), ['CLOSED', 's']);
  assert.deepEqual((await reply('["REQ", "s", {"#pp": ["x"]}]')).slice(0, 2), ['CLOSED', 's']);
  assert.deepEqual((await reply('["COUNT", "c", {}]')).slice(0, 2), ['CLOSED', 'c']);
  assert.equal((await reply(Buffer.from([0xff, 0x00, 0x13]))).at(0), 'NOTICE');
  garbage.send('x'.repeat(64 * 1024 + 1));
  const [code] = (await once(garbage, 'close')) as [number];
  assert.equal(code, 1009, 'oversized frame: message too big');

  const note = sign(alice, 1, T0, [], 'still here');
  await publisher.publish(note);
  assert.equal((await live).id, note.id);
  assert.equal(subscriber.connected, true);
});

test('snstr test relay: restarts on the same port', async (t) => {
  const defer = cleanups(t);
  const relay = await startTestRelay();
  defer(() => relay.stop());
  assert.equal(relay.url, `ws://127.0.0.1:${relay.port}`);
  assert.ok(relay.port > 0);
  const alice = generateSecretKey();
  // snstr refuses events more than an hour away from its clock.
  const now = Math.floor(Date.now() / 1000);

  const first = await Relay.connect(relay.url);
  const dropped = new Promise<void>((resolve) => (first.onclose = resolve));
  const before = sign(alice, 1, now, [], 'before');
  await first.publish(before);
  assert.deepEqual(ids(await query(first, { ids: [before.id] })), [before.id]);

  await relay.stop();
  await dropped;
  assert.equal(first.connected, false);
  await assert.rejects(Relay.connect(relay.url), 'nothing listens while stopped');

  await relay.start();
  const second = await connect(defer, relay.url);
  const after = sign(alice, 1, now + 1, [], 'after');
  await second.publish(after);
  assert.deepEqual(ids(await query(second, { ids: [after.id] })), [after.id]);
});

test('embedded relay: refuses a subscription past the limit instead of dropping an old one', async (t) => {
  const defer = cleanups(t);
  const relay = await embedded(defer, tempDbPath(defer));
  const ws = new WebSocket(relay.url);
  defer(() => ws.terminate());
  await once(ws, 'open');
  const reply = async (message: unknown[]): Promise<unknown[]> => {
    ws.send(JSON.stringify(message));
    const [data] = (await once(ws, 'message')) as [Buffer];
    return JSON.parse(data.toString()) as unknown[];
  };
  for (let i = 0; i < 20; i++) assert.deepEqual(await reply(['REQ', `s${i}`, { kinds: [1] }]), ['EOSE', `s${i}`]);
  const refused = await reply(['REQ', 's20', { kinds: [1] }]);
  assert.deepEqual(refused.slice(0, 2), ['CLOSED', 's20']);
  assert.match(String(refused[2]), /^rate-limited:/);
  assert.deepEqual(await reply(['REQ', 's0', { kinds: [2] }]), ['EOSE', 's0'], 'replacing an open subscription is allowed');
  // CLOSE has no answer; frames are handled in order, so the REQ after it finds a free slot.
  ws.send(JSON.stringify(['CLOSE', 's1']));
  assert.deepEqual(await reply(['REQ', 's20', { kinds: [1] }]), ['EOSE', 's20']);
});

test('embedded relay: fails to start on a port in use, and says why', async (t) => {
  const defer = cleanups(t);
  const relay = await embedded(defer, tempDbPath(defer));
  await assert.rejects(startEmbeddedRelay({ dbPath: tempDbPath(defer), port: relay.port }), /EADDRINUSE/);
});

test('embedded relay: handles one client’s frames in order, so CLOSE right after REQ sticks', async (t) => {
  const defer = cleanups(t);
  const relay = await embedded(defer, tempDbPath(defer));
  const ws = new WebSocket(relay.url);
  defer(() => ws.terminate());
  await once(ws, 'open');
  const next = async (): Promise<unknown[]> => {
    const [data] = (await once(ws, 'message')) as [Buffer];
    return JSON.parse(data.toString()) as unknown[];
  };
  ws.send(JSON.stringify(['REQ', 's', { kinds: [1] }]));
  ws.send(JSON.stringify(['CLOSE', 's']));
  assert.deepEqual(await next(), ['EOSE', 's']);
  const note = sign(generateSecretKey(), 1, T0);
  ws.send(JSON.stringify(['EVENT', note]));
  // The relay broadcasts before it answers OK: a live "s" would show up first.
  assert.deepEqual((await next()).slice(0, 3), ['OK', note.id, true]);
});
