/**
 * The small-blob file I/O worker of FsBlobStore (started by fs-io-worker.ts
 * through WorkerPools): synchronous system calls in a row, one reply for a
 * batch of jobs.
 *
 * Operations:
 * - put { jobs: [{ j, tmp, dest, root, bytes }] } -> [{ j, created } | { j, code, syscall }]
 * - read { jobs: [{ j, path, max }] } -> [{ j, bytes } | { j, large: true } | { j, code, syscall }]
 * Errors carry the errno code and the system call, never a path or a message
 * (they name files), so nothing about the store's layout reaches a log.
 *
 * Durability: a new blob is written to its temp file and fsynced, renamed
 * into place, and every directory a rename went into is fsynced (with the
 * parent and the root when the shard directory was made) before the put is
 * answered. Puts of one batch share those directory fsyncs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { serveWorker, withTransfer } from '@rogatory/worker-pool/worker';

export interface PutJob {
  readonly j: number;
  readonly tmp: string;
  readonly dest: string;
  /** The store's root directory (fsynced when a shard directory is made). */
  readonly root: string;
  readonly bytes: Uint8Array;
}

export interface ReadJob {
  readonly j: number;
  readonly path: string;
  /** Larger files are left to the caller (`large: true`). */
  readonly max: number;
}

export type IoResult =
  | { readonly j: number; readonly created: boolean }
  | { readonly j: number; readonly bytes: Uint8Array }
  | { readonly j: number; readonly large: true }
  | { readonly j: number; readonly code: string; readonly syscall: string | undefined };

type Failure = Extract<IoResult, { code: string }>;

function errnoField(err: unknown, name: 'code' | 'syscall'): string | undefined {
  if (typeof err !== 'object' || err === null || !(name in err)) return undefined;
  const value = (err as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

function failure(j: number, err: unknown): Failure {
  return { j, code: errnoField(err, 'code') ?? 'EIO', syscall: errnoField(err, 'syscall') };
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch (err) {
    const code = errnoField(err, 'code');
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw err;
  }
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    // Some filesystems cannot fsync a directory; their renames are as durable as they get.
    if (errnoField(err, 'code') !== 'EINVAL') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

function writeTemp(job: PutJob): void {
  const fd = fs.openSync(job.tmp, 'wx', 0o600);
  try {
    let offset = 0;
    while (offset < job.bytes.length)
      offset += fs.writeSync(fd, job.bytes, offset, job.bytes.length - offset);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function removeTemp(tmp: string): void {
  try {
    fs.rmSync(tmp, { force: true });
  } catch {
    // Left for the store's temp sweep.
  }
}

function put(jobs: readonly PutJob[]): IoResult[] {
  const results = new Map<number, IoResult>();
  const written: PutJob[] = [];
  const firsts = new Map<string, number>();
  // Directories to fsync, each with the jobs whose durability depends on it.
  const dirs = new Map<string, number[]>();
  const need = (dir: string, job: PutJob): void => {
    let list = dirs.get(dir);
    if (list === undefined) {
      list = [];
      dirs.set(dir, list);
    }
    list.push(job.j);
  };
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
      removeTemp(job.tmp);
      results.set(job.j, failure(job.j, err));
    }
  }
  // 2. Renamed into place. A missing shard directory is made; whoever made it (this batch, or another
  //    process at the same moment), its entry in its parent and the parent's in the root are fsynced for
  //    every put into it.
  const fresh = new Set<string>();
  const renamed: PutJob[] = [];
  for (const job of written) {
    const shard = path.dirname(job.dest);
    try {
      try {
        fs.renameSync(job.tmp, job.dest);
      } catch (err) {
        if (errnoField(err, 'code') !== 'ENOENT') throw err;
        fs.mkdirSync(shard, { recursive: true });
        fresh.add(shard);
        fs.renameSync(job.tmp, job.dest);
      }
      renamed.push(job);
      results.set(job.j, { j: job.j, created: true });
    } catch (err) {
      removeTemp(job.tmp);
      results.set(job.j, failure(job.j, err));
    }
  }
  for (const job of renamed) {
    const shard = path.dirname(job.dest);
    need(shard, job);
    if (fresh.has(shard)) {
      need(path.dirname(shard), job);
      need(job.root, job);
    }
  }
  // 3. Each directory once, after all the renames into it: they are durable together.
  for (const [dir, js] of dirs) {
    try {
      syncDir(dir);
    } catch (err) {
      for (const j of js) results.set(j, failure(j, err));
    }
  }
  return jobs.map((job): IoResult => {
    const result = results.get(job.j);
    if (result !== undefined) return result;
    // A later put of an id this batch wrote: stored by the first (or failed with it).
    const first = results.get(firsts.get(job.dest)!)!;
    if ('created' in first) return { j: job.j, created: false };
    return { ...first, j: job.j };
  });
}

function read(jobs: readonly ReadJob[]): { results: IoResult[]; transfer: ArrayBuffer[] } {
  const results: IoResult[] = [];
  const transfer: ArrayBuffer[] = [];
  for (const job of jobs) {
    let fd: number | undefined;
    try {
      fd = fs.openSync(job.path, 'r');
      const size = fs.fstatSync(fd).size;
      // A large blob is read by the caller's thread instead: one read would hold this worker, and the batch its bytes.
      if (size > job.max) {
        results.push({ j: job.j, large: true });
        continue;
      }
      const bytes = new Uint8Array(size);
      let offset = 0;
      while (offset < size) {
        const n = fs.readSync(fd, bytes, offset, size - offset, offset);
        if (n === 0) break;
        offset += n;
      }
      const whole = offset === size ? bytes : bytes.slice(0, offset);
      results.push({ j: job.j, bytes: whole });
      transfer.push(whole.buffer);
    } catch (err) {
      results.push(failure(job.j, err));
    } finally {
      if (fd !== undefined) {
        try {
          fs.closeSync(fd);
        } catch {
          // The bytes are read; a failed close of a read-only descriptor loses nothing.
        }
      }
    }
  }
  return { results, transfer };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function jobsOf(args: unknown): unknown[] {
  const jobs = isRecord(args) ? args['jobs'] : undefined;
  if (!Array.isArray(jobs)) throw new TypeError('jobs were expected');
  return jobs;
}

function isPutJob(job: unknown): job is PutJob {
  return (
    isRecord(job) &&
    typeof job['j'] === 'number' &&
    typeof job['tmp'] === 'string' &&
    typeof job['dest'] === 'string' &&
    typeof job['root'] === 'string' &&
    job['bytes'] instanceof Uint8Array
  );
}

function isReadJob(job: unknown): job is ReadJob {
  return (
    isRecord(job) &&
    typeof job['j'] === 'number' &&
    typeof job['path'] === 'string' &&
    typeof job['max'] === 'number'
  );
}

serveWorker({
  put: (args) => {
    const jobs = jobsOf(args);
    if (!jobs.every(isPutJob)) throw new TypeError('malformed put job');
    return put(jobs);
  },
  read: (args) => {
    const jobs = jobsOf(args);
    if (!jobs.every(isReadJob)) throw new TypeError('malformed read job');
    const { results, transfer } = read(jobs);
    return withTransfer(results, transfer);
  },
});
