import type { VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { contactOptions } from './contacts.js';
import { rpc } from './connection.js';
import type { App } from './state.js';
import type { Group, Member } from './types.js';
import { contactName, Err, html, OneField, useAction } from './ui.js';

export function GroupsView({ app }: { app: App }): VNode {
  return html`<section aria-labelledby="groups-title">
    <h2 id="groups-title">Groups</h2>
    <${OneField} label="New group's name" button="Create group" submit=${(name: string) => rpc('groupCreate', { name })} done=${app.reload} />
    ${!app.data.groups.length && html`<p class="empty">No groups yet.</p>`}
    <ul class="cards">${app.data.groups.map((g) => html`<li key=${g.id}><${GroupCard} app=${app} group=${g} /></li>`)}</ul>
  </section>` as VNode;
}

function GroupCard({ app, group: g }: { app: App; group: Group }): VNode {
  const [members, setMembers] = useState<Member[] | null>(null);
  const [invitee, setInvitee] = useState('');
  const load = useAction();
  const join = useAction();
  const invite = useAction();
  const admin = g.admin === app.data.me?.fingerprint;
  useEffect(() => {
    void load.run(async () => setMembers(await rpc('groupMembers', { group: g.id })));
  }, [g.id, g.version, app.data.tick]);
  const candidates = app.data.contacts.filter((c) => !members?.some((m) => m.fingerprint === c.fingerprint));
  const chosen = candidates.some((c) => c.fingerprint === invitee) ? invitee : (candidates[0]?.fingerprint ?? '');
  return html`<article class="card" aria-labelledby=${`group-${g.id}`}>
    <header class="card-head">
      <h3 id=${`group-${g.id}`}># ${g.name}</h3>
      ${admin && html`<span class="tag">admin</span>`}
      ${!g.joined && html`<span class="tag warn">invited</span>`}
    </header>
    <div class="actions">
      ${g.joined
        ? html`<button onClick=${() => app.openConversation({ kind: 'group', id: g.id })}>Open conversation</button>`
        : html`<button onClick=${() => join.run(() => rpc('groupJoin', { group: g.id })).then(app.reload)}>Join ${g.name}</button>`}
    </div>
    <${Err} error=${join.error} />
    <h4>Members</h4>
    <${Err} error=${load.error} />
    <ul class="members">
      ${(members ?? []).map(
        (m) => html`<li key=${m.fingerprint}>
          <span>${m.fingerprint === app.data.me?.fingerprint ? 'you' : contactName(m)}${m.admin ? ' (admin)' : ''}</span>
          <span class=${m.reachable ? 'tag ok' : 'tag warn'}>${m.reachable ? 'reachable' : m.introductionAttempts ? `not reachable yet (${m.introductionAttempts} introduction attempts)` : 'not reachable yet'}</span>
        </li>`,
      )}
    </ul>
    ${admin &&
    candidates.length > 0 &&
    html`<form class="inline" onSubmit=${(e: Event) => (e.preventDefault(), void invite.run(() => rpc('groupInvite', { group: g.id, contact: chosen })).then(app.reload))}>
      <label>Invite to ${g.name} <select value=${chosen} onChange=${(e: Event) => setInvitee((e.target as HTMLSelectElement).value)}>${contactOptions(candidates)}</select></label>
      <button type="submit">Invite</button>
    </form>`}
    <${Err} error=${invite.error} />
  </article>` as VNode;
}
