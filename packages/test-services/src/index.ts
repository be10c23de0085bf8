export { freePort } from './free-port.js';
export { RedisNotInstalledError, startRedis } from './redis.js';
export type { RedisServer, StartRedisOptions } from './redis.js';
export { startS3 } from './s3.js';
export type { S3Request, S3Server } from './s3.js';
export { FlakyProxy } from './flaky-proxy.js';
export type { FlakyProxyStats, LinkFaults } from './flaky-proxy.js';
