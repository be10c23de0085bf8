export { buildRelayApp } from './app.js';
export {
  loadRelayConfig,
  applyEnvOverrides,
  RelayConfigSchema,
  type RelayConfig,
} from './config.js';
export { RelayError, isRelayError } from './errors.js';
export {
  DEFAULT_FORWARDING,
  DEFAULT_LIMITS,
  DEFAULT_RETENTION,
  type RelayLimits,
  type RelayOptions,
} from './options.js';
export { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from './limits.js';
export {
  openStores,
  relayOptionsFromConfig,
  startRelay,
  loadTrust,
  type RunningRelay,
  type TlsReloadOutcome,
} from './server.js';
export {
  RelayTlsError,
  readTlsMaterial,
  type RelayCertificateInfo,
  type RelayTlsFiles,
} from './tls.js';
export { openEmbeddedBackend } from './backend/embedded.js';
export { openRedisBackend } from './backend/redis.js';
export type { RelayBackend } from './backend/types.js';
export {
  RELAY_EXIT,
  RELAY_SETUP_ERRORS,
  RelaySetupError,
  isRelaySetupError,
  type RelaySetupCode,
  type SetupIssue,
} from './setup-errors.js';
export { preflight, type CheckResult, type PreflightReport } from './preflight.js';
export type { QueueReport } from './backend/types.js';
export { SchemaVersionError } from './backend/embedded-schema.js';
export { REDIS_LAYOUT_VERSION } from './backend/redis.js';
