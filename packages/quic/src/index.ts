export {};
export * from './api.js';
export * from './cid.js';
export * from './token.js';
