import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { rpc } from './connection.js';
import type { App } from './state.js';
import type { Contact } from './types.js';
import { contactName, Err, html, Qr, useAction, when } from './ui.js';

export function ContactsView({ app }: { app: App }): VNode {
  const { contacts } = app.data;
  return html`<section aria-labelledby="contacts-title">
    <h2 id="contacts-title">Contacts</h2>
    ${!contacts.length && html`<p class="empty">No contacts yet: create or accept an invite (Invites).</p>`}
    <ul class="cards">${contacts.map((c) => html`<li key=${c.fingerprint}><${ContactCard} app=${app} contact=${c} /></li>`)}</ul>
    ${contacts.length >= 2 && html`<${Introduce} app=${app} />`}
  </section>` as VNode;
}

function ContactCard({ app, contact: c }: { app: App; contact: Contact }): VNode {
  const name = contactName(c);
  const [qr, setQr] = useState(false);
  const [alias, setAlias] = useState(c.alias ?? '');
  const [confirmReset, setConfirmReset] = useState(false);
  const verify = useAction();
  const rename = useAction();
  const reset = useAction();
  const act = (a: ReturnType<typeof useAction>, fn: () => Promise<unknown>) => a.run(fn).then(app.reload);
  const digits = c.safetyNumber.replace(/\s+/g, '');
  // Until acknowledged (Trust new key, or Verify), whatever `trusted` says: the daemon holds sending.
  const keyChanged = c.keyChangedAt !== null;
  return html`<article class="card" aria-labelledby=${`contact-${c.fingerprint}`}>
    <header class="card-head">
      <h3 id=${`contact-${c.fingerprint}`}>${name}</h3>
      <span class=${c.verified ? 'tag ok' : 'tag'}>${c.verified ? 'verified' : 'not verified'}</span>
      ${!c.trusted && html`<span class="tag warn">not trusted</span>`}
      ${keyChanged && html`<span class="tag warn">key changed</span>`}
    </header>
    <dl class="facts">
      <dt>Fingerprint</dt><dd class="mono">${c.fingerprint}</dd>
      <dt>Met</dt><dd>${c.met?.text ?? 'not recorded'}</dd>
      <dt>Safety number</dt><dd class="mono safety" aria-label=${`Safety number ${c.safetyNumber}`}>${c.safetyNumber}</dd>
    </dl>
    ${keyChanged &&
    html`<p class="warn-text">${name}'s identity key changed ${when(c.keyChangedAt)}. Compare safety numbers in person, then trust the new key.</p>`}
    <div class="actions">
      <button onClick=${() => app.openConversation({ kind: 'contact', id: c.fingerprint })}>Message</button>
      <button aria-expanded=${qr} onClick=${() => setQr(!qr)}>${qr ? 'Hide QR code' : 'Show QR code'}</button>
      <button onClick=${() => act(verify, () => rpc('setVerified', { contact: c.fingerprint, verified: !c.verified }))}>${c.verified ? 'Unverify' : 'Verify'}</button>
      ${(!c.trusted || keyChanged) && html`<button onClick=${() => act(verify, () => rpc('setTrusted', { contact: c.fingerprint, trusted: true }))}>Trust new key</button>`}
    </div>
    <${Err} error=${verify.error} />
    ${qr && html`<${Qr} text=${digits} label=${`Safety number with ${name} as a QR code`} small />`}
    <form class="inline" onSubmit=${(e: Event) => (e.preventDefault(), void act(rename, () => rpc('setAlias', { contact: c.fingerprint, alias: alias.trim() || null })))}>
      <label>Name <input value=${alias} onInput=${(e: Event) => setAlias((e.target as HTMLInputElement).value)} /></label>
      <button type="submit" aria-label=${`Rename ${name}`}>Rename</button>
    </form>
    <${Err} error=${rename.error} />
    <div class="actions">
      ${confirmReset
        ? html`<span>Start the session with ${name} over?</span>
            <button class="danger" onClick=${() => (setConfirmReset(false), void act(reset, () => rpc('resetSession', { contact: c.fingerprint })))}>Yes, reset</button>
            <button onClick=${() => setConfirmReset(false)}>Keep it</button>`
        : html`<button onClick=${() => setConfirmReset(true)} aria-label=${`Reset session with ${name}`}>Reset session</button>`}
    </div>
    <${Err} error=${reset.error} />
  </article>` as VNode;
}

/** Options of a select of contacts. */
export const contactOptions = (contacts: readonly Contact[]) =>
  contacts.map((c) => html`<option key=${c.fingerprint} value=${c.fingerprint}>${contactName(c)}</option>`);

function Introduce({ app }: { app: App }): VNode {
  const { contacts } = app.data;
  const [a, setA] = useState(contacts[0]?.fingerprint ?? '');
  const [b, setB] = useState(contacts[1]?.fingerprint ?? '');
  const [done, setDone] = useState<string | null>(null);
  const { run, error } = useAction();
  const submit = async (e: Event) => {
    e.preventDefault();
    setDone(null);
    if (await run(() => rpc('introduce', { a, b }))) setDone('Introduction sent: each will be asked to accept it.');
  };
  return html`<form class="panel" onSubmit=${submit}>
    <h3>Introduce two contacts</h3>
    <label>First contact <select value=${a} onChange=${(e: Event) => setA((e.target as HTMLSelectElement).value)}>${contactOptions(contacts)}</select></label>
    <label>Second contact <select value=${b} onChange=${(e: Event) => setB((e.target as HTMLSelectElement).value)}>${contactOptions(contacts)}</select></label>
    <button type="submit">Introduce</button>
    ${done && html`<p role="status">${done}</p>`}
    <${Err} error=${error} />
  </form>` as VNode;
}
