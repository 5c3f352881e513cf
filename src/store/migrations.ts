/** Versioned schema migrations: index i takes user_version i to i + 1. Never edit a released entry; append. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    record BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE signed_prekeys (
    id INTEGER PRIMARY KEY,
    public_key BLOB NOT NULL,
    private_key BLOB,
    created_at INTEGER NOT NULL,
    replaced_at INTEGER,
    signature BLOB NOT NULL
  );
  CREATE TABLE kyber_prekeys (
    id INTEGER PRIMARY KEY,
    public_key BLOB NOT NULL,
    private_key BLOB,
    created_at INTEGER NOT NULL,
    replaced_at INTEGER,
    signature BLOB NOT NULL
  );
  CREATE TABLE one_time_prekeys (
    id INTEGER PRIMARY KEY,
    public_key BLOB NOT NULL,
    private_key BLOB,
    created_at INTEGER NOT NULL,
    consumed_at INTEGER
  );
  CREATE INDEX one_time_prekeys_unused ON one_time_prekeys (id) WHERE consumed_at IS NULL;
  CREATE TABLE bundle_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    signed_prekey_id INTEGER NOT NULL,
    kyber_prekey_id INTEGER NOT NULL,
    one_time_prekey_ids TEXT NOT NULL,
    published_at INTEGER NOT NULL
  );
  CREATE TABLE sessions (
    peer TEXT NOT NULL,
    base_key BLOB NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('initiator', 'responder')),
    peer_identity BLOB NOT NULL,
    associated_data BLOB NOT NULL,
    pending BLOB,
    ratchet BLOB NOT NULL,
    active INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (peer, base_key)
  );
  CREATE TABLE skipped_keys (
    peer TEXT NOT NULL,
    base_key BLOB NOT NULL,
    header_key BLOB NOT NULL,
    n INTEGER NOT NULL,
    message_key BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (peer, base_key, header_key, n),
    FOREIGN KEY (peer, base_key) REFERENCES sessions (peer, base_key) ON DELETE CASCADE
  );
  CREATE TABLE contacts (
    fingerprint TEXT PRIMARY KEY,
    identity BLOB NOT NULL,
    alias TEXT UNIQUE,
    verified INTEGER NOT NULL DEFAULT 0,
    trusted INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE discovered_bundles (
    fingerprint TEXT PRIMARY KEY,
    nostr_pubkey TEXT NOT NULL,
    bundle BLOB NOT NULL,
    event_created_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL
  );
  `,
  // 2: the Nostr node (issue 3): relays, cursors, event de-duplication, the outbox, messages.
  `
  ALTER TABLE contacts ADD COLUMN nostr_pubkey TEXT;
  ALTER TABLE contacts ADD COLUMN key_changed_at INTEGER;
  CREATE UNIQUE INDEX contacts_nostr_pubkey ON contacts (nostr_pubkey);
  CREATE INDEX discovered_bundles_nostr_pubkey ON discovered_bundles (nostr_pubkey);
  CREATE TABLE relays (
    url TEXT PRIMARY KEY,
    added_at INTEGER NOT NULL,
    last_seen_at INTEGER
  );
  CREATE TABLE seen_events (
    id TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL,
    outcome TEXT NOT NULL
  );
  CREATE TABLE outbox (
    event_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('bundle', 'message', 'receipt', 'control')),
    message_id TEXT,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    accepted_relays TEXT NOT NULL DEFAULT '[]',
    done_at INTEGER
  );
  CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE done_at IS NULL;
  CREATE INDEX outbox_done ON outbox (done_at) WHERE done_at IS NOT NULL;
  CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    peer TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    body TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    received_at INTEGER,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'delivered', 'received')),
    relays_accepted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (peer, direction, id)
  );
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  CREATE TABLE durability (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    synced_at INTEGER NOT NULL
  );
  `,
  // 3: the invite key exchange (issue 4): key exchanges waiting at a rendezvous point.
  `
  CREATE TABLE pending_kx (
    rv TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('inviter', 'acceptor')),
    record BLOB NOT NULL,
    peer TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  ALTER TABLE contacts ADD COLUMN reset_rv TEXT;
  ALTER TABLE contacts ADD COLUMN peer_reset_rv TEXT;
  CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    admin TEXT NOT NULL,
    version INTEGER NOT NULL,
    members BLOB NOT NULL,
    joined INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE group_introductions (
    group_id TEXT NOT NULL,
    member TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_attempt_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, member)
  );
  ALTER TABLE messages ADD COLUMN group_id TEXT;
  CREATE TABLE pending_mediations (
    target TEXT PRIMARY KEY,
    mediator TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  `,
  // 4: held-back events (issue 8): incoming events a later message can cure, kept across restarts.
  `
  CREATE TABLE held_back (
    event_id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    event TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    held_at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    format INTEGER NOT NULL
  );
  CREATE INDEX held_back_sender ON held_back (sender, held_at);
  CREATE INDEX held_back_age ON held_back (held_at);
  `,
  // 5: retry requests and failed messages (issue 8). SQLite cannot widen a CHECK, so messages is rebuilt.
  `
  CREATE TABLE messages_v5 (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    peer TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    body TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    received_at INTEGER,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'delivered', 'received', 'failed')),
    relays_accepted INTEGER NOT NULL DEFAULT 0,
    group_id TEXT,
    failure TEXT,
    resends INTEGER NOT NULL DEFAULT 0,
    UNIQUE (peer, direction, id)
  );
  INSERT INTO messages_v5 (seq, id, peer, direction, body, sent_at, received_at, state, relays_accepted, group_id)
    SELECT seq, id, peer, direction, body, sent_at, received_at, state, relays_accepted, group_id FROM messages;
  -- The sequence goes on from the highest seq ever handed out, not the highest kept: a seq is never reused.
  DELETE FROM sqlite_sequence WHERE name = 'messages_v5';
  INSERT INTO sqlite_sequence (name, seq) SELECT 'messages_v5', seq FROM sqlite_sequence WHERE name = 'messages';
  DROP TABLE messages;
  ALTER TABLE messages_v5 RENAME TO messages;
  CREATE INDEX messages_undelivered ON messages (peer, state) WHERE direction = 'out';
  CREATE TABLE retry_requests (
    sender TEXT NOT NULL,
    base_key TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    PRIMARY KEY (sender, base_key)
  );
  `,
  // 6: spent invites (issue 8): a second acceptor of an invite is told it was used, once per half KX.
  `
  CREATE TABLE spent_invites (
    rv TEXT PRIMARY KEY,
    record BLOB NOT NULL,
    acceptor TEXT NOT NULL,
    spent_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE TABLE kx_refusals (
    step3_rv TEXT PRIMARY KEY,
    invite_rv TEXT NOT NULL REFERENCES spent_invites (rv) ON DELETE CASCADE,
    refused_at INTEGER NOT NULL
  );
  CREATE INDEX kx_refusals_invite ON kx_refusals (invite_rv);
  `,
  // 7: bounds by bytes (issue 9): held-back events of senders that are no contact have a pool of their
  // own; seen_events is pruned by age, refused ids sooner than the rest.
  `
  ALTER TABLE held_back ADD COLUMN stranger INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX held_back_pool ON held_back (stranger, held_at);
  CREATE INDEX seen_events_age ON seen_events (seen_at);
  CREATE INDEX seen_events_refused ON seen_events (seen_at) WHERE substr(outcome, 1, 9) = 'rejected:';
  `,
  // 8: accepted first messages (issue 10): a replayed pre-key message is refused even after its session
  // was evicted; a row lives as long as the signed pre-key it names can still be used.
  `
  CREATE TABLE accepted_first_messages (
    signed_prekey_id INTEGER NOT NULL,
    base_key BLOB NOT NULL,
    accepted_at INTEGER NOT NULL,
    PRIMARY KEY (signed_prekey_id, base_key)
  );
  `,
  // 9: consent before an introduction (issue 10): introductions nobody asked for wait for the user;
  // how each contact was met (and each key exchange will meet it); reset invites already answered.
  `
  CREATE TABLE kx_requests (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('invite-request', 'introduced')),
    mediator TEXT NOT NULL,
    peer TEXT NOT NULL,
    identity BLOB NOT NULL,
    sealed BLOB,
    received_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    UNIQUE (mediator, peer)
  );
  CREATE INDEX kx_requests_age ON kx_requests (expires_at);
  ALTER TABLE pending_kx ADD COLUMN met TEXT;
  ALTER TABLE contacts ADD COLUMN met TEXT;
  CREATE TABLE answered_resets (
    rv TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  );
  `,
  // 10: deferred sends (issue 11): what the node sends to a contact whose session cannot send yet
  // (a key exchange's acceptor before the inviter's first message), kept in order until it can.
  `
  CREATE TABLE deferred_sends (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    peer TEXT NOT NULL,
    message BLOB NOT NULL,
    bytes INTEGER NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('message', 'receipt', 'control')),
    message_id TEXT,
    created_at INTEGER NOT NULL,
    format INTEGER NOT NULL
  );
  CREATE INDEX deferred_sends_peer ON deferred_sends (peer, seq);
  CREATE INDEX deferred_sends_age ON deferred_sends (created_at);
  `,
  // 11: an outgoing message is looked up by id alone on every send (its relays' OK, the `sent`
  // event): without this index each lookup scanned the whole messages table (issue 12).
  `
  CREATE INDEX messages_outgoing_id ON messages (id) WHERE direction = 'out';
  `,
  // 12: packing (issue 12): a mailbox envelope waits unsigned, with its tag, until a flush packs the
  // envelopes of one tag into one event; that event's outbox row names every message it carries.
  `
  CREATE TABLE outbox_envelopes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tag TEXT NOT NULL,
    envelope BLOB NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('message', 'receipt', 'control')),
    message_id TEXT,
    created_at INTEGER NOT NULL,
    format INTEGER NOT NULL
  );
  ALTER TABLE outbox ADD COLUMN message_ids TEXT;
  `,
  // 13: no query uses messages_undelivered (the planner takes (peer, direction, id) for undelivered(),
  // with or without it, ANALYZE or not), yet every send and every state change wrote it: one WAL page
  // of a send's eight (issue 12).
  `
  DROP INDEX messages_undelivered;
  `,
  // 14: the web app's read marks, one per conversation (a contact, or a group), apart from the CLI's
  // single receive cursor; seeded from that cursor, so what the CLI already handed out is not unread.
  // A group's history is read by group: an index only group messages pay for.
  `
  CREATE TABLE conversation_reads (
    conversation TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
  );
  INSERT INTO conversation_reads (conversation, seq)
    SELECT 'c:' || peer, (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'read_cursor') FROM messages
    WHERE group_id IS NULL AND EXISTS (SELECT 1 FROM settings WHERE key = 'read_cursor') GROUP BY peer;
  INSERT INTO conversation_reads (conversation, seq)
    SELECT 'g:' || group_id, (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'read_cursor') FROM messages
    WHERE group_id IS NOT NULL AND EXISTS (SELECT 1 FROM settings WHERE key = 'read_cursor') GROUP BY group_id;
  CREATE INDEX messages_group ON messages (group_id, seq) WHERE group_id IS NOT NULL;
  `,
];
