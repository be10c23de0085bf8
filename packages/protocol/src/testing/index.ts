export * from './world.js';
export * from './dossiers.js';
