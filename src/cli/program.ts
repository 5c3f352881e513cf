import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { registerGroups } from './commands/groups.js';
import { registerKeyExchange } from './commands/key-exchange.js';
import { registerMessages } from './commands/messages.js';
import { registerServe } from './commands/serve.js';
import { registerSetup } from './commands/setup.js';
import { EXIT, exit, exitWithError } from './io.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('rrelay')
  .description('ratchet-relay: end-to-end encrypted messaging over Nostr relays (PQXDH + Double Ratchet).')
  .addHelpText(
    'after',
    `
Getting started:
  rrelay relay &                  serve a local relay on ws://127.0.0.1:7447
  rrelay init --name alice        create your identity; invites carry your name
  rrelay daemon &                 stay connected; other commands then talk to it
  rrelay peers                    who has published a pre-key bundle
  rrelay send <fingerprint> "hi"  start a session from their bundle and send
  rrelay receive --follow         watch messages arrive
  rrelay ui                       the same in a browser: prints http://127.0.0.1:7448/#token=...
  rrelay demo                     see two identities do all of this (--ui: each in its web app)

Everything is kept in an encrypted SQLite database in the data directory.

Privacy: each relay gets two connections, one for what names this identity (its
inbox, its bundle) and one for everything else. Without a proxy a relay still sees
your IP address on both; with --proxy through Tor each connection takes its own
circuit. --proxy and --addressing, given once, are kept in <data-dir>/settings.json;
a running daemon must be restarted to change them (docs/protocol.md, "Connections").

Environment:
  RRELAY_PASSPHRASE  the passphrase, for scripts (otherwise you are asked)
  RRELAY_DATA_DIR    the data directory (otherwise $XDG_DATA_HOME/rrelay)
  RRELAY_SCRYPT_LOG2N  scrypt cost of a store made by init, log2 N (default 17)

Exit codes:
  0 ok, 1 failure, 2 bad usage or input (a message over 64 KiB, a missing invite
  file), 3 wrong passphrase, 4 unknown contact or group, or no session, or no identity in the
  data directory (run \`rrelay init\`), 5 store busy or damaged (or a daemon
  running with other --proxy or --addressing), 75 queued but no relay accepted it
  yet, 76 outcome unknown: the daemon went away during send (see \`rrelay messages\`; retry with the
  same --id to send at most once)`,
  )
  .version(pkg.version, '-V, --version', 'print the version and exit')
  .option('-d, --data-dir <dir>', 'data directory (default: $RRELAY_DATA_DIR or $XDG_DATA_HOME/rrelay)')
  .option('--json', 'machine-readable output (NDJSON): one JSON object per line, a list one line per item')
  .option('-v, --verbose', 'log relay and node activity to stderr')
  .option('--proxy <url>', 'reach relays only through this SOCKS5 proxy: socks5h://host:port (Tor: socks5h://127.0.0.1:9050), or `none` for direct connections; kept for later commands and the daemon')
  .addOption(
    new Option('--addressing <mode>', 'private (default): messages under rotating mailbox tags, signed by throwaway keys; seed: the seed format (p tag, signed by this node\'s key) for peers that speak only that; kept for later commands and the daemon').choices([
      'private',
      'seed',
    ]),
  )
  .showHelpAfterError('(run `rrelay --help` for usage)')
  .configureHelp({ showGlobalOptions: true })
  .exitOverride();

registerSetup(program);
registerMessages(program);
registerKeyExchange(program);
registerGroups(program);
registerServe(program);

// A reader that went away (`rrelay messages | head`) fails the writes, whose callbacks say so: not a crash.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

try {
  await program.parseAsync();
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version are not errors; commander already printed what it had to say.
    await exit(e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0 ? EXIT.ok : EXIT.usage);
  }
  await exitWithError(e, false);
}
