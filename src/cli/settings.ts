import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { fail } from '../errors.js';
import { paths } from '../node/data-dir.js';
import { validateProxyUrl } from '../nostr/proxy.js';

/**
 * How a data directory's node connects and addresses messages: `--proxy` and `--addressing`, given
 * once and kept in `<data-dir>/settings.json` (docs/protocol.md, "Settings file"), so that every
 * later command and the daemon run the same way.
 */
export interface Settings {
  /** The SOCKS5 proxy for every relay connection, or null: direct connections. */
  proxy: string | null;
  addressing: 'private' | 'seed';
}

export const DEFAULT_SETTINGS: Settings = { proxy: null, addressing: 'private' };

export const ADDRESSING = ['private', 'seed'] as const;

const SettingsFile = z.strictObject({
  version: z.literal(1),
  proxy: z.string().nullable(),
  addressing: z.enum(ADDRESSING),
});

/** What the command line gave: `--proxy none` clears the proxy (null); an absent option is undefined. */
export function settingsGiven(opts: { proxy?: string; addressing?: string }): Partial<Settings> {
  const given: Partial<Settings> = {};
  if (opts.proxy !== undefined) given.proxy = opts.proxy === 'none' ? null : validateProxyUrl(opts.proxy);
  if (opts.addressing !== undefined) {
    if (!(ADDRESSING as readonly string[]).includes(opts.addressing)) fail('INVALID_ARGUMENT', `--addressing must be private or seed, got "${opts.addressing}"`);
    given.addressing = opts.addressing as Settings['addressing'];
  }
  return given;
}

/** The data directory's settings; the defaults when none were ever given. */
export function readSettings(dataDir: string): Settings {
  let text: string;
  try {
    text = readFileSync(paths(dataDir).settings, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ...DEFAULT_SETTINGS };
    throw e;
  }
  let parsed: z.infer<typeof SettingsFile>;
  try {
    parsed = SettingsFile.parse(JSON.parse(text));
  } catch {
    return fail('STORE', `${paths(dataDir).settings} is damaged: delete it and give --proxy and --addressing again`);
  }
  return { proxy: parsed.proxy === null ? null : validateProxyUrl(parsed.proxy), addressing: parsed.addressing };
}

/** Keeps `settings` for later commands: written whole, then renamed into place, owner-only. */
export function writeSettings(dataDir: string, settings: Settings): void {
  const path = paths(dataDir).settings;
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ version: 1, ...settings })}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

export function sameSettings(a: Settings, b: Settings): boolean {
  return a.proxy === b.proxy && a.addressing === b.addressing;
}

/** The options of a command line, as `rrelay` spells them (for the message that says how to restart the daemon). */
export function settingsArgs(s: Partial<Settings>): string {
  return [s.proxy !== undefined ? `--proxy ${s.proxy ?? 'none'}` : '', s.addressing !== undefined ? `--addressing ${s.addressing}` : ''].filter(Boolean).join(' ');
}
