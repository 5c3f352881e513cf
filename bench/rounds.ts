// Ours, libsignal-client and the primitive floor, each figure in a child process of its own
// (bench/side.ts), interleaved round by round (the side that goes first alternates), so that load
// on a shared machine falls on both sides alike; each figure is the median of the rounds, with
// its spread.
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FLOOR_PRIMITIVES, type FloorFigure, floorCalls, floorPerSec, type FloorPrimitive } from './floor.js';
import type { BundleFigures } from './ours.js';
import type { LibsignalBundleFigures } from './libsignal.js';
import { ratio, type Spread, spread } from './stats.js';

type Side = 'ours' | 'libsignal' | 'floor';
interface SideResult {
  readonly side: Side;
  readonly figure: string;
  readonly value: unknown;
  readonly mlKem: string;
}

const SIDE_JS = fileURLToPath(new URL('./side.js', import.meta.url));
/** A bound on a hung child, not a performance check. */
const CHILD_TIMEOUT_MS = 10 * 60_000;

export function runSide(side: Side, figure: string, seconds: number, node = process.execPath): Promise<SideResult> {
  return new Promise((resolve, reject) => {
    execFile(node, [SIDE_JS, '--side', side, '--figure', figure, '--seconds', String(seconds)], { timeout: CHILD_TIMEOUT_MS, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      // A side that failed (a wrong plaintext, a crash) fails the run: its figure would be a lie.
      if (error) reject(new Error(`bench: ${side} ${figure} failed: ${error.message}\n${stderr.slice(0, 2000)}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as SideResult);
    });
  });
}

export interface PathFigures {
  /** Ops per second over the rounds: our session API over MemoryProtocolStore, the scope of libsignal's in-memory stores. */
  readonly ours: Spread;
  /** The same over SqliteProtocolStore (in-memory database): what a node pays for its store. */
  readonly oursSqlite: Spread;
  readonly sqliteRatio: number;
  readonly libsignal: Spread;
  /** The primitive floor of our protocol (bench/floor.ts) in ops per second, from each round's primitive costs. */
  readonly floor: Spread;
  readonly floorCalls: number;
  /** Median ours / median libsignal. */
  readonly ratio: number;
  /** Our time per op over the floor's (median floor rate / median our rate): 1 is the floor itself. */
  readonly oursVsFloor: number;
  readonly libsignalVsFloor: number;
}

export interface RoundFigures {
  readonly rounds: number;
  readonly secondsPerRun: number;
  /** `bareRatchet`: the ratchet functions alone (no store, no envelope); `bareVsFloor` as `oursVsFloor`. */
  readonly oneWay: PathFigures & { readonly bareRatchet: Spread; readonly bareVsFloor: number };
  readonly alternating: PathFigures & { readonly bareRatchet: Spread; readonly bareVsFloor: number };
  readonly setups: PathFigures;
  /**
   * Setups again under a second Node binary (`--node24`), ours, libsignal and the floor interleaved
   * in the same rounds: Node 24 has native ML-KEM. No SQLite figure: the tree's better-sqlite3 is
   * built for the first runtime, and the setups side over MemoryProtocolStore never opens a database.
   */
  readonly setupsOtherRuntime: (Omit<PathFigures, 'oursSqlite' | 'sqliteRatio'> & { readonly node: string; readonly mlKem: { readonly ours: string; readonly floor: string } }) | null;
  /** Nanoseconds per call of each floor primitive, over the rounds. */
  readonly primitivesNs: Record<FloorPrimitive, Spread>;
  readonly bundle: { readonly ours: BundleFigures; readonly libsignal: LibsignalBundleFigures };
  readonly mlKem: { readonly ours: string; readonly libsignal: string; readonly floor: string };
}

const PATHS = ['oneWay', 'alternating', 'setups'] as const satisfies readonly FloorFigure[];

export async function measureRounds(opts: { seconds: number; rounds: number; otherNode?: string; progress: (what: string) => void }): Promise<RoundFigures> {
  const { seconds, rounds, otherNode } = opts;
  const otherMlKem = { ours: '', floor: '' };
  const runs = new Map<string, number[]>();
  const push = (key: string, v: number) => runs.set(key, [...(runs.get(key) ?? []), v]);
  const mlKem = { ours: '', libsignal: '', floor: '' };
  const primitiveRuns: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    opts.progress(`round ${r + 1} of ${rounds}: ours and libsignal-client interleaved, then the bare ratchet and the floor primitives`);
    const order: Side[] = r % 2 === 0 ? ['ours', 'libsignal'] : ['libsignal', 'ours'];
    for (const path of PATHS) {
      for (const side of order) {
        // A setup's fresh parties take longer to make than the setup takes, outside the timer: twice the time for enough of them.
        const result = await runSide(side, path, path === 'setups' ? 2 * seconds : seconds);
        push(`${side}.${path}`, result.value as number);
        mlKem[side as 'ours' | 'libsignal'] = result.mlKem;
      }
    }
    for (const bare of ['bareOneWay', 'bareAlternating']) push(`ours.${bare}`, (await runSide('ours', bare, seconds)).value as number);
    for (const path of PATHS) push(`ours.${path}Sqlite`, (await runSide('ours', `${path}Sqlite`, path === 'setups' ? 2 * seconds : seconds)).value as number);
    // Seventeen primitives: a fifth of the figures' time each keeps a round short, and each is a simple loop.
    const floor = await runSide('floor', 'primitives', seconds / 5);
    mlKem.floor = floor.mlKem;
    const ns = floor.value as Record<FloorPrimitive, number>;
    for (const [k, v] of Object.entries(ns)) (primitiveRuns[k] ??= []).push(v);
    for (const path of PATHS) push(`floor.${path}`, floorPerSec(path, ns));
    if (otherNode) {
      for (const side of order) {
        const result = await runSide(side, 'setups', 2 * seconds, otherNode);
        push(`other.${side}.setups`, result.value as number);
        if (side === 'ours') otherMlKem.ours = result.mlKem;
      }
      const otherFloor = await runSide('floor', 'primitives', seconds / 5, otherNode);
      otherMlKem.floor = otherFloor.mlKem;
      push('other.floor.setups', floorPerSec('setups', otherFloor.value as Record<FloorPrimitive, number>));
    }
  }
  opts.progress('bundle generation and serialization, each side once');
  const bundle = {
    ours: (await runSide('ours', 'bundle', seconds / 2)).value as BundleFigures,
    libsignal: (await runSide('libsignal', 'bundle', seconds / 2)).value as LibsignalBundleFigures,
  };
  const path = (name: (typeof PATHS)[number]): PathFigures => {
    const ours = spread(runs.get(`ours.${name}`)!);
    const libsignal = spread(runs.get(`libsignal.${name}`)!);
    const floor = spread(runs.get(`floor.${name}`)!);
    const oursSqlite = spread(runs.get(`ours.${name}Sqlite`)!);
    return {
      ours,
      oursSqlite,
      sqliteRatio: ratio(oursSqlite.median, libsignal.median),
      libsignal,
      floor,
      floorCalls: floorCalls(name),
      ratio: ratio(ours.median, libsignal.median),
      oursVsFloor: ratio(floor.median, ours.median),
      libsignalVsFloor: ratio(floor.median, libsignal.median),
    };
  };
  const withBare = (name: 'oneWay' | 'alternating', bare: string) => {
    const p = path(name);
    const bareRatchet = spread(runs.get(`ours.${bare}`)!);
    return { ...p, bareRatchet, bareVsFloor: ratio(p.floor.median, bareRatchet.median) };
  };
  const setupsOtherRuntime = otherNode
    ? (() => {
        const ours = spread(runs.get('other.ours.setups')!);
        const libsignal = spread(runs.get('other.libsignal.setups')!);
        const floor = spread(runs.get('other.floor.setups')!);
        return {
          node: execFileSync(otherNode, ['--version'], { encoding: 'utf8' }).trim(),
          mlKem: otherMlKem,
          ours,
          libsignal,
          floor,
          floorCalls: floorCalls('setups'),
          ratio: ratio(ours.median, libsignal.median),
          oursVsFloor: ratio(floor.median, ours.median),
          libsignalVsFloor: ratio(floor.median, libsignal.median),
        };
      })()
    : null;
  const primitivesNs = Object.fromEntries(Object.keys(FLOOR_PRIMITIVES).map((k) => [k, spread(primitiveRuns[k]!)])) as Record<FloorPrimitive, Spread>;
  return {
    rounds,
    secondsPerRun: seconds,
    oneWay: withBare('oneWay', 'bareOneWay'),
    alternating: withBare('alternating', 'bareAlternating'),
    setups: path('setups'),
    setupsOtherRuntime,
    primitivesNs,
    bundle,
    mlKem,
  };
}
