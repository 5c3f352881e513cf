// Makes docs/screenshots/*.png: the web app's main views, with three identities (alice, bob, carol)
// on a local relay, as alice sees them. Not a test; run after `npm run build`:
//   node scripts/screenshots.mjs
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { json, rrelay } from '../dist/test/support/cli.js';
import { eventually } from '../dist/test/support/nodes.js';
import { startTestRelay } from '../dist/test/support/relay.js';
import { launchBrowser, startUi } from '../dist/test/support/web.js';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'screenshots');
mkdirSync(out, { recursive: true });
const root = mkdtempSync(join(tmpdir(), 'rrelay-shots-'));
const cleanup = [];
const after = (fn) => cleanup.unshift(fn);

const ok = async (args) => {
  const r = await rrelay([...args, '--json']);
  if (r.code !== 0) throw new Error(`rrelay ${args.join(' ')}: ${r.stderr}`);
  return r.json[0];
};

try {
  const relay = await startTestRelay();
  after(() => relay.stop());
  const dir = (name) => ['--data-dir', join(root, name)];
  const [A, B, C] = ['alice', 'bob', 'carol'].map(dir);
  const ids = {};
  for (const [name, d] of [['alice', A], ['bob', B], ['carol', C]]) ids[name] = await json(['init', ...d, '--relay', relay.url]);
  const uis = await Promise.all([A, B, C].map((d) => startUi(d)));
  for (const ui of uis) after(() => ui.running.stop());

  // Alice meets bob and carol by invite; names them; they name her.
  for (const [d, name] of [[B, 'bob'], [C, 'carol']]) {
    const { invite } = await ok(['invite', 'create', ...A]);
    await ok(['invite', 'accept', ...d, invite]);
    await eventually(async () => (await rrelay(['contacts', 'ls', ...A, '--json'])).json.some((c) => c.fingerprint === ids[name].fingerprint) || undefined, `alice meets ${name}`);
    await eventually(async () => (await rrelay(['contacts', 'ls', ...d, '--json'])).json.length > 0 || undefined, `${name} meets alice`);
    await ok(['contacts', 'alias', ...A, ids[name].fingerprint, name[0].toUpperCase() + name.slice(1)]);
    await ok(['contacts', 'alias', ...d, ids.alice.fingerprint, 'Alice']);
  }
  await ok(['contacts', 'verify', ...A, 'Bob']);

  const talk = [
    [A, 'Bob', 'Are we still on for Saturday?'],
    [B, 'Alice', 'Yes! Trailhead at 9, I will bring coffee.'],
    [A, 'Bob', 'Perfect. Carol is coming too.'],
    [B, 'Alice', 'Great, see you both there'],
  ];
  for (const [d, to, text] of talk) {
    await ok(['send', ...d, to, text]);
    await new Promise((r) => setTimeout(r, 300));
  }
  await ok(['send', ...C, 'Alice', 'Sent you the map of the loop trail']);

  await ok(['group', 'create', ...A, 'Saturday hike']);
  for (const who of ['Bob', 'Carol']) await ok(['group', 'invite', ...A, 'Saturday hike', who]);
  for (const d of [B, C]) {
    await eventually(async () => (await rrelay(['group', 'ls', ...d, '--json'])).json.some((g) => g.name === 'Saturday hike') || undefined, 'the invitation arrives');
    await ok(['group', 'join', ...d, 'Saturday hike']);
  }
  await eventually(async () => (await rrelay(['group', 'members', ...A, 'Saturday hike', '--json'])).json.length === 3 || undefined, 'both join');
  await ok(['group', 'send', ...A, 'Saturday hike', 'Forecast says sunny: bring water and sunscreen']);
  // One invite not yet used: a pending key exchange.
  await ok(['invite', 'create', ...A]);
  await new Promise((r) => setTimeout(r, 1500)); // receipts come in

  const browser = await launchBrowser({ after });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(uis[0].url);
  await page.getByRole('status').filter({ hasText: 'Connected' }).waitFor();
  await page.getByRole('button', { name: /Carol/ }).waitFor();
  const shot = (name) => page.screenshot({ path: join(out, `${name}.png`) });
  const nav = (name) => page.getByRole('navigation').getByRole('button', { name, exact: true }).click();
  await shot('conversations');

  await page.getByRole('complementary').getByRole('button', { name: /Bob/ }).click();
  await page.getByRole('log').getByText('see you both there').waitFor();
  await page.waitForTimeout(300);
  await shot('conversation');

  await nav('Contacts');
  await page.getByRole('button', { name: 'Show QR code' }).first().click();
  await shot('contacts');

  await nav('Invites');
  await page.getByRole('button', { name: 'Create invite' }).click();
  await page.getByRole('img', { name: 'The invite as a QR code' }).waitFor();
  await shot('invites');

  await nav('Groups');
  await page.getByText('reachable').first().waitFor();
  await shot('groups');

  await nav('Relays');
  await shot('relays');

  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1 });
  await phone.goto(uis[0].url);
  await phone.getByRole('button', { name: /Bob/ }).click();
  await phone.getByRole('log').getByText('see you both there').waitFor();
  await phone.waitForTimeout(300);
  await phone.screenshot({ path: join(out, 'conversation-phone.png') });
  console.log(`screenshots in ${out}`);
} finally {
  for (const fn of cleanup) await fn();
  rmSync(root, { recursive: true, force: true });
}
