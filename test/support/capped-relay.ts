import { type AddressInfo } from 'node:net';
import { verifyEvent } from 'nostr-tools/pure';
import { type WebSocket, WebSocketServer } from 'ws';
import { type Event } from '../../src/nostr/events.js';

/**
 * A minimal NIP-01 relay, events in memory, that answers every REQ newest first and caps each
 * answer at `cap` events per filter, as public relays do (ours at 1000, strfry at 500); with a
 * small cap a test reaches the paging paths with a few thousand events.
 */
export interface CappedRelay {
  readonly url: string;
  readonly cap: number;
  /** How many stored events it holds. */
  stored(): number;
  /** How many REQ answers were cut at the cap. */
  cappedAnswers(): number;
  /** Runs `fn` once `cappedAnswers()` reaches `n` (right after that answer went out); resolves when it has. */
  at(n: number, fn: () => unknown): Promise<void>;
  /** Drops every client connection, as a relay that restarts does. */
  dropClients(): void;
  stop(): Promise<void>;
}

type Filter = Record<string, unknown>;

/** NIP-01 matching for the fields the node uses: ids, authors, kinds, since, until and single-letter tags. */
function matches(f: Filter, e: Event): boolean {
  const list = (k: string) => f[k] as readonly (string | number)[] | undefined;
  if (list('ids') && !list('ids')!.includes(e.id)) return false;
  if (list('authors') && !list('authors')!.includes(e.pubkey)) return false;
  if (list('kinds') && !list('kinds')!.includes(e.kind)) return false;
  if (typeof f.since === 'number' && e.created_at < f.since) return false;
  if (typeof f.until === 'number' && e.created_at > f.until) return false;
  for (const [key, values] of Object.entries(f)) {
    if (!/^#[a-zA-Z]$/.test(key) || !Array.isArray(values)) continue;
    if (!e.tags.some((t) => t[0] === key.slice(1) && values.includes(t[1]))) return false;
  }
  return true;
}

/** Kinds 30000–39999 are replaced per (author, kind, d tag); 20000–29999 are not stored. */
function address(e: Event): string | null {
  if (e.kind < 30000 || e.kind >= 40000) return null;
  return `${e.kind}:${e.pubkey}:${e.tags.find((t) => t[0] === 'd')?.[1] ?? ''}`;
}

export async function startCappedRelay(cap: number): Promise<CappedRelay> {
  const events = new Map<string, Event>();
  const live = new Map<WebSocket, Map<string, Filter[]>>();
  let capped = 0;
  const hooks: { n: number; fn: () => unknown; done: (p: Promise<void>) => void }[] = [];
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve, reject) => wss.once('listening', resolve).once('error', reject));
  const send = (ws: WebSocket, msg: unknown[]) => ws.send(JSON.stringify(msg));

  const store = (e: Event): void => {
    if (e.kind >= 20000 && e.kind < 30000) return;
    const addr = address(e);
    if (addr) {
      for (const old of events.values()) {
        if (address(old) !== addr) continue;
        if (old.created_at > e.created_at) return;
        events.delete(old.id);
      }
    }
    events.set(e.id, e);
  };

  const answer = (ws: WebSocket, subId: string, filters: Filter[]): void => {
    const out = new Map<string, Event>();
    for (const f of filters) {
      const limit = Math.min(typeof f.limit === 'number' ? f.limit : cap, cap);
      const hits = [...events.values()].filter((e) => matches(f, e));
      hits.sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? -1 : 1));
      if (hits.length > limit) capped++;
      for (const e of hits.slice(0, limit)) out.set(e.id, e);
    }
    for (const e of out.values()) send(ws, ['EVENT', subId, e]);
    send(ws, ['EOSE', subId]);
    for (const h of hooks.filter((x) => x.n <= capped)) {
      hooks.splice(hooks.indexOf(h), 1);
      h.done(Promise.resolve().then(h.fn).then(() => {}));
    }
  };

  wss.on('connection', (ws) => {
    const subs = new Map<string, Filter[]>();
    live.set(ws, subs);
    ws.on('close', () => live.delete(ws));
    ws.on('message', (data) => {
      let msg: unknown;
      try {
        msg = JSON.parse(String(data));
      } catch {
        return send(ws, ['NOTICE', 'invalid: not JSON']);
      }
      if (!Array.isArray(msg)) return send(ws, ['NOTICE', 'invalid: not an array']);
      const [type, ...rest] = msg as [string, ...unknown[]];
      if (type === 'EVENT') {
        const e = rest[0] as Event;
        if (!verifyEvent({ ...e })) return send(ws, ['OK', e?.id ?? '', false, 'invalid: bad id or signature']);
        const fresh = !events.has(e.id);
        store(e);
        send(ws, ['OK', e.id, true, fresh ? '' : 'duplicate: already have it']);
        if (!fresh) return;
        for (const [client, clientSubs] of live) {
          for (const [subId, filters] of clientSubs) if (filters.some((f) => matches(f, e))) send(client, ['EVENT', subId, e]);
        }
      } else if (type === 'REQ') {
        const subId = String(rest[0]);
        const filters = rest.slice(1) as Filter[];
        subs.set(subId, filters);
        answer(ws, subId, filters);
      } else if (type === 'CLOSE') {
        subs.delete(String(rest[0]));
      } else send(ws, ['NOTICE', `invalid: unknown message type ${String(type)}`]);
    });
  });

  const port = (wss.address() as AddressInfo).port;
  const dropClients = () => {
    for (const ws of wss.clients) ws.terminate();
  };
  return {
    url: `ws://127.0.0.1:${port}`,
    cap,
    stored: () => events.size,
    cappedAnswers: () => capped,
    at: (n, fn) => new Promise<Promise<void>>((done) => hooks.push({ n, fn, done })).then((p) => p),
    dropClients,
    async stop() {
      dropClients();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}
