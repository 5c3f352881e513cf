export * from './identity.js';
export * from './safety-number.js';
