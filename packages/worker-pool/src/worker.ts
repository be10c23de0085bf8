/**
 * `@rogatory/worker-pool/worker`: the worker side of the pool protocol
 * (see messages.ts). A worker module calls `serveWorker` once with its
 * operations; each request runs the named operation and gets one reply.
 * Operations that return synchronously are answered in the order the
 * requests came; an operation may keep state between requests.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  isPoolWorkerData,
  isWorkerRequest,
  type WorkerErrorInfo,
  type WorkerReply,
} from './messages.js';

/** A result and the buffers of it to transfer (not copy) to the parent. */
export class Transfer<T> {
  constructor(
    readonly value: T,
    readonly transfer: readonly ArrayBuffer[],
  ) {}
}

/** Answer with `value`, moving `transfer` to the parent instead of copying them. */
export function withTransfer<T>(value: T, transfer: readonly ArrayBuffer[]): Transfer<T> {
  return new Transfer(value, transfer);
}

/** An operation: its arguments as the parent sent them (to check), its result (or a Transfer, or a promise of either). */
export type WorkerOperation = (args: unknown) => unknown;

function errorInfo(err: unknown): WorkerErrorInfo {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string'
      ? { name: err.name, message: err.message, code }
      : { name: err.name, message: err.message };
  }
  return { name: 'Error', message: 'a value that is not an Error was thrown' };
}

/** Serve `operations` to the pool that started this worker. Throws if this thread was not started by a WorkerPool. */
export function serveWorker(operations: Readonly<Record<string, WorkerOperation>>): void {
  const port = parentPort;
  const data: unknown = workerData;
  if (port === null || !isPoolWorkerData(data)) {
    throw new Error('serveWorker runs only in a worker started by a WorkerPool');
  }
  const { replies, signal } = data;
  const send = (reply: WorkerReply, transfer: readonly ArrayBuffer[] = []): void => {
    try {
      replies.postMessage(reply, transfer);
    } catch (err) {
      // A result that cannot be cloned: the caller gets the failure, not silence.
      replies.postMessage({ id: reply.id, ok: false, error: errorInfo(err) } satisfies WorkerReply);
    }
    Atomics.add(signal, 0, 1);
    Atomics.notify(signal, 0);
  };
  const answer = (id: number, out: unknown): void => {
    if (out instanceof Transfer) send({ id, ok: true, result: out.value }, out.transfer);
    else send({ id, ok: true, result: out });
  };
  const fail = (id: number, err: unknown): void => {
    send({ id, ok: false, error: errorInfo(err) });
  };
  port.on('message', (request: unknown) => {
    // Nothing to answer a message without an id to; the pool never sends one.
    if (!isWorkerRequest(request)) return;
    const { id, op, args } = request;
    const operation = Object.hasOwn(operations, op) ? operations[op] : undefined;
    if (operation === undefined) {
      fail(id, new Error('no such operation'));
      return;
    }
    try {
      const out = operation(args);
      if (out instanceof Promise) {
        out.then(
          (value: unknown) => {
            answer(id, value);
          },
          (err: unknown) => {
            fail(id, err);
          },
        );
      } else answer(id, out);
    } catch (err) {
      fail(id, err);
    }
  });
}
