import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  MessageChannel,
  receiveMessageOnPort,
  Worker,
  type MessagePort,
} from 'node:worker_threads';
import { WorkerPoolError } from './errors.js';
import { isWorkerReply, type PoolWorkerData, type WorkerReply } from './messages.js';

const bundles = new Map<string, string>();

/**
 * esbuild, loaded when a `.ts` worker first starts, and resolved from where
 * this code runs (it is in the workspace's node_modules): the benchmarks
 * bundle this module into child processes, and esbuild cannot be bundled.
 */
function esbuild(): typeof import('esbuild') {
  return createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
}

/**
 * A `.ts` worker module and what it imports, bundled once per process into
 * plain JavaScript that a worker evaluates: the workspace runs from
 * TypeScript source (tsx in the bins and scripts, vite in vitest), Node 20
 * loads no `.ts`, and a TypeScript loader inside each worker thread would
 * cost every start (a fresh thread per Argon2id call) time and memory.
 * Packages in `external` are left out and required at run time from the
 * module's own location.
 */
function bundled(entry: string, external: readonly string[]): string {
  const key = `${entry}\n${external.join('\n')}`;
  let source = bundles.get(key);
  if (source === undefined) {
    const result = esbuild().buildSync({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      write: false,
      logLevel: 'silent',
      external: [...external],
    });
    const code = result.outputFiles[0]!.text;
    source = `'use strict';\n(function (require) {\n${code}\n})(require('node:module').createRequire(${JSON.stringify(entry)}));\n`;
    bundles.set(key, source);
  }
  return source;
}

/**
 * `file` in the folder of the module that `specifier` (a package entry point)
 * resolves to from `from`: a worker module found through its package, so
 * that code a bundler moved elsewhere (the benchmarks' child processes) still
 * finds it. E.g. `besideEntry('@rogatory/storage', './fs-io-thread.ts', import.meta.url)`.
 */
export function besideEntry(specifier: string, file: string, from: string): URL {
  return new URL(file, pathToFileURL(createRequire(from).resolve(specifier)));
}

/** The parent's Node options, less the one that would make an evaluated worker source ESM. */
function workerExecArgv(): string[] {
  return process.execArgv.filter((arg) => !arg.startsWith('--input-type'));
}

/** Time a synchronous caller waits at most by default (Argon2id moderate takes about a second). */
const SYNC_TIMEOUT_MS = 300_000;

export interface WorkerPoolOptions {
  /**
   * The worker module, which calls `serveWorker` of `@rogatory/worker-pool/worker`.
   * A `.ts` module is bundled (once per process) and evaluated as plain
   * JavaScript; it must not use top-level await. A `.js` module is started as is.
   */
  readonly url: URL | (() => URL);
  /** Packages the worker requires from node_modules instead of having them bundled in (large ones). */
  readonly external?: readonly string[];
  /** Thread name, for diagnostics and error messages (not secret). */
  readonly name: string;
  /**
   * Stop the worker once it has had no outstanding call for this long; it
   * starts again on the next call. 0 stops it as soon as it is idle (a fresh
   * thread, and fresh memory, for every call that does not overlap another).
   * Default: kept until stop() or close().
   */
  readonly idleStopMs?: number;
}

export interface CallOptions {
  /** Buffers of the arguments to move to the worker (detached here) instead of copying. */
  readonly transfer?: readonly ArrayBuffer[];
}

export interface SyncCallOptions extends CallOptions {
  /** Longest wait for the reply (default 300 s); then the worker is stopped and WORKER_TIMEOUT thrown. */
  readonly timeoutMs?: number;
}

interface Pending {
  readonly op: string;
  resolve(value: unknown): void;
  reject(err: WorkerPoolError): void;
}

interface Live {
  readonly worker: Worker;
  readonly replies: MessagePort;
  readonly signal: Int32Array;
  readonly pending: Map<number, Pending>;
  idleTimer: NodeJS.Timeout | undefined;
}

/**
 * One worker thread behind the pool protocol (`{ id, op, args }` in,
 * `{ id, ok, result | error }` out), with one lifecycle:
 * - started lazily by the first call;
 * - unref'd while no call is outstanding, so it never keeps the process
 *   alive, and ref'd while one is, so awaiting a call does too;
 * - if it dies, its outstanding calls reject with WORKER_CRASHED and the
 *   next call starts a new worker (state kept in the old one is gone: the
 *   protocol of the operations must make that visible);
 * - optionally stopped when idle (`idleStopMs`);
 * - `stop()` ends it (the next call starts another), `close()` ends it for good.
 * Work that should run in parallel takes several pools (one a lane).
 */
export class WorkerPool {
  readonly #url: URL | (() => URL);
  readonly #name: string;
  readonly #idleStopMs: number | undefined;
  readonly #external: readonly string[];
  #live: Live | undefined;
  #nextId = 1;
  #closed = false;

  constructor(options: WorkerPoolOptions) {
    this.#url = options.url;
    this.#name = options.name;
    this.#idleStopMs = options.idleStopMs;
    this.#external = options.external ?? [];
  }

  /** Whether a worker thread is running now. */
  get running(): boolean {
    return this.#live !== undefined;
  }

  /** Run `op` in the worker; resolves with its result (unchecked: the caller checks its shape). */
  call(op: string, args: unknown, options: CallOptions = {}): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const live = this.#current();
      const id = this.#nextId++;
      this.#post(live, id, op, args, options.transfer, { op, resolve, reject });
    });
  }

  /**
   * Run `op` in the worker, blocking this thread until it answers (for
   * callers that must stay synchronous). Replies to other outstanding calls
   * that arrive meanwhile settle those calls as usual.
   */
  callSync(op: string, args: unknown, options: SyncCallOptions = {}): unknown {
    const live = this.#current();
    const id = this.#nextId++;
    let outcome: { value: unknown } | { error: WorkerPoolError } | undefined;
    this.#post(live, id, op, args, options.transfer, {
      op,
      resolve: (value) => (outcome = { value }),
      reject: (error) => (outcome = { error }),
    });
    const deadline = Date.now() + (options.timeoutMs ?? SYNC_TIMEOUT_MS);
    for (;;) {
      const seen = Atomics.load(live.signal, 0);
      for (
        let m = receiveMessageOnPort(live.replies);
        m !== undefined;
        m = receiveMessageOnPort(live.replies)
      ) {
        this.#receive(live, m.message);
      }
      if (outcome !== undefined) break;
      const left = deadline - Date.now();
      if (left <= 0 || this.#live !== live) {
        // A worker that never answers may be stuck (or dead: its exit cannot be observed while this thread waits).
        live.pending.delete(id);
        void this.#end(live, 'WORKER_STOPPED', 'stopped after a synchronous call timed out');
        throw new WorkerPoolError(
          'WORKER_TIMEOUT',
          `${op} got no reply from the ${this.#name} worker in time`,
        );
      }
      Atomics.wait(live.signal, 0, seen, left);
    }
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  }

  /** Stop the worker; outstanding calls reject with WORKER_STOPPED. The next call starts a new one. */
  async stop(): Promise<void> {
    const live = this.#live;
    if (live === undefined) return;
    await this.#end(live, 'WORKER_STOPPED', 'stopped');
  }

  /** Stop the worker and refuse every later call with WORKER_POOL_CLOSED. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.stop();
  }

  #current(): Live {
    if (this.#closed)
      throw new WorkerPoolError('WORKER_POOL_CLOSED', `the ${this.#name} pool is closed`);
    if (this.#live !== undefined) return this.#live;
    const { port1: replies, port2 } = new MessageChannel();
    const signal = new Int32Array(new SharedArrayBuffer(4));
    const data: PoolWorkerData = { replies: port2, signal };
    const url = typeof this.#url === 'function' ? this.#url() : this.#url;
    const worker = url.pathname.endsWith('.ts')
      ? new Worker(bundled(fileURLToPath(url), this.#external), {
          eval: true,
          execArgv: workerExecArgv(),
          name: this.#name,
          workerData: data,
          transferList: [port2],
        })
      : new Worker(url, { name: this.#name, workerData: data, transferList: [port2] });
    const live: Live = { worker, replies, signal, pending: new Map(), idleTimer: undefined };
    worker.unref();
    replies.unref();
    replies.on('message', (message: unknown) => {
      this.#receive(live, message);
    });
    worker.on('error', (err) => {
      void this.#end(live, 'WORKER_CRASHED', 'failed', err);
    });
    worker.on('exit', (code) => {
      void this.#end(live, 'WORKER_CRASHED', `exited (code ${code})`);
    });
    // A request the worker cannot deserialise would leave its call waiting forever.
    worker.on('messageerror', (err) => {
      void this.#end(live, 'WORKER_CRASHED', 'could not read a message', err);
    });
    this.#live = live;
    return live;
  }

  #post(
    live: Live,
    id: number,
    op: string,
    args: unknown,
    transfer: readonly ArrayBuffer[] | undefined,
    pending: Pending,
  ): void {
    clearTimeout(live.idleTimer);
    live.idleTimer = undefined;
    live.pending.set(id, pending);
    try {
      live.worker.postMessage({ id, op, args }, transfer);
    } catch (err) {
      live.pending.delete(id);
      this.#idle(live);
      throw err;
    }
    if (live.pending.size === 1) {
      live.worker.ref();
      live.replies.ref();
    }
  }

  #receive(live: Live, message: unknown): void {
    if (!isWorkerReply(message)) {
      // Not the protocol: the worker is not what this pool expects; fail what waits on it.
      void this.#end(live, 'WORKER_REPLY_INVALID', 'answered with a malformed reply');
      return;
    }
    const pending = live.pending.get(message.id);
    if (pending === undefined) return;
    live.pending.delete(message.id);
    this.#settle(pending, message);
    if (live.pending.size === 0) this.#idle(live);
  }

  #settle(pending: Pending, reply: WorkerReply): void {
    if (reply.ok) {
      pending.resolve(reply.result);
      return;
    }
    const cause = Object.assign(new Error(reply.error.message), { name: reply.error.name });
    pending.reject(
      new WorkerPoolError('WORKER_OP_FAILED', `${pending.op} failed in the ${this.#name} worker`, {
        cause,
        ...(reply.error.code === undefined ? {} : { remoteCode: reply.error.code }),
      }),
    );
  }

  #idle(live: Live): void {
    if (this.#live !== live) return;
    live.worker.unref();
    live.replies.unref();
    if (this.#idleStopMs === undefined) return;
    if (this.#idleStopMs === 0) {
      void this.#end(live, 'WORKER_STOPPED', 'stopped when idle');
      return;
    }
    clearTimeout(live.idleTimer);
    live.idleTimer = setTimeout(() => {
      if (live.pending.size === 0) void this.#end(live, 'WORKER_STOPPED', 'stopped when idle');
    }, this.#idleStopMs);
    live.idleTimer.unref();
  }

  /** Retire `live`: outstanding calls reject with `code`, and the thread is terminated. */
  async #end(
    live: Live,
    code: 'WORKER_CRASHED' | 'WORKER_STOPPED' | 'WORKER_REPLY_INVALID',
    what: string,
    cause?: unknown,
  ): Promise<void> {
    if (this.#live === live) this.#live = undefined;
    clearTimeout(live.idleTimer);
    live.idleTimer = undefined;
    const pending = [...live.pending.values()];
    live.pending.clear();
    for (const p of pending) {
      p.reject(
        new WorkerPoolError(
          code,
          `the ${this.#name} worker ${what} during ${p.op}`,
          cause === undefined ? {} : { cause },
        ),
      );
    }
    live.replies.close();
    await live.worker.terminate();
  }
}
