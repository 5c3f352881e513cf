import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, cliEnv, rrelay, start, twoDataDirs } from './support/cli.js';

/** A port nothing listens on: a relay there cannot be reached. */
const NO_RELAY = 'ws://127.0.0.1:1';
const PROGRESS = /publishing the bundle… waiting for a relay \(\d+ s\)/;

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `rrelay args...` on a pseudo-terminal (util-linux `script`): what the terminal shows, stdout and stderr together. */
function onTerminal(args: string[]): Promise<{ code: number | null; screen: string }> {
  assert.equal(spawnSync('sh', ['-c', 'command -v script']).status, 0, 'this test needs `script` (util-linux) to run a command on a pseudo-terminal');
  const command = [process.execPath, CLI, ...args].map(quote).join(' ');
  return new Promise((resolve) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: cliEnv() });
    let screen = '';
    child.stdout.on('data', (d) => (screen += d));
    child.stderr.on('data', (d) => (screen += d));
    child.on('close', (code) => resolve({ code, screen }));
    child.stdin.end();
  });
}

describe('what a command says while it waits', () => {
  it('without a daemon, a command that connects warns when no relay could be reached (a JSON line under --json), and only then', async (t) => {
    const { relay, root } = await twoDataDirs(t);
    const off = ['--data-dir', join(root, 'off')];
    const on = ['--data-dir', join(root, 'on')];
    assert.equal((await rrelay([...off, 'init', '--relay', NO_RELAY])).code, 0);
    assert.equal((await rrelay([...on, 'init', '--relay', relay.url])).code, 0);

    const cached = await rrelay([...off, 'peers']);
    assert.equal(cached.code, 0, cached.stderr);
    assert.equal(cached.stdout, 'no bundles discovered yet\n');
    assert.match(cached.stderr, /^warning: no relay could be reached \(ws:\/\/127\.0\.0\.1:1: .*cannot connect.*\); working from what is stored, and anything to send stays queued\n$/);

    const json = await rrelay([...off, 'peers', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(json.stdout, '', 'stdout stays pure NDJSON');
    const lines = json.stderr.trim().split('\n');
    assert.equal(lines.length, 1, json.stderr);
    assert.match((JSON.parse(lines[0]!) as { warning: string }).warning, /^no relay could be reached \(ws:\/\/127\.0\.0\.1:1: .*\); working from what is stored, and anything to send stays queued$/);

    // The same words fit a command that sends: the invite is made, and its answer waits for a relay.
    const invite = await rrelay([...off, 'invite', 'create']);
    assert.equal(invite.code, 0, invite.stderr);
    assert.match(invite.stdout, /^rrinv3[A-Za-z0-9_-]+\n$/, 'stdout is the invite alone');
    assert.match(invite.stderr, /^warning: no relay could be reached .*anything to send stays queued\nvalid until \S+; the key exchange completes when a node of yours is running\n$/);

    const notConnecting = await rrelay([...off, 'contacts', 'ls']);
    assert.equal(notConnecting.stderr, '', 'a command that does not connect has nothing to warn about');
    const reached = await rrelay([...on, 'peers']);
    assert.equal(reached.code, 0, reached.stderr);
    assert.equal(reached.stderr, '');
  });

  it('publish shows a progress line on a terminal, with or without a daemon, and nothing when piped or under --json', async (t) => {
    const { relay, root, daemons } = await twoDataDirs(t);
    const dir = ['--data-dir', join(root, 'alice')];
    assert.equal((await rrelay([...dir, 'init', '--relay', relay.url])).code, 0);

    const direct = await onTerminal([...dir, 'publish']);
    assert.equal(direct.code, 0, direct.screen);
    assert.match(direct.screen, PROGRESS);
    // Drawn in place with \r, then cleared before the result: the result starts a clean line.
    assert.match(direct.screen, /^\r\x1b\[Kpublishing the bundle…[^\n]*\r\x1b\[Kpublished\r?\n$/);
    const piped = await rrelay([...dir, 'publish']);
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stderr, '');
    const json = await onTerminal([...dir, 'publish', '--json']);
    assert.equal(json.code, 0, json.screen);
    assert.doesNotMatch(json.screen, /waiting for a relay/);

    daemons.push(await start(['daemon', ...dir], /daemon running/));
    const viaDaemon = await onTerminal([...dir, 'publish']);
    assert.equal(viaDaemon.code, 0, viaDaemon.screen);
    assert.match(viaDaemon.screen, PROGRESS, 'the CLI draws it around the call to the daemon');
    assert.equal((await rrelay([...dir, 'publish'])).stderr, '');
  });
});
