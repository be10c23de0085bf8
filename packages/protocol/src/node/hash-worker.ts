import { Worker } from 'node:worker_threads';
import type { AttachmentHashSession, AttachmentHashing, ChunkHashJob, ChunkHashResult } from '../attachment.js';

/**
 * The worker's source: plain JavaScript using only node:crypto and
 * node:worker_threads, evaluated with `eval: true`, so it runs the same under
 * node, tsx and vitest without a build step or a .ts loader in the worker.
 *
 * Messages in: { op: 'chunks', s, jobs: [{ j, c, p }] } | { op: 'final', s, j } | { op: 'close', s }
 * (s: session id, j: job id, c: ciphertext, p: plaintext).
 * Messages out, one per job: { j, d, c, p } | { j, d } | { j, e } (d: digest, e: error message).
 * Every buffer received is transferred back, so none becomes garbage in the
 * worker and the main thread can reuse its copies.
 */
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const sessions = new Map();
function session(id) {
  let h = sessions.get(id);
  if (h === undefined) { h = createHash('sha256'); sessions.set(id, h); }
  return h;
}
function digestOf(hash) {
  const b = hash.digest();
  const d = new Uint8Array(32);
  d.set(b);
  return d;
}
function fail(j, err) {
  parentPort.postMessage({ j, e: String(err && err.message) });
}
parentPort.on('message', (m) => {
  if (m.op === 'chunks') {
    for (const job of m.jobs) {
      try {
        const d = digestOf(createHash('sha256').update(job.c));
        session(m.s).update(job.p);
        const transfer = [d.buffer, job.p.buffer];
        if (job.c.buffer !== job.p.buffer) transfer.push(job.c.buffer);
        parentPort.postMessage({ j: job.j, d, c: job.c, p: job.p }, transfer);
      } catch (err) {
        fail(job.j, err);
      }
    }
  } else if (m.op === 'final') {
    try {
      const d = digestOf(session(m.s));
      sessions.delete(m.s);
      parentPort.postMessage({ j: m.j, d }, [d.buffer]);
    } catch (err) {
      fail(m.j, err);
    }
  } else if (m.op === 'close') {
    sessions.delete(m.s);
  }
});
`;

interface Reply {
  readonly j: number;
  readonly d?: Uint8Array;
  readonly c?: Uint8Array;
  readonly p?: Uint8Array;
  readonly e?: string;
}

interface Waiter {
  resolve(reply: Reply): void;
  reject(err: Error): void;
}

/** True when `bytes` is the whole of an ArrayBuffer (not a SharedArrayBuffer): transferring it detaches nothing else. */
function ownsWholeBuffer(bytes: Uint8Array): boolean {
  return bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
}

/**
 * One lazily started worker thread shared by every attachment of the
 * process. It is unref'd while idle, so it never keeps the process alive,
 * and ref'd while a job is outstanding, so that awaiting a hash does not let
 * the process exit underneath. If the worker dies, outstanding jobs and its
 * sessions fail, and the next session starts a new worker.
 */
class HashWorker {
  #worker: Worker | undefined;
  #waiters = new Map<number, Waiter>();
  #nextJob = 1;
  #nextSession = 1;

  /** The live worker, started if needed. */
  current(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, name: 'rogatory-attachment-hashing' });
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiter = this.#waiters.get(reply.j);
      if (waiter === undefined) return;
      this.#waiters.delete(reply.j);
      if (this.#waiters.size === 0) worker.unref();
      if (reply.e !== undefined) waiter.reject(new Error(`attachment hashing failed in the worker: ${reply.e}`));
      else waiter.resolve(reply);
    });
    const dead = (err: Error): void => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      const waiters = [...this.#waiters.values()];
      this.#waiters.clear();
      for (const w of waiters) w.reject(err);
    };
    worker.on('error', (err) => {
      dead(new Error('the attachment hashing worker failed', { cause: err }));
    });
    worker.on('exit', (code) => {
      dead(new Error(`the attachment hashing worker exited (code ${code})`));
    });
    this.#worker = worker;
    return worker;
  }

  newSessionId(): number {
    return this.#nextSession++;
  }

  nextJobId(): number {
    return this.#nextJob++;
  }

  /**
   * Post a message to `worker` only (a session's state lives in one worker),
   * registering the waiters of the jobs it carries. Throws if that worker
   * has stopped or the message cannot be posted; then no waiter is registered.
   */
  send(worker: Worker, message: Record<string, unknown>, transfer: ArrayBuffer[], waiters: readonly (readonly [number, Waiter])[]): void {
    if (this.#worker !== worker) throw new Error('the attachment hashing worker has stopped');
    const wasIdle = this.#waiters.size === 0;
    for (const [j, w] of waiters) this.#waiters.set(j, w);
    try {
      worker.postMessage(message, transfer);
    } catch (err) {
      for (const [j] of waiters) this.#waiters.delete(j);
      throw err;
    }
    if (wasIdle && this.#waiters.size > 0) worker.ref();
  }

  post(worker: Worker, message: Record<string, unknown>): void {
    if (this.#worker === worker) worker.postMessage(message);
  }

  /** Stop the worker (tests, orderly shutdown). Outstanding jobs fail. */
  async terminate(): Promise<void> {
    const worker = this.#worker;
    if (worker === undefined) return;
    await worker.terminate();
  }
}

const shared = new HashWorker();

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
  readonly #worker: Worker;
  readonly #id: number;
  readonly #spare: Uint8Array[] = [];
  #queue: QueuedJob[] = [];
  #flushScheduled = false;
  #open = true;

  constructor() {
    this.#worker = shared.current();
    this.#id = shared.newSessionId();
  }

  /** A copy of `bytes` in a buffer this session owns, reusing a returned one when it is large enough. */
  #copy(bytes: Uint8Array): Uint8Array {
    const i = this.#spare.findIndex((b) => b.length >= bytes.length);
    const target = i < 0 ? new Uint8Array(bytes.length) : this.#spare.splice(i, 1)[0]!.subarray(0, bytes.length);
    target.set(bytes);
    return target;
  }

  #flush(): void {
    const queue = this.#queue;
    if (queue.length === 0) return;
    this.#queue = [];
    const transfer: ArrayBuffer[] = [];
    const jobs: { j: number; c: Uint8Array; p: Uint8Array }[] = [];
    const waiters: (readonly [number, Waiter])[] = [];
    for (const q of queue) {
      const j = shared.nextJobId();
      jobs.push({ j, c: q.c, p: q.p });
      waiters.push([j, q.waiter]);
      transfer.push(q.c.buffer as ArrayBuffer);
      if (q.p.buffer !== q.c.buffer) transfer.push(q.p.buffer as ArrayBuffer);
    }
    try {
      shared.send(this.#worker, { op: 'chunks', s: this.#id, jobs }, transfer, waiters);
    } catch (err) {
      const failure = err instanceof Error ? err : new Error(String(err));
      for (const q of queue) q.waiter.reject(failure);
    }
  }

  async chunk(job: ChunkHashJob): Promise<ChunkHashResult> {
    if (!this.#open) throw new Error('attachment hash session is closed');
    // Transfer what we may detach; copy (once, into a reused buffer) what the
    // caller keeps or what shares its buffer with other data (fs streams hand
    // out pooled buffers).
    const lent = !(job.ciphertextOwned && ownsWholeBuffer(job.ciphertext));
    const c = lent ? this.#copy(job.ciphertext) : job.ciphertext;
    let p = job.plaintextOwned && job.plaintext.buffer instanceof ArrayBuffer ? job.plaintext : new Uint8Array(job.plaintext);
    if (p.buffer === c.buffer) p = new Uint8Array(p);
    const reply = await new Promise<Reply>((resolve, reject) => {
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
    if (reply.d === undefined || reply.p === undefined || reply.c === undefined) {
      throw new Error('malformed reply from the attachment hashing worker');
    }
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
    const reply = await new Promise<Reply>((resolve, reject) => {
      const j = shared.nextJobId();
      try {
        shared.send(this.#worker, { op: 'final', s: this.#id, j }, [], [[j, { resolve, reject }]]);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    if (reply.d === undefined) throw new Error('malformed reply from the attachment hashing worker');
    return reply.d;
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
    shared.post(this.#worker, { op: 'close', s: this.#id });
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
  return shared.terminate();
}
