export {
  CLIENT_ERROR_CODES,
  RELAY_CLIENT_ERROR_CODES,
  RELAY_ERROR_CODES,
  RelayClientError,
  isRelayClientError,
  isTransientError,
} from './errors.js';
export type {
  ClientErrorCode,
  RelayClientErrorCode,
  RelayClientErrorOptions,
  RelayErrorCode,
} from './errors.js';
export { RelayClient } from './relay-client.js';
export type { RelayClientOptions, SessionInfo } from './relay-client.js';
export {
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_MIN_BYTES_PER_SECOND,
  DEFAULT_TIMEOUT_MS,
} from './transport.js';
export type { CallOptions, RelayClockOffset } from './transport.js';
// The client sends through undici: its Agent and Dispatcher, so that callers need not depend on a matching undici.
export { Agent, type Dispatcher } from 'undici';
export { CHUNK_ID_PATTERN, sha256Hex } from './chunks.js';
export type { ChunkBody, PutChunkResult } from './chunks.js';
export { DEFAULT_UPLOAD_CONCURRENCY, DEFAULT_UPLOAD_WINDOW_BYTES, uploadChunks } from './upload.js';
export type { ChunkTransfer, UploadChunk, UploadOptions, UploadProgress } from './upload.js';
export {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_RECONNECT_POLICY,
  MailboxSubscription,
} from './mailbox-subscription.js';
export type {
  DisconnectInfo,
  MailboxSubscriptionEvents,
  OpenMailboxOptions,
  ReconnectPolicy,
} from './mailbox-subscription.js';
export type { MailboxItem } from './wire.js';
export type { EvidenceTrust } from './evidence-checks.js';
export { DEFAULT_RETRY_POLICY, backoffDelay, parseRetryAfter } from './retry.js';
export type { RetryPolicy, Runtime } from './retry.js';
export { RelayPeerClient } from './relay-peer-client.js';
export type {
  BatchOutcome,
  HandOverOptions,
  PreparedEvidence,
  PreparedHandOver,
  RelayPeerClientOptions,
} from './relay-peer-client.js';
export { MAX_PUBLICATIONS_PER_PAGE, fetchTrustPublications } from './trust-calls.js';
export type { FetchPublicationsOptions } from './trust-calls.js';
