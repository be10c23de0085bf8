import { WorkerPool, besideEntry } from '@rogatory/worker-pool';
import type { IoResult } from './fs-io-thread.js';

/**
 * Small-blob file I/O of FsBlobStore on worker threads (fs-io-thread.ts),
 * with synchronous system calls.
 *
 * Why: a durable put through `node:fs/promises` is about ten round trips
 * through libuv's thread pool (stat, open, write, fsync, close, rename,
 * open, fsync and close of the directory), each a hand-off between threads
 * with its promise. Measured on the 2-core build machine, a 2.5 KB put cost
 * 0.66-0.8 ms of CPU that way, against 0.15-0.2 ms for the same system calls
 * made in a row. Here the main thread posts the bytes once, the worker makes
 * the calls in a row, and answers once; puts queued together go in one
 * message, and a directory that several of them renamed into is fsynced once.
 * The durability rule is unchanged: the temp file is fsynced, renamed into
 * place, and the directory fsynced, before the put resolves.
 */
/**
 * Largest blob put through the worker: the dossiers and small chunks that
 * relays hand each other inline (64 KiB at most) and small attachments.
 * Larger ones (attachment chunks, 1 MiB by default) stream through
 * node:fs/promises as before: their system calls are few against their
 * bytes, and a copy of each for the worker would raise a node's peak memory.
 */
export const WORKER_IO_MAX_BYTES = 256 * 1024;
/**
 * A worker idle this long is stopped (it starts again on the next job): an
 * isolate costs about 9 MB of RSS, which an authority node with a few
 * dossiers a day should not carry.
 */
const IDLE_STOP_MS = 10_000;
/** Jobs posted in one message at most (a message is sent at the latest when the event loop turns). */
const BATCH = 64;

interface PutJob {
  readonly tmp: string;
  readonly dest: string;
  /** The store's root directory (fsynced when a shard directory is made). */
  readonly root: string;
  /** Handed over: the whole buffer is transferred to the worker (detached here). */
  readonly bytes: Uint8Array;
}

interface Pending {
  readonly j: number;
  readonly job: Record<string, unknown>;
  /** A buffer of the job's that the worker may take (transferred, not copied). */
  readonly transfer: ArrayBuffer | undefined;
  readonly resolve: (result: IoResult) => void;
  readonly reject: (err: Error) => void;
}

/** An error like the one node:fs would have thrown, without the path. */
export class FsIoError extends Error {
  constructor(
    readonly code: string,
    readonly syscall: string | undefined,
  ) {
    super(`${code}${syscall === undefined ? '' : ` (${syscall})`}`);
    this.name = 'FsIoError';
  }
}

function isIoResult(value: unknown): value is IoResult {
  return (
    typeof value === 'object' && value !== null && typeof (value as { j?: unknown }).j === 'number'
  );
}

/**
 * One kind of operation on its own worker (a WorkerPool stopped after
 * IDLE_STOP_MS without work), with the jobs queued in one turn of the event
 * loop sent as one call.
 */
class Lane {
  readonly #pool: WorkerPool;
  #queue: Pending[] = [];
  #scheduled = false;
  #next = 1;

  constructor(
    private readonly op: 'put' | 'read',
    name: string,
  ) {
    this.#pool = new WorkerPool({
      url: () => besideEntry('@rogatory/storage', './fs-io-thread.ts', import.meta.url),
      name,
      idleStopMs: IDLE_STOP_MS,
    });
  }

  run(job: Record<string, unknown>, transfer?: ArrayBuffer): Promise<IoResult> {
    return new Promise<IoResult>((resolve, reject) => {
      this.#queue.push({ j: this.#next++, job, transfer, resolve, reject });
      if (this.#queue.length >= BATCH) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#flush();
        });
      }
    });
  }

  /** Whether a worker is running (tests). */
  get running(): boolean {
    return this.#pool.running;
  }

  #flush(): void {
    const queue = this.#queue;
    if (queue.length === 0) return;
    this.#queue = [];
    const fail = (err: unknown): void => {
      for (const pending of queue)
        pending.reject(err instanceof Error ? err : new Error(String(err)));
    };
    try {
      const transfer = queue.flatMap((p) => (p.transfer === undefined ? [] : [p.transfer]));
      const jobs = queue.map((p) => ({ ...p.job, j: p.j }));
      this.#pool.call(this.op, { jobs }, { transfer }).then((results: unknown) => {
        const byJob = new Map<number, IoResult>();
        if (Array.isArray(results)) for (const r of results) if (isIoResult(r)) byJob.set(r.j, r);
        for (const pending of queue) {
          const result = byJob.get(pending.j);
          if (result === undefined)
            pending.reject(new Error(`malformed reply from the ${this.op} worker`));
          else pending.resolve(result);
        }
      }, fail);
    } catch (err) {
      fail(err);
    }
  }

  stop(): Promise<void> {
    return this.#pool.stop();
  }
}

const puts = new Lane('put', 'rogatory-blob-writes');
const reads = new Lane('read', 'rogatory-blob-reads');

function settle(result: IoResult): IoResult {
  if ('code' in result) throw new FsIoError(result.code, result.syscall);
  return result;
}

/**
 * Writes `bytes` durably at `dest` through `tmp` (on the same filesystem):
 * resolves true once it is fsynced, renamed into place and its directory
 * fsynced; false, writing nothing, if a file is already at `dest`. Rejects
 * with an FsIoError (errno code) or, if the worker died, a WorkerPoolError.
 */
export async function durablePut(job: PutJob): Promise<boolean> {
  // Transferred, not copied: `bytes` must own its whole buffer (see PutJob). Posting a view instead
  // would copy its whole underlying buffer (a pooled slab, or the request body it was decoded from).
  const { buffer } = job.bytes;
  // A SharedArrayBuffer cannot be transferred: posting it would fail the whole batch it went with.
  if (
    !(buffer instanceof ArrayBuffer) ||
    job.bytes.byteOffset !== 0 ||
    job.bytes.byteLength !== buffer.byteLength
  ) {
    throw new TypeError('durablePut takes bytes that own their whole (non-shared) buffer');
  }
  const result = settle(await puts.run({ ...job }, buffer));
  return 'created' in result && result.created;
}

/**
 * The whole file at `path` if it is at most WORKER_IO_MAX_BYTES, read by
 * the worker; undefined for a larger one (the caller reads it itself).
 * ENOENT as an FsIoError when there is none.
 */
export async function readWhole(path: string): Promise<Uint8Array | undefined> {
  const result = settle(await reads.run({ path, max: WORKER_IO_MAX_BYTES }));
  if ('large' in result) return undefined;
  if (!('bytes' in result)) throw new Error('malformed reply from the blob read worker');
  return result.bytes;
}

/** Which workers are running (tests). */
export function fsIoWorkersRunning(): { puts: boolean; reads: boolean } {
  return { puts: puts.running, reads: reads.running };
}

/** Stops both workers (tests); they start again on next use. */
export async function terminateFsIoWorkers(): Promise<void> {
  await Promise.all([puts.stop(), reads.stop()]);
}
