export * from './ids.js';
export * from './ranges.js';
export * from './send.js';
export * from './recv.js';
export * from './manager.js';
export * from './crypto.js';
