import { createHash } from 'node:crypto';
import type { BlobSource, PutOptions } from './blob-store.js';
import { storageFail } from './errors.js';

export interface IngestLimits {
  /** Largest accepted size: the lower of the store's limit and the call's. */
  readonly limit: number;
  readonly expectedSize: number | undefined;
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Validates a store's configured maximum blob size. */
export function assertMaxBlobSize(value: unknown, ceiling: number): asserts value is number {
  if (!isSize(value) || value > ceiling)
    storageFail(
      'OPTIONS_INVALID',
      'maxBlobSize must be a non-negative safe integer within the backend ceiling',
    );
}

/**
 * Validates per-call put options and combines them with the store's limit.
 * An announced size above the limit is rejected here, before the source is
 * touched.
 */
export function resolveLimits(
  storeMax: number,
  options: PutOptions | undefined,
  id: string,
): IngestLimits {
  let limit = storeMax;
  let expectedSize: number | undefined;
  if (options !== undefined) {
    if (typeof options !== 'object' || (options as unknown) === null)
      storageFail('OPTIONS_INVALID', 'put options must be an object');
    if (!isSize(options.maxSize))
      storageFail('OPTIONS_INVALID', 'maxSize must be a non-negative safe integer');
    limit = Math.min(limit, options.maxSize);
    if (options.expectedSize !== undefined) {
      if (!isSize(options.expectedSize))
        storageFail('OPTIONS_INVALID', 'expectedSize must be a non-negative safe integer');
      expectedSize = options.expectedSize;
    }
  }
  if (expectedSize !== undefined && expectedSize > limit) {
    storageFail('BLOB_TOO_LARGE', 'announced size exceeds the limit', { blobId: id });
  }
  return { limit, expectedSize };
}

/** A source being read: the chunks it yields, and a way to stop it early. */
export interface SourceReader {
  next(): Promise<IteratorResult<unknown>>;
  /** Stops the producer if it has not ended (destroys a Readable, runs a generator's finally). */
  close(): Promise<void>;
}

/**
 * Starts reading `source` at once. Call it before the first `await` of a
 * put: a Node Readable only gets an 'error' listener when its iterator is
 * first pulled, and a stream that fails while the store is still checking
 * something would otherwise crash the process with an unhandled 'error'.
 */
export function readSource(source: BlobSource): SourceReader {
  if (source instanceof Uint8Array) {
    let done = false;
    return {
      next: () => {
        const step: IteratorResult<unknown> = done
          ? { done: true, value: undefined }
          : { done: false, value: source };
        done = true;
        return Promise.resolve(step);
      },
      close: () => Promise.resolve(),
    };
  }
  if (
    typeof (source as Partial<AsyncIterable<unknown>> | null)?.[Symbol.asyncIterator] !== 'function'
  ) {
    storageFail('OPTIONS_INVALID', 'source must be a Uint8Array or an AsyncIterable of Uint8Array');
  }
  const iterator = source[Symbol.asyncIterator]();
  let primed: Promise<IteratorResult<unknown>> | undefined = iterator.next();
  primed.catch(() => undefined); // observed later, by the first next()
  let ended = false;
  return {
    next: async () => {
      const pending = primed ?? iterator.next();
      primed = undefined;
      try {
        const step = await pending;
        if (step.done === true) ended = true;
        return step;
      } catch (err) {
        ended = true; // a failed iterator is closed already
        throw err;
      }
    },
    close: async () => {
      if (ended) return;
      ended = true;
      await Promise.resolve(iterator.return?.()).catch(() => undefined);
    },
  };
}

/**
 * Reads `reader` to its end, hashing every byte, and hands each chunk to
 * `sink` (which may write it somewhere) before pulling the next one, so a
 * source that reuses its buffer is safe. Stops reading as soon as a limit is
 * exceeded, and closes the source whenever it stops early. Resolves to the
 * size only if the bytes hash to `id` and satisfy the limits; otherwise
 * throws, and the caller discards whatever the sink received.
 */
export async function ingest(
  id: string,
  reader: SourceReader,
  limits: IngestLimits,
  sink: (chunk: Uint8Array) => Promise<void> | void,
): Promise<number> {
  const { limit, expectedSize } = limits;
  const hash = createHash('sha256');
  let size = 0;
  try {
    for (;;) {
      let step: IteratorResult<unknown>;
      try {
        step = await reader.next();
      } catch (cause) {
        return storageFail('BLOB_SOURCE_FAILED', 'source failed before it ended', {
          cause,
          blobId: id,
        });
      }
      if (step.done === true) break;
      const chunk = step.value;
      if (!(chunk instanceof Uint8Array))
        storageFail('BLOB_SOURCE_FAILED', 'source yielded something other than bytes', {
          blobId: id,
        });
      size += chunk.length;
      if (expectedSize !== undefined && size > expectedSize) {
        storageFail('BLOB_SIZE_MISMATCH', 'source yielded more bytes than announced', {
          blobId: id,
        });
      }
      if (size > limit)
        storageFail('BLOB_TOO_LARGE', 'source exceeds the size limit', { blobId: id });
      hash.update(chunk);
      if (chunk.length > 0) await sink(chunk);
    }
  } finally {
    // A no-op when the source ended; its own failure to stop must not mask why we stopped.
    await reader.close();
  }
  if (expectedSize !== undefined && size !== expectedSize) {
    storageFail('BLOB_SIZE_MISMATCH', 'source yielded fewer bytes than announced', { blobId: id });
  }
  if (hash.digest('hex') !== id)
    storageFail('BLOB_HASH_MISMATCH', 'bytes do not hash to the blob id', { blobId: id });
  return size;
}

/** Splits `bytes` into views of at most `size` bytes, for streaming reads. */
export function* slices(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size) {
    yield bytes.subarray(offset, Math.min(offset + size, bytes.length));
  }
}

/** Plain Uint8Array view of a Buffer (or any Uint8Array subclass), without copying. */
export function asUint8Array(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Concatenates chunks into one plain Uint8Array. */
export function concatChunks(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
