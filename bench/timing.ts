const CHECK_CLOCK_EVERY = 16;

export function now(): bigint {
  return process.hrtime.bigint();
}

/** Nanoseconds per call of `op`, over about `seconds` of wall time after a warm-up of a tenth of that. */
export async function nsPerOp(seconds: number, op: (i: number) => void | Promise<void>): Promise<number> {
  let i = 0;
  const runUntil = async (deadline: bigint): Promise<void> => {
    do {
      for (let k = 0; k < CHECK_CLOCK_EVERY; k++) {
        const pending = op(i++);
        // Awaiting a synchronous op would add a microtask hop to what is being measured.
        if (pending) await pending;
      }
    } while (now() < deadline);
  };
  await runUntil(now() + BigInt(Math.round(seconds * 1e8)));
  const first = i;
  const start = now();
  await runUntil(start + BigInt(Math.round(seconds * 1e9)));
  return Number(now() - start) / (i - first);
}

/** Ops per second of a timed region inside each iteration; `iteration` returns the nanoseconds it timed. */
export async function timedRegionPerSec(seconds: number, iteration: (i: number) => bigint | Promise<bigint>): Promise<number> {
  let i = 0;
  const warmUpUntil = now() + BigInt(Math.round(seconds * 1e8));
  while (now() < warmUpUntil) await iteration(i++);
  const first = i;
  let timed = 0n;
  const deadline = now() + BigInt(Math.round(seconds * 1e9));
  while (now() < deadline) timed += await iteration(i++);
  return ((i - first) * 1e9) / Number(timed);
}
