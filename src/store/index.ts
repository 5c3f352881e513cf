export * from './database.js';
export * from './protocol-store.js';
