import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { type ErrorCode, isRatchetRelayError } from '../errors.js';

/** Exit codes are part of the CLI's interface: scripts branch on them. */
export const EXIT = {
  ok: 0,
  failure: 1,
  /** Bad usage or bad input (a mistyped invite, a malformed URL). */
  usage: 2,
  badPassphrase: 3,
  /** An unknown contact (or one without a session), or a data directory without an identity. */
  notFound: 4,
  store: 5,
  /** The message is safely queued but no relay has accepted it yet. */
  queued: 75,
  /** The daemon went away during `send`: the message may be stored and queued, or not. */
  unknownOutcome: 76,
} as const;

const EXIT_BY_CODE: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: EXIT.usage,
  MALFORMED: EXIT.usage, // at the CLI, malformed bytes come from the user: a mistyped invite, say
  BAD_PASSPHRASE: EXIT.badPassphrase,
  NO_SESSION: EXIT.notFound,
  NOT_FOUND: EXIT.notFound,
  STORE: EXIT.store,
};

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export function usage(message: string): never {
  throw new CliError(message, EXIT.usage);
}

/** Prints the problem and its fix, never a stack trace, and exits with a meaningful code once it is written. */
export function exitWithError(e: unknown, json: boolean): Promise<never> {
  let message: string;
  let code = EXIT.failure as number;
  let kind = 'ERROR';
  if (e instanceof CliError) {
    message = e.message;
    code = e.exitCode;
  } else if (isRatchetRelayError(e)) {
    message = e.message;
    code = EXIT_BY_CODE[e.code] ?? EXIT.failure;
    kind = e.code;
  } else {
    message = e instanceof Error ? e.message : String(e);
    if (process.env.RRELAY_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  }
  if (json) process.stdout.write(`${JSON.stringify({ error: { code: kind, message } })}\n`);
  process.stderr.write(`rrelay: ${message}\n`);
  return exit(code);
}

/** Resolves once everything written to `s` so far has been handed to the OS (or can never be: a closed pipe). */
function flushed(s: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => (s.writable ? s.write('', () => resolve()) : resolve()));
}

/**
 * Exits once stdout and stderr are flushed: `process.exit` alone drops what a pipe has not taken
 * yet, and a script reading slowly would get part of the output and a success code.
 */
export async function exit(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

/** Writes to stdout; resolves once the OS has it, rejects when it cannot (a reader that went away). */
export function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(text, (e) => (e ? reject(e) : resolve())));
}

/**
 * The passphrase: $RRELAY_PASSPHRASE when set (scripts), else a prompt that does not echo. With no
 * terminal and no variable, fail with the fix rather than hang.
 */
export async function readPassphrase(opts: { confirm?: boolean } = {}): Promise<string> {
  const fromEnv = process.env.RRELAY_PASSPHRASE;
  if (fromEnv !== undefined) {
    if (fromEnv.length === 0) usage('RRELAY_PASSPHRASE is set but empty');
    return fromEnv;
  }
  if (!process.stdin.isTTY) usage('no passphrase: set RRELAY_PASSPHRASE, or run in a terminal to be asked');
  const first = await promptHidden('Passphrase: ');
  if (first.length === 0) usage('the passphrase must not be empty');
  if (opts.confirm && (await promptHidden('Repeat passphrase: ')) !== first) usage('the two passphrases differ');
  return first;
}

function promptHidden(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const muted = new Writable({ write: (_chunk, _enc, cb) => cb() });
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true, historySize: 0 });
  return new Promise((resolve) => {
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** A list under --json: one object per line (NDJSON), as `--follow` streams them; an empty list prints nothing. */
export function printJsonLines(items: readonly unknown[]): void {
  for (const x of items) printJson(x);
}

export function shortFp(fp: string): string {
  return `${fp.slice(0, 16)}…`;
}
