import { assertChunkId, type ChunkBody, type PutChunkResult } from './chunks.js';
import { clientFail } from './errors.js';
import { abortedError } from './retry.js';
import { MAX_MISSING_BATCH } from '@rogatory/relay-api';

/**
 * One chunk to upload: its bytes, or its size and a `load` function called
 * only if the relay lacks the chunk (and again for every retry), so chunks
 * the relay already holds are never read.
 */
export type UploadChunk =
  | { readonly id: string; readonly bytes: Uint8Array }
  | {
      readonly id: string;
      readonly size: number;
      readonly load: () =>
        Uint8Array | AsyncIterable<Uint8Array> | Promise<Uint8Array | AsyncIterable<Uint8Array>>;
    };

/** Counts so far; totals are final once `sourceDone` is true. */
export interface UploadProgress {
  /** Distinct chunks read from the source so far. */
  readonly chunksTotal: number;
  readonly bytesTotal: number;
  /** Chunks this call uploaded. */
  readonly chunksUploaded: number;
  readonly bytesUploaded: number;
  /** Chunks skipped because the relay already held them (uploaded earlier, or by someone else). */
  readonly chunksSkipped: number;
  readonly bytesSkipped: number;
  /** bytesUploaded + bytesSkipped. */
  readonly bytesDone: number;
  /** The source is exhausted, so the totals are final. */
  readonly sourceDone: boolean;
}

export interface UploadOptions {
  /** Uploads in flight at once; default 4. */
  readonly concurrency?: number;
  /** Called after every uploaded chunk and after every batch of skipped ones. */
  readonly onProgress?: (progress: UploadProgress) => void;
  readonly signal?: AbortSignal;
  /**
   * Most bytes of `{ id, bytes }` chunks read ahead of their upload (one
   * `missing` query covers them); default 64 MiB. Chunks given with `load`
   * count by id only, up to 10,000 per query.
   */
  readonly windowBytes?: number;
}

/** What uploadChunks needs from a client: node sessions and relay-to-relay calls both provide it. */
export interface ChunkTransfer {
  missingChunks(ids: readonly string[], options?: { signal?: AbortSignal }): Promise<string[]>;
  putChunk(
    id: string,
    body: ChunkBody,
    size: number,
    options?: { signal?: AbortSignal },
  ): Promise<PutChunkResult>;
}

export const DEFAULT_UPLOAD_CONCURRENCY = 4;
export const DEFAULT_UPLOAD_WINDOW_BYTES = 64 * 1024 * 1024;

interface PreparedChunk {
  readonly id: string;
  readonly size: number;
  readonly body: ChunkBody;
  readonly eager: boolean;
}

function prepare(chunk: unknown): PreparedChunk {
  if (typeof chunk !== 'object' || chunk === null || !('id' in chunk))
    clientFail('MALFORMED', 'an upload chunk has no id');
  const { id } = chunk;
  assertChunkId(id);
  if ('bytes' in chunk && chunk.bytes instanceof Uint8Array)
    return { id, size: chunk.bytes.length, body: chunk.bytes, eager: true };
  if (
    'load' in chunk &&
    typeof chunk.load === 'function' &&
    'size' in chunk &&
    typeof chunk.size === 'number'
  ) {
    return { id, size: chunk.size, body: chunk.load as () => Uint8Array, eager: false };
  }
  return clientFail('MALFORMED', `chunk ${id}: give either bytes, or size and load`);
}

function iteratorOf<T>(source: AsyncIterable<T> | Iterable<T>): AsyncIterator<T> | Iterator<T> {
  return Symbol.asyncIterator in source
    ? source[Symbol.asyncIterator]()
    : source[Symbol.iterator]();
}

/**
 * Upload the chunks the relay lacks. The source is read in windows; for
 * each window the relay is asked which ids it is missing, and only those
 * are uploaded, `concurrency` at a time (each put retries transient
 * failures itself). This is how an interrupted upload resumes: call it
 * again with the same chunks. On the first permanent failure no further
 * uploads start, those in flight finish, and the failure is thrown.
 */
export async function uploadChunks(
  transfer: ChunkTransfer,
  chunks: AsyncIterable<UploadChunk> | Iterable<UploadChunk>,
  options: UploadOptions = {},
): Promise<UploadProgress> {
  const concurrency = options.concurrency ?? DEFAULT_UPLOAD_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new RangeError('concurrency must be 1..64');
  const windowBytes = options.windowBytes ?? DEFAULT_UPLOAD_WINDOW_BYTES;
  const { signal } = options;
  const calls = signal === undefined ? {} : { signal };
  const progress = {
    chunksTotal: 0,
    bytesTotal: 0,
    chunksUploaded: 0,
    bytesUploaded: 0,
    chunksSkipped: 0,
    bytesSkipped: 0,
    sourceDone: false,
  };
  const snapshot = (): UploadProgress => ({
    ...progress,
    bytesDone: progress.bytesUploaded + progress.bytesSkipped,
  });
  const report = (): void => options.onProgress?.(snapshot());

  const iterator = iteratorOf(chunks);
  const seen = new Set<string>();
  try {
    while (!progress.sourceDone) {
      const window: PreparedChunk[] = [];
      let buffered = 0;
      while (window.length < MAX_MISSING_BATCH && (buffered < windowBytes || window.length === 0)) {
        if (signal?.aborted === true) throw abortedError(signal.reason);
        const next = await iterator.next();
        if (next.done === true) {
          progress.sourceDone = true;
          break;
        }
        const chunk = prepare(next.value);
        // The same chunk twice in a source is uploaded once.
        if (seen.has(chunk.id)) continue;
        seen.add(chunk.id);
        progress.chunksTotal += 1;
        progress.bytesTotal += chunk.size;
        if (chunk.eager) buffered += chunk.size;
        window.push(chunk);
      }
      if (window.length === 0) break;

      const missing = new Set(
        await transfer.missingChunks(
          window.map((c) => c.id),
          calls,
        ),
      );
      const todo = window.filter((c) => missing.has(c.id));
      for (const c of window) {
        if (!missing.has(c.id)) {
          progress.chunksSkipped += 1;
          progress.bytesSkipped += c.size;
        }
      }
      report();
      await runPool(todo, concurrency, signal, async (c) => {
        await transfer.putChunk(c.id, c.body, c.size, calls);
        progress.chunksUploaded += 1;
        progress.bytesUploaded += c.size;
        report();
      });
    }
  } finally {
    if (!progress.sourceDone) await iterator.return?.();
  }
  return snapshot();
}

async function runPool<T>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal | undefined,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      if (signal?.aborted === true) {
        failure = { error: abortedError(signal.reason) };
        return;
      }
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}
