import assert from 'node:assert/strict';
import { crc32, inflateSync } from 'node:zlib';
import { encode } from 'uqr';
import { PNG_SCALE, PNG_SIGNATURE } from '../../src/cli/qr.js';

/** The modules of `text`'s QR code as the CLI draws them in files (4 modules of quiet zone). */
export function qrModules(text: string): boolean[][] {
  return encode(text, { ecc: 'L', border: 4 }).data;
}

/**
 * Reads back a PNG written by `invite create --qr FILE.png`: checks the signature and every chunk's
 * CRC, then samples the centre of each module; the modules, true for black.
 */
export function pngModules(file: Buffer): boolean[][] {
  assert.deepEqual(file.subarray(0, 8), PNG_SIGNATURE, 'PNG signature');
  const chunks = new Map<string, Buffer[]>();
  for (let at = 8; at < file.length; ) {
    const length = file.readUInt32BE(at);
    const type = file.toString('latin1', at + 4, at + 8);
    const data = file.subarray(at + 8, at + 8 + length);
    assert.equal(file.readUInt32BE(at + 8 + length), crc32(file.subarray(at + 4, at + 8 + length)) >>> 0, `CRC of ${type}`);
    chunks.set(type, [...(chunks.get(type) ?? []), data]);
    at += 12 + length;
  }
  const ihdr = chunks.get('IHDR')![0]!;
  const side = ihdr.readUInt32BE(0);
  assert.equal(ihdr.readUInt32BE(4), side, 'square');
  assert.deepEqual([...ihdr.subarray(8)], [8, 0, 0, 0, 0], '8-bit grayscale, not interlaced');
  assert.ok(chunks.has('IEND'));
  const raw = inflateSync(Buffer.concat(chunks.get('IDAT')!));
  assert.equal(raw.length, (side + 1) * side);
  assert.equal(side % PNG_SCALE, 0);
  const n = side / PNG_SCALE;
  const pixel = (x: number, y: number) => raw[y * (side + 1) + 1 + x]!;
  for (let y = 0; y < side; y++) assert.equal(raw[y * (side + 1)], 0, 'filter: none');
  const mid = Math.floor(PNG_SCALE / 2);
  return Array.from({ length: n }, (_, y) => Array.from({ length: n }, (_, x) => pixel(x * PNG_SCALE + mid, y * PNG_SCALE + mid) === 0));
}
