import { RelayClientError, isRelayClientError, isTransientError } from './errors.js';

/**
 * Exponential backoff with jitter: attempt `n` (0-based) waits
 * `min(maxMs, baseMs * 2^n)` multiplied by a random factor in `[1 - jitter, 1]`
 * (the same convention as the relay's forwarding queue).
 */
export interface RetryPolicy {
  /** Retries after the first attempt; 0 disables retrying. */
  readonly retries: number;
  readonly baseMs: number;
  readonly maxMs: number;
  /** 0..1 */
  readonly jitter: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  retries: 5,
  baseMs: 250,
  maxMs: 30_000,
  jitter: 0.5,
};

/** Clock, timers and randomness, injectable so tests observe decisions instead of waiting. */
export interface Runtime {
  readonly now: () => number;
  /** Resolves after `ms`; rejects with ABORTED when `signal` aborts. */
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Uniform in [0, 1). */
  readonly random: () => number;
}

export const defaultRuntime: Runtime = {
  now: () => Date.now(),
  sleep: abortableSleep,
  random: () => Math.random(),
};

export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(abortedError());
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortedError(cause?: unknown): RelayClientError {
  return new RelayClientError('ABORTED', 'operation aborted', cause === undefined ? {} : { cause });
}

export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.max(0, Math.round(exp * (1 - jitter * random())));
}

export function checkRetryPolicy(policy: RetryPolicy): RetryPolicy {
  const ok =
    Number.isInteger(policy.retries) &&
    policy.retries >= 0 &&
    policy.retries <= 100 &&
    policy.baseMs >= 0 &&
    policy.maxMs >= policy.baseMs &&
    policy.jitter >= 0 &&
    policy.jitter <= 1;
  if (!ok) throw new RangeError('invalid retry policy');
  return policy;
}

/**
 * `Retry-After` as delta-seconds or an HTTP date, in ms from `now`;
 * undefined when absent or unparseable.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * Run `attempt` until it succeeds, fails with a non-transient error, or the
 * policy's retries are used up. A `Retry-After` longer than `maxMs` is not
 * waited out: the error is thrown so the caller can schedule the work later.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  runtime: Runtime,
  attempt: (n: number) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (n >= policy.retries || !isTransientError(err) || signal?.aborted === true) throw err;
      let delay = backoffDelay(policy, n, runtime.random);
      const retryAfter = isRelayClientError(err) ? err.retryAfterMs : undefined;
      if (retryAfter !== undefined) {
        if (retryAfter > policy.maxMs) throw err;
        delay = Math.max(delay, retryAfter);
      }
      await runtime.sleep(delay, signal);
    }
  }
}
