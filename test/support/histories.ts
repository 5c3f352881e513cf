import type { Event } from 'nostr-tools/pure';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import WebSocket from 'ws';
import { nextEvent, type RatchetNode } from '../../src/node/index.js';
import { startTestRelay, type TestRelay } from './relay.js';

useWebSocketImplementation(WebSocket);

/** For tests that hand relays parts of a history: `n` relays, stopped after the test. */
export async function relays(t: { after(fn: () => Promise<void>): void }, n: number): Promise<TestRelay[]> {
  const started = await Promise.all(Array.from({ length: n }, () => startTestRelay()));
  t.after(async () => {
    for (const r of started) await r.stop();
  });
  return started;
}

/** The signed events of a node's text messages, oldest first, as its outbox keeps them. */
export function sentEvents(node: RatchetNode): Event[] {
  const rows = node.store.db.prepare("SELECT event FROM outbox WHERE purpose = 'message' ORDER BY created_at, rowid").all() as { event: string }[];
  return rows.map((r) => JSON.parse(r.event) as Event);
}

/**
 * Sends each text in an event of its own: each waits for a relay's OK of the one before, so none
 * is packed with another. For tests that hand relays parts of a history, event by event.
 */
export async function sendEach(node: RatchetNode, to: string, texts: readonly string[]): Promise<void> {
  for (const text of texts) {
    const id = node.messaging.send(to, text).id;
    await nextEvent(node, 'sent', (m) => m.id === id);
  }
}

/** Puts events on a relay, as a relay that got only part of a history would hold them. */
export async function publish(url: string, events: readonly Event[]): Promise<void> {
  const client = await Relay.connect(url);
  try {
    for (const e of events) await client.publish(e);
  } finally {
    client.close();
  }
}

export const incoming = (node: RatchetNode) => node.messaging.messages(0, 10_000).filter((m) => m.direction === 'in');
