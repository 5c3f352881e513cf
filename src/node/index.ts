export * from './node.js';
export * from './app-message.js';
export * from './data-dir.js';
