import { createHash } from 'node:crypto';
import { ENVELOPE_LIMITS } from '@rogatory/protocol';
import { RelayClientError, clientFail } from './errors.js';
import type { HttpResponse, RequestBody } from './transport.js';
import {
  MAX_MISSING_BATCH,
  MissingResponseSchema,
  PutChunkResponseSchema,
} from '@rogatory/relay-api';
import { wireValidator } from './wire.js';

/** Chunk ids: lowercase hex SHA-256 of the ciphertext bytes. */
export const CHUNK_ID_PATTERN = /^[0-9a-f]{64}$/;

/** Lowercase hex SHA-256 of some bytes (also the id of a chunk holding them). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function assertChunkId(id: unknown): asserts id is string {
  // The message never repeats the rejected value: it is unvalidated input.
  if (typeof id !== 'string' || !CHUNK_ID_PATTERN.test(id))
    clientFail('CHUNK_ID_INVALID', 'a chunk id is not 64 lowercase hex characters');
}

/**
 * The bytes of a chunk to upload: the bytes themselves, a stream (sent
 * once, never retried: it cannot be replayed), or a function opening the
 * bytes or a stream anew for every attempt (retried like bytes).
 */
export type ChunkBody =
  | Uint8Array
  | AsyncIterable<Uint8Array>
  | (() =>
      Uint8Array | AsyncIterable<Uint8Array> | Promise<Uint8Array | AsyncIterable<Uint8Array>>);

export interface PutChunkResult {
  readonly id: string;
  readonly size: number;
  /** False when the relay already held the chunk (200 instead of 201). */
  readonly created: boolean;
}

function assertChunkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 1 || size > ENVELOPE_LIMITS.maxChunkBytes) {
    clientFail('LIMIT_EXCEEDED', `chunk size must be 1..${ENVELOPE_LIMITS.maxChunkBytes} bytes`);
  }
}

export function isReplayable(body: ChunkBody): boolean {
  return body instanceof Uint8Array || typeof body === 'function';
}

/**
 * Passes a source through while counting and hashing it, and fails the
 * stream (so the request is aborted and the relay stores nothing) as soon
 * as it yields more than `size` bytes, or, at its end, fewer bytes or bytes
 * that do not hash to `id`.
 */
export async function* checkedChunkSource(
  source: AsyncIterable<Uint8Array>,
  id: string,
  size: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  const hash = createHash('sha256');
  let length = 0;
  for await (const piece of source) {
    if (!(piece instanceof Uint8Array))
      clientFail('MALFORMED', `chunk ${id}: the source yielded something other than bytes`);
    length += piece.length;
    if (length > size)
      clientFail(
        'LIMIT_EXCEEDED',
        `chunk ${id}: the source yielded more than the announced ${size} bytes`,
      );
    hash.update(piece);
    yield piece;
  }
  if (length !== size || hash.digest('hex') !== id)
    clientFail('CHUNK_HASH_MISMATCH', `chunk ${id}: the source does not hash to the chunk id`);
}

/** The request body of one PUT attempt, checked against `id` and `size` on the way out. */
export async function chunkRequestBody(
  id: string,
  body: ChunkBody,
  size: number,
): Promise<RequestBody> {
  assertChunkSize(size);
  const opened = typeof body === 'function' ? await body() : body;
  if (opened instanceof Uint8Array) {
    if (opened.length !== size || sha256Hex(opened) !== id)
      clientFail('CHUNK_HASH_MISMATCH', `chunk ${id}: the bytes do not hash to the chunk id`);
    return { kind: 'bytes', bytes: opened, contentType: 'application/octet-stream' };
  }
  return {
    kind: 'stream',
    source: checkedChunkSource(opened, id, size),
    size,
    contentType: 'application/octet-stream',
  };
}

const putChunkShape = wireValidator(PutChunkResponseSchema);
const missingShape = wireValidator(MissingResponseSchema);

export async function readPutChunkResult(
  res: HttpResponse,
  id: string,
  size: number,
  route: string,
): Promise<PutChunkResult> {
  const answer = putChunkShape.parse(await res.json(), route, res.status);
  if (answer.id !== id || answer.size !== size) {
    throw new RelayClientError(
      'BAD_RESPONSE',
      `${route}: the relay confirmed another chunk or size`,
      { status: res.status },
    );
  }
  return { id, size, created: res.status === 201 };
}

/** Validated, de-duplicated ids split into request batches. */
export function missingBatches(ids: readonly string[]): string[][] {
  const unique: string[] = [];
  const seen = new Set<string>();
  for (const id of ids) {
    assertChunkId(id);
    if (!seen.has(id)) {
      seen.add(id);
      unique.push(id);
    }
  }
  const batches: string[][] = [];
  for (let i = 0; i < unique.length; i += MAX_MISSING_BATCH)
    batches.push(unique.slice(i, i + MAX_MISSING_BATCH));
  return batches;
}

/** The relay's answer for one batch, in request order; an id that was not asked for is a BAD_RESPONSE. */
export async function readMissing(
  res: HttpResponse,
  batch: readonly string[],
  route: string,
): Promise<string[]> {
  const answer = missingShape.parse(await res.json(), route, res.status);
  const asked = new Set(batch);
  const missing = new Set<string>();
  for (const id of answer.missing) {
    if (!asked.has(id) || missing.has(id)) {
      throw new RelayClientError(
        'BAD_RESPONSE',
        `${route}: the relay listed a chunk that was not asked about`,
        { status: res.status },
      );
    }
    missing.add(id);
  }
  return batch.filter((id) => missing.has(id));
}

/**
 * A downloaded chunk, passed through while checking it: never more than
 * the protocol's largest chunk, and at the end the bytes must hash to `id`
 * (CHUNK_HASH_MISMATCH otherwise). A consumer must treat what it received
 * as unverified until the iteration completes without error.
 */
export async function* verifiedChunk(
  res: HttpResponse,
  id: string,
  route: string,
): AsyncGenerator<Uint8Array, void, undefined> {
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (declared > ENVELOPE_LIMITS.maxChunkBytes) {
    await res.cancel();
    clientFail('BAD_RESPONSE', `${route}: chunk larger than the protocol allows`, {
      status: res.status,
    });
  }
  const hash = createHash('sha256');
  let length = 0;
  for await (const piece of res.body()) {
    length += piece.length;
    if (length > ENVELOPE_LIMITS.maxChunkBytes)
      clientFail('BAD_RESPONSE', `${route}: chunk larger than the protocol allows`, {
        status: res.status,
      });
    hash.update(piece);
    yield piece;
  }
  if (hash.digest('hex') !== id)
    clientFail(
      'CHUNK_HASH_MISMATCH',
      `${route}: the relay sent bytes that do not hash to chunk ${id}`,
      { status: res.status },
    );
}

export async function collectBytes(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let length = 0;
  for await (const part of source) {
    parts.push(part);
    length += part.length;
  }
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
