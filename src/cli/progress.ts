// Feedback on stderr while a command waits: a progress line on a terminal, warnings everywhere.

/** How often the progress line's seconds are redrawn. */
const TICK_MS = 1000;
const CLEAR_LINE = '\r\x1b[K';

/** The progress line on stderr now (null: none), so that a warning printed meanwhile can clear and redraw it. */
let shown: string | null = null;

function draw(line: string | null): void {
  process.stderr.write(line === null ? CLEAR_LINE : `${CLEAR_LINE}${line}`);
  shown = line;
}

/**
 * Runs `work`, showing "LABEL… waiting for a relay (N s)" on stderr while it runs, rewritten in place
 * each second and cleared at the end. Only on a terminal and not under --json: piped or parsed
 * output gets nothing. The CLI process draws it, so it looks the same whether a daemon does the
 * waiting or this process does.
 */
export async function withProgress<T>(opts: { json?: boolean }, label: string, work: () => Promise<T>): Promise<T> {
  if (!process.stderr.isTTY || opts.json) return work();
  const start = Date.now();
  const tick = () => draw(`${label}… waiting for a relay (${Math.floor((Date.now() - start) / 1000)} s)`);
  tick();
  const timer = setInterval(tick, TICK_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
    draw(null);
  }
}

/**
 * A warning on stderr: `warning: …`, or under --json a `{"warning": "…"}` line (stdout stays pure
 * NDJSON). A progress line being shown is cleared first and drawn again below it.
 */
export function warn(opts: { json?: boolean }, message: string): void {
  const line = shown;
  if (line !== null) draw(null);
  process.stderr.write(opts.json ? `${JSON.stringify({ warning: message })}\n` : `warning: ${message}\n`);
  if (line !== null) draw(line);
}
