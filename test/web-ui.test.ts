import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { json, jsonLines, twoDataDirs } from './support/cli.js';
import { eventually } from './support/nodes.js';
import { browserMissing, freePort, launchBrowser, postApi, startUi, type Ui, upgradeStatus } from './support/web.js';

/**
 * The web app in a real browser (Debian's chromium) against real `rrelay ui` daemons on an
 * independent relay: two people meet by invite and talk, each in their own page.
 */

const WAIT = 30_000;
const EVIL = 'http://evil.example';
const whoami = { jsonrpc: '2.0', id: 1, method: 'whoami' };

describe('rrelay ui in a browser', { skip: browserMissing() }, () => {
  let browser: Browser;
  let A: string[];
  let B: string[];
  let alice: { fingerprint: string };
  let bob: { fingerprint: string };
  let uiA: Ui;
  let uiB: Ui;
  let pageA: Page;
  let pageB: Page;
  /** What the pages logged as errors: a CSP violation (an inline style, say) would be one. */
  const problems: string[] = [];
  const teardown: (() => Promise<void> | void)[] = [];
  const hooks = { after: (fn: () => Promise<void> | void) => void teardown.unshift(fn) };

  before(async () => {
    const dirs = await twoDataDirs(hooks);
    ({ A, B } = dirs);
    alice = await json(['init', ...A, '--relay', dirs.relay.url]);
    bob = await json(['init', ...B, '--relay', dirs.relay.url]);
    // A fixed port for alice: her `rrelay ui` comes back on it after a restart.
    [uiA, uiB, browser] = await Promise.all([freePort().then((port) => startUi(A, port)), startUi(B), launchBrowser(hooks)]);
    dirs.daemons.push(uiB.running);
    hooks.after(() => void uiA.running.stop());
    [pageA, pageB] = await Promise.all([browser.newPage({ viewport: { width: 1200, height: 800 } }), browser.newPage({ viewport: { width: 1200, height: 800 } })]);
    for (const page of [pageA, pageB]) {
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      page.on('pageerror', (e) => problems.push(e.message));
    }
    await Promise.all([pageA.goto(uiA.url), pageB.goto(uiB.url)]);
  });
  after(async () => {
    for (const fn of teardown) await fn();
  });

  const connected = (page: Page) => page.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: WAIT });
  const conversationWith = (page: Page, fingerprint: string) => page.getByRole('complementary', { name: 'Conversations' }).getByRole('button', { name: fingerprint.slice(0, 16) });

  it('A creates an invite, B pastes it in, A sends with Enter: B sees it, A sees it delivered', async () => {
    await Promise.all([connected(pageA), connected(pageB)]);
    assert.equal(new URL(pageA.url()).hash, '', 'the token left the address bar');
    await pageA.getByRole('button', { name: 'Invites' }).click();
    await pageA.getByRole('button', { name: 'Create invite' }).click();
    await pageA.getByRole('img', { name: 'The invite as a QR code' }).waitFor();
    const invite = await pageA.getByRole('textbox', { name: 'Your invite' }).inputValue();
    assert.match(invite, /^rrinv/);

    await pageB.getByRole('button', { name: 'Invites' }).click();
    await pageB.getByRole('textbox', { name: 'Paste an invite' }).fill(invite);
    await pageB.getByRole('button', { name: 'Accept invite' }).click();
    await pageB.getByText('Accepted: the key exchange').waitFor({ timeout: WAIT });

    // Each sees the other as a contact once the key exchange completes.
    await pageA.getByRole('button', { name: 'Chats' }).click();
    await pageB.getByRole('button', { name: 'Chats' }).click();
    await conversationWith(pageA, bob.fingerprint).click({ timeout: WAIT });
    await conversationWith(pageB, alice.fingerprint).waitFor({ timeout: WAIT });

    const box = pageA.getByRole('textbox', { name: 'Message', exact: true });
    await box.fill('hello bob');
    await box.press('Shift+Enter');
    await box.pressSequentially('from the web');
    assert.equal(await box.inputValue(), 'hello bob\nfrom the web', 'Shift+Enter is a new line, not a send');
    await box.press('Enter');
    await eventually(async () => (await box.inputValue()) === '' || undefined, 'the sent text leaves the box', WAIT);

    // B: unread until opened, then read.
    await conversationWith(pageB, alice.fingerprint).getByLabel('1 unread').waitFor({ timeout: WAIT });
    await conversationWith(pageB, alice.fingerprint).click();
    const atB = pageB.getByRole('log').getByRole('listitem').filter({ hasText: 'hello bob' });
    await atB.waitFor({ timeout: WAIT });
    assert.equal(await atB.locator('.text').innerText(), 'hello bob\nfrom the web');
    await conversationWith(pageB, alice.fingerprint).getByLabel('1 unread').waitFor({ state: 'detached', timeout: WAIT });

    const atA = pageA.getByRole('log').getByRole('listitem').filter({ hasText: 'hello bob' });
    await atA.getByText('delivered').waitFor({ timeout: WAIT });
  });

  it('refuses a wrong token (the page says so; POST /api gets 401) and a foreign Origin (403, for /api and the WebSocket)', async () => {
    const wrong = '0'.repeat(64);
    const page = await browser.newPage();
    try {
      await page.goto(uiA.url.replace(/token=[0-9a-f]+/, `token=${wrong}`));
      await page.getByRole('alert').filter({ hasText: "This link's token is not valid" }).waitFor({ timeout: WAIT });
      assert.equal(await page.getByRole('textbox', { name: 'Message' }).count(), 0, 'nothing else is shown');
    } finally {
      await page.close();
    }
    assert.equal((await postApi(uiA, { token: wrong, origin: uiA.origin }, whoami)).status, 401);
    assert.equal((await postApi(uiA, { token: uiA.token, origin: EVIL }, whoami)).status, 403);
    assert.equal(await upgradeStatus(uiA, { token: uiA.token, origin: EVIL }), 403);
    assert.equal(await upgradeStatus(uiA, { token: wrong, origin: uiA.origin }), 401);
    // The right token and origin pass: the refusals above are not refusing everything.
    const ok = await postApi(uiA, { token: uiA.token, origin: uiA.origin }, whoami);
    assert.equal(ok.status, 200);
    assert.equal((JSON.parse(ok.body) as { result: { fingerprint: string } }).result.fingerprint, alice.fingerprint);
    assert.equal(await upgradeStatus(uiA, { token: uiA.token, origin: uiA.origin }), 101);
  });

  it("shows a call's error next to its control, in the daemon's words; verifies and renames a contact; a group: create, invite, join, send", async () => {
    const garbage = 'rrinv-not-an-invite';
    await pageB.getByRole('button', { name: 'Invites' }).click();
    await pageB.getByRole('textbox', { name: 'Paste an invite' }).fill(garbage);
    await pageB.getByRole('button', { name: 'Accept invite' }).click();
    const refused = await postApi(uiB, { token: uiB.token, origin: uiB.origin }, { jsonrpc: '2.0', id: 1, method: 'acceptInvite', params: { invite: garbage } });
    const { message } = (JSON.parse(refused.body) as { error: { message: string } }).error;
    const form = pageB.locator('form').filter({ has: pageB.getByRole('button', { name: 'Accept invite' }) });
    await form.getByRole('alert').filter({ hasText: message }).waitFor({ timeout: WAIT });

    await pageA.getByRole('button', { name: 'Contacts' }).click();
    const card = pageA.getByRole('article', { name: bob.fingerprint.slice(0, 16) });
    await card.getByRole('button', { name: 'Verify', exact: true }).click();
    await card.getByRole('button', { name: 'Unverify' }).waitFor({ timeout: WAIT });
    const contacts = await jsonLines<{ fingerprint: string; verified: boolean }>(['contacts', 'ls', ...A]);
    assert.equal(contacts.find((c) => c.fingerprint === bob.fingerprint)?.verified, true);
    assert.equal(await card.getByLabel(/^Safety number \d{5}( \d{5}){11}$/).count(), 1, 'the safety number in groups of five');
    await card.getByRole('button', { name: 'Show QR code' }).click();
    await card.getByRole('img', { name: /Safety number with .* as a QR code/ }).waitFor();
    await card.getByRole('textbox', { name: 'Name' }).fill('Bob');
    await card.getByRole('button', { name: /^Rename/ }).click();
    await pageA.getByRole('article', { name: 'Bob' }).waitFor({ timeout: WAIT });
    await pageA.getByRole('complementary', { name: 'Conversations' }).getByRole('button', { name: /^Bob/ }).waitFor({ timeout: WAIT });

    await pageA.getByRole('button', { name: 'Groups' }).click();
    await pageA.getByRole('textbox', { name: "New group's name" }).fill('hike');
    await pageA.getByRole('button', { name: 'Create group' }).click();
    const group = pageA.getByRole('article', { name: '# hike' });
    await group.getByRole('combobox', { name: 'Invite to hike' }).selectOption({ label: 'Bob' });
    await group.getByRole('button', { name: 'Invite', exact: true }).click();
    await pageB.getByRole('button', { name: 'Groups' }).click();
    await pageB.getByRole('button', { name: 'Join hike' }).click({ timeout: WAIT });
    await group.getByRole('listitem').filter({ hasText: 'Bob' }).getByText('reachable', { exact: true }).waitFor({ timeout: WAIT });
    await group.getByRole('button', { name: 'Open conversation' }).click();
    const box = pageA.getByRole('textbox', { name: 'Message', exact: true });
    await box.fill('to the whole group');
    await box.press('Enter');
    await pageB.getByRole('button', { name: 'Chats' }).click();
    await pageB.getByRole('complementary', { name: 'Conversations' }).getByRole('button', { name: /^# hike/ }).click({ timeout: WAIT });
    await pageB.getByRole('log').getByText('to the whole group').waitFor({ timeout: WAIT });
    assert.deepEqual(problems, [], 'no errors in the pages, CSP violations included');
  });

  it('every control in every view has an accessible name; at 390 px one column: the list or the conversation', async () => {
    const cdp = await pageA.context().newCDPSession(pageA);
    for (const view of ['Chats', 'Contacts', 'Invites', 'Groups', 'Relays']) {
      await pageA.getByRole('navigation').getByRole('button', { name: view, exact: true }).click();
      await pageA.getByRole('heading', { level: 2 }).first().waitFor();
      const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as { nodes: { role?: { value: string }; name?: { value: string }; ignored: boolean }[] };
      const controls = nodes.filter((n) => !n.ignored && ['button', 'textbox', 'combobox', 'checkbox', 'link'].includes(n.role?.value ?? ''));
      assert.ok(controls.length > 5, `${view}: the controls are in the accessibility tree`);
      assert.deepEqual(controls.filter((n) => !n.name?.value.trim()).map((n) => n.role?.value), [], `${view}: a control without a name`);
    }
    await cdp.detach();

    await pageB.getByRole('button', { name: 'Chats' }).click();
    await conversationWith(pageB, alice.fingerprint).click();
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    try {
      await phone.goto(uiA.url);
      const list = phone.getByRole('complementary', { name: 'Conversations' });
      await list.getByRole('button', { name: /^Bob/ }).click({ timeout: WAIT });
      await phone.getByRole('textbox', { name: 'Message', exact: true }).waitFor();
      assert.equal(await list.isVisible(), false, 'the conversation alone');
      await phone.getByRole('button', { name: 'Back' }).click();
      await list.waitFor();
      assert.equal(await phone.getByRole('main').isVisible(), false, 'the list alone');
      // Keyboard only: Tab reaches the conversation, Enter opens it, typing and Enter sends.
      await list.getByRole('button', { name: /^Bob/ }).focus();
      await phone.keyboard.press('Enter');
      await phone.getByRole('textbox', { name: 'Message', exact: true }).focus();
      await phone.keyboard.type('typed on a phone');
      await phone.keyboard.press('Tab');
      assert.equal(await phone.evaluate(() => (globalThis as unknown as { document: { activeElement: { textContent: string } } }).document.activeElement.textContent), 'Send');
      await phone.keyboard.press('Enter');
      await pageB.getByRole('log').getByText('typed on a phone').waitFor({ timeout: WAIT });
    } finally {
      await phone.close();
    }
  });

  it('survives a daemon restart: the page reconnects and can send', async () => {
    await pageA.getByRole('button', { name: 'Chats' }).click();
    await pageA.getByRole('complementary', { name: 'Conversations' }).getByRole('button', { name: /^Bob/ }).click();
    await pageB.getByRole('button', { name: 'Chats' }).click();
    await conversationWith(pageB, alice.fingerprint).click();
    await uiA.running.stop();
    await pageA.getByRole('status').filter({ hasText: 'Reconnecting' }).waitFor({ timeout: WAIT });
    uiA = await startUi(A, uiA.port);
    await connected(pageA);
    const box = pageA.getByRole('textbox', { name: 'Message', exact: true });
    await box.fill('after the restart');
    await box.press('Enter');
    await pageB.getByRole('log').getByText('after the restart').waitFor({ timeout: WAIT });
    await pageA.getByRole('log').getByRole('listitem').filter({ hasText: 'after the restart' }).getByText('delivered').waitFor({ timeout: WAIT });
  });
});
