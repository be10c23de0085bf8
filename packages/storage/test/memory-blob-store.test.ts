import { describe, expect, it } from 'vitest';
import { blobIdOf, isStorageError, MemoryBlobStore } from '../src/index.js';
import { runBlobStoreConformance } from './conformance.js';

runBlobStoreConformance('memory', async () => {
  const store = new MemoryBlobStore();
  return Promise.resolve({ store, dispose: () => store.close() });
});

describe('MemoryBlobStore', () => {
  it('applies its own maxBlobSize even when a call allows more', async () => {
    const store = new MemoryBlobStore({ maxBlobSize: 10 });
    const bytes = new Uint8Array(11);
    await expect(store.put(blobIdOf(bytes), bytes, { maxSize: 1000 })).rejects.toSatisfy((err) =>
      isStorageError(err, 'BLOB_TOO_LARGE'),
    );
    await expect(store.put(blobIdOf(bytes), bytes)).rejects.toSatisfy((err) =>
      isStorageError(err, 'BLOB_TOO_LARGE'),
    );
    const ok = new Uint8Array(10);
    expect((await store.put(blobIdOf(ok), ok)).created).toBe(true);
  });

  it('rejects an invalid maxBlobSize', () => {
    expect(() => new MemoryBlobStore({ maxBlobSize: -1 })).toThrow(/OPTIONS_INVALID/);
  });
});
