import { WorkerPool, besideEntry } from '@rogatory/worker-pool';
import type {
  AttachmentHashSession,
  AttachmentHashing,
  ChunkHashJob,
  ChunkHashResult,
} from '../attachment.js';

/**
 * One lazily started worker thread (hash-thread.ts) shared by every
 * attachment of the process; the pool unrefs it while idle and refs it while
 * a job is outstanding. If it dies, outstanding jobs fail, and so does every
 * session opened on it (the new worker does not know them).
 */
const pool = new WorkerPool({
  // Through the package, not import.meta.url: the benchmarks run this code bundled elsewhere.
  url: () => besideEntry('@rogatory/protocol/node', './hash-thread.ts', import.meta.url),
  name: 'rogatory-attachment-hashing',
});

let nextSession = 1;

interface ChunkReply {
  readonly d: Uint8Array;
  readonly c: Uint8Array;
  readonly p: Uint8Array;
}

interface Waiter {
  resolve(reply: ChunkReply): void;
  reject(err: Error): void;
}

function isChunkReply(value: unknown): value is ChunkReply {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    r['d'] instanceof Uint8Array && r['c'] instanceof Uint8Array && r['p'] instanceof Uint8Array
  );
}

function malformed(): Error {
  return new Error('malformed reply from the attachment hashing worker');
}

/** True when `bytes` is the whole of an ArrayBuffer (not a SharedArrayBuffer): transferring it detaches nothing else. */
function ownsWholeBuffer(bytes: Uint8Array): boolean {
  return (
    bytes.buffer instanceof ArrayBuffer &&
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength
  );
}

/** Copies of caller-owned ciphertext kept for reuse, per session: enough for a window of chunks. */
const MAX_SPARE_COPIES = 8;
/**
 * Jobs sent to the worker in one message. Each message wakes the worker
 * thread, and a wake-up can preempt the encrypting thread for a while on a
 * loaded machine; two chunks a message halves that cost. A partial batch is
 * sent as soon as the caller yields to the event loop (when it waits for a
 * result), so batching never delays a result the caller is waiting for.
 */
const BATCH = 2;

interface QueuedJob {
  readonly c: Uint8Array;
  readonly p: Uint8Array;
  readonly waiter: Waiter;
}

class WorkerHashSession implements AttachmentHashSession {
  readonly #id = nextSession++;
  readonly #spare: Uint8Array[] = [];
  #queue: QueuedJob[] = [];
  #flushScheduled = false;
  #open = true;

  constructor() {
    // Not awaited: requests reach the worker in order, and if this one is lost with its worker,
    // the session's next request fails on the new worker, which does not know the session.
    pool.call('open', { s: this.#id }).catch(() => undefined);
  }

  /** A copy of `bytes` in a buffer this session owns, reusing a returned one when it is large enough. */
  #copy(bytes: Uint8Array): Uint8Array {
    const i = this.#spare.findIndex((b) => b.length >= bytes.length);
    const target =
      i < 0 ? new Uint8Array(bytes.length) : this.#spare.splice(i, 1)[0]!.subarray(0, bytes.length);
    target.set(bytes);
    return target;
  }

  #flush(): void {
    const queue = this.#queue;
    if (queue.length === 0) return;
    this.#queue = [];
    const transfer: ArrayBuffer[] = [];
    for (const q of queue) {
      transfer.push(q.c.buffer as ArrayBuffer);
      if (q.p.buffer !== q.c.buffer) transfer.push(q.p.buffer as ArrayBuffer);
    }
    const fail = (err: unknown): void => {
      const failure = err instanceof Error ? err : new Error(String(err));
      for (const q of queue) q.waiter.reject(failure);
    };
    try {
      const jobs = queue.map((q) => ({ c: q.c, p: q.p }));
      pool.call('chunks', { s: this.#id, jobs }, { transfer }).then((results: unknown) => {
        if (
          !Array.isArray(results) ||
          results.length !== queue.length ||
          !results.every(isChunkReply)
        ) {
          fail(malformed());
          return;
        }
        for (const [i, q] of queue.entries()) q.waiter.resolve(results[i]!);
      }, fail);
    } catch (err) {
      fail(err);
    }
  }

  async chunk(job: ChunkHashJob): Promise<ChunkHashResult> {
    if (!this.#open) throw new Error('attachment hash session is closed');
    // Transfer what we may detach; copy (once, into a reused buffer) what the
    // caller keeps or what shares its buffer with other data (fs streams hand
    // out pooled buffers).
    const lent = !(job.ciphertextOwned && ownsWholeBuffer(job.ciphertext));
    const c = lent ? this.#copy(job.ciphertext) : job.ciphertext;
    let p =
      job.plaintextOwned && job.plaintext.buffer instanceof ArrayBuffer
        ? job.plaintext
        : new Uint8Array(job.plaintext);
    if (p.buffer === c.buffer) p = new Uint8Array(p);
    const reply = await new Promise<ChunkReply>((resolve, reject) => {
      this.#queue.push({ c, p, waiter: { resolve, reject } });
      if (this.#queue.length >= BATCH) {
        this.#flush();
      } else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => {
          this.#flushScheduled = false;
          this.#flush();
        });
      }
    });
    if (!lent) return { digest: reply.d, ciphertext: reply.c, plaintext: reply.p };
    // The caller's own ciphertext was never touched; our copy is kept for the next chunk.
    if (this.#spare.length < MAX_SPARE_COPIES) this.#spare.push(new Uint8Array(reply.c.buffer));
    return { digest: reply.d, ciphertext: job.ciphertext, plaintext: reply.p };
  }

  async finish(): Promise<Uint8Array> {
    if (!this.#open) throw new Error('attachment hash session is closed');
    this.#flush();
    this.#open = false;
    this.#spare.length = 0;
    const digest = await pool.call('final', { s: this.#id });
    if (!(digest instanceof Uint8Array) || digest.length !== 32) throw malformed();
    return digest;
  }

  close(): void {
    this.#spare.length = 0;
    // Jobs never sent are abandoned: nothing waits for them in the worker.
    const queue = this.#queue;
    this.#queue = [];
    const closed = new Error('attachment hash session is closed');
    for (const q of queue) q.waiter.reject(closed);
    if (!this.#open) return;
    this.#open = false;
    // A session of a worker that has stopped went with it: no need to start one to close it.
    if (pool.running) pool.call('close', { s: this.#id }).catch(() => undefined);
  }
}

/**
 * Hashing on a worker thread with node:crypto SHA-256: the chunk ids and the
 * running plaintext hash are computed off the thread that encrypts, so on a
 * machine with two cores hashing costs (almost) no encryption throughput.
 * Buffers the engine owns are transferred to the worker and back, not copied.
 */
export const workerHashing: AttachmentHashing = {
  open: () => new WorkerHashSession(),
};

/** Stop the hashing worker, e.g. before a graceful exit in tests. It restarts on next use. */
export function terminateHashWorker(): Promise<void> {
  return pool.stop();
}
