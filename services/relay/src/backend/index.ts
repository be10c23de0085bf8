/**
 * The relay's state backends. The relay picks one at startup: embedded
 * (one SQLite file) for the demo and small deployments, Redis for
 * production and for several relay instances.
 */
export { openEmbeddedBackend, type EmbeddedBackendOptions } from './embedded.js';
export { SchemaVersionError } from './embedded-schema.js';
export { openRedisBackend, type RedisBackendOptions } from './redis.js';
export { backoffDelay } from './shared.js';
export type * from './types.js';
