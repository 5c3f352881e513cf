import { crc32, deflateSync } from 'node:zlib';
import { encode, renderSVG, renderUnicodeCompact } from 'uqr';

// An invite as a QR code: in the terminal when it fits, else as an SVG or PNG file.

/** Byte mode, lowest error correction: an invite carries a 1568-byte ML-KEM key and needs the room. */
const QR = { ecc: 'L', border: 2 } as const;
/** Modules of quiet zone in the files (the standard's 4), and pixels per module in the PNG. */
const FILE_BORDER = 4;
export const PNG_SCALE = 6;
/** Units per module in the SVG's viewBox. */
export const SVG_SCALE = 10;

export type QrFormat = 'svg' | 'png';

/** The file format `--qr FILE` asks for, by its extension; null for any other. */
export function qrFormat(file: string): QrFormat | null {
  const ext = /\.(svg|png)$/i.exec(file)?.[1]?.toLowerCase();
  return ext === 'svg' || ext === 'png' ? ext : null;
}

/**
 * The half-block rendering when it fits `columns`, else a line saying how wide it is: a code wider
 * than the terminal wraps and cannot be scanned.
 */
export function qrForTerminal(text: string, columns: number | undefined): string {
  const art = renderUnicodeCompact(text, QR);
  const width = art.indexOf('\n') < 0 ? art.length : art.indexOf('\n');
  if (columns !== undefined && width <= columns) return art;
  const where = columns === undefined ? 'stderr is not a terminal' : `the terminal has ${columns}`;
  return `the QR code is ${width} columns wide and ${where}: write it to a file with \`--qr invite.png\` (or .svg)`;
}

export function qrFile(text: string, format: QrFormat): Buffer {
  if (format === 'svg') return Buffer.from(renderSVG(text, { ...QR, border: FILE_BORDER, pixelSize: SVG_SCALE }));
  return png(encode(text, { ...QR, border: FILE_BORDER }).data, PNG_SCALE);
}

/** An 8-bit grayscale PNG of the modules (true: black), `scale` pixels each, unfiltered rows. */
function png(modules: boolean[][], scale: number): Buffer {
  const side = modules.length * scale;
  const raw = Buffer.alloc((side + 1) * side, 0xff);
  for (let y = 0; y < side; y++) {
    const row = y * (side + 1);
    raw[row] = 0; // filter: none
    const line = modules[Math.floor(y / scale)]!;
    for (let x = 0; x < side; x++) if (line[Math.floor(x / scale)]) raw[row + 1 + x] = 0;
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // bit depth 8, grayscale, deflate, no filter method, no interlace
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}
