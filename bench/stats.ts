// Medians and spreads over rounds: on a shared machine one run is noise, the median of several is a figure.

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Every round's value, in the order measured. */
  readonly runs: readonly number[];
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function spread(runs: readonly number[]): Spread {
  if (runs.length === 0) throw new Error('bench: no runs to summarise');
  return { median: median(runs), min: Math.min(...runs), max: Math.max(...runs), runs };
}

export const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
