export * from './rendezvous.js';
export * from './invite.js';
export * from './seal.js';
export * from './messages.js';
export * from './pending.js';
export * from './kx.js';
export * from './nickname.js';
