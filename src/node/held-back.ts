import { toHex } from '../crypto/index.js';
import { HELD_BACK_LIMITS } from '../limits.js';
import { type Event, reasonOf } from '../nostr/events.js';
import { type DroppedHeldBack, HeldBackStore } from '../store/index.js';
import type { Arrival } from './arrivals.js';
import type { Contacts } from './contacts.js';
import type { NodeContext } from './context.js';

/**
 * Held-back events: incoming messages that a later message can cure (a gap beyond MAX_SKIP, a
 * session not there yet), or that come later in their chain than the next one expected. They are
 * kept in the store (bounded), indexed by sender and chain position, and retried in chain order, in
 * bounded batches that yield, trying after each success only what that success can have cured.
 */
export class HeldBack {
  private readonly heldStore: HeldBackStore;
  /** The held-back events (the store's, in memory), by sender, with their chain positions. */
  private readonly held = new Map<string, SenderHeld>();
  /** Senders whose held-back events are to be retried, in bounded batches on later turns of the event loop. */
  private readonly retryJobs = new Map<string, RetryJob>();
  private retryScheduled = false;
  /** Positions `chainOrder` read for the batch being handled, by event id, with the chain state they were read under. */
  private batchPositions = new Map<string, { epoch: string; at: Position }>();

  constructor(
    private readonly ctx: NodeContext,
    private readonly contacts: Contacts,
    /** Decrypts and delivers one event in one transaction, or throws with state unchanged. */
    private readonly receive: (event: Event) => void,
    private readonly isRetryable: (e: unknown) => boolean,
    /** Who sent an event and what it carries (throws when it cannot tell). */
    private readonly arrivalOf: (event: Event) => Arrival,
  ) {
    this.heldStore = new HeldBackStore(ctx.db, HELD_BACK_LIMITS, (sender) => !contacts.byNostr(sender));
    this.dropped(this.heldStore.trim());
    // Held back before a restart: retried once a relay's backlog is in, and whenever their sender's session moves.
    for (const { eventId, sender } of this.heldStore.ids()) this.index(eventId, sender, true);
  }

  /** How many events are held back now. */
  count(): number {
    return this.heldStore.totals().events;
  }

  /**
   * Retries every held event of `sender` (after a key exchange: a few at once, so that what the
   * exchange cured, its hello say, is in before anyone is told), or of everyone (once a relay's
   * backlog is in), the rest in batches on later turns of the event loop.
   */
  retry(sender?: string): void {
    if (sender !== undefined) {
      // A key exchange made it a contact: what it holds leaves the strangers' pool.
      this.dropped(this.heldStore.reclassify(sender));
      this.retryNow(sender, { sweep: true, tried: new Set() }, false);
    }
    for (const s of sender === undefined ? [...this.held.keys()] : [sender]) this.wake(s, true);
  }

  /** Whether `event` of `sender` is waiting already. */
  has(event: Event, sender: string): boolean {
    return this.held.get(sender)?.events.has(event.id) ?? false;
  }

  /** Whether `event` is a message of its sender's session (or of the one it starts) later than the next one expected. */
  aheadOfChain(event: Event, sender: string): boolean {
    const chain = this.chainOf(sender);
    // Read already by `chainOrder` under this same state of the chain: a header decrypt saved.
    const known = this.batchPositions.get(event.id);
    const at = chain && (known?.epoch === chain.epoch ? known.at : this.positionOf(chain.peer, event));
    if (at) return at.chain === 0 ? at.n > chain!.nr : at.n > 0;
    // A session not accepted yet starts from its first message, so that those after it are not skipped.
    const initial = this.initialPositionOf(event);
    return !!initial && initial.n > 0;
  }

  /**
   * `batch` in the order its events come in their senders' chains: those a sender's current
   * receiving chain or the next one places, by (chain, counter), then the rest as they came (they
   * take the held-back path). Reads positions only: nothing changes.
   */
  chainOrder<T extends { readonly event: Event }>(batch: readonly T[]): T[] {
    this.batchPositions = new Map();
    if (batch.length < 2) return [...batch];
    const chains = new Map<string, ReturnType<HeldBack['chainOf']>>();
    const placed: { item: T; at: Position; i: number }[] = [];
    const rest: T[] = [];
    batch.forEach((item, i) => {
      let sender: string;
      try {
        sender = this.arrivalOf(item.event).sender;
      } catch {
        return rest.push(item);
      }
      if (!chains.has(sender)) chains.set(sender, this.chainOf(sender));
      const chain = chains.get(sender);
      const at = chain && this.positionOf(chain.peer, item.event);
      if (!at) return rest.push(item);
      placed.push({ item, at, i });
      this.batchPositions.set(item.event.id, { epoch: chain.epoch, at });
    });
    // Senders' chains are independent: ordering across senders by (chain, counter) keeps each one's order.
    placed.sort((a, b) => a.at.chain - b.at.chain || a.at.n - b.at.n || a.i - b.i);
    return [...placed.map((p) => p.item), ...rest];
  }

  private initialPositionOf(event: Event): Position | null {
    const envelope = this.envelopeOf(event);
    return envelope && this.ctx.cipher.peekInitialPosition(envelope);
  }

  /** Where the receiving chain of `sender`'s active session stands: `epoch` changes whenever positions must be read anew. */
  private chainOf(sender: string): { peer: string; epoch: string; nr: number } | null {
    const contact = this.contacts.byNostr(sender);
    if (!contact) return null;
    const active = this.ctx.store.loadSessions(contact.fingerprint)[0];
    if (!active) return null;
    const r = active.ratchet;
    return { peer: contact.fingerprint, epoch: `${toHex(active.baseKey)}/${r.dhr ? toHex(r.dhr) : '-'}`, nr: r.nr };
  }

  private positionOf(peer: string, event: Event): Position | null {
    const envelope = this.envelopeOf(event);
    return envelope && this.ctx.cipher.peekPosition(peer, envelope);
  }

  /** The envelope a held event carries, or null when it is no message to us (it will be refused when tried). */
  private envelopeOf(event: Event): Uint8Array | null {
    try {
      return this.arrivalOf(event).envelopeBytes;
    } catch {
      return null;
    }
  }

  /** A held-back event, read back from the store. */
  private load(id: string): Event | undefined {
    const json = this.heldStore.event(id);
    return json === undefined ? undefined : (JSON.parse(json) as Event);
  }

  /** Keeps `event` of `sender` (the arrival's, not the event's author) in the store and the index; logs what the bounds drop for it. */
  hold(event: Event, sender: string, reason: string, reported: boolean): void {
    const dropped = this.heldStore.hold({ eventId: event.id, sender, event: JSON.stringify(event), heldAt: this.ctx.clock(), reason });
    this.index(event.id, sender, reported, event);
    this.dropped(dropped);
  }

  private dropped(dropped: readonly DroppedHeldBack[]): void {
    for (const d of dropped) {
      this.unindex(d.sender, d.eventId);
      this.ctx.log(`dropped held-back event ${d.eventId.slice(0, 12)} from ${d.sender.slice(0, 12)}: ${d.why}`);
    }
  }

  /** `event` itself when at hand: without it (a restart), positions are read when first needed. */
  private index(id: string, sender: string, reported: boolean, event?: Event): void {
    let s = this.held.get(sender);
    if (!s) this.held.set(sender, (s = { epoch: undefined, events: new Map() }));
    if (s.events.has(id)) return;
    // Positions are read against one state of the chain; a new event joins them, or all are read again.
    const chain = s.epoch === undefined || !event ? null : this.chainOf(sender);
    const at = chain && chain.epoch === s.epoch ? this.positionOf(chain.peer, event!) : null;
    if (!chain || chain.epoch !== s.epoch) s.epoch = undefined;
    s.events.set(id, { id, at, reported });
  }

  /** Senders of events that no try could decrypt since before `before` (their header opens with no key we hold). */
  undecryptable(before: number): string[] {
    return this.heldStore.failedSince('DECRYPT_FAILED', before);
  }

  /** Gives up on every event held for `sender`: refused with `reason`, never tried again. */
  drop(sender: string, reason: string): void {
    this.ctx.transaction(() => {
      for (const id of [...(this.held.get(sender)?.events.keys() ?? [])]) {
        this.unhold(sender, id);
        // Not 'rejected': handled again, it would be held again and ask for a session once more; kept as long as a delivered id.
        this.ctx.seen.mark(id, `given up: ${reason}`, this.ctx.clock());
      }
    });
  }

  private unhold(sender: string, id: string): void {
    this.heldStore.remove(id);
    this.unindex(sender, id);
  }

  private unindex(sender: string, id: string): void {
    const s = this.held.get(sender);
    s?.events.delete(id);
    if (s?.events.size === 0) this.held.delete(sender);
  }

  /**
   * After a message from `sender` was delivered: the held-back events that now come next in its
   * chain are delivered at once, a few; the rest wait for the next turn of the event loop.
   */
  release(sender: string): void {
    // Its first message may have made it a contact: what it holds leaves the strangers' pool.
    this.dropped(this.heldStore.reclassify(sender));
    this.retryNow(sender, { sweep: false, tried: new Set() }, true);
    this.wake(sender, false);
  }

  /** Up to `releaseInline` decrypts now; `exact` takes only the next expected message and stops at the first miss. */
  private retryNow(sender: string, job: RetryJob, exact: boolean): void {
    for (let i = 0; i < HELD_BACK_LIMITS.releaseInline; i++) {
      const next = this.candidate(sender, job, exact);
      if (!next || (!this.attempt(sender, next, job) && exact)) break;
    }
  }

  wake(sender: string, sweep: boolean): void {
    if (!this.held.has(sender)) return;
    const job = this.retryJobs.get(sender);
    if (job) {
      job.sweep ||= sweep;
      job.tried.clear();
    } else this.retryJobs.set(sender, { sweep, tried: new Set() });
    if (this.retryScheduled) return;
    this.retryScheduled = true;
    setImmediate(() => this.runRetries());
  }

  /** One batch of retries; it reschedules itself while there is more, so nothing blocks the event loop for long. */
  private runRetries(): void {
    this.retryScheduled = false;
    if (this.ctx.closed || !this.ctx.db.open) return;
    let budget: number = HELD_BACK_LIMITS.retryBatch;
    for (const [sender, job] of this.retryJobs) {
      let next: Held | undefined;
      while (budget > 0 && (next = this.candidate(sender, job, false))) {
        budget--;
        this.attempt(sender, next, job);
      }
      if (budget === 0) break;
      this.retryJobs.delete(sender);
    }
    if (this.retryJobs.size > 0 && !this.retryScheduled) {
      this.retryScheduled = true;
      setImmediate(() => this.runRetries());
    }
  }

  /**
   * The next held-back event of `sender` worth a decrypt now, or none. In chain order: those before
   * the next expected message (their keys were skipped; or they are duplicates, refused for good),
   * then the lowest one after it (if it fails, every later one would too), then the lowest of the
   * next chain; the events no current header key opens only in a sweep. `exact` asks only for the
   * next expected message itself. Nothing already tried since the chain last moved is tried again.
   */
  private candidate(sender: string, job: RetryJob, exact: boolean): Held | undefined {
    const s = this.held.get(sender);
    if (!s) return undefined;
    const chain = this.chainOf(sender);
    const epoch = chain?.epoch ?? '-';
    if (s.epoch !== epoch) {
      for (const h of s.events.values()) {
        const event = chain && this.load(h.id);
        h.at = event ? this.positionOf(chain.peer, event) : null;
      }
      s.epoch = epoch;
    }
    const nr = chain?.nr ?? 0;
    let before: Held | undefined, after: Held | undefined, nextChain: Held | undefined, unplaced: Held | undefined;
    for (const h of s.events.values()) {
      const at = h.at;
      if (!at) {
        if (!unplaced && !job.tried.has(h.id)) unplaced = h;
      } else if (at.chain === 1) {
        if (!nextChain || at.n < nextChain.at!.n) nextChain = h;
      } else if (at.n >= nr) {
        if (!after || at.n < after.at!.n) after = h;
      } else if (!job.tried.has(h.id) && (!before || at.n < before.at!.n)) before = h;
    }
    const untried = (h: Held | undefined) => (h && !job.tried.has(h.id) ? h : undefined);
    if (exact) return before ?? (after?.at!.n === nr ? untried(after) : undefined);
    return before ?? untried(after) ?? untried(nextChain) ?? (job.sweep ? unplaced : undefined);
  }

  /** One decrypt of a held-back event. Delivered or refused for good, it leaves; otherwise it waits on. */
  private attempt(sender: string, h: Held, job: RetryJob): boolean {
    try {
      const event = this.load(h.id);
      if (!event) {
        this.unindex(sender, h.id);
        return false;
      }
      this.receive(event);
    } catch (e) {
      if (!this.ctx.db.open) return false;
      if (this.isRetryable(e)) {
        job.tried.add(h.id);
        if (!h.reported) {
          h.reported = true;
          this.heldStore.setReason(h.id, reasonOf(e));
          this.ctx.reject('(held back)', h.id, `${reasonOf(e)} (kept for a retry)`);
        }
        return false;
      }
      this.unhold(sender, h.id);
      this.ctx.seen.mark(h.id, `rejected: ${reasonOf(e)}`, this.ctx.clock());
      return false;
    }
    this.unhold(sender, h.id);
    job.tried.clear();
    return true;
  }
}

type Position = { chain: 0 | 1; n: number };

/** A held-back event; `at` is its place in the sender's chains as read under its sender's `epoch`. */
interface Held {
  readonly id: string;
  at: Position | null;
  /** Its failure was reported (a `rejected` event) already. */
  reported: boolean;
}

interface SenderHeld {
  /** The state of the sender's receiving chain the positions were read under; undefined: read them again. */
  epoch: string | undefined;
  readonly events: Map<string, Held>;
}

/** Retrying one sender's held-back events: a sweep also tries those no current key places. */
interface RetryJob {
  sweep: boolean;
  readonly tried: Set<string>;
}
