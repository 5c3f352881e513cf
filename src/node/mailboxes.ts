import type { Filter } from 'nostr-tools/filter';
import { PRIVACY_LIMITS } from '../limits.js';
import { KIND_MESSAGE, RENDEZVOUS_TAG } from '../nostr/events.js';
import { receiveTags } from '../ratchet/index.js';
import type { Contacts } from './contacts.js';
import type { NodeContext } from './context.js';

export const SUB_MAILBOXES = 'rr-mailboxes';

/** The filters of the mailbox subscription: kind 40001 by `#z`, at most `tagsPerFilter` tags each (relays bound a filter's size). */
export function mailboxFilters(tags: readonly string[], perFilter: number = PRIVACY_LIMITS.tagsPerFilter): Filter[] {
  const filters: Filter[] = [];
  for (let i = 0; i < tags.length; i += perFilter) filters.push({ kinds: [KIND_MESSAGE], [`#${RENDEZVOUS_TAG}`]: tags.slice(i, i + perFilter) });
  return filters;
}

/**
 * The mailbox tags messages to us can arrive on, and the one relay subscription that follows them.
 * A contact's receive tags are the union over its stored sessions of `receiveTags`: they move at
 * every DH ratchet step, and a tag stays only while a key that opens messages on it is kept. After
 * a session of a contact changed (`changed`, told by the store on every save), that contact's tags
 * alone are computed again, and the subscription follows a moment later, once for a burst.
 * At start every contact's tags are computed from the store: a restart listens where it left off.
 */
export class Mailboxes {
  /** tag → the fingerprint of the contact it belongs to. */
  private readonly owners = new Map<string, string>();
  /** fingerprint → its receive tags. */
  private readonly byContact = new Map<string, readonly string[]>();
  private readonly dirty = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The tags the relay subscription holds now, joined; to skip a resubscription that changes nothing. */
  private subscribed = '';

  constructor(
    private readonly ctx: NodeContext,
    private readonly contacts: Contacts,
  ) {
    for (const c of contacts.all()) this.recompute(c.fingerprint);
    ctx.store.onSessionSaved = (peer) => this.changed(peer);
  }

  /** The Nostr key of the contact whose receive tag `tag` is. Brings pending changes in first. */
  ownerOf(tag: string): string | undefined {
    this.applyChanges();
    const fp = this.owners.get(tag) ?? this.pendingOwnerOf(tag);
    return fp === undefined ? undefined : this.contacts.get(fp)?.nostrPubkey;
  }

  /**
   * Inside a transaction (a batch of incoming events), a session saved earlier in it may already
   * listen on `tag` (a DH step moved its header keys): read from the uncommitted state, without
   * keeping anything, since it may yet roll back. Only on a miss, which is rare.
   */
  private pendingOwnerOf(tag: string): string | undefined {
    if (this.dirty.size === 0 || !this.ctx.db.open || !this.ctx.db.inTransaction) return undefined;
    for (const peer of this.dirty) if (this.tagsOf(peer).includes(tag)) return peer;
    return undefined;
  }

  private tagsOf(peer: string): string[] {
    return [...new Set(this.ctx.store.loadSessions(peer).flatMap((s) => receiveTags(s.ratchet)))];
  }

  /** Every tag we listen on now. */
  tags(): string[] {
    this.applyChanges();
    return [...this.owners.keys()];
  }

  /** A session of `peer` was saved: its tags are computed again soon (read from what is committed then). */
  changed(peer: string): void {
    this.dirty.add(peer);
    if (this.timer !== undefined || this.ctx.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.subscribe();
    }, PRIVACY_LIMITS.resubscribeDebounceMs);
    this.timer.unref?.();
  }

  /** Brings the relay subscription in step with the tags (kind 40001, `#z`, in filters of at most `tagsPerFilter` tags). */
  subscribe(): void {
    const relays = this.ctx.relays;
    const tags = this.tags().sort();
    const key = tags.join();
    if (!relays || this.ctx.closed || key === this.subscribed) return;
    this.subscribed = key;
    if (tags.length === 0) return relays.unsubscribe(SUB_MAILBOXES);
    relays.subscribe(SUB_MAILBOXES, mailboxFilters(tags));
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private applyChanges(): void {
    // Inside a transaction what is read may yet roll back: changes wait for the commit.
    if (this.dirty.size === 0 || !this.ctx.db.open || this.ctx.db.inTransaction) return;
    for (const peer of this.dirty) this.recompute(peer);
    this.dirty.clear();
  }

  private recompute(peer: string): void {
    for (const tag of this.byContact.get(peer) ?? []) this.owners.delete(tag);
    const tags = this.tagsOf(peer);
    if (tags.length === 0) this.byContact.delete(peer);
    else this.byContact.set(peer, tags);
    for (const tag of tags) this.owners.set(tag, peer);
  }
}
