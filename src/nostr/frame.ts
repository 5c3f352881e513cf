/**
 * What a relay's EVENT frame says about the event it carries, read without parsing the frame: the
 * subscription id, the event id and its created_at. Used to drop an oversize frame or an event
 * already held without paying for JSON.parse and a signature check, while still counting it.
 * Nothing here is verified: a relay that lies in it fools only its own cursor and paging, which it
 * could as well by withholding events.
 */
export interface EventFramePeek {
  readonly sub: string;
  readonly id: string | null;
  readonly createdAt: number | null;
}

const EVENT_PREFIX = /^\[\s*"EVENT"\s*,\s*"([^"\\]{1,64})"\s*,\s*\{/;
// Inside a JSON string every quote is escaped, so an unescaped `"key":` is an object key; an event
// has no nested objects, so it is one of the event's own.
const ID = /"id"\s*:\s*"([0-9a-f]{64})"/;
const CREATED_AT = /"created_at"\s*:\s*(\d{1,15})(?![\d.eE])/;

/** The peek of `["EVENT", <sub>, {…}]`, or null for any other frame. */
export function peekEventFrame(text: string): EventFramePeek | null {
  const prefix = EVENT_PREFIX.exec(text);
  if (!prefix) return null;
  const id = ID.exec(text);
  const createdAt = CREATED_AT.exec(text);
  return { sub: prefix[1]!, id: id ? id[1]! : null, createdAt: createdAt ? Number(createdAt[1]) : null };
}
