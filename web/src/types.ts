// The daemon's method table, as the page sees it: types only, from the CLI's own table (src/cli/api.ts).
import type { FollowEvent, Method as TableMethod, Params as TableParams, Result as TableResult } from '../../src/cli/api.js';

export type { FollowEvent };

/** One row of `conversations`. */
export interface Conversation {
  kind: 'contact' | 'group';
  id: string;
  name: string;
  lastText: string | null;
  lastAt: number | null;
  lastDirection: 'in' | 'out' | null;
  unread: number;
}

type HistoryEntry = TableResult<'history'>[number] & { group?: string | null };

/**
 * The methods added for the web app (conversations, readConversation, history's `group`), spelled
 * out so that the page type-checks against the table with or without them.
 */
interface Added {
  conversations: { params: Record<string, never>; result: Conversation[] };
  readConversation: { params: { contact?: string; group?: string }; result: { id: string; unread: 0 } };
  history: { params: { contact?: string; group?: string; limit?: number }; result: HistoryEntry[] };
}

export type Method = TableMethod | keyof Added;
export type Params<M extends Method> = M extends keyof Added ? Added[M]['params'] : M extends TableMethod ? TableParams<M> : never;
export type Result<M extends Method> = M extends keyof Added ? Added[M]['result'] : M extends TableMethod ? TableResult<M> : never;

export type Contact = Result<'contacts'>[number];
export type Message = Result<'history'>[number];
export type Group = Result<'groups'>[number];
export type Member = Result<'groupMembers'>[number];
export type RelayStatus = Result<'status'>['relays'][number];
export type PendingKx = Result<'keyExchanges'>[number];
export type IntroRequest = Result<'kxRequests'>[number];
export type Whoami = Result<'whoami'>;
