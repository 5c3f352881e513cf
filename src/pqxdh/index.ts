export * from './pqxdh.js';
export * from './message.js';
