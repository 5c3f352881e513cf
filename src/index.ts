/** ratchet-relay as a library: the pure protocol below, the SQLite shell above. */
export * from './errors.js';
export * from './limits.js';
export * as crypto from './crypto/index.js';
export * from './identity/index.js';
export * from './ratchet/index.js';
export * from './pqxdh/index.js';
export * from './prekeys/index.js';
export * from './session/index.js';
export * from './store/index.js';
export * from './node/index.js';
export { startEmbeddedRelay, type EmbeddedRelay, type EmbeddedRelayOptions } from './relay/index.js';
