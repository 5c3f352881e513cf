import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually } from './support/nodes.js';
import { json, jsonLines, rrelay, start, twoDataDirs } from './support/cli.js';

describe('rrelay receive --follow tells of groups', () => {
  it('an invitation (no daemon: the node runs in the command) and a new member (through the daemon), one stderr line each', async (t) => {
    const { relay, daemons, A, B } = await twoDataDirs(t);
    await json(['init', ...A, '--relay', relay.url]);
    const bob = await json<{ fingerprint: string }>(['init', ...B, '--relay', relay.url]);
    daemons.push(await start(['daemon', ...A, '--json'], /"daemon":"running"/));
    const bobDaemon = await start(['daemon', ...B, '--json'], /"daemon":"running"/);
    daemons.push(bobDaemon);
    const { invite } = await json<{ invite: string }>(['invite', 'create', ...A]);
    await json(['invite', 'accept', ...B, invite]);
    for (const dir of [A, B]) await eventually(async () => ((await jsonLines(['kx', 'ls', ...dir])).length === 0 ? true : undefined), 'the key exchange completes');
    assert.equal(await bobDaemon.stop('SIGINT'), 0);

    const atBob = await start(['receive', '--follow', ...B], /following new messages/);
    daemons.push(atBob);
    await json(['group', 'create', ...A, 'hike']);
    await json(['group', 'invite', ...A, 'hike', bob.fingerprint]);
    await atBob.waitFor(/\*\*\* invited to group "hike": `rrelay group join [0-9a-f]{12}` \*\*\*\n/);
    assert.equal(await atBob.stop('SIGINT'), 0);

    const atAlice = await start(['receive', '--follow', ...A], /following new messages/);
    daemons.push(atAlice);
    const joined = await rrelay(['group', 'join', ...B, 'hike']);
    assert.equal(joined.code, 0, joined.stderr);
    await atAlice.waitFor(/\(group "hike": members changed\)\n/);
    assert.doesNotMatch(atAlice.output(), /group "hike"/, 'on stderr, not among the messages');
  });
});
