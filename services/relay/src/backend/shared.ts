/**
 * Pieces both backends share, so the embedded and the Redis implementation
 * cannot drift apart on the rules the conformance suite checks: backoff,
 * the forward attempt protocol, input checks and byte handling.
 */
import { backoffDelay } from '@rogatory/client';
import { BackendRangeError, BackendTypeError } from './errors.js';
import type {
  AcceptInput,
  BackoffPolicy,
  ForwardTask,
  MailboxItemKind,
  WorkerHandlers,
} from './types.js';

/**
 * Delay before the next try after `failures` failed tries (1 after the
 * first failure). The rule is the client's `backoffDelay` (exponential from
 * `baseMs`, capped at `maxMs`, scaled by a random factor in [1 - jitter, 1]
 * so relays retrying against one recovering peer do not hit it in
 * lockstep): one implementation for the codebase. Here it counts failures
 * from 1 and never answers 0, so a retry is never immediate, even at full
 * jitter.
 */
export function retryDelay(
  policy: BackoffPolicy,
  failures: number,
  random: () => number = Math.random,
): number {
  const attempt = Math.max(0, Math.floor(failures) - 1);
  return Math.max(1, backoffDelay({ retries: 0, ...policy }, attempt, random));
}

export function assertBackoffPolicy(policy: BackoffPolicy): void {
  const { baseMs, maxMs, jitter } = policy;
  if (!Number.isFinite(baseMs) || baseMs <= 0)
    throw new BackendRangeError('backoff.baseMs must be a positive number');
  if (!Number.isFinite(maxMs) || maxMs < baseMs)
    throw new BackendRangeError('backoff.maxMs must be at least baseMs');
  if (!Number.isFinite(jitter) || jitter < 0 || jitter > 1)
    throw new BackendRangeError('backoff.jitter must be within 0..1');
}

export function assertConcurrency(concurrency: number): void {
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new BackendRangeError('concurrency must be a positive integer');
  }
}

/** What one run of a forward task came to; `retry` means: run it again after a backoff. */
export type AttemptResult = 'done' | 'gave-up' | 'retry';

/**
 * One run of a forwarding task, identical in both backends. The deadline is
 * checked before the attempt (a task picked up late is not sent at all) and
 * after a failure (so `giveUp` follows the last failure at once instead of
 * after one more backoff). A throwing `giveUp` propagates: the caller
 * schedules the task again, and the next run gives up again, so the
 * NonDelivery it triggers is never lost.
 */
export async function runForwardAttempt(options: {
  readonly handlers: WorkerHandlers;
  readonly task: ForwardTask;
  readonly attempt: number;
  readonly clock: () => number;
}): Promise<{ readonly result: AttemptResult; readonly error?: string }> {
  const { handlers, task, attempt, clock } = options;
  if (clock() >= task.deadline) {
    await handlers.giveUp(task);
    return { result: 'gave-up' };
  }
  let error: string;
  try {
    const outcome = await handlers.forward(task, attempt);
    if (outcome.status === 'done') return { result: 'done' };
    error = outcome.error;
  } catch {
    // The thrown value may carry anything (a peer's answer, a payload excerpt): never keep it.
    error = 'forward handler threw';
  }
  if (clock() >= task.deadline) {
    await handlers.giveUp(task);
    return { result: 'gave-up' };
  }
  return { result: 'retry', error };
}

/** Forward task id of an accepted envelope towards one next-hop network: deterministic, so a re-run of accept or a reconciliation finds the same task. */
export function envelopeForwardTaskId(envelopeId: string, network: string): string {
  return `envelope/${envelopeId}/${network}`;
}

/** Mailbox dedup keys of the two kinds live in one namespace per mailbox; the prefix keeps them apart. */
export function mailboxDedupKey(kind: MailboxItemKind, key: string): string {
  return `${kind}:${key}`;
}

/** Checks what `accept` is given; the messages name the field, never its value. */
export function assertAcceptInput(input: AcceptInput): void {
  const { envelope } = input;
  assertNonEmpty(envelope.id, 'envelope.id');
  assertNonEmpty(envelope.hash, 'envelope.hash');
  assertNonEmpty(envelope.sender, 'envelope.sender');
  assertStrings(envelope.recipients, 'envelope.recipients');
  assertStrings(envelope.chunkIds, 'envelope.chunkIds');
  assertBytes(envelope.bytes, 'envelope.bytes');
  assertBytes(envelope.acceptance, 'envelope.acceptance');
  assertTime(envelope.expiresAt, 'envelope.expiresAt');
  assertTime(envelope.acceptedAt, 'envelope.acceptedAt');
  assertTime(input.retainUntil, 'retainUntil');
  if (input.uploader !== undefined) assertNonEmpty(input.uploader, 'uploader');
  for (const delivery of input.deliveries) {
    assertNonEmpty(delivery.address, 'delivery.address');
    assertTime(delivery.deliverBy, 'delivery.deliverBy');
  }
  for (const forward of input.forwards) {
    assertNonEmpty(forward.network, 'forward.network');
    assertStrings(forward.recipients, 'forward.recipients');
  }
}

/**
 * The accept input with repeated mailboxes and networks dropped (first one
 * wins): a mailbox holds an envelope at most once and a network gets one
 * forwarding task, whatever the caller computed.
 */
export function normalizeAccept(input: AcceptInput): {
  readonly deliveries: readonly { readonly address: string; readonly deliverBy: number }[];
  readonly forwards: readonly {
    readonly taskId: string;
    readonly network: string;
    readonly recipients: readonly string[];
  }[];
} {
  const { envelope } = input;
  const seenAddresses = new Set<string>();
  const deliveries: { address: string; deliverBy: number }[] = [];
  for (const delivery of input.deliveries) {
    if (seenAddresses.has(delivery.address)) continue;
    seenAddresses.add(delivery.address);
    deliveries.push({ address: delivery.address, deliverBy: delivery.deliverBy });
  }
  const seenNetworks = new Set<string>();
  const forwards: { taskId: string; network: string; recipients: readonly string[] }[] = [];
  for (const forward of input.forwards) {
    if (seenNetworks.has(forward.network)) continue;
    seenNetworks.add(forward.network);
    forwards.push({
      taskId: envelopeForwardTaskId(envelope.id, forward.network),
      network: forward.network,
      recipients: [...forward.recipients],
    });
  }
  return { deliveries, forwards };
}

export function assertString(value: string, name: string): void {
  if (typeof value !== 'string') throw new BackendTypeError(`${name} must be a string`);
}

export function assertStrings(value: readonly string[], name: string): void {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string'))
    throw new BackendTypeError(`${name} must be an array of strings`);
}

export function assertBytes(value: Uint8Array, name: string): void {
  if (!(value instanceof Uint8Array)) throw new BackendTypeError(`${name} must be a Uint8Array`);
}

export function assertNonEmpty(value: string, name: string): void {
  if (typeof value !== 'string' || value.length === 0)
    throw new BackendTypeError(`${name} must be a non-empty string`);
}

export function assertTime(value: number, name: string): void {
  if (!Number.isSafeInteger(value))
    throw new BackendTypeError(`${name} must be an integer number of milliseconds`);
}

export function assertPositiveInteger(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new BackendRangeError(`${name} must be a positive integer`);
}

export function assertNonNegativeInteger(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new BackendRangeError(`${name} must be a non-negative integer`);
}

/** A copy as a plain Uint8Array: callers get no Buffer (house rule) and no view into a driver's pooled memory. */
export function toBytes(value: Uint8Array): Uint8Array {
  const copy = new Uint8Array(value.byteLength);
  copy.set(value);
  return copy;
}

/** A Buffer over the same memory, for drivers that only bind Buffers; no copy. */
export function asBuffer(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** Runs a listener so that its failure reaches `onError` instead of the write that notified it. */
export function safeNotify(
  listener: (address: string) => void,
  address: string,
  onError: (error: unknown) => void,
): void {
  try {
    listener(address);
  } catch (error) {
    onError(error);
  }
}

/** Default sink for background errors: nothing, since an error may quote a payload and logs must never hold one. */
export function ignoreError(_error: unknown): void {
  // Deliberately empty; pass `onError` to observe worker errors.
}
