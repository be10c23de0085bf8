import type { Evidence } from '@rogatory/protocol';
import { RELAY_ERRORS, type RelayErrorCode as ApiErrorCode } from '@rogatory/relay-api';

/**
 * The relay codes a client reports: every code of the relay API's one table
 * (RELAY_ERRORS of @rogatory/relay-api, meanings included) except
 * `INTERNAL`, which the client reports as any 5xx without a usable code:
 * `UNAVAILABLE` (transient, retried). Callers branch on these; they never
 * change meaning.
 */
export type RelayErrorCode = Exclude<ApiErrorCode, 'INTERNAL'>;

export const RELAY_ERROR_CODES: Readonly<Record<RelayErrorCode, string>> = Object.fromEntries(
  Object.entries(RELAY_ERRORS)
    .filter(([code]) => code !== 'INTERNAL')
    .map(([code, { meaning }]) => [code, meaning]),
) as Record<RelayErrorCode, string>;

/** Codes the client raises itself, when there is no usable answer from the relay. */
export const CLIENT_ERROR_CODES = {
  NETWORK: 'The relay could not be reached, or the connection failed mid-exchange.',
  TIMEOUT: 'No progress (response or body bytes) within the configured timeout.',
  BAD_RESPONSE:
    'The relay answered something malformed, unexpected or inconsistent with the request.',
  ABORTED: 'The caller aborted the operation, or closed the subscription it belonged to.',
} as const;

export type ClientErrorCode = keyof typeof CLIENT_ERROR_CODES;
export type RelayClientErrorCode = RelayErrorCode | ClientErrorCode;

/** Every code with its meaning: what README.md documents. */
export const RELAY_CLIENT_ERROR_CODES: Readonly<Record<RelayClientErrorCode, string>> = {
  ...RELAY_ERROR_CODES,
  ...CLIENT_ERROR_CODES,
};

/** A code the relay answered that the client reports as it is (INTERNAL is not: see RELAY_ERROR_CODES). */
export function isRelayErrorCode(value: string): value is RelayErrorCode {
  return Object.hasOwn(RELAY_ERROR_CODES, value);
}

export interface RelayClientErrorOptions {
  /** HTTP status of the relay's answer; 0 when there was none (network, timeout, checks made before sending). */
  readonly status?: number;
  readonly cause?: unknown;
  /** The parsed SubmissionRejection evidence of a rejected submission. */
  readonly evidence?: Evidence;
  /** The parsed RelayRejection evidences of a rejected relay-to-relay forward. */
  readonly evidences?: readonly Evidence[];
  /** Chunk ids the relay reported missing (CHUNK_MISSING). */
  readonly missing?: readonly string[];
  /** How long the relay asked to wait (Retry-After), in ms. */
  readonly retryAfterMs?: number;
  /** The mailbox sequence number an error is about (an invalid mailbox item). */
  readonly seq?: number;
}

/**
 * The one error class of this package. The message holds the code, the
 * operation and the status, never bodies, tokens, keys or content; the
 * relay's own message text is not copied (the relay is not trusted to keep
 * it free of data).
 */
export class RelayClientError extends Error {
  override readonly name = 'RelayClientError';
  readonly code: RelayClientErrorCode;
  readonly status: number;
  readonly evidence: Evidence | undefined;
  readonly evidences: readonly Evidence[] | undefined;
  readonly missing: readonly string[] | undefined;
  readonly retryAfterMs: number | undefined;
  readonly seq: number | undefined;

  constructor(code: RelayClientErrorCode, message: string, options: RelayClientErrorOptions = {}) {
    super(
      `${code}: ${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.status = options.status ?? 0;
    this.evidence = options.evidence;
    this.evidences = options.evidences;
    this.missing = options.missing;
    this.retryAfterMs = options.retryAfterMs;
    this.seq = options.seq;
  }

  /** A representation safe to log: code, message, status and ids; never the cause. */
  toJSON(): {
    code: RelayClientErrorCode;
    message: string;
    status: number;
    missing?: readonly string[];
    retryAfterMs?: number;
    seq?: number;
  } {
    return {
      code: this.code,
      message: this.message,
      status: this.status,
      ...(this.missing === undefined ? {} : { missing: this.missing }),
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
      ...(this.seq === undefined ? {} : { seq: this.seq }),
    };
  }
}

/** Type guard: `isRelayClientError(err, 'CHUNK_MISSING')`. */
export function isRelayClientError(
  err: unknown,
  code?: RelayClientErrorCode,
): err is RelayClientError {
  return err instanceof RelayClientError && (code === undefined || err.code === code);
}

/**
 * Worth retrying the same request later: the relay could not be reached or
 * answered a transient condition (5xx, rate limit). Everything else will
 * fail the same way again.
 */
export function isTransientError(err: unknown): boolean {
  if (!isRelayClientError(err)) return false;
  switch (err.code) {
    case 'NETWORK':
    case 'TIMEOUT':
    case 'UNAVAILABLE':
    case 'STORAGE_FULL':
    case 'RATE_LIMITED':
      return true;
    default:
      return false;
  }
}

export function clientFail(
  code: RelayClientErrorCode,
  message: string,
  options?: RelayClientErrorOptions,
): never {
  throw new RelayClientError(code, message, options);
}

/** The first RelayClientError in an error's cause chain (fetch wraps what a body stream threw). */
export function findRelayClientError(err: unknown): RelayClientError | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth++) {
    if (current instanceof RelayClientError) return current;
    current = current instanceof Error ? current.cause : undefined;
  }
  return undefined;
}
