import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { qrFile, qrFormat, qrForTerminal } from '../src/cli/qr.js';
import { pngModules, qrModules } from './support/qr.js';

/** As long as a v3 invite without a nickname (2,657 characters): QR version 38 at ECC level L. */
const INVITE = `rrinv3${'A'.repeat(2651)}`;

describe('invite QR codes', () => {
  it('draws in the terminal only when it fits, else says how wide it is and how to get a file', () => {
    const width = qrModules(INVITE).length - 4; // the terminal rendering has a 2-module border, not 4
    const art = qrForTerminal(INVITE, width);
    assert.equal(art.split('\n')[0]!.length, width);
    assert.match(art, /[▀▄█]/);
    for (const columns of [width - 1, 80, undefined]) {
      const said = qrForTerminal(INVITE, columns);
      assert.match(said, new RegExp(`^the QR code is ${width} columns wide and .*--qr invite\\.png`));
      assert.doesNotMatch(said, /[▀▄█]/);
    }
  });

  it('writes an SVG or a PNG that reads back to the same modules', () => {
    assert.deepEqual([qrFormat('a.svg'), qrFormat('A.PNG'), qrFormat('a.txt'), qrFormat('svg')], ['svg', 'png', null, null]);
    assert.deepEqual(pngModules(qrFile(INVITE, 'png')), qrModules(INVITE));
    assert.match(qrFile(INVITE, 'svg').toString('utf8'), /^<svg /);
  });
});
