import type { Contact, Conversation, Group, IntroRequest, PendingKx, RelayStatus, Whoami } from './types.js';

/** What the page shows, reloaded as a whole after (re)connecting and after each burst of events. */
export interface Data {
  me: Whoami | null;
  conversations: Conversation[];
  contacts: Contact[];
  groups: Group[];
  relays: RelayStatus[];
  kx: PendingKx[];
  requests: IntroRequest[];
  /** Bumped by every reload: views that fetch their own data (a history, members) fetch again. */
  tick: number;
}

export const EMPTY: Data = { me: null, conversations: [], contacts: [], groups: [], relays: [], kx: [], requests: [], tick: 0 };

export type View = 'chats' | 'contacts' | 'invites' | 'groups' | 'relays';

export interface Open {
  kind: 'contact' | 'group';
  id: string;
}

/** What every view gets from the app. */
export interface App {
  data: Data;
  /** Reloads everything shown (after a call that changed something). */
  reload(): void;
  open: Open | null;
  view: View;
  openConversation(o: Open | null): void;
  go(view: View): void;
}
