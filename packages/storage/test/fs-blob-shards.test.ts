import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blobIdOf, FsBlobStore } from '../src/index.js';

interface Blob {
  readonly id: string;
  readonly bytes: Uint8Array;
}

function blobOf(text: string): Blob {
  const bytes = new TextEncoder().encode(text);
  return { id: blobIdOf(bytes), bytes };
}

/**
 * Two different blobs whose ids share their first 4 hex digits (so the same
 * `ab/cd` shard directory). There are 65,536 such prefixes: among 65,537
 * distinct ids two must share one, so the loop always ends; in practice a few
 * hundred tries suffice. Fixed inputs keep the test deterministic.
 */
function twoBlobsInOneShard(): [Blob, Blob] {
  const byPrefix = new Map<string, Blob>();
  for (let i = 0; i <= 65_536; i++) {
    const blob = blobOf(`shard-mate ${i}`);
    const prefix = blob.id.slice(0, 4);
    const other = byPrefix.get(prefix);
    if (other !== undefined) return [other, blob];
    byPrefix.set(prefix, blob);
  }
  throw new Error('unreachable: 65,537 distinct ids share no 4-hex-digit prefix');
}

function shardDir(dir: string, id: string): string {
  return join(dir, id.slice(0, 2), id.slice(2, 4));
}

describe('FsBlobStore shard directories', () => {
  let dir: string;
  let store: FsBlobStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rogatory-fs-shards-'));
    store = await FsBlobStore.open({ dir });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores a blob in a shard that was removed behind its back after an earlier put', async () => {
    const [first, second] = twoBlobsInOneShard();
    expect(first.id).not.toBe(second.id);
    expect(shardDir(dir, second.id)).toBe(shardDir(dir, first.id));

    expect(await store.put(first.id, first.bytes)).toEqual({
      id: first.id,
      size: first.bytes.length,
      created: true,
    });
    await rm(shardDir(dir, first.id), { recursive: true });
    expect(await store.has(first.id)).toBe(false);

    expect(await store.put(second.id, second.bytes)).toEqual({
      id: second.id,
      size: second.bytes.length,
      created: true,
    });
    expect((await stat(join(shardDir(dir, second.id), second.id))).isFile()).toBe(true);
    expect(await store.getBytes(second.id)).toEqual(second.bytes);
    expect(await store.has(second.id)).toBe(true);
    expect(await store.missing([first.id, second.id])).toEqual([first.id]);
    expect(await store.verify(second.id)).toBe(true);

    // The shard is known again: the first blob can go back in beside the second.
    expect((await store.put(first.id, first.bytes)).created).toBe(true);
    expect(await store.missing([first.id, second.id])).toEqual([]);
    expect(await store.getBytes(first.id)).toEqual(first.bytes);
  });

  it('stores a blob after its whole top-level shard directory was removed', async () => {
    const [first, second] = twoBlobsInOneShard();
    await store.put(first.id, first.bytes);
    await rm(join(dir, first.id.slice(0, 2)), { recursive: true });

    expect((await store.put(second.id, second.bytes)).created).toBe(true);
    expect(await store.getBytes(second.id)).toEqual(second.bytes);
    expect(await store.missing([second.id])).toEqual([]);
  });

  it('reports created false when the same blob is put twice, and keeps its bytes', async () => {
    const blob = blobOf('put twice');
    expect(await store.put(blob.id, blob.bytes)).toEqual({
      id: blob.id,
      size: blob.bytes.length,
      created: true,
    });
    expect(await store.put(blob.id, blob.bytes)).toEqual({
      id: blob.id,
      size: blob.bytes.length,
      created: false,
    });
    expect(await store.getBytes(blob.id)).toEqual(blob.bytes);
    const listed: string[] = [];
    for await (const id of store.list()) listed.push(id);
    expect(listed).toEqual([blob.id]);
  });

  it('reports created false for a blob already in a shard it has not written to yet', async () => {
    const blob = blobOf('written by another store');
    const other = await FsBlobStore.open({ dir });
    try {
      expect((await other.put(blob.id, blob.bytes)).created).toBe(true);
    } finally {
      await other.close();
    }
    expect((await store.put(blob.id, blob.bytes)).created).toBe(false);
    expect(await store.getBytes(blob.id)).toEqual(blob.bytes);
  });
});
