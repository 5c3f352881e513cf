import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { json, rrelay, start, twoDataDirs } from './support/cli.js';
import { eventually } from './support/nodes.js';
import { startMicrosocks } from './support/socks.js';

/** What `status --json` says of the daemon and the two settings. */
const pick = (s: unknown) => {
  const { daemon, addressing, proxy } = s as { daemon: boolean; addressing: string; proxy: string | null };
  return { daemon, addressing, proxy };
};

/** Where the relay's connections since `from` came from. */
const remotesSince = (relay: { accepted(): readonly { remoteAddress: string | undefined }[] }, from: number) => [
  ...new Set(relay.accepted().slice(from).map((c) => c.remoteAddress)),
];

describe('rrelay --proxy and --addressing: settings of the data directory', () => {
  it('explains both in --help and refuses what is not a SOCKS5 URL or an addressing mode', async () => {
    const help = await rrelay(['--help']);
    assert.match(help.stdout, /--proxy <url>[\s\S]*socks5h:\/\/[\s\S]*`none`/);
    assert.match(help.stdout, /--addressing <mode>[\s\S]*private[\s\S]*seed/);
    const http = await rrelay(['status', '--proxy', 'http://127.0.0.1:8080']);
    assert.equal(http.code, 2);
    assert.match(http.stderr, /only SOCKS5 proxies/);
    const mode = await rrelay(['status', '--addressing', 'public']);
    assert.equal(mode.code, 2);
    assert.match(mode.stderr, /--addressing/);
  });

  it('given once, applies to later commands and to the daemon; a daemon with other values says to restart it', async (t) => {
    const proxy = await startMicrosocks('127.0.0.3');
    t.after(() => proxy.stop());
    const { relay, root, daemons, A } = await twoDataDirs(t);
    await json(['init', ...A, '--relay', relay.url, '--proxy', proxy.url]);
    const file = join(root, 'alice', 'settings.json');
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { version: 1, proxy: proxy.url, addressing: 'private' });
    assert.equal(statSync(file).mode & 0o777, 0o600);

    // Without a daemon: a later command, given nothing, connects through the saved proxy.
    assert.deepEqual(pick(await json(['status', ...A])), { daemon: false, addressing: 'private', proxy: proxy.url });
    await json(['peers', ...A]);
    assert.deepEqual(remotesSince(relay, 0), ['127.0.0.3'], 'the command reached the relay through the proxy');

    // The daemon too.
    let from = relay.accepted().length;
    const daemon = await start(['daemon', ...A, '--json'], /"daemon":"running"/);
    daemons.push(daemon);
    await eventually(() => (relay.clients() === 2 ? true : undefined), 'the daemon connects, both lanes');
    assert.deepEqual(remotesSince(relay, from), ['127.0.0.3'], 'the daemon reached the relay through the proxy');

    assert.deepEqual(pick(await json(['status', ...A])), { daemon: true, addressing: 'private', proxy: proxy.url });
    // Same values as the daemon's: fine. Others: refused, nothing changed.
    assert.equal((await rrelay(['status', ...A, '--proxy', proxy.url, '--addressing', 'private'])).code, 0);
    for (const other of [['--proxy', 'none'], ['--addressing', 'seed']]) {
      const r = await rrelay(['status', ...A, ...other]);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, new RegExp(`the running daemon uses ${other[0]} .*stop it and start it again with \`rrelay ${other.join(' ')} daemon\``));
    }
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).proxy, proxy.url, 'a refused command saved nothing');
    await daemon.stop();
    daemons.pop();

    // --proxy none, once, without a daemon: that command and the next connect directly.
    from = relay.accepted().length;
    await json(['peers', ...A, '--proxy', 'none', '--addressing', 'seed']);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { version: 1, proxy: null, addressing: 'seed' });
    await json(['peers', ...A]);
    assert.deepEqual(remotesSince(relay, from), ['127.0.0.1'], 'direct connections once the proxy was cleared');
    // The daemon started again runs with what was saved.
    daemons.push(await start(['daemon', ...A, '--json'], /"daemon":"running"/));
    assert.equal((await rrelay(['status', ...A, '--addressing', 'seed', '--proxy', 'none'])).code, 0);
    assert.equal((await rrelay(['status', ...A, '--addressing', 'private'])).code, 5);
    assert.deepEqual(pick(await json(['status', ...A])), { daemon: true, addressing: 'seed', proxy: null });
    assert.match((await rrelay(['status', ...A])).stdout, /addressing: seed .*\nproxy: +none/);
  });
});
