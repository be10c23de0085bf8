/**
 * `@rogatory/protocol/testing`: the test world (networks, authorities and
 * relays from fixed seeds) and fixtures built on it, for tests, benchmarks,
 * the vectors scripts and the demo. Never for production keys.
 */
export {
  DEFAULT_WORLD,
  DIRECT_PEERING_WORLD,
  buildTestWorld,
  testSeed,
  type NetworkSpec,
  type TestWorld,
} from './world.js';
export { encryptTestAttachment, exampleContentFor, sealTestDossier } from './dossiers.js';
