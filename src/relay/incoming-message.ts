import {
  type IncomingMessage,
  type OutgoingMessage,
  createOutgoingClosedMessage,
  createOutgoingNoticeMessage,
  createOutgoingOkMessage,
} from '@nostr-relay/common';
import { z } from 'zod';

/** NIP-01 caps subscription ids at 64 characters. */
const MAX_SUBSCRIPTION_ID_LENGTH = 64;
const MAX_FILTERS_PER_REQ = 20;

const hex = (length: number) => z.string().regex(new RegExp(`^[0-9a-f]{${length}}$`), `must be ${length} lowercase hex digits`);
const kind = z.number().int().min(0).max(65535);
const timestamp = z.number().int().min(0);

const eventSchema = z.object({
  id: hex(64),
  pubkey: hex(64),
  created_at: timestamp,
  kind,
  tags: z.array(z.array(z.string())),
  content: z.string(),
  sig: hex(128),
});

const FILTER_FIELDS = new Set(['ids', 'authors', 'kinds', 'since', 'until', 'limit', 'search']);
const TAG_FILTER = /^#[a-zA-Z]$/;

const filterSchema = z
  .object({
    ids: z.array(hex(64)).optional(),
    authors: z.array(hex(64)).optional(),
    kinds: z.array(kind).optional(),
    since: timestamp.optional(),
    until: timestamp.optional(),
    limit: z.number().int().min(0).optional(),
    search: z.string().optional(),
  })
  .catchall(z.array(z.string()))
  // Refused rather than ignored: ignoring a condition would return events the client did not ask for.
  .refine((filter) => Object.keys(filter).every((key) => FILTER_FIELDS.has(key) || TAG_FILTER.test(key)), {
    message: 'unsupported filter field (only NIP-01 fields and #<single letter>)',
  });

const subscriptionId = z.string().min(1).max(MAX_SUBSCRIPTION_ID_LENGTH);

// A Map, not an object literal: a type such as "constructor" must not find a prototype member.
const messageSchemas = new Map<string, z.ZodType>([
  ['EVENT', z.tuple([z.literal('EVENT'), eventSchema])],
  [
    'REQ',
    z.tuple([z.literal('REQ'), subscriptionId], filterSchema).refine((m) => m.length >= 3 && m.length <= 2 + MAX_FILTERS_PER_REQ, {
      message: `REQ takes 1 to ${MAX_FILTERS_PER_REQ} filters`,
    }),
  ],
  ['CLOSE', z.tuple([z.literal('CLOSE'), subscriptionId])],
  ['AUTH', z.tuple([z.literal('AUTH'), eventSchema])],
]);

export type ParsedMessage = { ok: true; message: IncomingMessage } | { ok: false; reply: OutgoingMessage };

/**
 * @nostr-relay/core trusts the shape of what it is given (its own validator package is not a
 * dependency here), so every frame is checked before it reaches the core. A rejection carries the
 * NIP-01 answer: OK false for an EVENT with a readable id, CLOSED for a REQ or COUNT, NOTICE otherwise.
 */
export function parseIncomingMessage(text: string): ParsedMessage {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reply: createOutgoingNoticeMessage('invalid: message is not JSON') };
  }
  if (!Array.isArray(json) || typeof json[0] !== 'string') {
    return { ok: false, reply: createOutgoingNoticeMessage('invalid: a message is a JSON array that starts with its type') };
  }
  const [type, second] = json as [string, unknown];
  if (type === 'COUNT' && typeof second === 'string') {
    return { ok: false, reply: createOutgoingClosedMessage(second, 'unsupported: COUNT is not supported') };
  }
  const schema = messageSchemas.get(type);
  if (schema === undefined) return { ok: false, reply: createOutgoingNoticeMessage('invalid: unknown message type') };
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, message: parsed.data as IncomingMessage };

  const issue = parsed.error.issues[0];
  const reason = `invalid: ${issue === undefined ? 'malformed message' : `${issue.path.join('.') || type}: ${issue.message}`}`;
  if (type === 'EVENT' && typeof second === 'object' && second !== null) {
    const id: unknown = (second as { id?: unknown }).id;
    if (typeof id === 'string') return { ok: false, reply: createOutgoingOkMessage(id, false, reason) };
  }
  if (type === 'REQ' && typeof second === 'string') return { ok: false, reply: createOutgoingClosedMessage(second, reason) };
  return { ok: false, reply: createOutgoingNoticeMessage(reason) };
}
