export * from './ratchet.js';
export * from './state.js';
export { decodeRatchetMessage, type RatchetMessage, ENCRYPTED_HEADER_BYTES } from './message.js';
export { mailboxTag, receiveTags, sendTag } from './mailbox.js';
