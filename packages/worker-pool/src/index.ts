/**
 * `@rogatory/worker-pool`: the parent side of the workspace's worker
 * threads (hash, key derivation, blob file I/O). The worker side is
 * `@rogatory/worker-pool/worker`.
 */
export {
  WorkerPool,
  besideEntry,
  type CallOptions,
  type SyncCallOptions,
  type WorkerPoolOptions,
} from './pool.js';
export {
  WORKER_POOL_ERROR_CODES,
  WorkerPoolError,
  isWorkerPoolError,
  type WorkerPoolErrorCode,
  type WorkerPoolErrorOptions,
} from './errors.js';
export type { WorkerErrorInfo, WorkerReply, WorkerRequest } from './messages.js';
