import { assertBlobId, blobIdOf } from './blob-id.js';
import {
  DEFAULT_MAX_BLOB_SIZE,
  type BlobSource,
  type BlobStore,
  type PutOptions,
  type PutResult,
} from './blob-store.js';
import { storageFail } from './errors.js';
import {
  assertMaxBlobSize,
  concatChunks,
  ingest,
  readSource,
  resolveLimits,
  slices,
} from './ingest.js';

export interface MemoryBlobStoreOptions {
  /** Largest blob accepted; defaults to {@link DEFAULT_MAX_BLOB_SIZE}. */
  readonly maxBlobSize?: number;
}

const READ_SLICE = 64 * 1024;

/**
 * A BlobStore in process memory, for unit tests of consumers. It keeps its
 * own copies, so callers may reuse the arrays they pass or receive.
 */
export class MemoryBlobStore implements BlobStore {
  readonly #blobs = new Map<string, Uint8Array>();
  readonly #maxBlobSize: number;

  constructor(options: MemoryBlobStoreOptions = {}) {
    const max = options.maxBlobSize ?? DEFAULT_MAX_BLOB_SIZE;
    assertMaxBlobSize(max, Number.MAX_SAFE_INTEGER);
    this.#maxBlobSize = max;
  }

  async put(id: string, source: BlobSource, options?: PutOptions): Promise<PutResult> {
    assertBlobId(id);
    const limits = resolveLimits(this.#maxBlobSize, options, id);
    const chunks: Uint8Array[] = [];
    const size = await ingest(id, readSource(source), limits, (chunk) => {
      chunks.push(chunk.slice());
    });
    if (this.#blobs.has(id)) return { id, size, created: false };
    this.#blobs.set(id, concatChunks(chunks, size));
    return { id, size, created: true };
  }

  async *get(id: string): AsyncIterable<Uint8Array> {
    const blob = await this.#require(id);
    for (const slice of slices(blob, READ_SLICE)) yield slice.slice();
  }

  async getBytes(id: string): Promise<Uint8Array> {
    return (await this.#require(id)).slice();
  }

  async has(id: string): Promise<boolean> {
    assertBlobId(id);
    return Promise.resolve(this.#blobs.has(id));
  }

  async missing(ids: readonly string[]): Promise<string[]> {
    for (const id of ids) assertBlobId(id);
    return Promise.resolve([...new Set(ids)].filter((id) => !this.#blobs.has(id)));
  }

  async size(id: string): Promise<number> {
    return (await this.#require(id)).length;
  }

  async delete(id: string): Promise<void> {
    assertBlobId(id);
    this.#blobs.delete(id);
    return Promise.resolve();
  }

  async *list(): AsyncIterable<string> {
    // A snapshot, so deleting while listing (what GC does) is safe.
    const ids = [...this.#blobs.keys()];
    await Promise.resolve();
    yield* ids;
  }

  async verify(id: string): Promise<boolean> {
    return blobIdOf(await this.#require(id)) === id;
  }

  async close(): Promise<void> {
    return Promise.resolve();
  }

  async #require(id: string): Promise<Uint8Array> {
    assertBlobId(id);
    const blob = this.#blobs.get(id);
    if (blob === undefined) storageFail('BLOB_NOT_FOUND', 'no blob under this id', { blobId: id });
    return Promise.resolve(blob);
  }
}
