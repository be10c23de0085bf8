/**
 * The attachment hashing worker (started by hash-worker.ts through a
 * WorkerPool): SHA-256 with node:crypto, off the thread that encrypts.
 *
 * Operations (s: a session id chosen by the parent):
 * - open { s }: start a running plaintext hash;
 * - chunks { s, jobs: [{ c, p }] } -> [{ d, c, p }]: d is the SHA-256 of the
 *   ciphertext c (its chunk id); p is added to the session's running hash;
 * - final { s } -> d: the running hash's digest; the session ends;
 * - close { s }: the session ends.
 * A session this worker does not know (the parent's worker died and was
 * replaced after it was opened) fails: its state is gone.
 * Every buffer received is transferred back, so none becomes garbage here
 * and the parent can reuse its copies.
 */
import { createHash, type Hash } from 'node:crypto';
import { serveWorker, withTransfer } from '@rogatory/worker-pool/worker';

const sessions = new Map<number, Hash>();

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function sessionId(args: unknown): number {
  if (!isRecord(args) || typeof args['s'] !== 'number')
    throw new TypeError('a session id was expected');
  return args['s'];
}

function session(args: unknown): Hash {
  const hash = sessions.get(sessionId(args));
  if (hash === undefined) throw new Error('unknown hash session');
  return hash;
}

function digestOf(hash: Hash): Uint8Array<ArrayBuffer> {
  const d = new Uint8Array(32);
  d.set(hash.digest());
  return d;
}

interface Job {
  readonly c: Uint8Array;
  readonly p: Uint8Array;
}

function jobsOf(args: unknown): Job[] {
  const jobs = isRecord(args) ? args['jobs'] : undefined;
  if (!Array.isArray(jobs)) throw new TypeError('jobs were expected');
  return jobs.map((job: unknown) => {
    if (!isRecord(job) || !(job['c'] instanceof Uint8Array) || !(job['p'] instanceof Uint8Array)) {
      throw new TypeError('a job of two byte arrays was expected');
    }
    return { c: job['c'], p: job['p'] };
  });
}

serveWorker({
  open: (args) => {
    sessions.set(sessionId(args), createHash('sha256'));
    return null;
  },
  chunks: (args) => {
    const hash = session(args);
    const transfer: ArrayBuffer[] = [];
    const results = jobsOf(args).map(({ c, p }) => {
      const d = digestOf(createHash('sha256').update(c));
      hash.update(p);
      transfer.push(d.buffer, p.buffer as ArrayBuffer);
      if (c.buffer !== p.buffer) transfer.push(c.buffer as ArrayBuffer);
      return { d, c, p };
    });
    return withTransfer(results, transfer);
  },
  final: (args) => {
    const d = digestOf(session(args));
    sessions.delete(sessionId(args));
    return withTransfer(d, [d.buffer]);
  },
  close: (args) => {
    sessions.delete(sessionId(args));
    return null;
  },
});
