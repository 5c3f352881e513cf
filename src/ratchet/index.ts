export * from './ratchet.js';
export * from './state.js';
export { decodeRatchetMessage, encodeRatchetMessage, type RatchetMessage, ENCRYPTED_HEADER_BYTES } from './message.js';
export { mailboxTag, receiveTags, sendTag } from './mailbox.js';
