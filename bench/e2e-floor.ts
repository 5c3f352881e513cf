// The store's floor under one end-to-end message: raw SQL, no code of ours beyond openDatabase, on
// two databases opened exactly as a node opens its store (a file in a temp dir, SQLCipher, WAL,
// synchronous NORMAL, secure_delete, the real schema), doing per message the writes the node must
// do durably, with the real row sizes. Added to the ratchet's one-way floor (bench/floor.ts) it is
// the end-to-end floor: what one durable, encrypted commit per send leaves of the Nostr ceiling.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACK_LIMITS } from '../src/nostr/pack.js';
import { type Db, openDatabase } from '../src/store/index.js';
import { floorPerSec, measureFloorPrimitives } from './floor.js';
import { now } from './timing.js';

/**
 * Row sizes as a real node writes them for a 1 KB text (alice → bob, measured from both nodes'
 * databases): message id 32 hex, peer fingerprint 64 hex, body 1,024 B; the session's ratchet blob
 * 338 B (peer identity 266 B, AD 64 B, base key 32 B); the waiting envelope 1,164 B, its tag 64 hex;
 * an event id 64 hex.
 */
export const E2E_FLOOR_ROWS = { messageId: 32, peer: 64, body: 1024, ratchet: 338, peerIdentity: 266, associatedData: 64, baseKey: 32, envelope: 1164, tag: 64, eventId: 64 } as const;
/** 1 KB texts per packed event: as many envelopes (each with its 2-byte length) as the frame holds. */
export const MESSAGES_PER_PACK = Math.min(PACK_LIMITS.maxEnvelopes, Math.floor(PACK_LIMITS.maxFrameBytes / (2 + E2E_FLOOR_ROWS.envelope)));

export const E2E_FLOOR_COUNTS =
  'per message: alice one send transaction (message row, session update, waiting envelope) + bob one savepoint in a batch ' +
  `(session update, message row, seen mark); per pack of ${MESSAGES_PER_PACK}: alice deletes its envelope rows in a FULL commit ` +
  '(the fsync before publishing), bob commits the batch and marks the pack seen. Not counted: receipts, relay OKs, the relay';

export interface StoreFloorFigures {
  /** Nanoseconds per message, each part and the total. */
  readonly sendNs: number;
  readonly packNs: number;
  readonly receiveNs: number;
  readonly totalNs: number;
  /** WAL frames (pages) per send commit, from the WAL file's growth. */
  readonly sendPages: number;
  readonly messages: number;
}

const hex = (chars: number) => randomBytes(chars / 2).toString('hex');
const text = (i: number) => `${i} `.padEnd(E2E_FLOOR_ROWS.body, 'x');

function open(root: string, name: string): Db {
  const db = openDatabase({ path: join(root, `${name}.db`), passphrase: name, kdf: { N: 1 << 10 }, synchronous: 'NORMAL' });
  db.prepare(
    "INSERT INTO sessions (peer, base_key, role, peer_identity, associated_data, pending, ratchet, active, created_at, updated_at) VALUES (?, ?, 'initiator', ?, ?, NULL, ?, 1, 0, 0)",
  ).run(PEER, BASE_KEY, randomBytes(E2E_FLOOR_ROWS.peerIdentity), randomBytes(E2E_FLOOR_ROWS.associatedData), randomBytes(E2E_FLOOR_ROWS.ratchet));
  return db;
}

const PEER = hex(E2E_FLOOR_ROWS.peer);
const BASE_KEY = randomBytes(E2E_FLOOR_ROWS.baseKey);

/** Runs whole packs for about `seconds` after a warm-up of a tenth of that, each part timed apart. */
export function measureStoreFloor(seconds: number): StoreFloorFigures {
  const root = mkdtempSync(join(tmpdir(), 'rrelay-e2e-floor-'));
  const alice = open(root, 'alice');
  const bob = open(root, 'bob');
  try {
    const a = {
      message: alice.prepare("INSERT INTO messages (id, peer, direction, body, sent_at, received_at, state) VALUES (?, ?, 'out', ?, ?, NULL, 'queued')"),
      session: alice.prepare('UPDATE sessions SET ratchet = ?, updated_at = ? WHERE peer = ? AND base_key = ?'),
      envelope: alice.prepare("INSERT INTO outbox_envelopes (tag, envelope, purpose, message_id, created_at, format) VALUES (?, ?, 'message', ?, ?, 1)"),
      packed: alice.prepare('DELETE FROM outbox_envelopes WHERE seq <= ?'),
    };
    const b = {
      session: bob.prepare('UPDATE sessions SET ratchet = ?, updated_at = ? WHERE peer = ? AND base_key = ?'),
      message: bob.prepare("INSERT INTO messages (id, peer, direction, body, sent_at, received_at, state) VALUES (?, ?, 'in', ?, ?, ?, 'received')"),
      seen: bob.prepare('INSERT INTO seen_events (id, seen_at, outcome) VALUES (?, ?, ?)'),
    };
    const tag = hex(E2E_FLOOR_ROWS.tag);
    let i = 0;
    const timed = { send: 0n, pack: 0n, receive: 0n, messages: 0 };
    const wal = () => statSync(join(root, 'alice.db-wal')).size;
    const frame = (alice.pragma('page_size', { simple: true }) as number) + 24;
    // Fresh bytes per row, as ciphertext is: made outside the timers.
    const pack = (countPages = false) => {
      const rows = Array.from({ length: MESSAGES_PER_PACK }, () => ({
        id: hex(E2E_FLOOR_ROWS.messageId),
        body: text(i++),
        ratchetA: randomBytes(E2E_FLOOR_ROWS.ratchet),
        ratchetB: randomBytes(E2E_FLOOR_ROWS.ratchet),
        envelope: randomBytes(E2E_FLOOR_ROWS.envelope),
        eventId: hex(E2E_FLOOR_ROWS.eventId),
      }));
      const packId = hex(E2E_FLOOR_ROWS.eventId);
      let pages = 0;
      let last = 0;
      let send = 0n;
      for (const r of rows) {
        const before = countPages ? wal() : 0;
        const t0 = now();
        const at = Date.now();
        alice.exec('BEGIN');
        a.message.run(r.id, PEER, r.body, at);
        a.session.run(r.ratchetA, at, PEER, BASE_KEY);
        last = Number(a.envelope.run(tag, r.envelope, r.id, at).lastInsertRowid);
        alice.exec('COMMIT');
        send += now() - t0;
        if (countPages) pages += (wal() - before) / frame;
      }
      const t1 = now();
      alice.pragma('synchronous = FULL');
      alice.exec('BEGIN');
      a.packed.run(last);
      alice.exec('COMMIT');
      alice.pragma('synchronous = NORMAL');
      const t2 = now();
      bob.exec('BEGIN');
      for (const r of rows) {
        const at = Date.now();
        bob.exec('SAVEPOINT message');
        b.session.run(r.ratchetB, at, PEER, BASE_KEY);
        b.message.run(r.id, PEER, r.body, at, at);
        b.seen.run(r.eventId, at, 'delivered');
        bob.exec('RELEASE message');
      }
      b.seen.run(packId, Date.now(), 'unpacked');
      bob.exec('COMMIT');
      const t3 = now();
      return { send, pack: t2 - t1, receive: t3 - t2, pages };
    };
    // The WAL restarts from its head after a checkpoint, so frames are counted on one pack with none.
    alice.pragma('wal_checkpoint(TRUNCATE)');
    alice.pragma('wal_autocheckpoint = 0');
    const sendPages = pack(true).pages / MESSAGES_PER_PACK;
    alice.pragma('wal_autocheckpoint = 1000');
    const warmUpUntil = now() + BigInt(Math.round(seconds * 1e8));
    while (now() < warmUpUntil) pack();
    const deadline = now() + BigInt(Math.round(seconds * 1e9));
    while (now() < deadline) {
      const p = pack();
      timed.send += p.send;
      timed.pack += p.pack;
      timed.receive += p.receive;
      timed.messages += MESSAGES_PER_PACK;
    }
    const per = (ns: bigint) => Number(ns) / timed.messages;
    return {
      sendNs: per(timed.send),
      packNs: per(timed.pack),
      receiveNs: per(timed.receive),
      totalNs: per(timed.send + timed.pack + timed.receive),
      sendPages,
      messages: timed.messages,
    };
  } finally {
    alice.close();
    bob.close();
    rmSync(root, { recursive: true, force: true });
  }
}

export interface E2eFloorFigures {
  /** The ratchet's one-way floor (bench/floor.ts: encrypt + decrypt primitive calls), ns per message. */
  readonly ratchetNs: number;
  readonly store: StoreFloorFigures;
  /** Messages per second the two floors together leave, one core. */
  readonly perSec: number;
}

/** The end-to-end floor: the ratchet's primitives a tenth of `seconds` each, then the store's over `seconds`. */
export async function measureE2eFloor(seconds: number): Promise<E2eFloorFigures> {
  const ratchetNs = 1e9 / floorPerSec('oneWay', (await measureFloorPrimitives(seconds / 10, 'oneWay')).ns);
  const store = measureStoreFloor(seconds);
  return { ratchetNs, store, perSec: 1e9 / (ratchetNs + store.totalNs) };
}
