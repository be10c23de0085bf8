import { Worker } from 'node:worker_threads';

/**
 * Small-blob file I/O of FsBlobStore on worker threads, with synchronous
 * system calls.
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
 *
 * The worker's source is plain JavaScript (node:fs, node:path and
 * node:worker_threads only), evaluated with `eval: true`, so it runs the same
 * under node, tsx and vitest without a build step.
 *
 * Messages in: { op: 'put', jobs: [{ j, tmp, dest, root, bytes }] } | { op: 'read', jobs: [{ j, path }] }.
 * Messages out: { results: [{ j, created } | { j, bytes } | { j, code, syscall }] }.
 * Errors carry the errno code and the system call, never a path or a message
 * (they name files), so nothing about the store's layout reaches a log.
 */
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
function failure(j, err) {
  return { j, code: err && typeof err.code === 'string' ? err.code : 'EIO', syscall: err && typeof err.syscall === 'string' ? err.syscall : undefined };
}
function isFile(p) {
  try { return fs.statSync(p).isFile(); } catch (err) { if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return false; throw err; }
}
function syncDir(dir) {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } catch (err) { if (err.code !== 'EINVAL') throw err; } finally { fs.closeSync(fd); }
}
function writeTemp(job) {
  const fd = fs.openSync(job.tmp, 'wx', 0o600);
  try {
    let offset = 0;
    while (offset < job.bytes.length) offset += fs.writeSync(fd, job.bytes, offset, job.bytes.length - offset);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
function put(jobs) {
  const results = new Map();
  const written = [];
  const firsts = new Map();
  // Directories to fsync, each with the jobs whose durability depends on it.
  const dirs = new Map();
  const need = (dir, job) => { let list = dirs.get(dir); if (!list) { list = []; dirs.set(dir, list); } list.push(job.j); };
  // 1. Every new blob into its own temp file, fsynced. A second put of one id in the batch waits for the
  //    first once the first's temp file is written.
  for (const job of jobs) {
    if (firsts.has(job.dest)) continue;
    try {
      if (isFile(job.dest)) {
        // Already there, perhaps renamed by another process that has not fsynced its directory yet:
        // its directory is fsynced before this put answers.
        need(path.dirname(job.dest), job);
        results.set(job.j, { j: job.j, created: false });
        continue;
      }
      writeTemp(job);
      firsts.set(job.dest, job.j);
      written.push(job);
    } catch (err) {
      try { fs.rmSync(job.tmp, { force: true }); } catch {}
      results.set(job.j, failure(job.j, err));
    }
  }
  // 2. Renamed into place. A missing shard directory is made; whoever made it (this batch, or another
  //    process at the same moment), its entry in its parent and the parent's in the root are fsynced for
  //    every put into it.
  const fresh = new Set();
  const renamed = [];
  for (const job of written) {
    const shard = path.dirname(job.dest);
    try {
      try {
        fs.renameSync(job.tmp, job.dest);
      } catch (err) {
        if (err.code !== 'ENOENT') throw err;
        fs.mkdirSync(shard, { recursive: true });
        fresh.add(shard);
        fs.renameSync(job.tmp, job.dest);
      }
      renamed.push(job);
      results.set(job.j, { j: job.j, created: true });
    } catch (err) {
      try { fs.rmSync(job.tmp, { force: true }); } catch {}
      results.set(job.j, failure(job.j, err));
    }
  }
  for (const job of renamed) {
    const shard = path.dirname(job.dest);
    need(shard, job);
    if (fresh.has(shard)) { need(path.dirname(shard), job); need(job.root, job); }
  }
  // 3. Each directory once, after all the renames into it: they are durable together.
  for (const [dir, js] of dirs) {
    try {
      syncDir(dir);
    } catch (err) {
      for (const j of js) results.set(j, failure(j, err));
    }
  }
  return jobs.map((job) => {
    const result = results.get(job.j);
    if (result !== undefined) return result;
    // A later put of an id this batch wrote: stored by the first (or failed with it).
    const first = results.get(firsts.get(job.dest));
    return first.created === true ? { j: job.j, created: false } : { ...first, j: job.j };
  });
}
function read(jobs) {
  const out = [];
  const transfer = [];
  for (const job of jobs) {
    let fd;
    try {
      fd = fs.openSync(job.path, 'r');
      const size = fs.fstatSync(fd).size;
      // A large blob is read by the caller's thread instead: one read would hold this worker, and the batch its bytes.
      if (size > job.max) { out.push({ j: job.j, large: true }); continue; }
      const bytes = new Uint8Array(size);
      let offset = 0;
      while (offset < size) {
        const n = fs.readSync(fd, bytes, offset, size - offset, offset);
        if (n === 0) break;
        offset += n;
      }
      const whole = offset === size ? bytes : bytes.slice(0, offset);
      out.push({ j: job.j, bytes: whole });
      transfer.push(whole.buffer);
    } catch (err) {
      out.push(failure(job.j, err));
    } finally {
      if (fd !== undefined) try { fs.closeSync(fd); } catch {}
    }
  }
  return { out, transfer };
}
parentPort.on('message', (m) => {
  if (m.op === 'put') {
    parentPort.postMessage({ results: put(m.jobs) });
  } else if (m.op === 'read') {
    const { out, transfer } = read(m.jobs);
    parentPort.postMessage({ results: out }, transfer);
  }
});
`;

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

interface ReadJob {
  readonly path: string;
  readonly max: number;
}

interface Result {
  readonly j: number;
  readonly created?: boolean;
  readonly bytes?: Uint8Array;
  /** A read refused as larger than the worker takes. */
  readonly large?: boolean;
  readonly code?: string;
  readonly syscall?: string;
}

interface Pending {
  readonly job: Record<string, unknown>;
  /** A buffer of the job's that the worker may take (transferred, not copied). */
  readonly transfer: ArrayBuffer | undefined;
  readonly resolve: (result: Result) => void;
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

/**
 * One lazily started worker for one kind of operation. Unref'd while idle,
 * so it never keeps the process alive; ref'd while a job is outstanding. If
 * it dies, outstanding jobs fail and the next job starts a new worker.
 */
class Lane {
  #worker: Worker | undefined;
  readonly #waiting = new Map<number, Pending>();
  #queue: (Pending & { j: number })[] = [];
  #scheduled = false;
  #next = 1;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly op: 'put' | 'read',
    private readonly name: string,
  ) {}

  run(job: Record<string, unknown>, transfer?: ArrayBuffer): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
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

  #current(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, name: this.name });
    worker.unref();
    worker.on('message', (message: { results: Result[] }) => {
      for (const result of message.results) {
        const pending = this.#waiting.get(result.j);
        if (pending === undefined) continue;
        this.#waiting.delete(result.j);
        pending.resolve(result);
      }
      if (this.#waiting.size === 0) {
        worker.unref();
        this.#stopWhenIdle(worker);
      }
    });
    const dead = (err: Error): void => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      const waiting = [...this.#waiting.values()];
      this.#waiting.clear();
      for (const pending of waiting) pending.reject(err);
    };
    worker.on('error', (err) => {
      dead(new Error(`the ${this.name} worker failed`, { cause: err }));
    });
    worker.on('exit', (code) => {
      dead(new Error(`the ${this.name} worker exited (code ${code})`));
    });
    // A reply that cannot be deserialised would leave its jobs waiting forever: stop the worker, failing them.
    worker.on('messageerror', () => {
      void worker.terminate();
    });
    this.#worker = worker;
    return worker;
  }

  #stopWhenIdle(worker: Worker): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#worker !== worker || this.#waiting.size > 0 || this.#queue.length > 0) return;
      this.#worker = undefined;
      void worker.terminate();
    }, IDLE_STOP_MS);
    this.#idleTimer.unref();
  }

  /** Whether a worker is running (tests). */
  get running(): boolean {
    return this.#worker !== undefined;
  }

  #flush(): void {
    const queue = this.#queue;
    if (queue.length === 0) return;
    this.#queue = [];
    clearTimeout(this.#idleTimer);
    try {
      const worker = this.#current();
      const wasIdle = this.#waiting.size === 0;
      for (const pending of queue) this.#waiting.set(pending.j, pending);
      const transfer = queue.flatMap((p) => (p.transfer === undefined ? [] : [p.transfer]));
      worker.postMessage({ op: this.op, jobs: queue.map((p) => ({ ...p.job, j: p.j })) }, transfer);
      if (wasIdle) worker.ref();
    } catch (err) {
      for (const pending of queue) {
        this.#waiting.delete(pending.j);
        pending.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  async terminate(): Promise<void> {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    const worker = this.#worker;
    if (worker !== undefined) await worker.terminate();
  }
}

const puts = new Lane('put', 'rogatory-blob-writes');
const reads = new Lane('read', 'rogatory-blob-reads');

function settle(result: Result): Result {
  if (result.code !== undefined) throw new FsIoError(result.code, result.syscall);
  return result;
}

/**
 * Writes `bytes` durably at `dest` through `tmp` (on the same filesystem):
 * resolves true once it is fsynced, renamed into place and its directory
 * fsynced; false, writing nothing, if a file is already at `dest`. Rejects
 * with an FsIoError (errno code) or, if the worker died, an Error.
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
  return result.created === true;
}

/**
 * The whole file at `path` if it is at most WORKER_IO_MAX_BYTES, read by
 * the worker; undefined for a larger one (the caller reads it itself).
 * ENOENT as an FsIoError when there is none.
 */
export async function readWhole(path: string): Promise<Uint8Array | undefined> {
  const result = settle(await reads.run({ path, max: WORKER_IO_MAX_BYTES } satisfies ReadJob));
  if (result.large === true) return undefined;
  if (result.bytes === undefined) throw new Error('malformed reply from the blob read worker');
  return result.bytes;
}

/** Which workers are running (tests). */
export function fsIoWorkersRunning(): { puts: boolean; reads: boolean } {
  return { puts: puts.running, reads: reads.running };
}

/** Stops both workers (tests); they start again on next use. */
export async function terminateFsIoWorkers(): Promise<void> {
  await Promise.all([puts.terminate(), reads.terminate()]);
}
