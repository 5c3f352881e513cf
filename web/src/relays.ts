import type { VNode } from 'preact';
import { rpc } from './connection.js';
import type { App } from './state.js';
import type { RelayStatus } from './types.js';
import { Err, html, OneField, useAction, when } from './ui.js';

export function RelaysView({ app }: { app: App }): VNode {
  return html`<section aria-labelledby="relays-title">
    <h2 id="relays-title">Relays</h2>
    ${!app.data.relays.length && html`<p class="empty">No relays: add one to send and receive.</p>`}
    <ul class="cards">${app.data.relays.map((r) => html`<li key=${r.url}><${RelayRow} app=${app} relay=${r} /></li>`)}</ul>
    <${OneField} label="Relay URL" button="Add relay" placeholder="wss://relay.example" submit=${(url: string) => rpc('addRelay', { url })} done=${app.reload} />
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
