import type { Command } from 'commander';
import { EXIT, printJson, printJsonLines, readPassphrase } from '../io.js';
import { NodeService, validateRelayUrl } from '../node-service.js';
import { action, DEFAULT_RELAY, dataDirOf, out, standalone } from '../command.js';
import { readSettings, settingsGiven, writeSettings } from '../settings.js';
import { checkNickname, MAX_NICKNAME_CHARS } from '../../kx/nickname.js';
import { withProgress } from '../progress.js';

/** What `--help` says of a nickname, in `init --name` and `nickname`. */
const NICKNAME_HELP =
  `the name your invites (and your answers to invites) carry: whoever completes a key exchange with you names you by it, ` +
  `unless they already named you or that name is taken there (then NAME-2, NAME-3, …). ` +
  `1 to ${MAX_NICKNAME_CHARS} characters, no surrounding spaces, no control, invisible or text-direction characters, and not only hex digits`;

/** Identity, relays, the bundle, peers, contacts and status. */
export function registerSetup(program: Command): void {
  program
    .command('init')
    .description('create a new identity in the data directory (asks for a passphrase, or reads RRELAY_PASSPHRASE)')
    .option('-r, --relay <url...>', `relays to use (default: the embedded relay, ${DEFAULT_RELAY})`)
    .option('-n, --name <nickname>', `your nickname: ${NICKNAME_HELP} (change it with \`rrelay nickname\`)`)
    .action(
      standalone(async (g, opts: { relay?: string[]; name?: string }) => {
        const dataDir = dataDirOf(g);
        const relays = (opts.relay ?? [DEFAULT_RELAY]).map(validateRelayUrl);
        if (opts.name !== undefined) checkNickname(opts.name); // before the passphrase is asked for
        const given = settingsGiven(g);
        const passphrase = await readPassphrase({ confirm: true });
        const me = await NodeService.init({ dataDir, passphrase, relays, ...(opts.name === undefined ? {} : { nickname: opts.name }) });
        if (Object.keys(given).length > 0) writeSettings(dataDir, { ...readSettings(dataDir), ...given });
        out(
          g,
          { ...me, dataDir, relays },
          `Created identity ${me.fingerprint}\n  npub:   ${me.npub}\n  name:   ${me.nickname ?? '(none: set one with `rrelay nickname <name>`)'}\n  data:   ${dataDir}\n  relays: ${relays.join(', ')}` +
            (opts.relay ? '' : `\nNo relay given: using the embedded relay. Start it with \`rrelay relay\`.`),
        );
      }),
    );

  program
    .command('whoami')
    .description('show this identity: fingerprint, Nostr key and nickname')
    .action(
      action(async (api, g) => {
        const me = await api.call('whoami');
        out(g, me, `fingerprint: ${me.fingerprint}\nnpub:        ${me.npub}\nnostr key:   ${me.nostrPubkey}\nnickname:    ${me.nickname ?? '(none)'}`);
      }),
    );

  program
    .command('nickname [name]')
    .description(`show or set your nickname ("-" removes it): ${NICKNAME_HELP}. Invites made before keep the name they carry`)
    .action(
      action(async (api, g, name: string | undefined) => {
        const me = name === undefined ? await api.call('whoami') : await api.call('setNickname', { nickname: name === '-' ? null : name });
        out(g, { nickname: me.nickname }, me.nickname === null ? 'no nickname: invites carry none' : `nickname: ${me.nickname}`);
      }),
    );

  const relays = program.command('relays').description('manage the Nostr relays this identity uses');
  relays
    .command('ls')
    .description('list relays')
    .action(
      action(async (api, g) => {
        const list = await api.call('relays');
        if (g.json) printJsonLines(list);
        else process.stdout.write(list.length ? `${list.map((r) => r.url).join('\n')}\n` : 'no relays: add one with `rrelay relays add <ws-url>`\n');
      }),
    );
  relays
    .command('add <url>')
    .description('add a relay (ws:// or wss://); a running daemon connects to it at once')
    .action(
      action(async (api, g, url: string) => {
        const r = await api.call('addRelay', { url });
        out(g, r, r.added ? `added ${r.url}` : `${r.url} was already configured`);
      }),
    );
  relays
    .command('rm <url>')
    .description('remove a relay; a running daemon drops its connection at once')
    .action(
      action(async (api, g, url: string) => {
        const r = await api.call('removeRelay', { url });
        out(g, r, `removed ${r.url}`);
      }),
    );

  function publishAction(kind: 'publish' | 'unpublish') {
    return action(async (api, g) => {
      const r = await withProgress(g, `${kind === 'publish' ? 'publishing' : 'unpublishing'} the bundle`, () => api.call(kind));
      const ok = r.pending === 0;
      out(g, { [kind === 'publish' ? 'published' : 'unpublished']: ok, pending: r.pending }, ok ? `${kind}ed` : `${kind} queued: no relay has accepted it yet`);
      return ok ? EXIT.ok : EXIT.queued;
    });
  }
  program.command('publish').description('publish the pre-key bundle now, so peers can start sessions').action(publishAction('publish'));
  program.command('unpublish').description('replace the bundle on the relays with an empty one').action(publishAction('unpublish'));

  program
    .command('peers')
    .description('list identities whose pre-key bundles were discovered on the relays')
    .action(
      action(async (api, g) => {
        const peers = await api.call('peers');
        if (g.json) return printJsonLines(peers);
        if (peers.length === 0) return void process.stdout.write('no bundles discovered yet\n');
        for (const p of peers)
          process.stdout.write(`${p.fingerprint}  ${p.alias ?? ''}${p.isContact ? ' (contact)' : ''}  published ${new Date(p.publishedAt).toISOString()}\n`);
      }),
    );

  const contacts = program.command('contacts').description('list and manage contacts');
  contacts
    .command('ls')
    .description('list contacts with their safety numbers')
    .action(
      action(async (api, g) => {
        const list = await api.call('contacts');
        if (g.json) return printJsonLines(list);
        if (list.length === 0) return void process.stdout.write('no contacts yet\n');
        for (const c of list) {
          const flags = [c.verified ? 'verified' : 'unverified', c.trusted ? 'trusted' : 'untrusted', c.keyChangedAt ? 'KEY CHANGED' : ''].filter(Boolean);
          process.stdout.write(`${c.alias ?? '-'}  ${c.fingerprint}  [${flags.join(', ')}]\n    met: ${c.met?.text ?? 'not recorded'}\n    safety number: ${c.safetyNumber}\n`);
        }
      }),
    );
  contacts
    .command('alias <contact> <alias>')
    .description('give a contact a short name (use "-" to remove it)')
    .action(
      action(async (api, g, ref: string, alias: string) => {
        const c = await api.call('setAlias', { contact: ref, alias: alias === '-' ? null : alias });
        out(g, c, `${c.fingerprint} is now ${c.alias ?? '(no alias)'}`);
      }),
    );
  contacts
    .command('verify <contact>')
    .description('mark a contact verified after comparing safety numbers out of band')
    .option('--undo', 'mark unverified')
    .action(
      action(async (api, g, ref: string, opts: { undo?: boolean }) => {
        const c = await api.call('setVerified', { contact: ref, verified: !opts.undo });
        out(g, c, `${c.alias ?? c.fingerprint} is ${c.verified ? 'verified' : 'unverified'}`);
      }),
    );
  contacts
    .command('trust <contact>')
    .description('trust a contact (also acknowledges a changed identity key)')
    .option('--undo', 'stop trusting')
    .action(
      action(async (api, g, ref: string, opts: { undo?: boolean }) => {
        const c = await api.call('setTrusted', { contact: ref, trusted: !opts.undo });
        out(g, c, `${c.alias ?? c.fingerprint} is ${c.trusted ? 'trusted' : 'untrusted'}`);
      }),
    );

  program
    .command('status')
    .description('identity, relays, outbox and pre-key pool')
    .action(
      action(async (api, g) => {
        const s = await api.call('status');
        if (g.json) return printJson(s);
        const lines = [
          `identity:   ${s.whoami.fingerprint}`,
          `daemon:     ${s.daemon ? 'running' : 'not running (this command opened the store itself)'}`,
          `published:  ${s.published ? 'yes' : 'no'}; one-time pre-keys: ${s.oneTimePreKeys}`,
          `outbox:     ${s.outboxPending} pending`,
          `contacts:   ${s.contacts}; discovered peers: ${s.peers}`,
          `addressing: ${s.addressing === 'private' ? 'private (one-time signers, mailbox tags, sealed first messages)' : 'seed (signed by this node, recipient in a p tag: relays see who writes to whom)'}`,
          `proxy:      ${s.proxy ?? 'none (relays see this machine’s address)'}`,
          'relays:',
          ...s.relays.map((r) => `  ${r.url}  ${s.daemon ? (r.connected ? 'connected' : `disconnected (${r.failures} failures${r.error ? `; ${r.error}` : ''})`) : ''}`),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      }),
    );
}
