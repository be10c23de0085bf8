import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  isWorkerPoolError,
  WORKER_POOL_ERROR_CODES,
  WorkerPool,
  WorkerPoolError,
  type WorkerPoolErrorCode,
} from '../src/index.js';

const fixture = new URL('./fixtures/test-worker.ts', import.meta.url);
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const pools: WorkerPool[] = [];

function pool(idleStopMs?: number): WorkerPool {
  const p = new WorkerPool({
    url: fixture,
    name: 'pool-test',
    ...(idleStopMs === undefined ? {} : { idleStopMs }),
  });
  pools.push(p);
  return p;
}

async function failure(promise: Promise<unknown>): Promise<WorkerPoolError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkerPoolError);
  return err as WorkerPoolError;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

describe('error catalogue', () => {
  it('describes every code, and the README documents every code', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const codes = Object.keys(WORKER_POOL_ERROR_CODES) as WorkerPoolErrorCode[];
    expect(codes.length).toBeGreaterThanOrEqual(6);
    for (const code of codes) {
      expect(WORKER_POOL_ERROR_CODES[code].length).toBeGreaterThan(10);
      expect(readme).toContain(`\`${code}\``);
    }
  });
});

describe('WorkerPool', () => {
  it('starts its worker lazily, from a .ts module, and answers calls', async () => {
    const p = pool();
    expect(p.running).toBe(false);
    expect(await p.call('echo', { a: [1, 'two'] })).toEqual({ a: [1, 'two'] });
    expect(p.running).toBe(true);
  });

  it('answers many concurrent calls, each with its own result, from one worker', async () => {
    const p = pool();
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        p.call(i % 2 === 0 ? 'echo' : 'sleep', i % 2 === 0 ? i : 1),
      ),
    );
    expect(results).toEqual(Array.from({ length: 500 }, (_, i) => (i % 2 === 0 ? i : 1)));
    const threads = new Set(
      await Promise.all(Array.from({ length: 20 }, () => p.call('thread', null))),
    );
    expect(threads.size).toBe(1);
    expect(await p.call('count', null)).toBe(1);
  });

  it('rejects an operation that throws with WORKER_OP_FAILED, the worker’s error as cause, and keeps serving', async () => {
    const p = pool();
    const err = await failure(p.call('fail', null));
    expect(err.code).toBe('WORKER_OP_FAILED');
    expect(err.remoteCode).toBe('EFIXTURE');
    expect(err.message).not.toContain('refused on purpose');
    expect((err.cause as Error).message).toBe('refused on purpose');
    expect(JSON.stringify(err)).not.toContain('on purpose');
    expect((await failure(p.call('rejectLater', null))).code).toBe('WORKER_OP_FAILED');
    expect((await failure(p.call('no-such-op', null))).code).toBe('WORKER_OP_FAILED');
    expect((await failure(p.call('unclonable', null))).code).toBe('WORKER_OP_FAILED');
    expect(await p.call('echo', 'still here')).toBe('still here');
    expect(await p.call('count', null)).toBe(1);
  });

  it('rejects every outstanding call with WORKER_CRASHED when the worker exits, and replaces it', async () => {
    const p = pool();
    const first = await p.call('thread', null);
    const calls = [p.call('sleep', 2000), p.call('sleep', 2000), p.call('exit', null)].map(failure);
    for (const call of calls) expect((await call).code).toBe('WORKER_CRASHED');
    expect(p.running).toBe(false);
    const second = await p.call('thread', null);
    expect(second).not.toBe(first);
    // A new worker: state of the old one is gone.
    expect(await p.call('count', null)).toBe(1);
  });

  it('treats an uncaught error in the worker as a crash', async () => {
    const p = pool();
    expect(await p.call('throwUncaught', null)).toBe('scheduled');
    const slow = p.call('sleep', 5000);
    const err = await failure(slow);
    expect(err.code).toBe('WORKER_CRASHED');
    expect(err.message).not.toContain('uncaught on purpose');
    expect(await p.call('echo', 1)).toBe(1);
  });

  it('stop() fails outstanding calls with WORKER_STOPPED and restarts on the next call; close() refuses later calls', async () => {
    const p = pool();
    const slow = failure(p.call('sleep', 5000));
    await p.stop();
    expect((await slow).code).toBe('WORKER_STOPPED');
    expect(p.running).toBe(false);
    expect(await p.call('echo', 2)).toBe(2);
    const again = failure(p.call('sleep', 5000));
    await p.close();
    expect((await again).code).toBe('WORKER_STOPPED');
    expect(p.running).toBe(false);
    expect((await failure(p.call('echo', 3))).code).toBe('WORKER_POOL_CLOSED');
    expect(() => p.callSync('echo', 3)).toThrow(WorkerPoolError);
  });

  it('callSync blocks until the worker answers, also for a worker it has to start', () => {
    const p = pool();
    expect(p.callSync('echo', 'first')).toBe('first');
    expect(p.callSync('sleep', 20)).toBe(20);
    const err: unknown = (() => {
      try {
        p.callSync('fail', null);
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    expect(isWorkerPoolError(err, 'WORKER_OP_FAILED')).toBe(true);
  });

  it('callSync settles other outstanding calls whose replies arrive while it waits', async () => {
    const p = pool();
    const early = p.call('echo', 'early');
    expect(p.callSync('sleep', 10)).toBe(10);
    expect(await early).toBe('early');
  });

  it('callSync gives up after its time limit with WORKER_TIMEOUT, stopping the worker', async () => {
    const p = pool();
    await p.call('echo', 0);
    const other = failure(p.call('sleep', 5000));
    expect(() => p.callSync('sleep', 5000, { timeoutMs: 50 })).toThrow(/WORKER_TIMEOUT/);
    expect((await other).code).toBe('WORKER_STOPPED');
    expect(p.running).toBe(false);
    expect(p.callSync('echo', 'next')).toBe('next');
  });

  it('moves transferred buffers both ways instead of copying them', async () => {
    const p = pool();
    const bytes = new Uint8Array([0, 1, 254]);
    const result = await p.call('invert', bytes, { transfer: [bytes.buffer] });
    expect(bytes.byteLength).toBe(0);
    expect(result).toEqual(new Uint8Array([255, 254, 1]));
  });

  it('with idleStopMs 0, runs each call that overlaps no other on a fresh worker', async () => {
    const p = pool(0);
    const a = await p.call('thread', null);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(p.running).toBe(false);
    const b = await p.call('thread', null);
    expect(b).not.toBe(a);
    // Overlapping calls share the worker.
    const [c, d] = await Promise.all([p.call('count', null), p.call('count', null)]);
    expect([c, d]).toEqual([1, 2]);
    expect(p.callSync('count', null)).toBe(1);
  });

  it('never keeps a process alive when idle, and keeps it alive while a call is outstanding', () => {
    const entry = new URL('../src/index.ts', import.meta.url).href;
    const script = `
import { WorkerPool } from ${JSON.stringify(entry)};
const pool = new WorkerPool({ url: new URL(${JSON.stringify(fixture.href)}), name: 'exit-check' });
console.log(await pool.call('sleep', 300));
`;
    // Top-level await: were the worker unref'd while the call is outstanding, the process would exit 13
    // before printing; were it ref'd when idle, it would never exit (and the timeout kills it).
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(child.stdout.trim()).toBe('300');
  });
});
