import { type Command, Option } from 'commander';
import { ensureDataDir, paths } from '../../node/data-dir.js';
import { EXIT, readPassphrase, usage } from '../io.js';
import { NodeService } from '../node-service.js';
import { serveRpc, stopRpc } from '../rpc.js';
import { dataDirOf, logger, openWithSettings, out, standalone, untilInterrupted } from '../command.js';
import { settingsGiven } from '../settings.js';

/** Long-running commands: the daemon, the embedded relay, the demo. */
export function registerServe(program: Command): void {
  program
    .command('daemon')
    .description('stay connected: receive, run key maintenance, and serve JSON-RPC on <data-dir>/rrelay.sock')
    .action(
      standalone(async (g) => {
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
        try {
          const me = await service.startDaemon(log);
          if (stopping) return;
          const socket = paths(dataDir).socket;
          const server = await serveRpc(service, socket, log);
          out(g, { daemon: 'running', fingerprint: me.fingerprint, socket, pid: process.pid }, `daemon running for ${me.fingerprint}\nsocket: ${socket}`);
          await interrupted;
          await stopRpc(server);
        } finally {
          // The outbox is drained (bounded) before the relays close; see NodeService.close.
          await service.close();
        }
      }),
    );

  program
    .command('relay')
    .description('serve the embedded Nostr relay on 127.0.0.1 (storage: <data-dir>/relay.db)')
    .addOption(new Option('-p, --port <port>', 'port to listen on').default('7447'))
    .option('--db <path>', 'event database (default: <data-dir>/relay.db)')
    .action(
      standalone(async (g, opts: { port: string; db?: string }) => {
        const port = Number(opts.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`--port must be 0..65535, got "${opts.port}"`);
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
    .action(
      standalone(async (g) => {
        await (await import('../demo.js')).runDemo({ json: g.json ?? false, verbose: g.verbose ?? false });
      }),
    );
}
