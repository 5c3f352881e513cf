import type { FollowEvent, Method, Params, Result } from './types.js';

/**
 * The page's line to the daemon (docs/web.md): calls are POSTs to /api, one JSON-RPC request each;
 * live events come over the WebSocket at /rpc after a `follow`. Both carry the token from the URL's
 * fragment, which the browser never sends by itself.
 */

const TOKEN_KEY = 'rrelay.token';

/** The token from `#token=…`, kept in sessionStorage so that a reload (the fragment gone) still works. */
export function readToken(hash: string, storage: Storage): string | null {
  const m = /(?:^#|&)token=([^&]+)/.exec(hash);
  if (m?.[1]) {
    storage.setItem(TOKEN_KEY, m[1]);
    return m[1];
  }
  return storage.getItem(TOKEN_KEY);
}

/** The daemon refused us for good (wrong token, foreign origin): retrying will not help. */
export class Refused extends Error {}

export const TOKEN_REFUSED = "This link's token is not valid: open the URL `rrelay ui` printed";
export const ORIGIN_REFUSED = 'The daemon refused this page’s origin: open the URL `rrelay ui` printed (http://127.0.0.1:PORT)';
export const UNREACHABLE = 'The daemon is not reachable: is `rrelay ui` still running?';

let nextId = 1;
let session = '';

/** The token every call of this page carries. */
export function setToken(token: string): void {
  session = token;
}

/** Calls one method with the page's token. */
export const rpc = <M extends Method>(method: M, params?: Params<M>): Promise<Result<M>> => call(session, method, params);

/** Calls one method; a JSON-RPC error is thrown with the daemon's message, in words. */
export async function call<M extends Method>(token: string, method: M, params?: Params<M>): Promise<Result<M>> {
  let res: Response;
  try {
    res = await fetch('/api', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params: params ?? {} }),
    });
  } catch {
    throw new Error(UNREACHABLE);
  }
  if (res.status === 401) throw new Refused(TOKEN_REFUSED);
  if (res.status === 403) throw new Refused(ORIGIN_REFUSED);
  const body = (await res.json().catch(() => null)) as { result?: unknown; error?: { message?: string } | string } | null;
  if (!res.ok || body === null) throw new Error(typeof body?.error === 'string' ? body.error : `the daemon answered HTTP ${res.status}`);
  if (body.error !== undefined) throw new Error(typeof body.error === 'string' ? body.error : (body.error.message ?? 'the daemon refused the call'));
  return body.result as Result<M>;
}

/** How long to wait before the next reconnection attempt: 0.5 s doubling to 5 s. */
export const nextDelay = (previous: number | null): number => (previous === null ? 500 : Math.min(previous * 2, 5_000));

export interface Link {
  /** A (re)connection is following events: reload everything shown. */
  onOpen(): void;
  onEvent(e: FollowEvent): void;
  /** The link went down (`reason`: the daemon's, when it said one): retrying in `ms`. */
  onDown(ms: number, reason: string): void;
  /** Refused for good. */
  onRefused(reason: string): void;
}

/** Follows the daemon's events, reconnecting with backoff for as long as the page is open. */
export function follow(token: string, link: Link): void {
  let delay: number | null = null;
  const retry = (reason = '') => {
    delay = nextDelay(delay);
    link.onDown(delay, reason);
    setTimeout(attempt, delay);
  };
  const attempt = async () => {
    // Checked over HTTP first: a refused WebSocket upgrade does not say why.
    try {
      await call(token, 'whoami');
    } catch (e) {
      if (e instanceof Refused) return link.onRefused(e.message);
      return retry(e instanceof Error ? e.message : '');
    }
    const ws = new WebSocket(`ws://${location.host}/rpc`, ['rrelay.v1', `bearer.${token}`]);
    let following = false;
    ws.onopen = () => ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'follow', params: {} }));
    ws.onmessage = (m) => {
      let msg: { id?: number; result?: unknown; error?: unknown; method?: string; params?: FollowEvent };
      try {
        msg = JSON.parse(String(m.data)) as typeof msg;
      } catch {
        return;
      }
      if (msg.method === 'event' && msg.params) return link.onEvent(msg.params);
      if (msg.id === 1 && msg.result === true && !following) {
        following = true;
        delay = null;
        link.onOpen();
      }
    };
    ws.onclose = (e) => retry(e.reason);
  };
  void attempt();
}
