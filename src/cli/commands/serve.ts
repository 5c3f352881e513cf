import { type Command, Option } from 'commander';
import { ensureDataDir, paths } from '../../node/data-dir.js';
import { CliError, EXIT, readPassphrase, usage } from '../io.js';
import { NodeService } from '../node-service.js';
import { connectRpc, type RpcClient, serveRpc, stopRpc } from '../rpc.js';
import { dataDirOf, type GlobalOptions, logger, openWithSettings, out, sameAsDaemon, standalone, untilInterrupted } from '../command.js';
import { settingsGiven } from '../settings.js';

/** The web app's port when `rrelay ui` is given none. */
export const DEFAULT_UI_PORT = 7448;

function portOf(given: string): number {
  const port = Number(given);
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`--port must be 0..65535, got "${given}"`);
  return port;
}

/** What `rrelay ui` prints: the URL (with its token), or the --json line of docs/protocol.md, "Web app". */
function printUi(g: GlobalOptions, ui: { url: string; port: number }, daemon: 'started' | 'running'): void {
  out(g, { ui: ui.url, port: ui.port, daemon }, ui.url);
}

/**
 * `rrelay daemon`, and `rrelay ui` when no daemon runs (`uiPort`: it also serves the web app, which
 * it holds until it stops): stays connected, serves JSON-RPC on the socket, until SIGINT or SIGTERM.
 */
async function runDaemon(g: GlobalOptions, uiPort?: number): Promise<void> {
  // Listened for from the start: a signal while the daemon starts stops it once started, never mid-way.
  let stopping = false;
  const interrupted = untilInterrupted().then(() => {
    stopping = true;
    // A second signal does not wait for the outbox: what is queued stays in the store for the next start.
    const now = () => process.exit(EXIT.failure);
    process.once('SIGINT', now);
    process.once('SIGTERM', now);
  });
  const dataDir = dataDirOf(g);
  const given = settingsGiven(g);
  const passphrase = await readPassphrase();
  const log = (line: string) => process.stderr.write(`[${new Date().toISOString()}] ${line}\n`);
  const service = await openWithSettings(dataDir, given, (settings) => NodeService.open({ dataDir, passphrase, log: g.verbose ? log : () => {}, daemon: true, settings }));
  // Loaded here, as the relay is: every other command starts faster without the web server.
  const { DEFAULT_ASSETS, WebUi } = await import('../web.js');
  const web = new WebUi({ service, dataDir, assets: process.env.RRELAY_WEB_DIR ?? DEFAULT_ASSETS, log });
  service.ui = web;
  try {
    const me = await service.startDaemon(log);
    if (stopping) return;
    // Before the socket opens: a port in use fails `rrelay ui` before any client came to rely on it.
    const ui = uiPort === undefined ? undefined : await web.acquire(uiPort);
    const socket = paths(dataDir).socket;
    const server = await serveRpc(service, socket, log);
    const running = `daemon running for ${me.fingerprint}\nsocket: ${socket}`;
    if (ui) {
      printUi(g, ui, 'started');
      process.stderr.write(`${running}\nserving the web app on 127.0.0.1:${ui.port} (Ctrl-C to stop, the daemon with it)\n`);
    } else out(g, { daemon: 'running', fingerprint: me.fingerprint, socket, pid: process.pid }, running);
    await interrupted;
    await stopRpc(server);
  } finally {
    await web.close();
    // The outbox is drained (bounded) before the relays close; see NodeService.close.
    await service.close();
  }
}

/** `rrelay ui` with a daemon running: it serves the web app while this connection holds it. */
async function uiThroughDaemon(g: GlobalOptions, rpc: RpcClient, port: number): Promise<void> {
  try {
    await sameAsDaemon(rpc, settingsGiven(g));
    printUi(g, await rpc.call('serveUi', { port }), 'running');
    process.stderr.write('served by the running daemon (Ctrl-C to stop)\n');
    const daemonStopped = await Promise.race([untilInterrupted().then(() => false), rpc.closed.then(() => true)]);
    if (daemonStopped) throw new CliError('the daemon stopped: the web app is no longer served', EXIT.failure);
  } finally {
    await rpc.close();
  }
}

/** Long-running commands: the daemon, the web app, the embedded relay, the demo. */
export function registerServe(program: Command): void {
  program
    .command('daemon')
    .description('stay connected: receive, run key maintenance, and serve JSON-RPC on <data-dir>/rrelay.sock')
    .action(standalone((g) => runDaemon(g)));

  program
    .command('ui')
    .description('serve the web app on 127.0.0.1 and print its URL: through the running daemon, or as the daemon when none runs')
    .addOption(new Option('-p, --port <port>', 'port on 127.0.0.1 (0: any free port)').default(String(DEFAULT_UI_PORT)))
    .addHelpText(
      'after',
      `
Open the printed URL (http://127.0.0.1:PORT/#token=...) in a browser. The token in it is secret:
whoever has it can read and send as this identity. It is kept in <data-dir>/ui-token, so the
same URL works after a restart; delete that file to make a new one. The app is served on
127.0.0.1 only, to pages of its own origin.

With a daemon running on the data directory, the daemon serves the app while this command runs;
otherwise this command is the daemon (as \`rrelay daemon\`) and serves it too. Ctrl-C stops it.
Exit 2 when the port is in use (choose another with --port).`,
    )
    .action(
      standalone(async (g, opts: { port: string }) => {
        const port = portOf(opts.port);
        const rpc = await connectRpc(paths(dataDirOf(g)).socket);
        await (rpc ? uiThroughDaemon(g, rpc, port) : runDaemon(g, port));
      }),
    );

  program
    .command('relay')
    .description('serve the embedded Nostr relay on 127.0.0.1 (storage: <data-dir>/relay.db)')
    .addOption(new Option('-p, --port <port>', 'port to listen on').default('7447'))
    .option('--db <path>', 'event database (default: <data-dir>/relay.db)')
    .action(
      standalone(async (g, opts: { port: string; db?: string }) => {
        const port = portOf(opts.port);
        const dataDir = dataDirOf(g);
        ensureDataDir(dataDir);
        // Loaded on demand, like the demo and the QR code: every other command starts faster without them.
        const { startEmbeddedRelay } = await import('../../relay/index.js');
        const relay = await startEmbeddedRelay({ port, dbPath: opts.db ?? paths(dataDir).relayDb, log: logger(g) });
        out(g, { relay: relay.url, port: relay.port }, `relay listening on ${relay.url} (Ctrl-C to stop)`);
        await untilInterrupted();
        await relay.close();
      }),
    );

  program
    .command('demo')
    .description('two identities in temporary directories chat through an embedded relay; prints what happens')
    .option('--ui', "instead, keep them running, met by an invite, each with its web app (alice's on --port, bob's on the next), until Ctrl-C")
    .addOption(new Option('-p, --port <port>', "with --ui: alice's web app's port (0: any free ports)").default(String(DEFAULT_UI_PORT)))
    .action(
      standalone(async (g, opts: { ui?: boolean; port: string }) => {
        const demo = await import('../demo.js');
        const common = { json: g.json ?? false, verbose: g.verbose ?? false };
        if (opts.ui) await demo.runUiDemo({ ...common, port: portOf(opts.port), stop: untilInterrupted() });
        else await demo.runDemo(common);
      }),
    );
}
