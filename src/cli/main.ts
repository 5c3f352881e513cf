#!/usr/bin/env node
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Command, CommanderError, Option } from 'commander';
import { defaultDataDir, ensureDataDir, paths } from '../node/data-dir.js';
import { CliError, EXIT, exitWithError, printJson, readPassphrase, shortFp, usage } from './io.js';
import { type ApiClient, type FollowEvent, LocalApi, NodeService, type ReceivedMessage, validateRelayUrl } from './api.js';
import { connectRpc, serveRpc } from './rpc.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

/** The embedded relay's address: what `rrelay relay` serves and what `init` configures when given no relay. */
export const DEFAULT_RELAY = 'ws://127.0.0.1:7447';

interface GlobalOptions {
  dataDir?: string;
  json?: boolean;
  verbose?: boolean;
}

const program = new Command()
  .name('rrelay')
  .description('ratchet-relay: end-to-end encrypted messaging over Nostr relays (PQXDH + Double Ratchet).')
  .addHelpText(
    'after',
    `
Getting started:
  rrelay relay &                  serve a local relay on ws://127.0.0.1:7447
  rrelay init                     create your identity (asks for a passphrase)
  rrelay daemon &                 stay connected; other commands then talk to it
  rrelay peers                    who has published a pre-key bundle
  rrelay send <fingerprint> "hi"  start a session from their bundle and send
  rrelay receive --follow         watch messages arrive
  rrelay demo                     see two identities do all of this

Everything is kept in an encrypted SQLite database in the data directory.

Environment:
  RRELAY_PASSPHRASE  the passphrase, for scripts (otherwise you are asked)
  RRELAY_DATA_DIR    the data directory (otherwise $XDG_DATA_HOME/rrelay)

Exit codes:
  0 ok, 1 failure, 2 bad usage or input, 3 wrong passphrase, 4 unknown contact or no
  session, 5 store busy or damaged, 75 queued but no relay accepted it yet`,
  )
  .version(pkg.version, '-V, --version', 'print the version and exit')
  .option('-d, --data-dir <dir>', 'data directory (default: $RRELAY_DATA_DIR or $XDG_DATA_HOME/rrelay)')
  .option('--json', 'machine-readable output: one JSON object per line')
  .option('-v, --verbose', 'log relay and node activity to stderr')
  .showHelpAfterError('(run `rrelay --help` for usage)')
  .configureHelp({ showGlobalOptions: true })
  .exitOverride();

function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

function dataDirOf(g: GlobalOptions): string {
  return g.dataDir ?? defaultDataDir();
}

function logger(g: GlobalOptions): (line: string) => void {
  return g.verbose ? (line) => process.stderr.write(`[rrelay] ${line}\n`) : () => {};
}

/** The daemon if one runs on this data directory, else the node opened in this process. */
async function openApi(g: GlobalOptions): Promise<ApiClient> {
  const dataDir = dataDirOf(g);
  const rpc = await connectRpc(paths(dataDir).socket);
  if (rpc) return rpc;
  const passphrase = await readPassphrase();
  const log = logger(g);
  return new LocalApi(await NodeService.open({ dataDir, passphrase, log, daemon: false }), log);
}

/** Runs one command against the API and always closes it; errors become messages and exit codes. */
function action<A extends unknown[]>(fn: (api: ApiClient, g: GlobalOptions, ...args: A) => Promise<number | void>) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const g = globals(cmd);
    let api: ApiClient | undefined;
    try {
      api = await openApi(g);
      const code = await fn(api, g, ...(args.slice(0, -1) as A));
      await api.close();
      process.exit(code ?? EXIT.ok);
    } catch (e) {
      await api?.close().catch(() => {});
      exitWithError(e, g.json ?? false);
    }
  };
}

function out(g: GlobalOptions, json: unknown, human: string): void {
  if (g.json) printJson(json);
  else process.stdout.write(`${human}\n`);
}

function name(m: { alias: string | null; from: string }): string {
  return m.alias ?? shortFp(m.from);
}

function formatMessage(m: ReceivedMessage): string {
  const when = new Date(m.sentAt).toISOString().replace('T', ' ').slice(0, 19);
  return `[${when}] ${m.group ? `[${m.group.name}] ` : ''}${name(m)}${m.trusted ? '' : ' (untrusted)'}: ${m.text}`;
}

function messageJson(m: ReceivedMessage) {
  return { id: m.id, from: m.from, alias: m.alias, text: m.text, sentAt: m.sentAt, receivedAt: m.receivedAt, trusted: m.trusted, group: m.group };
}

program
  .command('init')
  .description('create a new identity in the data directory (asks for a passphrase, or reads RRELAY_PASSPHRASE)')
  .option('-r, --relay <url...>', `relays to use (default: the embedded relay, ${DEFAULT_RELAY})`)
  .action(async (opts: { relay?: string[] }, cmd: Command) => {
    const g = globals(cmd);
    try {
      const dataDir = dataDirOf(g);
      const relays = (opts.relay ?? [DEFAULT_RELAY]).map(validateRelayUrl);
      const passphrase = await readPassphrase({ confirm: true });
      const me = await NodeService.init({ dataDir, passphrase, relays });
      out(
        g,
        { ...me, dataDir, relays },
        `Created identity ${me.fingerprint}\n  npub:   ${me.npub}\n  data:   ${dataDir}\n  relays: ${relays.join(', ')}` +
          (opts.relay ? '' : `\nNo relay given: using the embedded relay. Start it with \`rrelay relay\`.`),
      );
      process.exit(EXIT.ok);
    } catch (e) {
      exitWithError(e, g.json ?? false);
    }
  });

program
  .command('whoami')
  .description('show this identity: fingerprint and Nostr key')
  .action(
    action(async (api, g) => {
      const me = await api.call('whoami');
      out(g, me, `fingerprint: ${me.fingerprint}\nnpub:        ${me.npub}\nnostr key:   ${me.nostrPubkey}`);
    }),
  );

const relays = program.command('relays').description('manage the Nostr relays this identity uses');
relays
  .command('ls')
  .description('list relays')
  .action(
    action(async (api, g) => {
      const list = await api.call('relays');
      if (g.json) printJson(list);
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
    const r = await api.call(kind);
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
      if (g.json) return printJson(peers);
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
      if (g.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no contacts yet\n');
      for (const c of list) {
        const flags = [c.verified ? 'verified' : 'unverified', c.trusted ? 'trusted' : 'untrusted', c.keyChangedAt ? 'KEY CHANGED' : ''].filter(Boolean);
        process.stdout.write(`${c.alias ?? '-'}  ${c.fingerprint}  [${flags.join(', ')}]\n    safety number: ${c.safetyNumber}\n`);
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
  .command('send <contact> <text...>')
  .description('send a message to a contact (alias or fingerprint) or to a discovered peer (fingerprint)')
  .option('-w, --wait <seconds>', 'how long to wait for a relay to accept it', '10')
  .action(
    action(async (api, g, ref: string, words: string[], opts: { wait: string }) => {
      const wait = Number(opts.wait);
      if (!(wait >= 0)) usage('--wait takes a number of seconds');
      const sent = await api.call('send', { contact: ref, text: words.join(' '), waitMs: Math.round(wait * 1000) });
      const accepted = sent.state !== 'queued';
      out(
        g,
        sent,
        accepted
          ? `sent ${sent.id} to ${shortFp(sent.to)}: ${sent.state}, accepted by ${sent.relaysAccepted} relay(s)`
          : `queued ${sent.id}: no relay accepted it yet; it is kept and retried while a node runs (e.g. \`rrelay daemon\`)`,
      );
      return accepted ? EXIT.ok : EXIT.queued;
    }),
  );

program
  .command('messages [contact]')
  .description('the stored conversation (with one contact, or all), with the state of each sent message')
  .option('-n, --limit <n>', 'how many of the newest messages', '50')
  .action(
    action(async (api, g, ref: string | undefined, opts: { limit: string }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) usage('--limit takes a positive whole number');
      const list = await api.call('history', { contact: ref ?? null, limit });
      if (g.json) return list.forEach((m) => printJson(m));
      for (const m of list) {
        const who = m.alias ?? shortFp(m.peer);
        const when = new Date(m.sentAt).toISOString().replace('T', ' ').slice(0, 19);
        const state = m.direction === 'out' ? `  [${m.state}${m.state === 'sent' ? `, ${m.relaysAccepted} relay(s)` : ''}]` : '';
        process.stdout.write(`[${when}] ${m.direction === 'out' ? `me → ${who}` : `${who} → me`}: ${m.text}${state}\n`);
      }
    }),
  );

const invite = program.command('invite').description('meet someone through an invite handed over out of band (Bison Relay-style key exchange)');
invite
  .command('create')
  .description('make an invite: a string (or file) to give to one person; their answer completes a session')
  .option('-t, --ttl <hours>', 'how long the invite stays valid', '24')
  .option('-o, --out <file>', 'write the invite to a file instead of printing it')
  .option('--qr', 'also print the invite as a QR code (needs a wide terminal: ~170 columns)')
  .action(
    action(async (api, g, opts: { ttl: string; out?: string; qr?: boolean }) => {
      const hours = Number(opts.ttl);
      if (!(hours > 0)) usage('--ttl takes a positive number of hours');
      const r = await api.call('createInvite', { ttlMs: Math.round(hours * 3600_000) });
      if (opts.out) writeFileSync(opts.out, `${r.invite}\n`, { mode: 0o600 });
      // Byte mode, lowest error correction: an invite carries a 1568-byte ML-KEM key and needs the room.
      if (opts.qr) process.stderr.write(`${(await import('uqr')).renderUnicodeCompact(r.invite, { ecc: 'L', border: 2 })}\n`);
      const expires = new Date(r.expiresAt).toISOString();
      out(
        g,
        { ...r, file: opts.out ?? null },
        opts.out ? `invite written to ${opts.out}; valid until ${expires}` : `${r.invite}\n\nvalid until ${expires}; the key exchange completes when a node of yours is running`,
      );
    }),
  );
invite
  .command('accept <invite>')
  .description('accept an invite: the string itself, or a file holding it')
  .action(
    action(async (api, g, ref: string) => {
      const text = !ref.startsWith('rrinv') && existsSync(ref) ? readFileSync(ref, 'utf8') : ref;
      const r = await api.call('acceptInvite', { invite: text });
      out(g, { ...r, state: 'half-kx-sent' }, `invite from ${r.peer} accepted; the key exchange completes when they answer`);
    }),
  );

program
  .command('reset <contact>')
  .description("start over with a contact's ratchet: a fresh key exchange through their reset rendezvous point (contacts made by invite)")
  .option('--via <mediator>', 'send the reset through a contact you both have, who cannot read it (transitive reset)')
  .action(
    action(async (api, g, ref: string, opts: { via?: string }) => {
      const r = await api.call('resetSession', { contact: ref, via: opts.via });
      out(g, { ...r, state: 'reset-requested' }, `reset requested with ${shortFp(r.peer)}; it completes when they answer (\`rrelay kx ls\`)`);
    }),
  );

program
  .command('introduce <contact-a> <contact-b>')
  .description('as a mediator, introduce two of your contacts (met by invite): b invites a through you')
  .action(
    action(async (api, g, a: string, b: string) => {
      const r = await api.call('introduce', { a, b });
      out(g, r, `introduced ${shortFp(r.a)} and ${shortFp(r.b)}; they complete the key exchange themselves`);
    }),
  );

program
  .command('mediate <mediator> <fingerprint>')
  .description('ask a contact to introduce you to an identity it knows (e.g. a fellow group member)')
  .action(
    action(async (api, g, mediator: string, target: string) => {
      const r = await api.call('mediate', { mediator, target });
      out(g, r, `asked ${shortFp(r.mediator)} to introduce you to ${shortFp(r.target)}`);
    }),
  );

const group = program.command('group').description('group chats: an admin, a signed member list, messages fanned out over the pairwise sessions');
group
  .command('create <name>')
  .description('create a group; you are its admin')
  .action(action(async (api, g, name: string) => out(g, await api.call('groupCreate', { name }), `created group "${name}"`)));
group
  .command('invite <group> <contact>')
  .description('as admin, invite a contact (met by invite) to a group')
  .action(action(async (api, g, grp: string, contact: string) => out(g, await api.call('groupInvite', { group: grp, contact }), 'invitation sent')));
group
  .command('join <group>')
  .description('accept an invitation; you are then introduced to the members you do not know')
  .action(action(async (api, g, grp: string) => out(g, await api.call('groupJoin', { group: grp }), 'join requested from the admin')));
group
  .command('ls')
  .description('list groups (joined, or invited to)')
  .action(
    action(async (api, g) => {
      const list = await api.call('groups');
      if (g.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no groups\n');
      for (const x of list) process.stdout.write(`${x.id.slice(0, 12)}  ${x.name}${x.joined ? '' : '  (invited: rrelay group join ' + x.id.slice(0, 12) + ')'}\n`);
    }),
  );
group
  .command('members <group>')
  .description('members, and whether you have a session with each yet')
  .action(
    action(async (api, g, grp: string) => {
      const list = await api.call('groupMembers', { group: grp });
      if (g.json) return printJson(list);
      for (const m of list)
        process.stdout.write(`${m.alias ?? shortFp(m.fingerprint)}${m.admin ? ' (admin)' : ''}  ${m.reachable ? 'reachable' : `NOT YET REACHABLE (introductions tried: ${m.introductionAttempts})`}\n`);
    }),
  );
group
  .command('send <group> <text...>')
  .description('send a message to every member')
  .action(
    action(async (api, g, grp: string, words: string[]) => {
      const r = await api.call('groupSend', { group: grp, text: words.join(' ') });
      out(g, r, `sent to ${r.sent.length} member(s)` + (r.unreachable.length ? `; NOT sent to ${r.unreachable.map(shortFp).join(', ')} (no session yet: introduction pending)` : ''));
      return r.unreachable.length ? EXIT.queued : EXIT.ok;
    }),
  );

const kx = program.command('kx').description('key exchanges waiting at a rendezvous point');
kx.command('ls')
  .description('list pending key exchanges')
  .action(
    action(async (api, g) => {
      const list = await api.call('keyExchanges');
      if (g.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no pending key exchanges\n');
      for (const p of list) process.stdout.write(`${p.rv.slice(0, 16)}  ${p.role}  ${p.peer ? shortFp(p.peer) : '(waiting for an answer)'}  expires ${new Date(p.expiresAt).toISOString()}\n`);
    }),
  );
kx.command('cancel <rv>')
  .description('cancel a pending key exchange (its RV, or a prefix of at least 8 hex digits)')
  .action(
    action(async (api, g, ref: string) => {
      const r = await api.call('cancelKeyExchange', { rv: ref });
      out(g, r, `cancelled ${r.cancelled.slice(0, 16)}`);
    }),
  );

function printFollowEvent(g: GlobalOptions, e: FollowEvent): void {
  if (e.type === 'message') return g.json ? printJson(messageJson(e.message)) : void process.stdout.write(`${formatMessage(e.message)}\n`);
  if (g.json) return;
  if (e.type === 'warning') process.stderr.write(`\n*** ${e.message} ***\n\n`);
  else if (e.type === 'delivered') process.stderr.write(`(delivered to ${shortFp(e.peer)}: ${e.ids.length} message(s))\n`);
  else if (e.type === 'kx') process.stderr.write(`(key exchange with ${shortFp(e.peer)} complete)\n`);
}

program
  .command('receive')
  .description('print messages not shown before; with --follow, keep printing as they arrive')
  .option('-f, --follow', 'keep running and print new messages live (Ctrl-C to stop)')
  .action(
    action(async (api, g, opts: { follow?: boolean }) => {
      if (!opts.follow) {
        const list = await api.call('receive');
        for (const m of list) g.json ? printJson(messageJson(m)) : process.stdout.write(`${formatMessage(m)}\n`);
        if (!g.json && list.length === 0) process.stderr.write('no new messages\n');
        return;
      }
      let ended: (reason: string) => void = () => {};
      const end = new Promise<string>((resolve) => (ended = resolve));
      const stop = await api.follow((e) => (e.type === 'ended' ? ended(e.reason) : printFollowEvent(g, e)));
      process.stderr.write('following new messages (Ctrl-C to stop)\n');
      const reason = await Promise.race([untilInterrupted().then(() => null), end]);
      stop();
      if (reason !== null) throw new CliError(`${reason}; no more messages will arrive here`, EXIT.failure);
    }),
  );

function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

program
  .command('chat <contact>')
  .description('interactive chat: type a line to send it; incoming messages show live. /quit to leave')
  .action(
    action(async (api, g, ref: string) => {
      const peer = (await api.call('contacts')).find((c) => c.alias === ref || c.fingerprint.startsWith(ref.toLowerCase()));
      let rl: ReturnType<typeof createInterface> | undefined;
      const print = (line: string) => {
        process.stdout.write(`${process.stdout.isTTY ? '\r\x1b[K' : ''}${line}\n`);
        rl?.prompt(true);
      };
      const stop = await api.follow((e) => {
        if (e.type === 'message' && (!peer || e.message.from === peer.fingerprint)) print(formatMessage(e.message));
        else if (e.type === 'warning') print(`*** ${e.message} ***`);
        else if (e.type === 'delivered' && peer && e.peer === peer.fingerprint) print(`(delivered)`);
        else if (e.type === 'ended') {
          print(`*** ${e.reason}: leaving the chat ***`);
          rl?.close();
        }
      });
      // Created only now: lines typed (or piped) while the subscription was set up wait in the stream.
      rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY, historySize: 0, prompt: '> ' });
      process.stdout.write(`chatting with ${peer?.alias ?? ref}; /quit to leave\n`);
      rl.prompt();
      for await (const line of rl) {
        const text = line.trim();
        if (text === '/quit') break;
        if (text) {
          try {
            const sent = await api.call('send', { contact: ref, text, waitMs: 5000 });
            if (sent.state === 'queued') print('(queued: no relay accepted it yet)');
          } catch (e) {
            print(`error: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
        rl.prompt();
      }
      stop();
      rl.close();
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
        'relays:',
        ...s.relays.map((r) => `  ${r.url}  ${s.daemon ? (r.connected ? 'connected' : `disconnected (${r.failures} failures)`) : ''}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    }),
  );

program
  .command('daemon')
  .description('stay connected: receive, run key maintenance, and serve JSON-RPC on <data-dir>/rrelay.sock')
  .action(async (_opts: unknown, cmd: Command) => {
    const g = globals(cmd);
    try {
      const dataDir = dataDirOf(g);
      const passphrase = await readPassphrase();
      const log = (line: string) => process.stderr.write(`[${new Date().toISOString()}] ${line}\n`);
      const service = await NodeService.open({ dataDir, passphrase, log: g.verbose ? log : () => {}, daemon: true });
      const me = await service.startDaemon(log);
      const socket = paths(dataDir).socket;
      const server = await serveRpc(service, socket, log);
      out(g, { daemon: 'running', fingerprint: me.fingerprint, socket, pid: process.pid }, `daemon running for ${me.fingerprint}\nsocket: ${socket}`);
      await untilInterrupted();
      server.close();
      await service.close();
      process.exit(EXIT.ok);
    } catch (e) {
      exitWithError(e, g.json ?? false);
    }
  });

program
  .command('relay')
  .description('serve the embedded Nostr relay on 127.0.0.1 (storage: <data-dir>/relay.db)')
  .addOption(new Option('-p, --port <port>', 'port to listen on').default('7447'))
  .option('--db <path>', 'event database (default: <data-dir>/relay.db)')
  .action(async (opts: { port: string; db?: string }, cmd: Command) => {
    const g = globals(cmd);
    try {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`--port must be 0..65535, got "${opts.port}"`);
      const dataDir = dataDirOf(g);
      ensureDataDir(dataDir);
      // Loaded on demand, like the demo and the QR code: every other command starts faster without them.
      const { startEmbeddedRelay } = await import('../relay/index.js');
      const relay = await startEmbeddedRelay({ port, dbPath: opts.db ?? paths(dataDir).relayDb, log: logger(g) });
      out(g, { relay: relay.url, port: relay.port }, `relay listening on ${relay.url} (Ctrl-C to stop)`);
      await untilInterrupted();
      await relay.close();
      process.exit(EXIT.ok);
    } catch (e) {
      exitWithError(e, g.json ?? false);
    }
  });

program
  .command('demo')
  .description('two identities in temporary directories chat through an embedded relay; prints what happens')
  .action(async (_opts: unknown, cmd: Command) => {
    const g = globals(cmd);
    try {
      await (await import('./demo.js')).runDemo({ json: g.json ?? false, verbose: g.verbose ?? false });
      process.exit(EXIT.ok);
    } catch (e) {
      exitWithError(e, g.json ?? false);
    }
  });

try {
  await program.parseAsync();
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version are not errors; commander already printed what it had to say.
    process.exit(e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0 ? EXIT.ok : EXIT.usage);
  }
  exitWithError(e, false);
}
