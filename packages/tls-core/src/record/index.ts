export * from './record-layer.js';
export * from './keys.js';
