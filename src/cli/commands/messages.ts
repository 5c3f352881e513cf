import { randomBytes } from 'node:crypto';
import { fail } from '../../errors.js';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { CliError, EXIT, printJsonLines, shortFp, usage, writeOut } from '../io.js';
import { ackPoints, Acks } from '../acks.js';
import { type FollowEvent, messageId, type ReceivedMessage } from '../api.js';
import type { ApiClient } from '../dispatch.js';
import { ConnectionLost } from '../rpc.js';
import { type GlobalOptions, action, out, untilInterrupted } from '../command.js';
import { withProgress } from '../progress.js';

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

/** One received message as the output shows it: a line of text, or of JSON. */
function messageLine(g: GlobalOptions, m: ReceivedMessage): string {
  return `${g.json ? JSON.stringify(messageJson(m)) : formatMessage(m)}\n`;
}

function kxFailedLine(e: Extract<FollowEvent, { type: 'kx-failed' }>): string {
  return `*** key exchange with ${e.alias ?? shortFp(e.peer)} failed: ${e.reason} ***`;
}

/** An introduction that waits for the user asks for an answer; any other change of one is told in passing. */
function requestLine(e: Extract<FollowEvent, { type: 'request' }>): string {
  const by = e.mediatorAlias ?? shortFp(e.mediator);
  const id = e.id.slice(0, 8);
  if (e.change === 'arrived') return `*** ${by} introduces ${shortFp(e.peer)}: \`rrelay kx accept ${id}\` or \`rrelay kx decline ${id}\` ***`;
  return `(introduction of ${shortFp(e.peer)} by ${by} ${e.change === 'invite' ? 'has its invite now' : e.change})`;
}

/** An invitation to a group asks for an answer; any other change of one is told in passing. */
function groupLine(e: Extract<FollowEvent, { type: 'group' }>): string {
  if (e.change === 'invited') return `*** invited to group "${e.name}": \`rrelay group join ${e.id.slice(0, 12)}\` ***`;
  return `(group "${e.name}": ${e.change === 'members' ? 'members changed' : e.change})`;
}

/** Prints an event of `follow`; a message is acknowledged once its line was written. */
function printFollowEvent(g: GlobalOptions, e: FollowEvent, acks: Acks): void {
  if (e.type === 'message') return void writeOut(messageLine(g, e.message)).then(() => acks.wrote(e.ackUpTo), () => {});
  if (g.json) return;
  if (e.type === 'warning') process.stderr.write(`\n*** ${e.message} ***\n\n`);
  else if (e.type === 'delivered') process.stderr.write(`(delivered to ${shortFp(e.peer)}: ${e.ids.length} message(s))\n`);
  else if (e.type === 'kx') process.stderr.write(`(key exchange with ${e.alias ?? shortFp(e.peer)} complete)\n`);
  else if (e.type === 'refused') process.stderr.write(`*** ${e.alias ?? shortFp(e.peer)} refused our ${e.what}: ${e.reason} ***\n`);
  else if (e.type === 'failed') process.stderr.write(`*** ${failedLine(e)} ***\n`);
  else if (e.type === 'kx-failed') process.stderr.write(`${kxFailedLine(e)}\n`);
  else if (e.type === 'request') process.stderr.write(`${requestLine(e)}\n`);
  else if (e.type === 'group') process.stderr.write(`${groupLine(e)}\n`);
}

function failedLine(e: Extract<FollowEvent, { type: 'failed' }>): string {
  return `${e.ids.length} message(s) to ${shortFp(e.peer)} failed: ${e.reason}`;
}

/** A sent message's state as `messages` shows it. */
function stateOf(m: { state: string; relaysAccepted: number; failure: string | null }): string {
  if (m.state === 'sent') return `sent, ${m.relaysAccepted} relay(s)`;
  if (m.state === 'failed') return `failed: ${m.failure ?? 'no reason recorded'}`;
  return m.state;
}

/**
 * `send`, where the daemon going away mid-call leaves the outcome unknown: its own exit code, and how
 * to find out and retry safely (the same id sends at most once).
 */
async function sendOnce(api: ApiClient, p: { contact: string; text: string; waitMs: number; id: string }) {
  try {
    return await api.call('send', p);
  } catch (e) {
    if (!(e instanceof ConnectionLost)) throw e;
    throw new CliError(
      `the daemon went away before answering: message ${p.id} may be stored and queued, or not. ` +
        `See \`rrelay messages\`; sending again with \`--id ${p.id}\` sends it at most once`,
      EXIT.unknownOutcome,
    );
  }
}

/**
 * The text of `send`: its words, or stdin for `-` or `--stdin`, as signal-cli does. The newline that
 * `echo` adds is dropped, once; an empty message is refused before anything is sent.
 */
async function messageText(words: string[], stdin: boolean): Promise<string> {
  const fromStdin = stdin || (words.length === 1 && words[0] === '-');
  if (stdin && words.length > 0) usage('give the message as words or with --stdin, not both');
  if (!fromStdin) return words.length > 0 ? words.join(' ') : usage('no message: give its text, or `-` (or --stdin) to read it from stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  return text.length > 0 ? text : usage('refusing to send an empty message: stdin had none');
}

/**
 * Whom `chat` talks to: a contact, or a discovered peer (its fingerprint), whose first message makes
 * it a contact. Anyone else fails as `send` would, before the chat opens.
 */
async function chatPeer(api: ApiClient, ref: string): Promise<{ fingerprint: string; alias: string | null }> {
  const lower = ref.toLowerCase();
  const match = (c: { fingerprint: string; alias: string | null }) => c.alias === ref || (/^[0-9a-f]{8,64}$/.test(lower) && c.fingerprint.startsWith(lower));
  const contact = (await api.call('contacts')).find(match);
  if (contact) return contact;
  return (await api.call('peers')).find(match) ?? fail('NOT_FOUND', `no contact or discovered bundle matches "${ref}": see \`rrelay contacts ls\` and \`rrelay peers\``);
}

/** Sending and reading messages: send, messages, receive, chat. */
export function registerMessages(program: Command): void {
  program
    .command('send <contact> [text...]')
    .description('send a message to a contact (alias or fingerprint) or to a discovered peer (fingerprint); the text "-" (or --stdin) reads it from stdin')
    .option('--stdin', 'read the message from stdin (one trailing newline is dropped)')
    .option('-w, --wait <seconds>', 'how long to wait for a relay to accept it', '10')
    .option('--id <hex>', 'the message id (32 hex digits; default: a random one): sending again with the same id sends at most once')
    .action(
      action(async (api, g, ref: string, words: string[], opts: { wait: string; id?: string; stdin?: boolean }) => {
        const text = await messageText(words, opts.stdin ?? false);
        const wait = Number(opts.wait);
        if (!(wait >= 0)) usage('--wait takes a number of seconds');
        const id = opts.id === undefined ? randomBytes(16).toString('hex') : opts.id.toLowerCase();
        if (!messageId.safeParse(id).success) usage('--id takes a message id: 32 hex digits (16 random bytes)');
        const sent = await withProgress(g, `sending to ${ref}`, () => sendOnce(api, { contact: ref, text, waitMs: Math.round(wait * 1000), id }));
        if (sent.state === 'failed') throw new CliError(`message ${sent.id} failed: ${sent.failure ?? 'no reason recorded'}`, EXIT.failure);
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
        if (g.json) return printJsonLines(list);
        for (const m of list) {
          const who = m.alias ?? shortFp(m.peer);
          const when = new Date(m.sentAt).toISOString().replace('T', ' ').slice(0, 19);
          const state = m.direction === 'out' ? `  [${stateOf(m)}]` : '';
          process.stdout.write(`[${when}] ${m.direction === 'out' ? `me → ${who}` : `${who} → me`}: ${m.text}${state}\n`);
        }
      }),
    );


  program
    .command('receive')
    .description('print messages not shown before; with --follow, keep printing as they arrive')
    .option('-f, --follow', 'keep running and print new messages live (Ctrl-C to stop)')
    .action(
      action(async (api, g, opts: { follow?: boolean }) => {
        if (!opts.follow) {
          const list = await api.call('receive');
          // Marked read only as far as stdout took the lines: a reader that went away gets the rest next time.
          const writes = await Promise.allSettled(list.map((m) => writeOut(messageLine(g, m))));
          const failed = writes.findIndex((w) => w.status === 'rejected');
          const written = failed < 0 ? list.length : failed;
          if (written > 0) await api.call('ack', { upTo: ackPoints(list.map((m) => m.seq))[written - 1]! });
          if (failed >= 0) throw new CliError(`stdout closed after ${written} of ${list.length} messages; the rest stay unread`, EXIT.failure);
          if (!g.json && list.length === 0) process.stderr.write('no new messages\n');
          return;
        }
        let ended: (reason: string) => void = () => {};
        const end = new Promise<string>((resolve) => (ended = resolve));
        const acks = new Acks((upTo) => api.call('ack', { upTo }));
        const stop = await api.follow((e) => (e.type === 'ended' ? ended(e.reason) : printFollowEvent(g, e, acks)));
        process.stderr.write('following new messages (Ctrl-C to stop)\n');
        const reason = await Promise.race([untilInterrupted().then(() => null), end]);
        stop();
        await writeOut('').catch(() => {}); // the lines written so far, then their acknowledgements
        await acks.settled();
        if (reason !== null) throw new CliError(`${reason}; no more messages will arrive here`, EXIT.failure);
      }),
    );


  program
    .command('chat <contact>')
    .description('interactive chat: type a line to send it; incoming messages show live. /quit to leave')
    .action(
      action(async (api, g, ref: string) => {
        const peer = await chatPeer(api, ref);
        let rl: ReturnType<typeof createInterface> | undefined;
        // Input that ended (a pipe) closes readline, and Node 24 throws on a prompt after that.
        let inputOpen = false;
        const prompt = (preserveCursor?: boolean) => {
          if (inputOpen) rl?.prompt(preserveCursor);
        };
        const print = (line: string) => {
          const written = writeOut(`${process.stdout.isTTY ? '\r\x1b[K' : ''}${line}\n`);
          written.catch(() => {}); // stdout gone: nothing more to show, and nothing acknowledged
          prompt(true);
          return written;
        };
        const acks = new Acks((upTo) => api.call('ack', { upTo }));
        // A message from someone else is not shown here: it, and everything after it, stays unread for `receive`.
        let skipped = false;
        const stop = await api.follow((e) => {
          if (e.type === 'message' && e.message.from !== peer.fingerprint) skipped = true;
          else if (e.type === 'message') void print(formatMessage(e.message)).then(() => !skipped && acks.wrote(e.ackUpTo), () => {});
          else if (e.type === 'warning') print(`*** ${e.message} ***`);
          else if (e.type === 'refused') print(`*** ${e.alias ?? shortFp(e.peer)} refused our ${e.what}: ${e.reason} ***`);
          else if (e.type === 'failed' && e.peer === peer.fingerprint) print(`*** ${failedLine(e)} ***`);
          else if (e.type === 'kx-failed') print(kxFailedLine(e));
          else if (e.type === 'request') print(requestLine(e));
          else if (e.type === 'group') print(groupLine(e));
          else if (e.type === 'delivered' && e.peer === peer.fingerprint) print(`(delivered)`);
          else if (e.type === 'ended') {
            print(`*** ${e.reason}: leaving the chat ***`);
            rl?.close();
          }
        });
        // Created only now: lines typed (or piped) while the subscription was set up wait in the stream.
        rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY, historySize: 0, prompt: '> ' });
        inputOpen = true;
        rl.once('close', () => (inputOpen = false));
        process.stdout.write(`chatting with ${peer.alias ?? ref}; /quit to leave\n`);
        prompt();
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
          prompt();
        }
        stop();
        await writeOut('').catch(() => {});
        await acks.settled();
        rl.close();
      }),
    );
}
