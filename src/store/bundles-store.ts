import type { Bytes } from '../crypto/index.js';
import type { Db } from './database.js';
import { blob, bytesOf, prepareAll, type Row } from './rows.js';
import type { Settings } from './node-state.js';

export interface DiscoveredBundle {
  readonly fingerprint: string;
  readonly nostrPubkey: string;
  readonly bundle: Bytes;
  readonly eventCreatedAt: number;
  readonly receivedAt: number;
}

const UNPUBLISHED = 'unpublished';

/** Pre-key bundles discovered on the relays (the newest per identity), and whether ours is withdrawn. */
export class BundlesStore {
  private readonly q;

  constructor(
    db: Db,
    private readonly settings: Settings,
  ) {
    this.q = prepareAll(db, {
      byFp: 'SELECT * FROM discovered_bundles WHERE fingerprint = ?',
      byPrefix: "SELECT * FROM discovered_bundles WHERE fingerprint LIKE ? || '%'",
      all: 'SELECT * FROM discovered_bundles ORDER BY received_at DESC',
      count: 'SELECT count(*) AS n FROM discovered_bundles',
      upsert: `INSERT INTO discovered_bundles (fingerprint, nostr_pubkey, bundle, event_created_at, received_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (fingerprint) DO UPDATE SET nostr_pubkey = excluded.nostr_pubkey, bundle = excluded.bundle,
          event_created_at = excluded.event_created_at, received_at = excluded.received_at
        WHERE excluded.event_created_at >= discovered_bundles.event_created_at`,
      forget: 'DELETE FROM discovered_bundles WHERE nostr_pubkey = ? AND event_created_at <= ?',
    });
  }

  /** Keeps the newest bundle per identity; returns false when `eventCreatedAt` is older than what we have. */
  save(fp: string, nostrPubkey: string, bundle: Bytes, eventCreatedAt: number, now: number): boolean {
    return this.q.upsert.run(fp, nostrPubkey, blob(bundle), eventCreatedAt, now).changes > 0;
  }

  /** An empty bundle event unpublishes: forget what that Nostr key published before it. */
  forget(nostrPubkey: string, upTo: number): number {
    return this.q.forget.run(nostrPubkey, upTo).changes;
  }

  get(fp: string): DiscoveredBundle | undefined {
    return toDiscovered(this.q.byFp.get(fp) as Row | undefined);
  }

  byPrefix(prefix: string): DiscoveredBundle[] {
    return (this.q.byPrefix.all(prefix.toLowerCase()) as Row[]).map((r) => toDiscovered(r)!);
  }

  all(): DiscoveredBundle[] {
    return (this.q.all.all() as Row[]).map((r) => toDiscovered(r)!);
  }

  count(): number {
    return (this.q.count.get() as { n: number }).n;
  }

  /** Set by `unpublish`, cleared by `publish`: maintenance then leaves the relays alone. */
  isUnpublished(): boolean {
    return this.settings.get(UNPUBLISHED) === '1';
  }

  setUnpublished(unpublished: boolean): void {
    this.settings.set(UNPUBLISHED, unpublished ? '1' : '0');
  }
}

function toDiscovered(r: Row | undefined): DiscoveredBundle | undefined {
  if (!r) return undefined;
  return {
    fingerprint: r.fingerprint as string,
    nostrPubkey: r.nostr_pubkey as string,
    bundle: bytesOf(r.bundle),
    eventCreatedAt: r.event_created_at as number,
    receivedAt: r.received_at as number,
  };
}
