export * from './errors.js';
export * from './sodium.js';
export * from './bytes.js';
export * from './encoding.js';
