import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { type Browser, chromium } from 'playwright-core';
import WebSocket from 'ws';
import { type Running, start } from './cli.js';

/** Debian's chromium (the CI image installs it); playwright-core drives it, with no browser of its own. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Why the browser tests cannot run here (no chromium: `apt-get install chromium`), or undefined.
 * `.ci/run` installs it and sets RRELAY_REQUIRE_BROWSER=1, so that there they never skip.
 */
export function browserMissing(): string | undefined {
  if (existsSync(CHROMIUM) || process.env.RRELAY_REQUIRE_BROWSER === '1') return undefined;
  return `no ${CHROMIUM}: install Debian's chromium (apt-get install chromium) to run the web app's browser tests`;
}

/** One browser for a test file: launching one costs more than a page. Root in CI: no sandbox. */
export async function launchBrowser(t: { after(fn: () => Promise<void> | void): void }): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.after(() => browser.close());
  return browser;
}

/** A running `rrelay ui` and what it printed. */
export interface Ui {
  readonly running: Running;
  /** `http://127.0.0.1:PORT/#token=TOKEN` */
  readonly url: string;
  readonly port: number;
  readonly origin: string;
  readonly token: string;
}

/** Starts `rrelay ui` (the daemon too, when none runs) on `port` (0: any free one) and reads the URL it prints. */
export async function startUi(dataDirArgs: readonly string[], port = 0): Promise<Ui> {
  const running = await start(['ui', ...dataDirArgs, '--port', String(port), '--json'], /"ui":"[^"]+"/);
  const line = running.output().split('\n').find((l) => l.includes('"ui"'))!;
  const printed = JSON.parse(line) as { ui: string; port: number };
  const url = new URL(printed.ui);
  return { running, url: printed.ui, port: printed.port, origin: url.origin, token: /token=([0-9a-f]{64})/.exec(url.hash)![1]! };
}

/** A port free on 127.0.0.1 a moment ago: for a server that must come back on the same port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A raw `POST /api` as any client could send it (Origin and token of our choosing): the status and body. */
export function postApi(ui: Ui, opts: { token: string; origin: string }, body: object): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `http://127.0.0.1:${ui.port}/api`,
      { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${opts.token}`, Origin: opts.origin } },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** A WebSocket upgrade to /rpc: the HTTP status it was refused with, or 101 when it opened. */
export function upgradeStatus(ui: Ui, opts: { token: string; origin: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${ui.port}/rpc`, ['rrelay.v1', `bearer.${opts.token}`], { origin: opts.origin });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('open', () => {
      resolve(101);
      ws.close();
    });
    ws.once('error', (e) => reject(e));
  });
}
