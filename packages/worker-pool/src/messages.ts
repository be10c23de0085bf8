/**
 * The one message protocol between a WorkerPool and its worker.
 *
 * Parent to worker, on the worker's parentPort: `{ id, op, args }`.
 * Worker to parent, on the `replies` port of workerData, one per request:
 * `{ id, ok: true, result }` or `{ id, ok: false, error: { name, message, code? } }`.
 * After posting a reply the worker adds 1 to `signal[0]` and notifies it, so
 * that a caller blocked in `callSync` (Atomics.wait) wakes up.
 */
import type { MessagePort } from 'node:worker_threads';

export interface WorkerRequest {
  readonly id: number;
  readonly op: string;
  readonly args: unknown;
}

/** What a worker reports of an error its operation threw. */
export interface WorkerErrorInfo {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
}

export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: WorkerErrorInfo };

/** workerData of every pool worker. */
export interface PoolWorkerData {
  readonly replies: MessagePort;
  readonly signal: Int32Array;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Structural check of a message received from a worker. */
export function isWorkerReply(value: unknown): value is WorkerReply {
  if (!isRecord(value) || typeof value['id'] !== 'number') return false;
  if (value['ok'] === true) return 'result' in value;
  if (value['ok'] !== false) return false;
  const error = value['error'];
  return (
    isRecord(error) &&
    typeof error['name'] === 'string' &&
    typeof error['message'] === 'string' &&
    (error['code'] === undefined || typeof error['code'] === 'string')
  );
}

/** Structural check of a request received from the parent. */
export function isWorkerRequest(value: unknown): value is WorkerRequest {
  return (
    isRecord(value) &&
    typeof value['id'] === 'number' &&
    typeof value['op'] === 'string' &&
    'args' in value
  );
}

/** Structural check of the workerData a pool gives its worker. */
export function isPoolWorkerData(value: unknown): value is PoolWorkerData {
  return isRecord(value) && isRecord(value['replies']) && value['signal'] instanceof Int32Array;
}
