import type { EventEmitter } from 'node:events';
import * as nip19 from 'nostr-tools/nip19';
import { toHex } from '../crypto/index.js';
import { fingerprint, type PublicIdentity } from '../identity/index.js';
import type { StoredMessage } from '../store/index.js';
import type { AppMessageType } from './app-message.js';

export interface ReceivedMessage {
  readonly id: string;
  readonly seq: number;
  readonly from: string;
  readonly alias: string | null;
  readonly text: string;
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly trusted: boolean;
  /** Set for a group chat message. */
  readonly group: { readonly id: string; readonly name: string } | null;
}

export interface SentMessage {
  readonly id: string;
  readonly to: string;
  readonly state: StoredMessage['state'];
  readonly relaysAccepted: number;
  /** Why a failed message failed. */
  readonly failure: string | null;
}

export interface Whoami {
  readonly fingerprint: string;
  readonly npub: string;
  readonly nostrPubkey: string;
  readonly createdAt: number;
  /** Ours, as invites carry it; null: none. */
  readonly nickname: string | null;
}

/** The typed events a node emits. */
export interface NodeEvents {
  message: [ReceivedMessage];
  sent: [SentMessage];
  delivered: [{ readonly peer: string; readonly ids: readonly string[] }];
  /** Outgoing messages that will not be delivered, with the reason. */
  failed: [{ readonly peer: string; readonly ids: readonly string[]; readonly reason: string }];
  bundle: [{ readonly fingerprint: string; readonly nostrPubkey: string }];
  published: [{ readonly acceptedBy: number; readonly unpublished: boolean }];
  /** Something the user must see: an identity key changed for a known contact. */
  warning: [{ readonly kind: 'identity-changed'; readonly contact: string; readonly alias: string | null; readonly previous: string; readonly message: string }];
  /** An incoming event that was refused, with the reason; nothing changed. */
  rejected: [{ readonly relay: string; readonly eventId: string | null; readonly reason: string }];
  /** Connected or not, or a new reason why not (`error`, as `status()` says it; null when connected). */
  relay: [{ readonly url: string; readonly connected: boolean; readonly error: string | null }];
  /** `peer` refused a control message of ours (`id`, of type `what`): what it asked for will not happen. */
  refused: [{ readonly peer: string; readonly alias: string | null; readonly id: string; readonly what: AppMessageType; readonly reason: string }];
  /** A key exchange completed: a session with `peer` exists now. */
  kx: [{ readonly peer: string; readonly role: 'inviter' | 'acceptor' }];
  /**
   * A key exchange of ours (as acceptor, waiting at `rv`) will not complete: the inviter `peer` refused
   * our half KX, with a signed reason (`code`: `invite-used`); its pending KX is gone.
   */
  'kx-failed': [{ readonly peer: string; readonly alias: string | null; readonly rv: string; readonly code: string; readonly reason: string }];
  /**
   * An introduction waiting for the user's consent (`kx.requests()`) changed: it `arrived`, the
   * introduced peer's invite arrived for it (`invite`), the user `accepted` or `declined` it, or it `expired`.
   */
  request: [{ readonly id: string; readonly kind: 'invite-request' | 'introduced'; readonly mediator: string; readonly peer: string; readonly change: RequestChange }];
  /** A group we know changed: we `created` it, were `invited` to it, `joined` it, or its member list (version) changed (`members`). */
  group: [{ readonly id: string; readonly name: string; readonly change: GroupChange }];
}

export type RequestChange = 'arrived' | 'invite' | 'accepted' | 'declined' | 'expired';
export type GroupChange = 'created' | 'invited' | 'joined' | 'members';

export type NodeEmitter = EventEmitter<NodeEvents>;

export function whoamiOf(p: PublicIdentity, nickname: string | null): Whoami {
  const hex = toHex(p.nostrKey);
  return { fingerprint: fingerprint(p), npub: nip19.npubEncode(hex), nostrPubkey: hex, createdAt: p.createdAt, nickname };
}

/** Resolves with the first `event` that matches, or rejects after `ms`. */
export function nextEvent<K extends keyof NodeEvents>(
  node: NodeEmitter,
  event: K,
  match: (...args: NodeEvents[K]) => boolean = () => true,
  ms = 20_000,
): Promise<NodeEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      node.off(event, handler as never);
      reject(new Error(`no ${event} event within ${ms} ms`));
    }, ms);
    const handler = (...args: NodeEvents[K]) => {
      if (!match(...args)) return;
      clearTimeout(timer);
      node.off(event, handler as never);
      resolve(args);
    };
    node.on(event, handler as never);
  });
}
