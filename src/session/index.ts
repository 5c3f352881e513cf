export * from './session.js';
export * from './envelope.js';
export * from './store.js';
export * from './cipher.js';
export * from './retry-request.js';
export * from './sealed-envelope.js';
