// One side of one figure in a process of its own, so that neither side's allocations, JIT state or
// native threads weigh on the other's figure: `node dist/bench/side.js --side ours|libsignal|floor
// --figure <figure> --seconds N` prints one JSON line. bench/rounds.ts runs these interleaved.
import { measureE2eFloor } from './e2e-floor.js';
import { measureFloorPrimitives } from './floor.js';
import { measureOursFigure, OUR_FIGURES, type OurFigure, ourMlKem } from './ours.js';

export const SIDES = ['ours', 'libsignal', 'floor'] as const;
export type Side = (typeof SIDES)[number];

export interface SideResult {
  readonly side: Side;
  readonly figure: string;
  /** Ops per second, or an object of figures (bundle, floor primitives in ns per call). */
  readonly value: unknown;
  /** The ML-KEM implementation this side ran. */
  readonly mlKem: string;
}

async function run(side: Side, figure: string, seconds: number): Promise<SideResult> {
  switch (side) {
    case 'ours': {
      if (!(OUR_FIGURES as readonly string[]).includes(figure)) throw new Error(`bench: ours has no figure "${figure}"`);
      const value = await measureOursFigure(figure as OurFigure, seconds);
      return { side, figure, value, mlKem: ourMlKem() };
    }
    case 'libsignal': {
      // Imported here only: the other sides' processes never load the libsignal native module.
      const { LIBSIGNAL_FIGURES, libsignalVersion, measureLibsignalFigure } = await import('./libsignal.js');
      if (!(LIBSIGNAL_FIGURES as readonly string[]).includes(figure)) throw new Error(`bench: libsignal has no figure "${figure}"`);
      const value = await measureLibsignalFigure(figure as (typeof LIBSIGNAL_FIGURES)[number], seconds);
      return { side, figure, value, mlKem: `libsignal-client ${await libsignalVersion()} (its Rust core)` };
    }
    case 'floor': {
      if (figure === 'e2e') return { side, figure, value: await measureE2eFloor(seconds), mlKem: 'none' };
      const { ns, mlKem } = await measureFloorPrimitives(seconds);
      return { side, figure: 'primitives', value: ns, mlKem };
    }
  }
}

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const side = arg('--side') as Side;
const seconds = Number(arg('--seconds') ?? 1);
if (!SIDES.includes(side) || !(seconds > 0)) {
  console.error('usage: node dist/bench/side.js --side ours|libsignal|floor [--figure F (floor: primitives or e2e)] [--seconds N]');
  process.exit(2);
}
console.log(JSON.stringify(await run(side, arg('--figure') ?? 'primitives', seconds)));
