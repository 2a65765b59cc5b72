export * from './classify.js';
export * from './link.js';
export * from './relay.js';
