import type { VNode } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { rpc } from './connection.js';
import type { App } from './state.js';
import type { IntroRequest, PendingKx } from './types.js';
import { Err, html, nameFor, Qr, short, useAction, when } from './ui.js';

const HOUR = 3_600_000;
const TTLS = [
  { label: '1 hour', ms: HOUR },
  { label: '1 day', ms: 24 * HOUR },
  { label: '7 days', ms: 7 * 24 * HOUR },
];

export function InvitesView({ app }: { app: App }): VNode {
  return html`<section aria-labelledby="invites-title">
    <h2 id="invites-title">Invites</h2>
    <div class="two">
      <${CreateInvite} app=${app} />
      <${AcceptInvite} app=${app} />
    </div>
    <${Requests} app=${app} />
    <${Pending} app=${app} />
  </section>` as VNode;
}

function CreateInvite({ app }: { app: App }): VNode {
  const [ttl, setTtl] = useState(String(24 * HOUR));
  const [invite, setInvite] = useState<{ invite: string; expiresAt: number } | null>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const text = useRef<HTMLTextAreaElement>(null);
  const { run, busy, error } = useAction();
  const create = async (e: Event) => {
    e.preventDefault();
    setCopied(null);
    await run(async () => setInvite(await rpc('createInvite', { ttlMs: Number(ttl) })));
    app.reload();
  };
  const copy = async () => {
    if (!invite) return;
    try {
      await navigator.clipboard.writeText(invite.invite);
      setCopied('Copied.');
    } catch {
      // No clipboard (not a secure context, or refused): select it for the user to copy.
      text.current?.focus();
      text.current?.select();
      setCopied('Selected: press Ctrl+C (⌘C) to copy.');
    }
  };
  return html`<form class="panel" onSubmit=${create}>
    <h3>Create an invite</h3>
    <p class="hint">Hand it over out of band (in person, or a channel you trust): whoever has it can become your contact.</p>
    <label>Valid for <select value=${ttl} onChange=${(e: Event) => setTtl((e.target as HTMLSelectElement).value)}>
      ${TTLS.map((t) => html`<option value=${String(t.ms)}>${t.label}</option>`)}
    </select></label>
    <button type="submit" disabled=${busy}>Create invite</button>
    <${Err} error=${error} />
    ${invite &&
    html`<div class="invite">
      <${Qr} text=${invite.invite} label="The invite as a QR code" />
      <label class="block">Your invite <textarea class="mono" readonly rows="4" ref=${text} value=${invite.invite}></textarea></label>
      <div class="actions">
        <button type="button" onClick=${copy}>Copy</button>
        <span role="status">${copied}</span>
      </div>
      <p class="hint">Valid until ${when(invite.expiresAt)}.</p>
    </div>`}
  </form>` as VNode;
}

function AcceptInvite({ app }: { app: App }): VNode {
  const [invite, setInvite] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const { run, busy, error } = useAction();
  const accept = async (e: Event) => {
    e.preventDefault();
    setDone(null);
    const ok = await run(async () => {
      const r = await rpc('acceptInvite', { invite: invite.trim() });
      setDone(`Accepted: the key exchange with ${short(r.peer)} is under way.`);
    });
    if (ok) setInvite('');
    app.reload();
  };
  return html`<form class="panel" onSubmit=${accept}>
    <h3>Accept an invite</h3>
    <label class="block">Paste an invite <textarea class="mono" rows="4" value=${invite} onInput=${(e: Event) => setInvite((e.target as HTMLTextAreaElement).value)}></textarea></label>
    <button type="submit" disabled=${busy}>Accept invite</button>
    ${done && html`<p role="status">${done}</p>`}
    <${Err} error=${error} />
  </form>` as VNode;
}

function Pending({ app }: { app: App }): VNode {
  const { kx, contacts } = app.data;
  return html`<section class="panel" aria-labelledby="kx-title">
    <h3 id="kx-title">Pending key exchanges</h3>
    ${!kx.length && html`<p class="empty">None.</p>`}
    <ul class="rows">${kx.map((k) => html`<li key=${k.rv}><${PendingRow} app=${app} kx=${k} peer=${k.peer && nameFor(contacts, k.peer)} /></li>`)}</ul>
  </section>` as VNode;
}

function PendingRow({ app, kx, peer }: { app: App; kx: PendingKx; peer: string | null }): VNode {
  const { run, error } = useAction();
  const what = kx.role === 'inviter' ? `Invite${peer ? ` (to ${peer})` : ''}` : `Invite accepted from ${peer ?? 'an unknown inviter'}`;
  return html`<div class="row">
    <span>${what}<span class="hint"> · rendezvous ${kx.rv.slice(0, 8)} · expires ${when(kx.expiresAt)}</span></span>
    <button aria-label=${`Cancel key exchange ${kx.rv.slice(0, 8)}`} onClick=${() => run(() => rpc('cancelKeyExchange', { rv: kx.rv })).then(app.reload)}>Cancel</button>
    <${Err} error=${error} />
  </div>` as VNode;
}

function Requests({ app }: { app: App }): VNode {
  const { requests } = app.data;
  if (!requests.length) return html`` as VNode;
  return html`<section class="panel" aria-labelledby="requests-title">
    <h3 id="requests-title">Introduction requests</h3>
    <ul class="rows">${requests.map((r) => html`<li key=${r.id}><${RequestRow} app=${app} request=${r} /></li>`)}</ul>
  </section>` as VNode;
}

function RequestRow({ app, request: r }: { app: App; request: IntroRequest }): VNode {
  const { run, error } = useAction();
  const mediator = nameFor(app.data.contacts, r.mediator, r.mediatorAlias);
  const peer = nameFor(app.data.contacts, r.peer);
  const what = r.kind === 'introduced' ? `${mediator} introduces you to ${peer}` : `${peer} asks ${mediator} to introduce you`;
  const answer = (method: 'kxAccept' | 'kxDecline') => run(() => rpc(method, { id: r.id })).then(app.reload);
  return html`<div class="row">
    <span>${what}<span class="hint"> · expires ${when(r.expiresAt)}</span></span>
    <button onClick=${() => answer('kxAccept')} aria-label=${`Accept: ${what}`}>Accept</button>
    <button onClick=${() => answer('kxDecline')} aria-label=${`Decline: ${what}`}>Decline</button>
    <${Err} error=${error} />
  </div>` as VNode;
}
