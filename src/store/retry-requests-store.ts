import type { Db } from './database.js';
import { prepareAll } from './rows.js';

/** The retry requests we sent: one per session that failed, and a bound per sender. */
export class RetryRequestsStore {
  private readonly q;

  constructor(db: Db) {
    this.q = prepareAll(db, {
      insert: 'INSERT OR IGNORE INTO retry_requests (sender, base_key, requested_at) VALUES (?, ?, ?)',
      since: 'SELECT count(*) AS n FROM retry_requests WHERE sender = ? AND requested_at >= ?',
      prune: 'DELETE FROM retry_requests WHERE requested_at < ?',
    });
  }

  /** How many requests went to `sender` since `since`. */
  countSince(sender: string, since: number): number {
    return (this.q.since.get(sender, since) as { n: number }).n;
  }

  /** Records a request for `sender`'s session `baseKey`; false when one was sent for it already. */
  record(sender: string, baseKey: string, now: number): boolean {
    return this.q.insert.run(sender, baseKey, now).changes > 0;
  }

  prune(before: number): void {
    this.q.prune.run(before);
  }
}
