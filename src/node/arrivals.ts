import { type Bytes, fromHex, toHex } from '../crypto/index.js';
import { fail } from '../errors.js';
import { decodeMessageEvent, type Event } from '../nostr/events.js';
import { decodeEnvelope, type Envelope, openSealedEnvelope } from '../session/index.js';
import type { NodeContext } from './context.js';

/** An incoming message event, decoded: who sent it (their Nostr key) and the envelope it carries. */
export interface Arrival {
  readonly sender: string;
  readonly format: 'seed' | 'inbox' | 'mailbox';
  readonly envelopeBytes: Bytes;
  readonly envelope: Envelope;
}

/**
 * Arrivals remembered by event id: held-back events are read again and again, and a seal costs a DH
 * and two signature checks. Bounded by count and by envelope bytes: anyone can seal a 70 KiB
 * envelope to our inbox, and 4096 of those would hold 280 MiB.
 */
const CACHE_SIZE = 4096;
const CACHE_BYTES = 8 * 1024 * 1024;

/**
 * Reads both addressing formats. The sender of a seed-format event is its author; of a sealed inbox
 * event, the identity inside the verified seal; of a mailbox event, the contact whose receive tag
 * it is (an unknown tag is junk). Everything downstream keys on `sender`, never on `event.pubkey`.
 */
export class Arrivals {
  private readonly cache = new Map<string, Arrival>();
  private cachedBytes = 0;

  constructor(
    private readonly ctx: NodeContext,
    /** The Nostr key of the contact whose receive tag `tag` is, or undefined. */
    private readonly ownerOfTag: (tag: string) => string | undefined,
  ) {}

  /** The validating decoder of a verified kind-40001 event; throws (nothing changed) on anything wrong. */
  of(event: Event): Arrival {
    const hit = this.cache.get(event.id);
    if (hit) return hit;
    const arrival = this.decode(event);
    this.cache.set(event.id, arrival);
    this.cachedBytes += arrival.envelopeBytes.length;
    // Oldest first; the one just decoded stays, whatever its size.
    for (const [id, old] of this.cache) {
      if (this.cache.size <= CACHE_SIZE && this.cachedBytes <= CACHE_BYTES) break;
      if (id === event.id) break;
      this.cache.delete(id);
      this.cachedBytes -= old.envelopeBytes.length;
    }
    return arrival;
  }

  private decode(event: Event): Arrival {
    const content = decodeMessageEvent(event, this.ctx.selfNostr);
    switch (content.format) {
      case 'seed': {
        const envelope = decodeEnvelope(content.envelope);
        // The initial message's identity must be the one that owns the Nostr key that signed the event.
        if (envelope.type === 'prekey' && toHex(envelope.header.identity.nostrKey) !== event.pubkey)
          fail('IDENTITY_MISMATCH', 'initial message identity does not own the Nostr key that signed the event');
        return { sender: event.pubkey, format: 'seed', envelopeBytes: content.envelope, envelope };
      }
      case 'inbox': {
        const opened = openSealedEnvelope(this.ctx.store.identity(), content.sealed, fromHex(event.pubkey));
        return { sender: toHex(opened.sender.nostrKey), format: 'inbox', envelopeBytes: opened.envelopeBytes, envelope: opened.envelope };
      }
      case 'mailbox': {
        const sender = this.ownerOfTag(content.tag);
        if (sender === undefined) return fail('NO_SESSION', 'a mailbox tag that is none of ours');
        const envelope = decodeEnvelope(content.envelope);
        if (envelope.type !== 'normal') return fail('MALFORMED', 'mailbox event: only a normal message goes to a mailbox');
        return { sender, format: 'mailbox', envelopeBytes: content.envelope, envelope };
      }
    }
  }
}
