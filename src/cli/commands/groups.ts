import type { Command } from 'commander';
import { EXIT, printJsonLines, shortFp } from '../io.js';
import { action, out } from '../command.js';
import { withProgress } from '../progress.js';

/** Group chats. */
export function registerGroups(program: Command): void {
  const group = program.command('group').description('group chats: an admin, a signed member list, messages fanned out over the pairwise sessions');
  group
    .command('create <name>')
    .description('create a group; you are its admin (its name must differ from those of your other groups)')
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
        if (g.json) return printJsonLines(list);
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
        if (g.json) return printJsonLines(list);
        for (const m of list)
          process.stdout.write(`${m.alias ?? shortFp(m.fingerprint)}${m.admin ? ' (admin)' : ''}  ${m.reachable ? 'reachable' : `NOT YET REACHABLE (introductions tried: ${m.introductionAttempts})`}\n`);
      }),
    );
  group
    .command('send <group> <text...>')
    .description('send a message to every member')
    .action(
      action(async (api, g, grp: string, words: string[]) => {
        const r = await withProgress(g, `sending to group ${grp}`, () => api.call('groupSend', { group: grp, text: words.join(' ') }));
        out(g, r, `sent to ${r.sent.length} member(s)` + (r.unreachable.length ? `; NOT sent to ${r.unreachable.map(shortFp).join(', ')} (no session yet: introduction pending)` : ''));
        return r.unreachable.length ? EXIT.queued : EXIT.ok;
      }),
    );
}
