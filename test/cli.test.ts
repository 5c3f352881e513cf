import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string; bin: { rrelay: string } };

describe('rrelay CLI', () => {
  it('prints the package version', () => {
    assert.equal(execFileSync(process.execPath, [cli, '--version'], { encoding: 'utf8' }).trim(), pkg.version);
    assert.equal(pkg.bin.rrelay, 'dist/src/cli/main.js');
  });

  it('explains itself in --help', () => {
    const help = execFileSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
    assert.match(help, /Usage: rrelay/);
    assert.match(help, /--version/);
  });

  it('fails with a non-zero exit and a hint on an unknown command', () => {
    const r = spawnSync(process.execPath, [cli, 'no-such-command'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /rrelay --help/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });
});
