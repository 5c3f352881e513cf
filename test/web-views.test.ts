import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import type { Browser, Page } from 'playwright-core';
import WebSocket from 'ws';
import { systemRng } from '../src/crypto/index.js';
import { generateIdentity } from '../src/identity/index.js';
import { RatchetNode } from '../src/node/node.js';
import { bundleEvent } from '../src/nostr/events.js';
import { currentBundle, EMPTY_PREKEY_STATE, encodePreKeyBundle, maintain } from '../src/prekeys/index.js';
import { json, jsonLines, twoDataDirs } from './support/cli.js';
import { startEvilRelay } from './support/evil-relay.js';
import { eventually } from './support/nodes.js';
import { browserMissing, freePort, launchBrowser, postApi, startUi, type Ui } from './support/web.js';

/**
 * The views web-ui.test.ts leaves out, in a real browser against real `rrelay ui` daemons on an
 * independent relay: Copy and Cancel of an invite, introductions (declined, then accepted), Reset
 * session, the Relays view, a failed message and an identity-key change in the warnings banner.
 * One set of daemons (alice mediates between bob and carol) for the whole file.
 */

const WAIT = 30_000;
const REFUSAL = 'blocked: members only';

describe('rrelay ui in a browser: the other views', { skip: browserMissing() }, () => {
  let browser: Browser;
  let relayUrl: string;
  let A: string[];
  let B: string[];
  let C: string[];
  const fp = { alice: '', bob: '', carol: '' };
  let uiB: Ui;
  let uiC: Ui;
  let pageA: Page;
  let pageB: Page;
  let pageC: Page;
  const problems: string[] = [];
  const teardown: (() => Promise<void> | void)[] = [];
  const hooks = { after: (fn: () => Promise<void> | void) => void teardown.unshift(fn) };

  /** Meets `inviter` and `invitee` by an invite over the CLI (the pages are tested for that in web-ui.test.ts). */
  async function meet(inviter: string[], invitee: string[], inviterFp: string, inviteeFp: string) {
    const { invite } = await json<{ invite: string }>(['invite', 'create', ...inviter]);
    await json(['invite', 'accept', invite, ...invitee]);
    const knows = async (dir: string[], fingerprint: string) => (await jsonLines<{ fingerprint: string }>(['contacts', 'ls', ...dir])).some((c) => c.fingerprint === fingerprint);
    await eventually(async () => ((await knows(inviter, inviteeFp)) && (await knows(invitee, inviterFp))) || undefined, 'the key exchange completes on both sides', WAIT);
  }

  before(async () => {
    const dirs = await twoDataDirs(hooks);
    relayUrl = dirs.relay.url;
    ({ A, B } = dirs);
    C = ['--data-dir', join(dirs.root, 'carol')];
    const ids = await Promise.all([A, B, C].map((d) => json<{ fingerprint: string }>(['init', ...d, '--relay', relayUrl])));
    [fp.alice, fp.bob, fp.carol] = ids.map((i) => i.fingerprint) as [string, string, string];
    let uiA: Ui;
    [uiA, uiB, uiC, browser] = await Promise.all([startUi(A), startUi(B), startUi(C), launchBrowser(hooks)]);
    dirs.daemons.push(uiA.running, uiB.running);
    hooks.after(() => void uiC.running.stop());
    await Promise.all([meet(A, B, fp.alice, fp.bob), meet(A, C, fp.alice, fp.carol)]);
    // Names that outlive a change of carol's identity key (her fingerprint changes with it).
    await json(['contacts', 'alias', fp.bob.slice(0, 16), 'Bob', ...A]);
    await json(['contacts', 'alias', fp.carol.slice(0, 16), 'Carol', ...A]);
    // Alice's page may use the clipboard: the Copy button writes to it and the test reads it back.
    const clipboard = await browser.newContext({ viewport: { width: 1200, height: 800 }, permissions: ['clipboard-read', 'clipboard-write'] });
    [pageA, pageB, pageC] = await Promise.all([clipboard.newPage(), browser.newPage({ viewport: { width: 1200, height: 800 } }), browser.newPage({ viewport: { width: 1200, height: 800 } })]);
    for (const page of [pageA, pageB, pageC]) {
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      page.on('pageerror', (e) => problems.push(e.message));
    }
    await Promise.all([pageA.goto(uiA.url), pageB.goto(uiB.url), pageC.goto(uiC.url)]);
    await Promise.all([pageA, pageB, pageC].map((p) => p.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: WAIT })));
  });
  after(async () => {
    for (const fn of teardown) await fn();
  });

  const view = (page: Page, name: string) => page.getByRole('navigation').getByRole('button', { name, exact: true }).click();
  const banner = (page: Page) => page.getByRole('region', { name: 'Warnings' });
  const card = (page: Page, name: string) => page.getByRole('article', { name });
  const openChat = async (page: Page, name: string | RegExp) => {
    await view(page, 'Chats');
    await page.getByRole('complementary', { name: 'Conversations' }).getByRole('button', { name }).click({ timeout: WAIT });
  };
  const send = async (page: Page, text: string) => {
    const box = page.getByRole('textbox', { name: 'Message', exact: true });
    await box.fill(text);
    await box.press('Enter');
    return page.getByRole('log').getByRole('listitem').filter({ hasText: text });
  };

  it('Copy puts the invite on the clipboard; Cancel ends its pending key exchange', async () => {
    await view(pageA, 'Invites');
    const pending = pageA.getByRole('region', { name: 'Pending key exchanges' });
    await pending.getByText('None.').waitFor({ timeout: WAIT });
    await pageA.getByRole('button', { name: 'Create invite' }).click();
    const invite = await pageA.getByRole('textbox', { name: 'Your invite' }).inputValue();
    assert.match(invite, /^rrinv/);
    await pageA.getByRole('button', { name: 'Copy', exact: true }).click();
    await pageA.getByRole('status').filter({ hasText: 'Copied.' }).waitFor({ timeout: WAIT });
    assert.equal(await pageA.evaluate(() => (globalThis as unknown as { navigator: { clipboard: { readText(): Promise<string> } } }).navigator.clipboard.readText()), invite);

    const cancel = pending.getByRole('button', { name: /^Cancel key exchange [0-9a-f]{8}$/ });
    await cancel.waitFor({ timeout: WAIT });
    const [kx] = await jsonLines<{ rv: string }>(['kx', 'ls', ...A]);
    assert.equal(await cancel.getAttribute('aria-label'), `Cancel key exchange ${kx!.rv.slice(0, 8)}`, 'the new invite is the one pending key exchange');
    await cancel.click();
    await pending.getByText('None.').waitFor({ timeout: WAIT });
    assert.deepEqual(await jsonLines(['kx', 'ls', ...A]), [], 'cancelled in the daemon, not only hidden');
  });

  it('introductions: the mediator introduces two contacts in its page; both decline (the mediator is told), then both accept and they are contacts', async () => {
    const introduce = async () => {
      await view(pageA, 'Contacts');
      const form = pageA.locator('form').filter({ has: pageA.getByRole('button', { name: 'Introduce', exact: true }) });
      await form.getByRole('combobox', { name: 'First contact' }).selectOption({ label: 'Bob' });
      await form.getByRole('combobox', { name: 'Second contact' }).selectOption({ label: 'Carol' });
      await form.getByRole('button', { name: 'Introduce', exact: true }).click();
      await form.getByRole('status').filter({ hasText: 'Introduction sent' }).waitFor({ timeout: WAIT });
    };
    const requests = (page: Page) => page.getByRole('region', { name: 'Introduction requests' });
    const answer = async (page: Page, button: 'Accept' | 'Decline') => {
      await view(page, 'Invites');
      const row = requests(page).getByRole('listitem');
      await row.getByRole('button', { name: new RegExp(`^${button}: `) }).click({ timeout: WAIT });
      await row.waitFor({ state: 'detached', timeout: WAIT });
    };

    await introduce();
    await Promise.all([answer(pageB, 'Decline'), answer(pageC, 'Decline')]);
    await banner(pageA).getByText(/the introduction was declined/).first().waitFor({ timeout: WAIT });
    assert.equal((await jsonLines(['kx', 'requests', ...B])).length, 0, 'declined: dropped in the daemon');
    assert.ok(!(await jsonLines<{ fingerprint: string }>(['contacts', 'ls', ...B])).some((c) => c.fingerprint === fp.carol), 'a decline makes no contact');

    await introduce();
    await Promise.all([answer(pageB, 'Accept'), answer(pageC, 'Accept')]);
    await view(pageB, 'Contacts');
    const carolAtBob = card(pageB, fp.carol.slice(0, 16));
    await carolAtBob.waitFor({ timeout: WAIT });
    assert.match(await carolAtBob.innerText(), /introduction via/);
    await view(pageC, 'Contacts');
    await card(pageC, fp.bob.slice(0, 16)).waitFor({ timeout: WAIT });
  });

  it('Reset session asks first; then the key exchange completes and messages flow again', async () => {
    await view(pageA, 'Contacts');
    const bob = card(pageA, 'Bob');
    await bob.getByRole('button', { name: 'Reset session with Bob' }).click();
    await bob.getByText('Start the session with Bob over?').waitFor();
    await bob.getByRole('button', { name: 'Keep it' }).click();
    assert.deepEqual(await jsonLines(['kx', 'ls', ...A]), [], 'kept: no reset started');
    await bob.getByRole('button', { name: 'Reset session with Bob' }).click();
    await bob.getByRole('button', { name: 'Yes, reset' }).click();
    await pageA.locator('[aria-live=polite]').filter({ hasText: 'Key exchange with Bob complete' }).waitFor({ state: 'attached', timeout: WAIT });
    assert.equal(await bob.getByRole('alert').count(), 0);

    await openChat(pageA, /^Bob/);
    const sent = await send(pageA, 'after the reset');
    await openChat(pageB, fp.alice.slice(0, 16));
    await pageB.getByRole('log').getByText('after the reset').waitFor({ timeout: WAIT });
    // Read as shown: switching view at once leaves a message the user saw read, in the daemon too.
    await view(pageB, 'Relays');
    const unread = async () => {
      const list = JSON.parse((await postApi(uiB, uiB, { jsonrpc: '2.0', id: 1, method: 'conversations' })).body) as { result: { id: string; unread: number }[] };
      return list.result.find((c) => c.id === fp.alice)!.unread;
    };
    await eventually(async () => (await unread()) === 0 || undefined, 'the message bob saw is read', WAIT);
    await pageB.getByRole('navigation').getByRole('button', { name: 'Chats', exact: true }).waitFor({ timeout: WAIT });
    await sent.getByText('delivered').waitFor({ timeout: WAIT });
  });

  it('Relays: adds and removes relays, each with its status (connected, or not with the error); a message every relay refuses fails, with its reason, in the conversation and the banner', async () => {
    const refusing = await startEvilRelay({ refuse: REFUSAL });
    hooks.after(() => refusing.close());
    const dead = `ws://127.0.0.1:${await freePort()}`;
    await view(pageB, 'Relays');
    const relays = pageB.getByRole('main').getByRole('list');
    const row = (url: string) => relays.getByRole('listitem').filter({ hasText: url });
    const add = async (url: string) => {
      await pageB.getByRole('textbox', { name: 'Relay URL' }).fill(url);
      await pageB.getByRole('button', { name: 'Add relay' }).click();
      await row(url).waitFor({ timeout: WAIT });
    };
    await row(relayUrl).getByText('connected', { exact: true }).waitFor({ timeout: WAIT });
    await add(refusing.url);
    await add(dead);
    await pageB.getByRole('button', { name: `Remove relay ${relayUrl}` }).click();
    await row(relayUrl).waitFor({ state: 'detached', timeout: WAIT });
    await row(refusing.url).getByText('connected', { exact: true }).waitFor({ timeout: WAIT });
    await row(dead).getByText('not connected', { exact: true }).waitFor({ timeout: WAIT });
    await row(dead).locator('.error-text').filter({ hasText: /ECONNREFUSED|refused/ }).waitFor({ timeout: WAIT });
    const listed = await jsonLines<{ url: string }>(['relays', 'ls', ...B]);
    assert.deepEqual(listed.map((r) => r.url).sort(), [refusing.url, dead].sort());
    // A relay that is away (not refusing) keeps a message queued: only the refusing one stays.
    await pageB.getByRole('button', { name: `Remove relay ${dead}` }).click();
    await row(dead).waitFor({ state: 'detached', timeout: WAIT });

    await openChat(pageB, fp.alice.slice(0, 16));
    const failed = await send(pageB, 'nobody carries this');
    const reason = new RegExp(`every relay refused it .*${REFUSAL}`);
    await failed.getByText(reason).waitFor({ timeout: WAIT });
    assert.match(await failed.innerText(), /failed: every relay refused it/);
    await banner(pageB).getByText(new RegExp(`^A message to .* failed: every relay refused it .*${REFUSAL}`)).waitFor({ timeout: WAIT });

    // Back to the live relay, for what follows.
    await view(pageB, 'Relays');
    await add(relayUrl);
    await pageB.getByRole('button', { name: `Remove relay ${refusing.url}` }).click();
    await row(refusing.url).waitFor({ state: 'detached', timeout: WAIT });
    await row(relayUrl).getByText('connected', { exact: true }).waitFor({ timeout: WAIT });
    assert.deepEqual(problems, [], 'no errors in the pages, CSP violations included');
  });

  it("warns of a contact's identity-key change (also after a reload) until the new key is trusted", async () => {
    // Whoever holds carol's Nostr key binds it to a new identity and publishes its bundle: the key
    // is read from her store with her daemon stopped (no CLI command hands a Nostr key out).
    await pageC.close();
    await uiC.running.stop();
    const node = await RatchetNode.open({ dataDir: C[1]!, passphrase: 'test passphrase' });
    const nostr = node.store.identity().nostr;
    await node.close();
    const usurper = generateIdentity(systemRng, Date.now(), nostr);
    const keys = maintain(EMPTY_PREKEY_STATE, usurper, Date.now(), systemRng).state;
    useWebSocketImplementation(WebSocket);
    const writer = await Relay.connect(relayUrl);
    await writer.publish(bundleEvent(encodePreKeyBundle(currentBundle(keys, usurper)), usurper.nostr.privateKey, Date.now() + 2000));
    writer.close();

    const warning = banner(pageA).getByText(/^Carol's identity key changed .*: compare safety numbers/);
    await warning.waitFor({ timeout: WAIT });
    await view(pageA, 'Contacts');
    const carol = card(pageA, 'Carol');
    await carol.getByText('key changed', { exact: true }).waitFor({ timeout: WAIT });
    await pageA.reload();
    await warning.waitFor({ timeout: WAIT });
    await view(pageA, 'Contacts');
    await carol.getByRole('button', { name: 'Trust new key' }).click({ timeout: WAIT });
    await carol.getByText('key changed', { exact: true }).waitFor({ state: 'detached', timeout: WAIT });
    await warning.waitFor({ state: 'detached', timeout: WAIT });
    const contacts = await jsonLines<{ alias: string; fingerprint: string; keyChangedAt: number | null }>(['contacts', 'ls', ...A]);
    const now = contacts.find((c) => c.alias === 'Carol')!;
    assert.notEqual(now.fingerprint, fp.carol, 'the new key is the one trusted');
    assert.equal(now.keyChangedAt, null, 'acknowledged in the daemon');
  });
});
