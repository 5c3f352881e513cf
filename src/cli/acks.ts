/**
 * At-least-once delivery to the client (as Bison Relay's clientrpc streams do): the node hands out
 * messages without marking them read, the client acknowledges (`ack`) once it has written them, and
 * the read cursor moves only then. A client that dies before acknowledging gets them again.
 */

/**
 * For messages handed out in this order (a contiguous run of seqs, in any order), what may be
 * acknowledged once the first i + 1 of them were written: every seq up to the lowest one still to
 * come, minus one; all of them once the last was written. Never decreasing.
 */
export function ackPoints(seqs: readonly number[]): number[] {
  const points = new Array<number>(seqs.length);
  let lowestAfter = Infinity;
  for (let i = seqs.length - 1; i >= 0; i--) {
    points[i] = lowestAfter === Infinity ? Math.max(...seqs) : lowestAfter - 1;
    lowestAfter = Math.min(lowestAfter, seqs[i]!);
  }
  return points;
}

/**
 * Sends the acknowledgements of a stream: at most one `ack` in flight, always the latest point
 * written, so a burst costs a few calls, not one per message.
 */
export class Acks {
  private written = 0;
  private acked = 0;
  private inFlight: Promise<void> | undefined;

  constructor(private readonly ack: (upTo: number) => Promise<unknown>) {}

  /** Everything up to `upTo` has been written. */
  wrote(upTo: number): void {
    this.written = Math.max(this.written, upTo);
    this.pump();
  }

  /** Resolves once every point written so far was acknowledged (or the call failed: then it is handed out again). */
  async settled(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  private pump(): void {
    if (this.inFlight || this.written <= this.acked) return;
    const upTo = this.written;
    this.inFlight = this.ack(upTo).then(
      () => {
        this.acked = upTo;
        this.inFlight = undefined;
        this.pump();
      },
      () => {
        this.inFlight = undefined; // the connection is gone: nothing more to acknowledge on it
      },
    );
  }
}
