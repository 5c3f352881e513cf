import { setFlagsFromString } from 'node:v8';

/** The global options of `rrelay` that take a value: what follows one is not the command. */
const VALUED_OPTIONS = new Set(['-d', '--data-dir', '--proxy', '--addressing']);

/** The command of an `rrelay` command line (its arguments after the script), as commander will read it. */
export function commandOf(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (VALUED_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * V8 settings for a daemon, applied before the program is loaded (main.ts): loading and
 * compiling the CLI's modules already grows the young generation, and it never shrinks back. With a growth
 * factor of 1 it stays at its first 1 MiB semi-space instead of growing to 8 MiB (Node 20) or 32 MiB
 * (Node 24) per semi-space, which an idle daemon never needs: measured in docs/operations.md,
 * "Memory". The equivalent `--max-semi-space-size=1` can only be given on node's command line.
 * Any other command keeps V8's defaults; a misread command line costs only this sizing.
 */
export function applyDaemonRuntime(args: readonly string[]): boolean {
  if (commandOf(args) !== 'daemon') return false;
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}
