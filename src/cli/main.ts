#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('rrelay')
  .description(
    'ratchet-relay: end-to-end encrypted messaging over Nostr relays.\n' +
      'Sessions start from published pre-key bundles (PQXDH with ML-KEM-1024) and run the Double Ratchet with header encryption.',
  )
  .version(pkg.version, '-V, --version', 'print the version and exit')
  .showHelpAfterError('(run `rrelay --help` for usage)');

program.parse();
