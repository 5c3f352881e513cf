import { EventEmitter } from 'node:events';
import { NodeContext } from '../../src/node/context.js';
import type { NodeEvents } from '../../src/node/index.js';
import { makeParty, seededRng, type TestClock } from '../helpers.js';

/** The context a capability runs in, on an in-memory store, with no relays: for testing one capability alone. */
export function capabilityContext(seed: string, clock: TestClock): { ctx: NodeContext; events: EventEmitter<NodeEvents> } {
  const party = makeParty(seed, clock);
  const events = new EventEmitter<NodeEvents>();
  return { ctx: new NodeContext(party.store, party.cipher, clock.read, seededRng(`${seed}/node`), () => {}, events), events };
}
