/**
 * The worker pool's error catalogue. Callers branch on `code`. Messages name
 * the pool and the operation, never arguments or results; what a worker's
 * operation threw is kept as `cause` (which logs must not print), never in
 * the message.
 */
export const WORKER_POOL_ERROR_CODES = {
  /** The worker thread died (an uncaught error, an exit, or a reply it could not send) while the call was outstanding. */
  WORKER_CRASHED:
    'The worker thread died while the call was outstanding; the next call starts a new one.',
  /** The pool stopped its worker (stop() or close()) while the call was outstanding. */
  WORKER_STOPPED: 'The worker was stopped while the call was outstanding.',
  /** The pool is closed: it takes no more calls. */
  WORKER_POOL_CLOSED: 'The pool is closed and takes no more calls.',
  /** The operation threw in the worker (or the worker has no such operation). */
  WORKER_OP_FAILED: 'The operation failed in the worker.',
  /** The worker answered with a message that is not a reply of the pool protocol. */
  WORKER_REPLY_INVALID:
    'The worker answered with a message that is not a reply of the pool protocol.',
  /** A synchronous call got no reply within its time limit; the worker was stopped. */
  WORKER_TIMEOUT: 'A synchronous call got no reply within its time limit; the worker was stopped.',
} as const;

export type WorkerPoolErrorCode = keyof typeof WORKER_POOL_ERROR_CODES;

export interface WorkerPoolErrorOptions {
  readonly cause?: unknown;
  /** The `code` of the error the operation threw in the worker (e.g. an errno), for WORKER_OP_FAILED. */
  readonly remoteCode?: string;
}

/** Every error a WorkerPool throws or rejects with. */
export class WorkerPoolError extends Error {
  override readonly name = 'WorkerPoolError';
  readonly code: WorkerPoolErrorCode;
  readonly remoteCode: string | undefined;

  constructor(code: WorkerPoolErrorCode, message: string, options: WorkerPoolErrorOptions = {}) {
    super(
      `${code}: ${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.remoteCode = options.remoteCode;
  }

  /** A representation safe to log: code and message, never the cause. */
  toJSON(): { code: WorkerPoolErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Type guard: `isWorkerPoolError(err, 'WORKER_CRASHED')`. */
export function isWorkerPoolError(
  err: unknown,
  code?: WorkerPoolErrorCode,
): err is WorkerPoolError {
  return err instanceof WorkerPoolError && (code === undefined || err.code === code);
}
