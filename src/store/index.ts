export * from './database.js';
export * from './protocol-store.js';
export * from './node-store.js';
