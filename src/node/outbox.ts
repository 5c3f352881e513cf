import { type Bytes } from '../crypto/index.js';
import { type Event, mailboxEvent } from '../nostr/events.js';
import { packedMailboxEvent, packGroups } from '../nostr/pack.js';
import type { RelaySet } from '../nostr/relay-set.js';
import { type OutboxEntry, OutboxStore, syncToDisk, type WaitingEnvelope } from '../store/index.js';
import type { NodeContext } from './context.js';

/** Accepted events are kept this long, for relays that were away when they went out. */
const OUTBOX_KEEP_MS = 24 * 60 * 60 * 1000;
const FLUSH_BATCH = 256;
/**
 * Waiting envelopes packed per pass of a flush: 74 events of 1 KB texts to one mailbox, and at
 * worst (each to another tag) 1,024 signatures in one turn of the event loop.
 */
const PACK_BATCH = 1024;
/** NIP-01 OK prefixes that say sending the same event again cannot help (we do no proof of work). */
const REFUSED_FOR_GOOD = /^(blocked|invalid|restricted|pow):/;
/** Tries before an event that every relay refused for good is given up. */
const REFUSED_ATTEMPTS = 3;

export interface OutboxTiming {
  readonly outboxRetryBaseMs: number;
  readonly outboxRetryMaxMs: number;
}

/**
 * Told when relays accepted an entry, inside the transaction that records it: how many relays have
 * it now, and whether this is the first acceptance (the entry just became done).
 */
export type AcceptedHook = (entry: OutboxEntry, event: Event, acceptedBy: number, first: boolean) => void;

/** Told, inside the transaction that drops it, that every relay refused an entry for good. */
export type RefusedHook = (entry: OutboxEntry, event: Event, reason: string) => void;

/**
 * The persistent outbox. Every outgoing event is stored in the transaction that produced it: signed,
 * or, for a mailbox envelope, unsigned with its tag, to be packed with the others of its tag into
 * one event (signed and stored before it is published) at the next flush. An event is done at the
 * first relay's OK (a stalled relay holds nothing up), else retried with backoff; every relay's OK
 * is recorded, and a relay that comes back gets what it missed of the last day.
 */
export class Outbox {
  private readonly store: OutboxStore;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private flushing: Promise<void> | undefined;
  private flushAgain = false;
  /** Relays' OKs not recorded yet: recorded together, in one transaction, on the next turn of the event loop. */
  private acceptances: { entry: OutboxEntry; event: Event; urls: readonly string[]; first: boolean }[] = [];
  private acceptancesScheduled = false;

  constructor(
    private readonly ctx: NodeContext,
    private readonly timing: OutboxTiming,
    private readonly onAccepted: AcceptedHook,
    private readonly onRefused: RefusedHook,
  ) {
    this.store = new OutboxStore(ctx.db);
  }

  /** Queues an event; a flush follows once the surrounding transaction (if any) commits. */
  enqueue(event: Event, purpose: OutboxEntry['purpose'], messageId: string | null): void {
    this.store.enqueue(event.id, JSON.stringify(event), purpose, messageId, this.ctx.clock());
    this.ctx.afterCommit(() => this.scheduleFlush(0));
  }

  /** Queues a mailbox envelope for `tag`, packed with the others waiting at the next flush. Inside the transaction that made it. */
  enqueueEnvelope(tag: string, envelope: Bytes, purpose: WaitingEnvelope['purpose'], messageId: string | null): void {
    this.store.addEnvelope(tag, envelope, purpose, messageId, this.ctx.clock());
    this.ctx.afterCommit(() => this.scheduleFlush(0));
  }

  /** Queues a bundle event in place of any older bundle still waiting. */
  replaceBundle(event: Event): void {
    this.ctx.transaction(() => {
      this.store.dropBundles();
      this.enqueue(event, 'bundle', null);
    });
  }

  pending(): number {
    this.recordAcceptances();
    return this.store.pending();
  }

  prune(now: number): void {
    this.store.prune(now - OUTBOX_KEEP_MS);
  }

  /** Publishes everything due; each entry is done once one relay accepted it, else retried with backoff. */
  flush(): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true;
      return this.flushing;
    }
    this.flushing = this.flushOnce().finally(() => {
      this.flushing = undefined;
      if (this.flushAgain && !this.ctx.closed) {
        this.flushAgain = false;
        void this.flush();
      } else this.scheduleNextFlush();
    });
    return this.flushing;
  }

  scheduleFlush(delayMs: number): void {
    if (this.ctx.closed || !this.ctx.relays) return;
    clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => void this.flush(), delayMs);
  }

  /** Waits until the outbox is empty or `timeoutMs` passes; returns how many entries are still pending. */
  async drain(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.pending() > 0 && Date.now() < deadline) {
      await this.flush();
      if (this.pending() > 0) await new Promise((r) => setTimeout(r, 50));
    }
    return this.pending();
  }

  /** Stops the timer and waits for a flush under way. */
  async close(): Promise<void> {
    clearTimeout(this.flushTimer);
    await this.flushing;
    this.recordAcceptances();
  }

  /** A relay that (re)connects gets what it missed of the last day's events. */
  async catchUpRelay(url: string): Promise<void> {
    const relays = this.ctx.relays;
    if (!relays || this.ctx.closed) return;
    for (const entry of this.store.missedBy(url, this.ctx.clock() - OUTBOX_KEEP_MS)) {
      if (this.ctx.closed) return;
      const event = JSON.parse(entry.event) as Event;
      if (await relays.publishTo(url, event)) this.accepted(entry, event, [url], false);
    }
  }

  private scheduleNextFlush(): void {
    // With no relay connected nothing can go, and a due entry would bring the next flush at once, in
    // a loop (measured: 780 flushes a second); a relay that connects schedules one.
    if (this.ctx.closed || !this.ctx.relays?.connectedCount()) return;
    const next = this.store.nextAttempt();
    if (next !== null) this.scheduleFlush(Math.max(0, next - this.ctx.clock()));
  }

  private async flushOnce(): Promise<void> {
    const relays = this.ctx.relays;
    if (!relays || this.ctx.closed) return;
    for (;;) {
      this.recordAcceptances();
      if (relays.connectedCount() === 0) return;
      this.pack();
      const due = this.store.due(this.ctx.clock(), FLUSH_BATCH);
      if (due.length === 0) return;
      // No ciphertext leaves before the ratchet step that made it is on disk.
      syncToDisk(this.ctx.db);
      await Promise.all(due.map((entry) => this.publishEntry(relays, entry)));
      if (this.ctx.closed) return;
    }
  }

  /**
   * Signs the waiting envelopes into events, one per group of a tag (`packGroups`; a group of one is
   * a plain mailbox event), stored in the outbox in the transaction that forgets the envelopes: from
   * then on a retry or a relay's catch-up sends those very bytes.
   */
  private pack(): void {
    const waiting = this.store.envelopes(PACK_BATCH);
    if (waiting.length === 0) return;
    const now = this.ctx.clock();
    const rng = this.ctx.rng;
    this.ctx.transaction(() => {
      for (const group of packGroups(waiting)) {
        const first = group[0]!;
        if (group.length === 1) {
          const event = mailboxEvent(first.tag, first.envelope, rng, now);
          this.store.enqueue(event.id, JSON.stringify(event), first.purpose, first.messageId, now);
          continue;
        }
        const event = packedMailboxEvent(first.tag, group.map((e) => e.envelope), rng, now);
        const messages = group.filter((e) => e.purpose === 'message' && e.messageId !== null).map((e) => e.messageId!);
        // The purpose names the event for logs and hooks: 'message' when it carries any.
        const purpose = messages.length > 0 ? 'message' : first.purpose;
        this.store.enqueue(event.id, JSON.stringify(event), purpose, null, now, messages);
      }
      this.store.removeEnvelopes(waiting[waiting.length - 1]!.seq);
    });
  }

  /**
   * A relay's OK, recorded with the others that arrive in the same turn of the event loop: one
   * commit for a burst of OKs. One lost to a crash before it is recorded costs a resend of the
   * same event, which relays and receivers de-duplicate.
   */
  private accepted(entry: OutboxEntry, event: Event, urls: readonly string[], first: boolean): void {
    this.acceptances.push({ entry, event, urls, first });
    if (this.acceptancesScheduled) return;
    this.acceptancesScheduled = true;
    setImmediate(() => this.recordAcceptances());
  }

  /** Records the OKs waiting; also before the outbox is read again, so that an accepted entry is not sent again. */
  private recordAcceptances(): void {
    this.acceptancesScheduled = false;
    if (this.acceptances.length === 0 || !this.ctx.db.open) return;
    const batch = this.acceptances;
    this.acceptances = [];
    this.ctx.transaction(() => {
      for (const { entry, event, urls, first } of batch) {
        const acceptedBy = this.store.accepted(entry, urls, this.ctx.clock());
        // 0: the entry is gone (a newer bundle replaced it while it was in flight).
        if (acceptedBy > 0) this.onAccepted(entry, event, acceptedBy, first);
      }
    });
  }

  private async publishEntry(relays: RelaySet, entry: OutboxEntry): Promise<void> {
    const event = JSON.parse(entry.event) as Event;
    const { first, all } = relays.publish(event);
    const url = await first;
    if (url !== null) {
      if (this.ctx.closed) return;
      this.accepted(entry, event, [url], true);
      // The other relays answer in their own time; each acceptance is recorded. A relay that
      // connected while this was in flight missed it and gets one more try now.
      void all.then(async (r) => {
        if (this.ctx.closed) return;
        const late = await Promise.all(r.rejected.filter((x) => relays.isConnected(x.url)).map(async (x) => ((await relays.publishTo(x.url, event)) ? x.url : null)));
        const accepted = [...r.accepted, ...late.filter((u): u is string => u !== null)];
        if (this.ctx.closed || accepted.length <= 1) return;
        this.accepted(entry, event, accepted, false);
      });
      return;
    }
    const result = await all;
    if (this.ctx.closed) return;
    const reasons = result.rejected.map((r) => `${r.url}: ${r.reason}`).join('; ');
    // Every relay refused it for good (none merely away or busy): the sender is told, not left waiting.
    if (result.rejected.length > 0 && result.rejected.every((r) => REFUSED_FOR_GOOD.test(r.reason)) && entry.attempts + 1 >= REFUSED_ATTEMPTS) {
      this.ctx.transaction(() => {
        this.store.remove(entry.eventId);
        this.onRefused(entry, event, `every relay refused it (${reasons})`);
      });
      return;
    }
    const t = this.timing;
    const delay = Math.min(t.outboxRetryMaxMs, t.outboxRetryBaseMs * 2 ** Math.min(entry.attempts, 20));
    this.store.retry(entry.eventId, this.ctx.clock() + delay);
    this.ctx.log(`outbox: ${entry.purpose} ${entry.eventId.slice(0, 12)} not accepted (${reasons}); retry in ${delay} ms`);
  }
}
