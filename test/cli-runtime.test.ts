import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connectRpc } from '../src/cli/rpc.js';
import { commandOf } from '../src/cli/runtime.js';
import { cliEnv, json, type Running, start, twoDataDirs } from './support/cli.js';
import { eventually } from './support/nodes.js';

const probe = fileURLToPath(new URL('./support/heap-probe.js', import.meta.url));
const probed = cliEnv({ NODE_OPTIONS: `--import ${probe}` });

/** The committed size of a running rrelay's young generation, as the probe reports it. */
async function newSpaceOf(p: Running): Promise<number> {
  const before = p.stderr().length;
  p.child.kill('SIGUSR2');
  const m = await eventually(() => /heap-probe (\{.*\})/.exec(p.stderr().slice(before)) ?? undefined, 'the heap probe answers');
  return (JSON.parse(m[1]!) as { newSpace: number }).newSpace;
}

describe('how the daemon runs V8 (docs/operations.md, "Memory")', () => {
  it('finds the command past global options and their values', () => {
    assert.equal(commandOf(['daemon']), 'daemon');
    assert.equal(commandOf(['--data-dir', 'daemon', '--json', 'status']), 'status');
    assert.equal(commandOf(['-d', '/x', '-v', '--proxy', 'none', '--addressing', 'seed', 'daemon', '--json']), 'daemon');
    assert.equal(commandOf(['--data-dir=/x', 'send', 'bob', 'daemon']), 'send');
    assert.equal(commandOf(['--json']), undefined);
  });

  it('a daemon keeps a 1 MiB young generation through its start and a burst of requests; other commands keep V8 defaults', async (t) => {
    const { relay, root, daemons, A } = await twoDataDirs(t);
    await json(['init', ...A, '--relay', relay.url]);
    const daemon = await start(['daemon', ...A, '--json'], /"daemon":"running"/, probed);
    daemons.push(daemon);
    const rpc = (await connectRpc(join(root, 'alice', 'rrelay.sock')))!;
    t.after(() => rpc.close());
    await Promise.all(Array.from({ length: 500 }, () => rpc.call('status')));
    // Two semi-spaces of at most 1 MiB each; V8's default lets them grow to 16 MiB (Node 20) or 64 MiB (Node 24).
    assert.ok((await newSpaceOf(daemon)) <= 2 * 1024 * 1024, 'the daemon young generation stayed at its first size');

    // A client of the daemon loads the same program, with V8's own sizing: the probe sees the difference.
    const follower = await start(['receive', '--follow', ...A, '--json'], /following new messages/, probed);
    daemons.push(follower);
    assert.ok((await newSpaceOf(follower)) > 2 * 1024 * 1024, 'a command other than the daemon grows its young generation as V8 decides');
  });
});
