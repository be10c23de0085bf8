import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  durablePut,
  fsIoWorkersRunning,
  readWhole,
  terminateFsIoWorkers,
  WORKER_IO_MAX_BYTES,
} from '../src/fs-io-worker.js';
import { blobIdOf, FsBlobStore, isStorageError } from '../src/index.js';

function blobPath(dir: string, id: string): string {
  return join(dir, id.slice(0, 2), id.slice(2, 4), id);
}

async function tempFilesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const folder of await readdir(join(dir, '.tmp')))
    out.push(...(await readdir(join(dir, '.tmp', folder))));
  return out;
}

describe('FsBlobStore small-blob I/O on worker threads', () => {
  let dir: string;
  let store: FsBlobStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rogatory-fs-io-'));
    store = await FsBlobStore.open({ dir, workerIo: true });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes many concurrent puts (batched into few messages) each under its own id, leaving no temp file', async () => {
    const blobs = Array.from({ length: 150 }, (_, i) => randomBytes(100 + i));
    const results = await Promise.all(blobs.map((b) => store.put(blobIdOf(b), b)));
    expect(results.every((r) => r.created)).toBe(true);
    for (const b of blobs)
      expect(new Uint8Array(await readFile(blobPath(dir, blobIdOf(b))))).toEqual(new Uint8Array(b));
    const listed = new Set<string>();
    for await (const id of store.list()) listed.add(id);
    expect(listed.size).toBe(blobs.length);
    expect(await tempFilesUnder(dir)).toEqual([]);
  });

  it('answers created: false for a blob already stored, and does not rewrite it', async () => {
    const bytes = randomBytes(300);
    const id = blobIdOf(bytes);
    const [a, b] = await Promise.all([store.put(id, bytes), store.put(id, bytes)]);
    // Two puts of one id in one batch: one writes, the other finds it written.
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect((await store.put(id, bytes)).created).toBe(false);
    expect(new Uint8Array(await store.getBytes(id))).toEqual(new Uint8Array(bytes));
  });

  it('stores a view into a larger buffer as its own bytes, and leaves the caller its buffer', async () => {
    const big = new Uint8Array(randomBytes(1024 * 1024));
    const view = big.subarray(1000, 3000);
    const id = blobIdOf(view);
    expect((await store.put(id, view)).created).toBe(true);
    // Not transferred away (a transferred buffer is detached: byteLength 0).
    expect(big.byteLength).toBe(1024 * 1024);
    expect(view.length).toBe(2000);
    expect(new Uint8Array(await store.getBytes(id))).toEqual(new Uint8Array(view));
    expect(await store.size(id)).toBe(2000);
  });

  it('refuses bytes that do not hash to the id before anything reaches the worker', async () => {
    const bytes = randomBytes(64);
    const wrong = blobIdOf(randomBytes(64));
    await expect(store.put(wrong, bytes)).rejects.toMatchObject({ code: 'BLOB_HASH_MISMATCH' });
    expect(await store.has(wrong)).toBe(false);
    expect(await tempFilesUnder(dir)).toEqual([]);
  });

  it('maps a failed write to STORAGE_UNAVAILABLE without a path in the message, and keeps serving', async () => {
    const bytes = randomBytes(200);
    const id = blobIdOf(bytes);
    // The temp folder gone: open(tmp) fails with ENOENT in the worker.
    const tmpFolders = await readdir(join(dir, '.tmp'));
    await rm(join(dir, '.tmp', tmpFolders[0]!), { recursive: true });
    const err: unknown = await store.put(id, bytes).catch((e: unknown) => e);
    expect(isStorageError(err, 'STORAGE_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).not.toContain(dir);
    expect((err as Error & { cause: { code: string } }).cause.code).toBe('ENOENT');
    expect(await store.has(id)).toBe(false);

    // Another store in the same process keeps working through the same worker.
    const other = await FsBlobStore.open({ dir: join(dir, 'other'), workerIo: true });
    try {
      expect((await other.put(id, bytes)).created).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('fails a put whose directory cannot be written, and leaves the other puts of its batch stored', async () => {
    // Not permission bits (root, as CI runs, ignores them): a file where the shard directory belongs.
    const good = randomBytes(120);
    let bad = randomBytes(121);
    while (blobIdOf(bad).slice(0, 2) === blobIdOf(good).slice(0, 2)) bad = randomBytes(121);
    const badId = blobIdOf(bad);
    // A regular file where the blob's first-level shard directory should be: mkdir and rename fail (ENOTDIR/EEXIST).
    await writeFile(join(dir, badId.slice(0, 2)), 'in the way');
    const [okResult, badResult] = await Promise.allSettled([
      store.put(blobIdOf(good), good),
      store.put(badId, bad),
    ]);
    expect(okResult.status).toBe('fulfilled');
    expect(badResult.status).toBe('rejected');
    expect(isStorageError((badResult as PromiseRejectedResult).reason, 'STORAGE_UNAVAILABLE')).toBe(
      true,
    );
    expect(await store.has(blobIdOf(good))).toBe(true);
    expect(await tempFilesUnder(dir)).toEqual([]);
  });

  it('reads through the worker: whole blobs, small and large, and BLOB_NOT_FOUND for an absent one', async () => {
    const small = randomBytes(10);
    const large = randomBytes(200_000);
    await store.put(blobIdOf(small), small);
    await store.put(blobIdOf(large), large);
    const [s, l] = await Promise.all([
      store.getBytes(blobIdOf(small)),
      store.getBytes(blobIdOf(large)),
    ]);
    expect(s).toBeInstanceOf(Uint8Array);
    expect(new Uint8Array(s)).toEqual(new Uint8Array(small));
    expect(new Uint8Array(l)).toEqual(new Uint8Array(large));
    // A fresh buffer of its own each time: the caller may keep or transfer it.
    expect(s.byteOffset).toBe(0);
    expect(s.buffer.byteLength).toBe(s.length);
    await expect(store.getBytes(blobIdOf(randomBytes(8)))).rejects.toMatchObject({
      code: 'BLOB_NOT_FOUND',
    });
  });

  it('writes sources above the worker limit by streaming, as before', async () => {
    const big = randomBytes(WORKER_IO_MAX_BYTES + 1);
    const id = blobIdOf(big);
    expect((await store.put(id, big)).created).toBe(true);
    expect(await store.size(id)).toBe(big.length);
    expect(await store.verify(id)).toBe(true);
  });

  it('fails the puts in flight when the worker stops, and starts a new worker for the next ones', async () => {
    // A live worker first, so that the batch below goes to it and is cut off midway.
    const warm = randomBytes(10);
    await store.put(blobIdOf(warm), warm);
    expect(fsIoWorkersRunning().puts).toBe(true);
    const inFlight = Array.from({ length: 200 }, () => randomBytes(5000));
    const outcomes = Promise.allSettled(inFlight.map((b) => store.put(blobIdOf(b), b)));
    // Two turns of the event loop: the puts are hashed and the lane has posted its batches.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    await terminateFsIoWorkers();
    const settled = await outcomes;
    // 200 fsynced puts take far longer than stopping a thread: most are cut off.
    expect(settled.filter((s) => s.status === 'rejected').length).toBeGreaterThan(0);
    for (const [i, s] of settled.entries()) {
      if (s.status === 'rejected')
        expect(isStorageError(s.reason, 'STORAGE_UNAVAILABLE')).toBe(true);
      // Whatever was answered stored is stored.
      else expect(await store.verify(blobIdOf(inFlight[i]!))).toBe(true);
    }
    // Every blob can be put again (a cut-off put may have left its file in place, never a partial one).
    await Promise.all(inFlight.map((b) => store.put(blobIdOf(b), b)));
    for (const b of inFlight) expect(await store.verify(blobIdOf(b))).toBe(true);
  });
});

describe('durablePut and readWhole', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rogatory-fs-io-raw-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('makes missing shard directories, and reports errno codes without paths', async () => {
    const dest = join(dir, 'aa', 'bb', 'blob');
    expect(
      await durablePut({ tmp: join(dir, 't1'), dest, root: dir, bytes: new Uint8Array([1, 2, 3]) }),
    ).toBe(true);
    expect(await readWhole(dest)).toEqual(new Uint8Array([1, 2, 3]));
    expect(
      await durablePut({ tmp: join(dir, 't2'), dest, root: dir, bytes: new Uint8Array([1, 2, 3]) }),
    ).toBe(false);
    const err: unknown = await readWhole(join(dir, 'absent')).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'FsIoError', code: 'ENOENT' });
    expect((err as Error).message).not.toContain(dir);
  });

  it('takes over the bytes it writes (transferred), and refuses a view into a larger buffer', async () => {
    const bytes = new Uint8Array([7, 8, 9]);
    expect(
      await durablePut({ tmp: join(dir, 't1'), dest: join(dir, 'x', 'y', 'b'), root: dir, bytes }),
    ).toBe(true);
    expect(bytes.byteLength).toBe(0); // detached: the worker has it
    const view = new Uint8Array(16).subarray(2, 5);
    await expect(
      durablePut({ tmp: join(dir, 't2'), dest: join(dir, 'x', 'y', 'c'), root: dir, bytes: view }),
    ).rejects.toThrow(TypeError);
    const shared = new Uint8Array(new SharedArrayBuffer(3));
    await expect(
      durablePut({
        tmp: join(dir, 't3'),
        dest: join(dir, 'x', 'y', 'd'),
        root: dir,
        bytes: shared,
      }),
    ).rejects.toThrow(TypeError);
  });

  it('leaves files larger than the worker takes to the caller', async () => {
    const path = join(dir, 'large');
    await writeFile(path, new Uint8Array(WORKER_IO_MAX_BYTES + 1));
    expect(await readWhole(path)).toBeUndefined();
    await writeFile(path, new Uint8Array(WORKER_IO_MAX_BYTES));
    expect((await readWhole(path))?.length).toBe(WORKER_IO_MAX_BYTES);
  });

  it('writes two puts of one batch into a shard the first of them makes', async () => {
    // The second renames into the shard without ENOENT; its answer waits for the fsyncs of the shard's
    // parent and of the root all the same (not observable without a crash; the path is exercised here).
    const a = join(dir, 'ab', 'cd', 'blob-a');
    const b = join(dir, 'ab', 'cd', 'blob-b');
    const [ra, rb] = await Promise.all([
      durablePut({ tmp: join(dir, 'ta'), dest: a, root: dir, bytes: new Uint8Array([1]) }),
      durablePut({ tmp: join(dir, 'tb'), dest: b, root: dir, bytes: new Uint8Array([2]) }),
    ]);
    expect([ra, rb]).toEqual([true, true]);
    expect(await readWhole(a)).toEqual(new Uint8Array([1]));
    expect(await readWhole(b)).toEqual(new Uint8Array([2]));
  });
});

describe('worker lifetime', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is not used by a store opened without workerIo', async () => {
    await terminateFsIoWorkers();
    const dir = await mkdtemp(join(tmpdir(), 'rogatory-fs-io-off-'));
    const store = await FsBlobStore.open({ dir });
    try {
      const bytes = randomBytes(500);
      expect((await store.put(blobIdOf(bytes), bytes)).created).toBe(true);
      expect(new Uint8Array(await store.getBytes(blobIdOf(bytes)))).toEqual(new Uint8Array(bytes));
      expect(fsIoWorkersRunning()).toEqual({ puts: false, reads: false });
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stops a worker after 10 s without work, and starts it again for the next put', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rogatory-fs-io-idle-'));
    const store = await FsBlobStore.open({ dir, workerIo: true });
    try {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const first = randomBytes(50);
      await store.put(blobIdOf(first), first);
      expect(fsIoWorkersRunning().puts).toBe(true);
      await vi.advanceTimersByTimeAsync(9_000);
      expect(fsIoWorkersRunning().puts).toBe(true);
      await vi.advanceTimersByTimeAsync(1_500);
      expect(fsIoWorkersRunning().puts).toBe(false);
      const second = randomBytes(50);
      expect((await store.put(blobIdOf(second), second)).created).toBe(true);
      expect(fsIoWorkersRunning().puts).toBe(true);
      expect(await store.verify(blobIdOf(first))).toBe(true);
    } finally {
      vi.useRealTimers();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
