import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { rpc } from './connection.js';
import type { App } from './state.js';
import type { RelayStatus } from './types.js';
import { Err, html, useAction, when } from './ui.js';

export function RelaysView({ app }: { app: App }): VNode {
  const [url, setUrl] = useState('');
  const { run, busy, error } = useAction();
  const add = async (e: Event) => {
    e.preventDefault();
    if (await run(() => rpc('addRelay', { url: url.trim() }))) setUrl('');
    app.reload();
  };
  return html`<section aria-labelledby="relays-title">
    <h2 id="relays-title">Relays</h2>
    ${!app.data.relays.length && html`<p class="empty">No relays: add one to send and receive.</p>`}
    <ul class="cards">${app.data.relays.map((r) => html`<li key=${r.url}><${RelayRow} app=${app} relay=${r} /></li>`)}</ul>
    <form class="panel inline" onSubmit=${add}>
      <label>Relay URL <input value=${url} placeholder="wss://relay.example" onInput=${(e: Event) => setUrl((e.target as HTMLInputElement).value)} /></label>
      <button type="submit" disabled=${busy}>Add relay</button>
      <${Err} error=${error} />
    </form>
  </section>` as VNode;
}

/** `lastSeen` is a Nostr timestamp (seconds): the newest event seen from that relay. */
function RelayRow({ app, relay: r }: { app: App; relay: RelayStatus }): VNode {
  const { run, error } = useAction();
  return html`<div class="card row">
    <span class="mono">${r.url}</span>
    <span class=${r.connected ? 'tag ok' : 'tag warn'}>${r.connected ? 'connected' : 'not connected'}</span>
    <span class="hint">last seen ${when(r.lastSeen === null ? null : r.lastSeen * 1000)}${r.failures ? ` · ${r.failures} failures` : ''}</span>
    ${r.error && html`<span class="error-text">${r.error}</span>`}
    <button aria-label=${`Remove relay ${r.url}`} onClick=${() => run(() => rpc('removeRelay', { url: r.url })).then(app.reload)}>Remove</button>
    <${Err} error=${error} />
  </div>` as VNode;
}
