import { createHash } from 'node:crypto';
import { storageFail } from './errors.js';

/**
 * A blob id: the lowercase hex SHA-256 of the blob's bytes. `$` without the
 * `m` flag matches only at the very end, so a trailing newline is rejected.
 */
export const BLOB_ID_PATTERN = /^[0-9a-f]{64}$/;

/** True if `id` is a well-formed blob id. */
export function isBlobId(id: unknown): id is string {
  return typeof id === 'string' && BLOB_ID_PATTERN.test(id);
}

/**
 * Throws BLOB_ID_INVALID unless `id` is a well-formed blob id. Every store
 * method calls this before the id reaches a path or an object key.
 */
export function assertBlobId(id: unknown): asserts id is string {
  if (!isBlobId(id)) storageFail('BLOB_ID_INVALID', 'blob id must be 64 lowercase hex characters');
}

/** The blob id of `bytes`. */
export function blobIdOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
