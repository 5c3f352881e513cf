// The daemon's method table, as the page sees it: types only, from the CLI's own table (src/cli/api.ts).
import type { Result } from '../../src/cli/api.js';

export type { FollowEvent, Method, Params, Result } from '../../src/cli/api.js';

export type Conversation = Result<'conversations'>[number];
export type Contact = Result<'contacts'>[number];
export type Message = Result<'history'>[number];
export type Group = Result<'groups'>[number];
export type Member = Result<'groupMembers'>[number];
export type RelayStatus = Result<'status'>['relays'][number];
export type PendingKx = Result<'keyExchanges'>[number];
export type IntroRequest = Result<'kxRequests'>[number];
export type Whoami = Result<'whoami'>;
