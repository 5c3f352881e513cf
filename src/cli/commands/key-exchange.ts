import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { printJsonLines, shortFp, usage } from '../io.js';
import { action, out } from '../command.js';
import { withProgress } from '../progress.js';
import { qrFile, qrForTerminal, qrFormat } from '../qr.js';

/** `invite accept`'s argument when it is no invite string: a file holding one, which must be there. */
function readInviteFile(file: string): string {
  if (!existsSync(file)) usage(`no file ${file}: give an invite (a string starting with rrinv) or a file that holds one`);
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    return usage(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Invites, resets, introductions, and the pending key exchanges. */
export function registerKeyExchange(program: Command): void {
  const invite = program.command('invite').description('meet someone through an invite handed over out of band (Bison Relay-style key exchange)');
  invite
    .command('create')
    .description('make an invite: a string (or file) to give to one person; their answer completes a session')
    .option('-t, --ttl <hours>', 'how long the invite stays valid', '24')
    .option('-o, --out <file>', 'write the invite to a file instead of printing it')
    .option('--qr [file]', 'also the invite as a QR code: on stderr when the terminal is wide enough (~180 columns), or written to FILE.svg or FILE.png')
    .action(
      action(async (api, g, opts: { ttl: string; out?: string; qr?: boolean | string }) => {
        const hours = Number(opts.ttl);
        if (!(hours > 0)) usage('--ttl takes a positive number of hours');
        const qrPath = typeof opts.qr === 'string' ? opts.qr : null;
        const format = qrPath === null ? null : (qrFormat(qrPath) ?? usage(`--qr ${qrPath}: the file must end in .svg or .png`));
        const r = await api.call('createInvite', { ttlMs: Math.round(hours * 3600_000) });
        if (opts.out) writeFileSync(opts.out, `${r.invite}\n`, { mode: 0o600 });
        if (qrPath !== null && format !== null) writeFileSync(qrPath, qrFile(r.invite, format), { mode: 0o600 });
        else if (opts.qr) process.stderr.write(`${qrForTerminal(r.invite, process.stderr.columns)}\n`);
        const expires = new Date(r.expiresAt).toISOString();
        const qrNote = qrPath ? `QR code written to ${qrPath}; ` : '';
        if (opts.out) return out(g, { ...r, file: opts.out }, `invite written to ${opts.out}; ${qrNote}valid until ${expires}`);
        // stdout is the invite alone, so that `INVITE=$(rrelay invite create)` holds just it.
        out(g, { ...r, file: null }, r.invite);
        if (!g.json) process.stderr.write(`${qrNote}valid until ${expires}; the key exchange completes when a node of yours is running\n`);
      }),
    );
  invite
    .command('accept <invite>')
    .description('accept an invite: the string itself, or a file holding it')
    .action(
      action(async (api, g, ref: string) => {
        const text = ref.startsWith('rrinv') ? ref : readInviteFile(ref);
        const r = await withProgress(g, 'answering the invite', () => api.call('acceptInvite', { invite: text }));
        const from = r.nickname === null ? r.peer : `"${r.nickname}" (${r.peer})`;
        out(g, { ...r, state: 'half-kx-sent' }, `invite from ${from} accepted; the key exchange completes when they answer`);
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

  const kx = program.command('kx').description('key exchanges waiting at a rendezvous point');
  kx.command('ls')
    .description('list pending key exchanges')
    .action(
      action(async (api, g) => {
        const list = await api.call('keyExchanges');
        if (g.json) return printJsonLines(list);
        if (list.length === 0) return void process.stdout.write('no pending key exchanges\n');
        for (const p of list) process.stdout.write(`${p.rv.slice(0, 16)}  ${p.role}  ${p.peer ? shortFp(p.peer) : '(waiting for an answer)'}  expires ${new Date(p.expiresAt).toISOString()}\n`);
      }),
    );
  kx.command('requests')
    .description("introductions waiting for your consent (nobody you asked, and no admin of a group you joined, made them)")
    .action(
      action(async (api, g) => {
        const list = await api.call('kxRequests');
        if (g.json) return printJsonLines(list);
        if (list.length === 0) return void process.stdout.write('no introductions wait for you\n');
        for (const r of list)
          process.stdout.write(
            `${r.id.slice(0, 12)}  ${r.mediatorAlias ?? shortFp(r.mediator)} introduces ${shortFp(r.peer)}  expires ${new Date(r.expiresAt).toISOString()}\n`,
          );
      }),
    );
  kx.command('accept <id>')
    .description('consent to an introduction (its id, or a prefix of at least 6 hex digits): the key exchange goes ahead; the contact is not trusted')
    .action(
      action(async (api, g, id: string) => {
        const r = await api.call('kxAccept', { id });
        out(g, r, `accepted: the key exchange with ${shortFp(r.peer)} goes ahead through ${r.mediatorAlias ?? shortFp(r.mediator)}`);
      }),
    );
  kx.command('decline <id>')
    .description('decline an introduction (its id, or a prefix of at least 6 hex digits); the mediator is told')
    .action(
      action(async (api, g, id: string) => {
        const r = await api.call('kxDecline', { id });
        out(g, r, `declined the introduction of ${shortFp(r.peer)} by ${r.mediatorAlias ?? shortFp(r.mediator)}`);
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
}
