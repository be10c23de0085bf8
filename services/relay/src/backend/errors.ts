/**
 * The backend's error catalogue: what a caller of `RelayBackend` can get
 * besides the store's own failures (a lost connection, a full disk), each
 * code with its meaning. None reaches a relay client as such: the relay
 * answers INTERNAL for them, since each means a bug in the caller.
 */
export const BACKEND_ERRORS = {
  BACKEND_INPUT_INVALID:
    'an argument is outside its domain (an empty id, a time that is not an integer, a limit below 0); nothing was stored',
  BACKEND_CLOSED: 'the backend was closed (or is closing); open a new one',
  WORKERS_RUNNING: "startWorkers was called while this backend's workers run; stop them first",
  BACKEND_NOT_EMPTY:
    'importState was given a store that holds relay state already; nothing was written',
} as const;

export type BackendErrorCode = keyof typeof BACKEND_ERRORS;

/** A lifecycle error: the backend is closed, or its workers already run. */
export class BackendError extends Error {
  override readonly name = 'BackendError';
  constructor(
    readonly code: Exclude<BackendErrorCode, 'BACKEND_INPUT_INVALID'>,
    message: string = BACKEND_ERRORS[code],
  ) {
    super(message);
  }
}

/** A malformed argument (of the wrong type or empty). Messages name the argument, never its value. */
export class BackendTypeError extends TypeError {
  override readonly name = 'BackendTypeError';
  readonly code = 'BACKEND_INPUT_INVALID' as const;
}

/** A number argument outside its range. Messages name the argument, never its value. */
export class BackendRangeError extends RangeError {
  override readonly name = 'BackendRangeError';
  readonly code = 'BACKEND_INPUT_INVALID' as const;
}

/**
 * The store cannot make a write as durable as configured now (Redis WAIT saw
 * too few replicas): the write may be on the primary, but it is not
 * acknowledged; the relay answers UNAVAILABLE and the client retries.
 */
export class BackendUnavailableError extends Error {
  override readonly name = 'BackendUnavailableError';
  readonly code = 'BACKEND_UNAVAILABLE' as const;
}

export type AnyBackendError = BackendError | BackendTypeError | BackendRangeError;

export function isBackendError(error: unknown, code?: BackendErrorCode): error is AnyBackendError {
  const known =
    error instanceof BackendError ||
    error instanceof BackendTypeError ||
    error instanceof BackendRangeError;
  return known && (code === undefined || error.code === code);
}
