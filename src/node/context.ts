import { type Rng, toHex } from '../crypto/index.js';
import type { PublicIdentity } from '../identity/index.js';
import type { Event } from '../nostr/events.js';
import type { RelaySet } from '../nostr/relay-set.js';
import type { SessionCipher } from '../session/index.js';
import { type Db, SeenEvents, Settings, type SqliteProtocolStore } from '../store/index.js';
import type { NodeEmitter } from './events.js';

/**
 * What every capability shares: the database, the protocol store and its cipher, the clock and
 * randomness, the live relays, and the node's event emitter. Nothing capability-specific lives here.
 */
export class NodeContext {
  readonly db: Db;
  readonly seen: SeenEvents;
  readonly settings: Settings;
  readonly selfNostr: string;
  relays: RelaySet | undefined;
  closed = false;
  private effects: (() => void)[] | undefined;

  constructor(
    readonly store: SqliteProtocolStore,
    readonly cipher: SessionCipher,
    readonly clock: () => number,
    readonly rng: Rng,
    readonly log: (line: string) => void,
    readonly events: NodeEmitter,
  ) {
    this.db = store.db;
    this.seen = new SeenEvents(this.db);
    this.settings = new Settings(this.db);
    this.selfNostr = toHex(store.identity().nostr.publicKey);
  }

  self(): PublicIdentity {
    return this.store.identity().public;
  }

  newId(): string {
    return toHex(this.rng(16));
  }

  /**
   * One transaction (a savepoint when nested). What `afterCommit` registers inside it runs once the
   * outermost transaction commits, and is dropped with whatever rolls back: an emitted event or a
   * subscription change never tells of state that was not kept.
   */
  transaction<T>(fn: () => T): T {
    const outermost = this.effects === undefined;
    const mark = this.effects?.length ?? 0;
    if (outermost) this.effects = [];
    let result: T;
    try {
      result = this.store.transaction(fn);
    } catch (e) {
      if (outermost) this.effects = undefined;
      else this.effects!.length = mark;
      throw e;
    }
    if (!outermost) return result;
    const effects = this.effects!;
    this.effects = undefined;
    for (const effect of effects) effect();
    return result;
  }

  /** Runs `effect` after the current transaction commits, or now outside one. */
  afterCommit(effect: () => void): void {
    if (this.effects) this.effects.push(effect);
    else effect();
  }

  reject(relay: string, eventId: string | null, reason: string): void {
    this.log(`rejected event ${eventId?.slice(0, 12) ?? '(unverified)'} from ${relay}: ${reason}`);
    this.events.emit('rejected', { relay, eventId, reason });
  }
}

/** A handler for incoming events of one kind; it throws to refuse the event, leaving state unchanged. */
export type EventHandler = (event: Event, relay: string) => void;
