import type { VNode } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { rpc } from './connection.js';
import type { App, Open } from './state.js';
import type { Message } from './types.js';
import { Err, html, nameFor, useAction, when } from './ui.js';

const HISTORY_LIMIT = 200;

const sameConversation = (a: Open | null, b: Open) => a?.kind === b.kind && a.id === b.id;

export function ConversationList({ app }: { app: App }): VNode {
  const { conversations } = app.data;
  const current = (c: Open) => app.view === 'chats' && sameConversation(app.open, c);
  if (!conversations.length)
    return html`<p class="empty">No conversations yet. Create an invite (Invites) and hand it to someone, or accept theirs.</p>` as VNode;
  return html`<ul class="conversations">
    ${conversations.map(
      (c) => html`<li key=${c.kind + c.id}>
        <button class=${`conversation${current(c) ? ' current' : ''}`} aria-current=${current(c) ? 'true' : undefined}
          onClick=${() => app.openConversation({ kind: c.kind, id: c.id })}>
          <span class="conv-name">${c.kind === 'group' ? '# ' : ''}${c.name}</span>
          ${c.unread > 0 && html`<span class="badge" aria-label=${`${c.unread} unread`}>${c.unread}</span>`}
          <span class="conv-last">${c.lastText === null ? 'no messages yet' : `${c.lastDirection === 'out' ? 'You: ' : ''}${c.lastText}`}</span>
          ${c.lastAt !== null && html`<span class="conv-time">${when(c.lastAt)}</span>`}
        </button>
      </li>`,
    )}
  </ul>` as VNode;
}

/** A sent message's state in words. */
export function stateText(m: Message): string {
  switch (m.state) {
    case 'queued':
      return 'queued';
    case 'sent':
      return m.relaysAccepted === 1 ? 'sent (1 relay)' : `sent (${m.relaysAccepted} relays)`;
    case 'delivered':
      return 'delivered';
    case 'failed':
      return `failed: ${m.failure ?? 'no reason given'}`;
    default:
      return '';
  }
}

export function ConversationView({ app, open }: { app: App; open: Open }): VNode {
  const [messages, setMessages] = useState<Message[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const row = app.data.conversations.find((c) => c.kind === open.kind && c.id === open.id);
  const ref = open.kind === 'group' ? { group: open.id } : { contact: open.id };
  const list = useRef<HTMLOListElement>(null);

  // The newest incoming message marked read, so that a reload showing nothing new marks nothing.
  const marked = useRef<string | null>(null);

  useEffect(() => {
    let live = true;
    // A contact's conversation is the pairwise one: group messages are shown in their group.
    rpc('history', { ...ref, limit: HISTORY_LIMIT, direct: open.kind === 'contact' }).then(
      (shown) => {
        if (!live) return;
        setMessages(shown);
        setLoadError(null);
        // Read as shown. Waiting for the unread count instead (a separate call) left a message the
        // user saw unread when it arrived between the two calls and the user switched view.
        const newest = shown.filter((m) => m.direction === 'in').pop();
        if (newest && newest.id !== marked.current) {
          marked.current = newest.id;
          rpc('readConversation', ref).then(app.reload, (e: Error) => live && setLoadError(e.message));
        }
      },
      (e: Error) => live && setLoadError(e.message),
    );
    return () => void (live = false);
  }, [open.kind, open.id, app.data.tick]);

  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [messages?.length, open.id]);

  const contact = open.kind === 'contact' ? app.data.contacts.find((c) => c.fingerprint === open.id) : undefined;
  const name = row?.name ?? (contact ? nameFor(app.data.contacts, contact.fingerprint) : open.id.slice(0, 16));
  return html`<section class="conversation-view" aria-labelledby="conversation-title">
    <header class="conv-header">
      <button class="back phone-only" onClick=${() => app.openConversation(null)}>Back</button>
      <h2 id="conversation-title">${open.kind === 'group' ? '# ' : ''}${name}</h2>
      ${contact && html`<span class=${contact.verified ? 'tag ok' : 'tag'}>${contact.verified ? 'verified' : 'not verified'}</span>`}
      ${contact && html`<button class="link" onClick=${() => app.go('contacts')}>Contact details</button>`}
    </header>
    <${Err} error=${loadError} />
    <ol class="messages" role="log" aria-label=${`Messages with ${name}`} ref=${list} tabindex="0">
      ${messages?.length === 0 && html`<li class="empty">No messages yet: say hello.</li>`}
      ${(messages ?? []).map(
        (m) => html`<li key=${m.id} class=${`msg ${m.direction}`}>
          ${open.kind === 'group' && m.direction === 'in' && html`<span class="from">${nameFor(app.data.contacts, m.peer, m.alias)}</span>`}
          <span class="text">${m.text}</span>
          <span class="meta">${when(m.sentAt)}${m.direction === 'out' && html` · <span class=${`state ${m.state}`}>${stateText(m)}</span>`}</span>
        </li>`,
      )}
    </ol>
    <${Composer} app=${app} open=${open} />
  </section>` as VNode;
}

function Composer({ app, open }: { app: App; open: Open }): VNode {
  const [text, setText] = useState('');
  const { run, busy, error } = useAction();
  const send = async () => {
    if (!text.trim() || busy) return;
    const ok = await run(() => (open.kind === 'group' ? rpc('groupSend', { group: open.id, text }) : rpc('send', { contact: open.id, text, waitMs: 0 })));
    if (ok) setText('');
    app.reload();
  };
  return html`<form class="composer" onSubmit=${(e: Event) => (e.preventDefault(), void send())}>
    <textarea aria-label="Message" rows="2" value=${text} placeholder="Write a message (Enter sends, Shift+Enter: new line)"
      onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}
      onKeyDown=${(e: KeyboardEvent) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
          e.preventDefault();
          void send();
        }
      }}></textarea>
    <button type="submit" disabled=${busy}>Send</button>
    <${Err} error=${error} />
  </form>` as VNode;
}
