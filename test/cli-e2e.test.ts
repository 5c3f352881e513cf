import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import WebSocket from 'ws';
import { decodePreKeyBundle } from '../src/prekeys/index.js';
import { eventually } from './support/nodes.js';
import { cliEnv, json, jsonLines, rrelay, start, tempRoot, twoDataDirs } from './support/cli.js';

useWebSocketImplementation(WebSocket);

/** The newest bundle event an author has on the relay, read with a plain Nostr client. */
async function bundleOnRelay(url: string, author: string): Promise<{ id: string; oneTimeIds: number[] } | undefined> {
  const relay = await Relay.connect(url);
  try {
    const events = await new Promise<{ id: string; content: string; created_at: number }[]>((resolve) => {
      const got: { id: string; content: string; created_at: number }[] = [];
      const sub = relay.subscribe([{ kinds: [30078], authors: [author], '#d': ['radix_prekey_bundle_v1'] }], {
        onevent: (e) => got.push(e),
        oneose: () => {
          sub.close();
          resolve(got);
        },
      });
    });
    const newest = events.sort((a, b) => b.created_at - a.created_at)[0];
    if (!newest) return undefined;
    const bundle = decodePreKeyBundle(new Uint8Array(Buffer.from(newest.content, 'base64')));
    return { id: newest.id, oneTimeIds: bundle.oneTimePreKeys.map((k) => k.id) };
  } finally {
    relay.close();
  }
}

describe('rrelay end to end, one process per node', () => {
  it('two daemons meet through bundles: send, reply, republish after the one-time key, receipt', async (t) => {
    const { relay, root, daemons, A, B } = await twoDataDirs(t);
    const alice = await json<{ fingerprint: string; npub: string }>(['init', ...A, '--relay', relay.url]);
    const bob = await json<{ fingerprint: string; npub: string; nostrPubkey: string }>(['init', ...B, '--relay', relay.url]);
    assert.match(alice.npub, /^npub1/);
    assert.deepEqual(Object.keys(await json<object>(['whoami', ...B])).sort(), ['createdAt', 'fingerprint', 'nickname', 'nostrPubkey', 'npub']);

    daemons.push(await start(['daemon', ...B, '--json'], /"daemon":"running"/));
    daemons.push(await start(['daemon', ...A, '--json'], /"daemon":"running"/));
    const second = await rrelay(['daemon', ...B]);
    assert.equal(second.code, 5, 'a second node on one data directory is refused');
    assert.match(second.stderr, /another rrelay node is using/);

    await eventually(async () => ((await rrelay(['peers', ...A, '--json'])).json as { fingerprint: string }[]).some((p) => p.fingerprint === bob.fingerprint) || undefined, 'alice discovers bob');
    const bundleBefore = await bundleOnRelay(relay.url, bob.nostrPubkey);
    assert.ok(bundleBefore);

    const sent = await json<{ id: string; state: string; relaysAccepted: number }>(['send', ...A, bob.fingerprint, 'hello', 'bob']);
    assert.equal(sent.state, 'sent');
    assert.equal(sent.relaysAccepted, 1);

    const received = await eventually(async () => {
      const r = await rrelay(['receive', ...B, '--json']);
      return r.json.length ? (r.json as { from: string; alias: string | null; text: string; sentAt: number; id: string }[]) : undefined;
    }, 'bob receives');
    assert.equal(received.length, 1);
    assert.deepEqual({ ...received[0], sentAt: 0 }, { ...received[0], from: alice.fingerprint, alias: null, text: 'hello bob', id: sent.id, sentAt: 0 });
    assert.equal((await rrelay(['receive', ...B, '--json'])).json.length, 0, 'delivered exactly once');

    // Bob's one-time pre-key was used: he publishes a fresh bundle without the used key.
    const bundleAfter = await eventually(async () => {
      const b = await bundleOnRelay(relay.url, bob.nostrPubkey);
      return b && b.id !== bundleBefore.id ? b : undefined;
    }, 'bob republishes');
    assert.notDeepEqual(bundleAfter.oneTimeIds, bundleBefore.oneTimeIds);

    await json(['contacts', 'alias', ...B, alice.fingerprint.slice(0, 12), 'alice']);
    const reply = await json<{ state: string }>(['send', ...B, 'alice', 'hi', 'alice']);
    assert.equal(reply.state, 'sent');
    const atAlice = await eventually(async () => {
      const r = await rrelay(['receive', ...A, '--json']);
      return r.json.length ? (r.json as { text: string; from: string }[]) : undefined;
    }, 'alice receives the reply');
    assert.equal(atAlice[0]!.text, 'hi alice');
    assert.equal(atAlice[0]!.from, bob.fingerprint);

    // The receipt: alice's message shows as delivered.
    await eventually(async () => {
      const r = await rrelay(['messages', ...A, '--json']);
      const mine = (r.json as { id: string; state: string }[]).find((m) => m.id === sent.id);
      return mine?.state === 'delivered' ? true : undefined;
    }, 'the receipt reaches alice');

    const contacts = await jsonLines<{ alias: string; safetyNumber: string; trusted: boolean }>(['contacts', 'ls', ...B]);
    const aliceAtBob = contacts.find((c) => c.alias === 'alice')!;
    assert.match(aliceAtBob.safetyNumber, /^(\d{5} ){11}\d{5}$/);
    const bobAtAlice = (await jsonLines<{ fingerprint: string; safetyNumber: string }>(['contacts', 'ls', ...A])).find((c) => c.fingerprint === bob.fingerprint)!;
    assert.equal(bobAtAlice.safetyNumber, aliceAtBob.safetyNumber, 'the same safety number on both sides');
    const status = await json<{ daemon: boolean; relays: { connected: boolean }[] }>(['status', ...B]);
    assert.equal(status.daemon, true);
    assert.equal(status.relays[0]?.connected, true);

    // Live view through the daemon, and a chat fed from a pipe.
    const follow = await start(['receive', '--follow', ...B, '--json'], /following new messages/);
    daemons.push(follow);
    const chat = await rrelay(['chat', ...A, bob.fingerprint.slice(0, 16)], { input: 'typed in chat\n/quit\n' });
    assert.equal(chat.code, 0, chat.stderr);
    const line = await follow.waitFor(/\{[^\n]*"text":"typed in chat"[^\n]*\}/);
    assert.equal((JSON.parse(line) as { from: string }).from, alice.fingerprint);

    assert.equal(await follow.stop('SIGINT'), 0, 'Ctrl-C ends --follow cleanly');
    const orphan = await start(['receive', '--follow', ...B], /following new messages/);
    assert.equal(await daemons[0]!.stop('SIGINT'), 0, 'the daemon stops cleanly');
    assert.equal(await orphan.exited, 1, 'a live view ends when its daemon does');
    assert.match(orphan.stderr(), /the daemon stopped/);
    for (const d of daemons.splice(0)) if (d !== follow) assert.equal(await d.stop('SIGINT'), 0, d.output());
    // No plaintext outside the encrypted store: nothing in the data directories contains a message.
    for (const dir of [join(root, 'alice'), join(root, 'bob')])
      for (const f of readdirSync(dir)) {
        const path = join(dir, f);
        if (statSync(path).isFile()) assert.equal(readFileSync(path).includes('typed in chat'), false, `${f} leaks plaintext`);
      }
  });

  it('gives clear errors and meaningful exit codes', async (t) => {
    const root = tempRoot(t);
    const D = ['--data-dir', join(root, 'x')];
    const none = await rrelay(['whoami', ...D]);
    assert.equal(none.code, 4);
    assert.match(none.stderr, /no identity in .*run `rrelay init` first/);
    assert.doesNotMatch(none.stderr, /\n\s+at /);
    assert.equal((await rrelay(['init', ...D, '--relay', 'http://not-a-relay'])).code, 2);
    assert.equal((await rrelay(['init', ...D, '--relay', 'ws://127.0.0.1:1'])).code, 0);
    const again = await rrelay(['init', ...D]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already holds an identity/);
    const wrong = await rrelay(['whoami', ...D], { env: cliEnv({ RRELAY_PASSPHRASE: 'wrong' }) });
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /wrong passphrase/);
    const nobody = await rrelay(['send', ...D, 'nobody', 'hi', '--wait', '0']);
    assert.equal(nobody.code, 4);
    assert.match(nobody.stderr, /no contact or discovered bundle matches "nobody"/);
    const json = await rrelay(['send', ...D, 'nobody', 'hi', '--json']);
    assert.deepEqual(Object.keys((json.json[0] as { error: object }).error), ['code', 'message']);
    const noEnv = { ...process.env };
    delete noEnv.RRELAY_PASSPHRASE;
    const noPass = await rrelay(['whoami', ...D], { env: noEnv });
    assert.equal(noPass.code, 2);
    assert.match(noPass.stderr, /set RRELAY_PASSPHRASE/);
    const envDir = await rrelay(['whoami', '--json'], { env: cliEnv({ RRELAY_DATA_DIR: join(root, 'x') }) });
    assert.equal(envDir.code, 0, 'RRELAY_DATA_DIR picks the data directory');
  });

  it('meets through an invite file: invite create, invite accept, kx ls, then messages both ways', async (t) => {
    const { relay, root, daemons, A, B } = await twoDataDirs(t);
    const alice = await json<{ fingerprint: string }>(['init', ...A, '--relay', relay.url]);
    await json(['init', ...B, '--relay', relay.url]);
    daemons.push(await start(['daemon', ...A, '--json'], /"daemon":"running"/));
    const file = join(root, 'invite.txt');
    const run = await rrelay(['invite', 'create', ...A, '--out', file, '--ttl', '2', '--qr', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const created = run.json[0] as { invite: string; rv: string };
    assert.equal(readFileSync(file, 'utf8').trim(), created.invite);
    // stderr is a pipe here, not a terminal wide enough: the code would wrap, so it says how to get a file.
    assert.match(run.stderr, /the QR code is 173 columns wide and stderr is not a terminal: .*--qr invite\.png/);
    assert.equal((await jsonLines<{ rv: string }>(['kx', 'ls', ...A]))[0]?.rv, created.rv);

    const bad = await rrelay(['invite', 'accept', ...B, `${created.invite.slice(0, -3)}xyz`]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /checksum/);
    const accepted = await json<{ peer: string; state: string }>(['invite', 'accept', ...B, file]);
    assert.equal(accepted.peer, alice.fingerprint);
    // Bob's node runs only while a command does: the full KX waits on the relay until the next one.
    await eventually(async () => ((await jsonLines(['kx', 'ls', ...A])).length === 0 ? true : undefined), 'alice answers the half KX');
    await eventually(async () => {
      await rrelay(['receive', ...B]);
      return (await jsonLines(['kx', 'ls', ...B])).length === 0 ? true : undefined;
    }, 'bob takes the full KX');
    const sent = await json<{ state: string }>(['send', ...B, alice.fingerprint, 'hi', 'via', 'invite']);
    assert.equal(sent.state, 'sent');
    const got = await eventually(async () => {
      const r = await rrelay(['receive', ...A, '--json']);
      return r.json.length ? (r.json as { text: string; trusted: boolean }[]) : undefined;
    }, 'alice receives');
    assert.equal(got[0]!.text, 'hi via invite');
    assert.equal(got[0]!.trusted, true);

    // A second acceptor of the same invite is told it was used, and waits no more.
    const C = ['--data-dir', join(root, 'carol')];
    await json(['init', ...C, '--relay', relay.url]);
    daemons.push(await start(['daemon', ...C, '--json'], /"daemon":"running"/));
    const follow = await start(['receive', '--follow', ...C], /following new messages/);
    daemons.push(follow);
    await json(['invite', 'accept', ...C, file]);
    await follow.waitFor(new RegExp(`key exchange with ${alice.fingerprint.slice(0, 16)}… failed: the invite was already used`));
    assert.deepEqual(await jsonLines(['kx', 'ls', ...C]), [], 'carol waits for nothing');
  });
});
