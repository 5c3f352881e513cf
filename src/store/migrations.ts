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
];
