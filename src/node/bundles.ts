import { fail } from '../errors.js';
import { BUNDLE_D_TAG, bundleEvent, decodeBundleEvent, type Event, KIND_BUNDLE } from '../nostr/events.js';
import { decodePreKeyBundle, encodePreKeyBundle, type MaintenanceReport } from '../prekeys/index.js';
import { BundlesStore, type Contact, type DiscoveredBundle, type OutboxEntry } from '../store/index.js';
import { type Contacts, nameOf } from './contacts.js';
import type { NodeContext } from './context.js';
import type { Outbox } from './outbox.js';

export type Peer = DiscoveredBundle & { readonly alias: string | null; readonly isContact: boolean };

/** The subscription that discovers bundles: every pre-key bundle of the seed's kind and `d` tag. */
export const BUNDLE_FILTER = { kinds: [KIND_BUNDLE], '#d': [BUNDLE_D_TAG] };

/**
 * Our pre-key bundle (maintenance and publishing, as the seed says: on connect, when keys rotated or
 * a one-time key was used) and everyone else's (discovery, and sessions started from them).
 */
export class Bundles {
  private readonly store: BundlesStore;

  constructor(
    private readonly ctx: NodeContext,
    private readonly contacts: Contacts,
    private readonly outbox: Outbox,
  ) {
    this.store = new BundlesStore(ctx.db, ctx.settings);
  }

  /** Runs key maintenance and publishes a new bundle when it changed, unless the user unpublished. */
  maintain(): MaintenanceReport {
    const report = this.ctx.cipher.maintain();
    if (report.shouldPublish && !this.store.isUnpublished()) this.queue(false);
    return report;
  }

  /** Publishes the current bundle now, even if nothing changed; clears an earlier unpublish. */
  publish(): void {
    this.store.setUnpublished(false);
    this.ctx.cipher.maintain();
    this.queue(false);
  }

  /** Replaces our bundle on the relays with an empty one: peers can no longer start new sessions. */
  unpublish(): void {
    this.store.setUnpublished(true);
    this.queue(true);
  }

  isPublished(): boolean {
    return this.ctx.store.loadPreKeyState().published !== null && !this.store.isUnpublished();
  }

  /** The outbox hook: a relay accepted our bundle event. */
  onAccepted(entry: OutboxEntry, event: Event, acceptedBy: number, first: boolean): void {
    if (entry.purpose !== 'bundle' || !first) return;
    const unpublished = event.content === '';
    if (!unpublished) this.ctx.cipher.markPublished(decodePreKeyBundle(new Uint8Array(Buffer.from(event.content, 'base64'))));
    this.ctx.afterCommit(() => this.ctx.events.emit('published', { acceptedBy, unpublished }));
  }

  /** An incoming kind-30078 bundle event: remembered (newest per identity), or forgotten when emptied. */
  onBundleEvent(event: Event): void {
    if (event.pubkey === this.ctx.selfNostr) return this.ctx.seen.mark(event.id, 'own bundle', this.ctx.clock());
    const content = decodeBundleEvent(event);
    const now = this.ctx.clock();
    const createdAtMs = event.created_at * 1000;
    this.ctx.transaction(() => {
      if (content.kind === 'unpublished') this.store.forget(event.pubkey, createdAtMs);
      else {
        this.contacts.observe(content.bundle.identity, 'bundle', now);
        this.store.save(content.fingerprint, event.pubkey, content.bytes, createdAtMs, now);
        this.ctx.afterCommit(() => this.ctx.events.emit('bundle', { fingerprint: content.fingerprint, nostrPubkey: event.pubkey }));
      }
      this.ctx.seen.mark(event.id, content.kind, now);
    });
  }

  peers(): Peer[] {
    return this.store.all().map((b) => {
      const c = this.contacts.get(b.fingerprint);
      return { ...b, alias: c?.alias ?? null, isContact: c !== undefined };
    });
  }

  count(): number {
    return this.store.count();
  }

  /** Resolves a contact by alias or fingerprint (prefix), or a discovered peer, which becomes a contact. */
  resolvePeer(ref: string): Contact {
    const contact = this.contacts.resolve(ref);
    if (contact) return contact;
    if (/^[0-9a-fA-F]{8,64}$/.test(ref)) {
      const found = this.store.byPrefix(ref);
      if (found.length > 1) fail('INVALID_ARGUMENT', `"${ref}" matches ${found.length} discovered peers: give more digits`);
      if (found[0]) return this.contacts.addChosen(decodePreKeyBundle(found[0].bundle).identity);
    }
    return fail(
      'NO_SESSION',
      `no contact or discovered bundle matches "${ref}": check \`rrelay contacts ls\` and \`rrelay peers\`, or ask the peer to run \`rrelay publish\``,
    );
  }

  /** A session with `contact`, started from its newest discovered bundle (PQXDH) if there is none yet. */
  ensureSession(contact: Contact): void {
    if (this.ctx.cipher.hasSession(contact.fingerprint)) return;
    const discovered = this.store.get(contact.fingerprint);
    if (!discovered)
      fail('NO_SESSION', `no session with ${nameOf(contact)} and no bundle of theirs: they need to publish one (\`rrelay publish\`)`);
    this.ctx.cipher.startSession(decodePreKeyBundle(discovered.bundle));
  }

  private queue(empty: boolean): void {
    const bytes = empty ? null : encodePreKeyBundle(this.ctx.cipher.bundle());
    this.outbox.replaceBundle(bundleEvent(bytes, this.ctx.store.identity().nostr.privateKey, this.ctx.clock()));
  }
}
