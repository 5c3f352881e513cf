/** Every protocol limit and default in one place. All of them can be overridden through the config objects. */

const DAY_MS = 24 * 60 * 60 * 1000;

export const RATCHET_DEFAULTS = {
  /** Most message keys one message may make us skip (Double Ratchet MAX_SKIP). */
  maxSkip: 1000,
  /** Most skipped message keys kept per session; the oldest go first. */
  maxSkippedKeys: 2000,
  /** A skipped message key older than this is deleted. */
  skippedKeyTtlMs: 30 * DAY_MS,
} as const;

export const PREKEY_DEFAULTS = {
  signedPreKeyRotationMs: 7 * DAY_MS,
  kyberPreKeyRotationMs: 7 * DAY_MS,
  /** A replaced signed or Kyber pre-key keeps working this long after its replacement. */
  replacedKeyGraceMs: 14 * DAY_MS,
  oneTimePoolTarget: 100,
  oneTimePoolLowWater: 50,
  /** One-time pre-keys offered per bundle; senders who collide on one are cured by a retry request (docs/protocol.md). */
  oneTimeKeysPerBundle: 5,
} as const;

export const SESSION_LIMITS = {
  /** Sessions kept per peer: the active one and recent ones a peer may still be using after crossed initiations. */
  maxSessionsPerPeer: 5,
} as const;

/** Upper bounds on decoded sizes, checked before any allocation driven by untrusted input. */
export const WIRE_LIMITS = {
  maxPlaintextBytes: 256 * 1024,
  maxBundleOneTimeKeys: 100,
} as const;

/** Incoming events held back for another try (a gap beyond MAX_SKIP, no session yet), kept in the store. */
export const HELD_BACK_LIMITS = {
  // Contacts' events. On disk: memory holds only ids and chain positions. A backlog of pre-key
  // messages (each ~3 KB, until the receiver answers) of 20,000 must fit one sender's bound.
  maxEventsPerSender: 25_000,
  maxBytesPerSender: 96 * 1024 * 1024,
  maxEvents: 50_000,
  maxBytes: 256 * 1024 * 1024,
  /**
   * Senders that are no contact (yet): anyone can sign with a throwaway key, so they share a small
   * quota of their own, and junk can never push out a contact's events. What it is for: the
   * messages of a new peer that arrive before its first (256 pre-key messages of ~3 KB fit), or
   * before our side of a key exchange is done.
   */
  strangers: {
    maxEventsPerSender: 256,
    maxBytesPerSender: 1024 * 1024,
    maxEvents: 1024,
    maxBytes: 4 * 1024 * 1024,
  },
  /** Decrypt attempts of held-back events per turn of the event loop, so RPC and the live stream keep flowing. */
  retryBatch: 64,
  /** Held-back events a delivered message may release at once, before the rest wait for the next turn. */
  releaseInline: 32,
} as const;

/** Incoming event ids kept in `seen_events`, so that each event is acted on once (docs/protocol.md, "Store"). */
export const SEEN_LIMITS = {
  /**
   * An id of an event we acted on is kept this long, and until every relay's cursor is
   * `cursorMarginS` past it, so that no honest subscription (`since` = cursor − 10 min) can bring it
   * again. A replay from a relay that ignores `since` meets the ratchet, which refuses a message it
   * has decrypted (DUPLICATE_MESSAGE), and the messages table, which stores a message id once.
   */
  keptMs: 30 * DAY_MS,
  /** Past the `since` margin (10 min) and the future skew a relay's event may have (15 min). */
  cursorMarginS: 60 * 60,
  /** A refused event's id goes sooner: handled again, it is refused again, at the cost of a check. */
  rejectedMs: DAY_MS,
  /** At most this many ids: beyond it the oldest refused ones go first, then the oldest of any. */
  maxRows: 200_000,
} as const;

export type RatchetConfig = { -readonly [K in keyof typeof RATCHET_DEFAULTS]: number };
export type PreKeyConfig = { -readonly [K in keyof typeof PREKEY_DEFAULTS]: number };

/** Retry requests (docs/protocol.md, "Retry requests"). */
export const RETRY_LIMITS = {
  /** Requests we send one sender in an hour, at most: a sender cannot make us sign and publish without bound. */
  perSenderPerHour: 10,
  /** How often one message is sent again in a new session; asked once more, it fails with the reason. */
  resendsPerMessage: 1,
  /** A contact's messages that no key opens for this long mean a session we lost: we ask for a new one (at maintenance). */
  lostSessionAfterMs: 10 * 60 * 1000,
  /** How long a request is remembered, so that a session is asked to retry once. */
  rememberMs: 30 * 24 * 60 * 60 * 1000,
} as const;

/** Private addressing (docs/protocol.md, "Private addressing"). */
export const PRIVACY_LIMITS = {
  /**
   * A throwaway-signed event's created_at is now minus a uniform [0, this] seconds: in the past only,
   * which no common relay refuses, and below the relays' `since` margin (600 s), so a reconnect
   * still catches every event.
   */
  createdAtJitterS: 300,
  /** Mailbox tags per relay subscription filter: more are split over several filters. */
  tagsPerFilter: 256,
  /** Mailbox subscription changes within this are sent to relays as one. */
  resubscribeDebounceMs: 50,
} as const;

/** What the node sends to a contact whose session cannot send yet, waiting in the store (docs/protocol.md, "Deferred sends"). */
export const DEFERRED_LIMITS = {
  /** Per contact: beyond it a send to that contact is refused (NO_SESSION) until its session can send. */
  maxPerContact: 1000,
  maxBytesPerContact: 16 * 1024 * 1024,
  /** In all, over every contact. */
  max: 10_000,
  maxBytes: 64 * 1024 * 1024,
  /** What waits longer than this (the peer's first message never came) fails at maintenance, with the reason. */
  maxWaitMs: 30 * DAY_MS,
} as const;
