export * from './records.js';
export * from './bundle.js';
export * from './maintenance.js';
