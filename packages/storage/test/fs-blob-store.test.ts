import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blobIdOf, FsBlobStore, isStorageError } from '../src/index.js';
import { runBlobStoreConformance } from './conformance.js';

function blobPath(dir: string, id: string): string {
  return join(dir, id.slice(0, 2), id.slice(2, 4), id);
}

for (const workerIo of [false, true]) {
  runBlobStoreConformance(workerIo ? 'fs (workerIo)' : 'fs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rogatory-fs-blobs-'));
    const store = await FsBlobStore.open({ dir, workerIo });
    return {
      store,
      corrupt: (id) => writeFile(blobPath(dir, id), 'not the original bytes'),
      dispose: async () => {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });
}

/** Every file under `dir`, relative, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
    .sort();
}

/** A pid that is certainly not running: a child that has already exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], {
    encoding: 'utf8',
  });
  return Number(child.stdout.trim());
}

describe('FsBlobStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rogatory-fs-blobs-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lays blobs out as ab/cd/<id> and keeps temp files out of sight', async () => {
    const store = await FsBlobStore.open({ dir });
    const bytes = new TextEncoder().encode('sharded');
    const id = blobIdOf(bytes);
    await store.put(id, bytes);
    expect(await filesUnder(dir)).toEqual([join(id.slice(0, 2), id.slice(2, 4), id)]);
    await store.close();
  });

  it('leaves no temp file behind after failed puts', async () => {
    const store = await FsBlobStore.open({ dir });
    const bytes = new Uint8Array(100_000).fill(7);
    const id = blobIdOf(bytes);
    async function* aborted(): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, 50_000);
      await new Promise((resolve) => setImmediate(resolve));
      throw new Error('aborted');
    }
    await expect(store.put(id, aborted(), { maxSize: 1 << 20 })).rejects.toSatisfy((err) =>
      isStorageError(err, 'BLOB_SOURCE_FAILED'),
    );
    await expect(store.put(id, new Uint8Array(100_000))).rejects.toSatisfy((err) =>
      isStorageError(err, 'BLOB_HASH_MISMATCH'),
    );
    await expect(store.put(id, bytes, { maxSize: 10 })).rejects.toSatisfy((err) =>
      isStorageError(err, 'BLOB_TOO_LARGE'),
    );
    expect(await filesUnder(dir)).toEqual([]);
    await store.close();
  });

  it('does not rewrite an existing blob', async () => {
    const store = await FsBlobStore.open({ dir });
    const bytes = new Uint8Array(1000).fill(3);
    const id = blobIdOf(bytes);
    await store.put(id, bytes);
    const before = await stat(blobPath(dir, id));
    expect((await store.put(id, bytes)).created).toBe(false);
    const after = await stat(blobPath(dir, id));
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    await store.close();
  });

  it('removes temp folders of dead processes at open, and spares live stores', async () => {
    const stale = join(dir, '.tmp', `${deadPid()}-0123456789abcdef`);
    await mkdir(stale, { recursive: true });
    await writeFile(join(stale, 'half-written'), 'partial');
    const first = await FsBlobStore.open({ dir });
    await expect(stat(stale)).rejects.toThrow();

    // A second store on the same directory must not delete the first one's temp folder.
    const second = await FsBlobStore.open({ dir });
    const bytes = new Uint8Array(10).fill(1);
    expect((await first.put(blobIdOf(bytes), bytes)).created).toBe(true);
    expect(await second.has(blobIdOf(bytes))).toBe(true);
    await first.close();
    await second.close();
    expect(await readdir(join(dir, '.tmp'))).toEqual([]);
  });

  it('removes an unclaimed temp folder carrying its own pid (a restarted container is pid 1 again)', async () => {
    const leftover = join(dir, '.tmp', `${process.pid}-fedcba9876543210`);
    await mkdir(leftover, { recursive: true });
    const store = await FsBlobStore.open({ dir });
    await expect(stat(leftover)).rejects.toThrow();
    await store.close();
  });

  it('ignores foreign files when listing', async () => {
    const store = await FsBlobStore.open({ dir });
    const bytes = new Uint8Array(5).fill(9);
    const id = blobIdOf(bytes);
    await store.put(id, bytes);
    const other = blobIdOf(new Uint8Array(1));
    await writeFile(join(dir, 'README'), 'x');
    await writeFile(join(dir, id.slice(0, 2), id.slice(2, 4), 'notes.txt'), 'x');
    // A well-formed id in the wrong shard is not a blob of this store.
    await writeFile(join(dir, id.slice(0, 2), id.slice(2, 4), other), 'x');
    const listed: string[] = [];
    for await (const listedId of store.list()) listed.push(listedId);
    expect(listed).toEqual([id]);
    await store.close();
  });

  it('reports a directory it cannot use as STORAGE_UNAVAILABLE', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    await expect(FsBlobStore.open({ dir: join(file, 'blobs') })).rejects.toSatisfy((err) =>
      isStorageError(err, 'STORAGE_UNAVAILABLE'),
    );
    await expect(FsBlobStore.open({ dir: '' })).rejects.toSatisfy((err) =>
      isStorageError(err, 'OPTIONS_INVALID'),
    );
  });

  it('refuses puts after close', async () => {
    const store = await FsBlobStore.open({ dir });
    await store.close();
    const bytes = new Uint8Array(1);
    await expect(store.put(blobIdOf(bytes), bytes)).rejects.toSatisfy((err) =>
      isStorageError(err, 'STORAGE_UNAVAILABLE'),
    );
  });
});
