import type { VNode } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ConversationList, ConversationView } from './chat.js';
import { ContactsView } from './contacts.js';
import { follow, rpc } from './connection.js';
import { GroupsView } from './groups.js';
import { InvitesView } from './invites.js';
import { RelaysView } from './relays.js';
import { EMPTY, type App as AppApi, type Data, type Open, type View } from './state.js';
import type { Contact, FollowEvent } from './types.js';
import { html, nameFor, when } from './ui.js';

/** Events within this long of each other cause one reload. */
const COALESCE_MS = 100;
/**
 * How often an open, visible page reloads without an event. Every change a user acts on comes as
 * one (messages, key exchanges, introduction requests, groups, a relay's state and why it is not
 * connected, a key exchange that failed or expired unanswered); a few come with none (a relay's
 * last-seen time, our own invite expiring unused), so these are at most this old.
 */
const SAFETY_RELOAD_MS = 60_000;

const VIEWS: { view: View; label: string }[] = [
  { view: 'chats', label: 'Chats' },
  { view: 'contacts', label: 'Contacts' },
  { view: 'invites', label: 'Invites' },
  { view: 'groups', label: 'Groups' },
  { view: 'relays', label: 'Relays' },
];

interface Warning {
  key: string;
  text: string;
}

type Link = { state: 'connecting' } | { state: 'open' } | { state: 'down'; reason: string } | { state: 'refused'; reason: string };

async function load(tick: number): Promise<Data> {
  // `status` carries whoami: one call fewer on every reload.
  const [conversations, contacts, groups, status, kx, requests] = await Promise.all([
    rpc('conversations'),
    rpc('contacts'),
    rpc('groups'),
    rpc('status'),
    rpc('keyExchanges'),
    rpc('kxRequests'),
  ]);
  return { me: status.whoami, conversations, contacts, groups, relays: status.relays, kx, requests, tick };
}

/** The warning an event carries, if any. */
function warningOf(e: FollowEvent, contacts: readonly Contact[]): string | null {
  switch (e.type) {
    case 'warning':
      return e.message;
    case 'failed':
      return `${e.ids.length === 1 ? 'A message' : `${e.ids.length} messages`} to ${nameFor(contacts, e.peer)} failed: ${e.reason}`;
    case 'refused':
      return `Refused ${e.what} from ${nameFor(contacts, e.peer, e.alias)}: ${e.reason}`;
    case 'kx-failed':
      return `The key exchange with ${nameFor(contacts, e.peer, e.alias)} failed: ${e.reason}`;
    default:
      return null;
  }
}

/**
 * A contact whose identity key changed and is not acknowledged yet: trusting or verifying clears
 * `keyChangedAt`; `trusted` itself stays as it was (true for a contact met by invite).
 */
const keyChangeWarnings = (contacts: readonly Contact[]): Warning[] =>
  contacts
    .filter((c) => c.keyChangedAt !== null)
    .map((c) => ({
      key: `key:${c.fingerprint}:${c.keyChangedAt}`,
      text: `${nameFor(contacts, c.fingerprint)}'s identity key changed ${when(c.keyChangedAt)}: compare safety numbers (Contacts) before trusting it.`,
    }));

export function App({ token }: { token: string }): VNode {
  const [link, setLink] = useState<Link>({ state: 'connecting' });
  const [data, setData] = useState<Data>(EMPTY);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [view, setView] = useState<View>('chats');
  const [open, setOpen] = useState<Open | null>(null);
  const [events, setEvents] = useState<Warning[]>([]);
  const [dismissed, setDismissed] = useState<ReadonlySet<string>>(new Set());
  const [announcement, setAnnouncement] = useState('');
  const tick = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const contacts = useRef<Contact[]>([]);
  contacts.current = data.contacts;

  const reloadNow = () =>
    load(++tick.current).then(
      // A slower, older load must not overwrite a newer one.
      (d) => d.tick === tick.current && (setData(d), setLoadError(null)),
      (e: Error) => setLoadError(e.message),
    );
  const reload = () => {
    if (timer.current === null) timer.current = setTimeout(() => ((timer.current = null), void reloadNow()), COALESCE_MS);
  };

  const following = link.state === 'open';
  useEffect(() => {
    if (!following) return;
    const every = setInterval(() => document.hidden || reload(), SAFETY_RELOAD_MS);
    return () => clearInterval(every);
  }, [following]);

  useEffect(
    () =>
      follow(token, {
        onOpen: () => (setLink({ state: 'open' }), void reloadNow()),
        onDown: (_ms, reason) => setLink({ state: 'down', reason }),
        onRefused: (reason) => setLink({ state: 'refused', reason }),
        onEvent: (e) => {
          const w = warningOf(e, contacts.current);
          if (w) setEvents((ws) => [...ws, { key: `event:${Date.now()}:${ws.length}`, text: w }]);
          if (e.type === 'message') {
            const from = nameFor(contacts.current, e.message.from, e.message.alias);
            setAnnouncement(`New message from ${from}${e.message.group ? ` in ${e.message.group.name}` : ''}`);
          }
          if (e.type === 'kx') setAnnouncement(`Key exchange with ${nameFor(contacts.current, e.peer)} complete`);
          if (e.type === 'request' && e.change === 'arrived') setAnnouncement(`${nameFor(contacts.current, e.mediator, e.mediatorAlias)} introduces someone: see Invites`);
          if (e.type === 'group' && e.change === 'invited') setAnnouncement(`Invited to the group ${e.name}: see Groups`);
          reload();
        },
      }),
    [token],
  );

  if (link.state === 'refused')
    return html`<main class="refused"><h1>rrelay</h1><p class="error" role="alert">${link.reason}</p></main>` as VNode;

  const app: AppApi = {
    data,
    reload,
    open,
    view,
    openConversation: (o) => {
      setOpen(o);
      if (o) setView('chats');
    },
    go: setView,
  };
  const unread = data.conversations.reduce((n, c) => n + c.unread, 0);
  const warnings = [...keyChangeWarnings(data.contacts), ...events].filter((w) => !dismissed.has(w.key));
  const status = link.state === 'open' ? 'Connected' : link.state === 'down' ? `Reconnecting…${link.reason ? ` (${link.reason})` : ''}` : 'Connecting…';
  const main =
    view === 'chats'
      ? open
        ? html`<${ConversationView} key=${open.kind + open.id} app=${app} open=${open} />`
        : html`<p class="empty pick">Pick a conversation.</p>`
      : view === 'contacts'
        ? html`<${ContactsView} app=${app} />`
        : view === 'invites'
          ? html`<${InvitesView} app=${app} />`
          : view === 'groups'
            ? html`<${GroupsView} app=${app} />`
            : html`<${RelaysView} app=${app} />`;

  return html`<div class=${`shell view-${view}${open ? ' has-open' : ''}`}>
    <header class="top">
      <h1>rrelay</h1>
      ${data.me && html`<span class="me mono" title="your fingerprint">${data.me.fingerprint.slice(0, 16)}</span>`}
      <span role="status" class=${`link ${link.state}`}>${status}</span>
    </header>
    <nav aria-label="Sections">
      ${VIEWS.map(
        (v) => html`<button key=${v.view} aria-current=${view === v.view ? 'page' : undefined} onClick=${() => setView(v.view)}>
          ${v.label}${v.view === 'chats' && unread > 0 ? html` <span class="badge" aria-label=${`${unread} unread`}>${unread}</span>` : ''}
        </button>`,
      )}
    </nav>
    ${(warnings.length > 0 || loadError) &&
    html`<section class="warnings" aria-label="Warnings">
      ${loadError && html`<p class="error" role="alert">${loadError}</p>`}
      <ul>
        ${warnings.map(
          (w) => html`<li key=${w.key}>
            <span>${w.text}</span>
            <button class="link" aria-label=${`Dismiss: ${w.text}`} onClick=${() => setDismissed(new Set([...dismissed, w.key]))}>Dismiss</button>
          </li>`,
        )}
      </ul>
    </section>`}
    <div class="body">
      <aside class="sidebar" aria-label="Conversations"><${ConversationList} app=${app} /></aside>
      <main>${main}</main>
    </div>
    <div class="sr-only" aria-live="polite">${announcement}</div>
  </div>` as VNode;
}
