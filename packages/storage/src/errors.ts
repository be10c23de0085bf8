/**
 * The storage package's one error catalogue. Callers branch on `code`, never
 * on messages. Messages are fixed per call site and never contain blob bytes,
 * paths, credentials or the raw input that was rejected; a valid blob id (a
 * hash of ciphertext, already visible to a relay) is kept apart in `blobId`.
 */
export const STORAGE_ERROR_CODES = {
  /** The id is not exactly 64 lowercase hexadecimal characters. */
  BLOB_ID_INVALID: 'The id is not exactly 64 lowercase hexadecimal characters (a SHA-256 digest).',
  /** No blob is stored under the id. */
  BLOB_NOT_FOUND: 'No blob is stored under the id.',
  /** The SHA-256 of the supplied bytes differs from the id; nothing was stored. */
  BLOB_HASH_MISMATCH: 'The SHA-256 of the supplied bytes differs from the id; nothing was stored.',
  /** The supplied bytes (or the announced size) exceed the size limit; nothing was stored. */
  BLOB_TOO_LARGE:
    'The supplied bytes, or the announced size, exceed the size limit; nothing was stored.',
  /** The number of supplied bytes differs from `expectedSize`; nothing was stored. */
  BLOB_SIZE_MISMATCH:
    'The number of supplied bytes differs from the expected size; nothing was stored.',
  /** The source failed (threw, or yielded something other than bytes) before it ended; nothing was stored. */
  BLOB_SOURCE_FAILED: 'The source failed before it ended; nothing was stored.',
  /** Options given to a store or to one of its calls are invalid. */
  OPTIONS_INVALID: 'Options given to a store or to one of its calls are invalid.',
  /** The backend failed or could not be reached (I/O error, network error, S3 error). */
  STORAGE_UNAVAILABLE: 'The storage backend failed or could not be reached.',
  /** The backend is out of space or quota (ENOSPC, EDQUOT, S3 storage full). */
  STORAGE_FULL: 'The storage backend is out of space or quota.',
} as const;

export type StorageErrorCode = keyof typeof STORAGE_ERROR_CODES;

export interface StorageErrorOptions {
  readonly cause?: unknown;
  /** A valid blob id the error is about. Never set from unvalidated input. */
  readonly blobId?: string;
}

/** Base class of every error this package throws. */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;
  readonly blobId: string | undefined;

  constructor(code: StorageErrorCode, message: string, options: StorageErrorOptions = {}) {
    super(
      `${code}: ${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.blobId = options.blobId;
  }

  /** A representation safe to log or return to a peer: code, message and blob id; never the cause. */
  toJSON(): { code: StorageErrorCode; message: string; blobId?: string } {
    return this.blobId === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, blobId: this.blobId };
  }
}

/** Type guard: `isStorageError(err, 'BLOB_NOT_FOUND')`. */
export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}

export function storageFail(
  code: StorageErrorCode,
  message: string,
  options?: StorageErrorOptions,
): never {
  throw new StorageError(code, message, options);
}

/** Out-of-space codes: Node errno values, and MinIO's for a full drive or an exhausted bucket quota. */
const FULL_CODES = new Set([
  'ENOSPC',
  'EDQUOT',
  'XMinioStorageFull',
  'XMinioAdminBucketQuotaExceeded',
]);

/** The string `code` of `err` (a Node errno such as `ENOENT`, or an S3 error code), if it has one. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = err.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/**
 * Maps a backend failure to the catalogue: StorageErrors pass through, out of
 * space becomes STORAGE_FULL, anything else STORAGE_UNAVAILABLE with the
 * original as `cause` (never in the message: it may hold paths or hosts).
 */
export function toStorageError(err: unknown, what: string, blobId?: string): StorageError {
  if (err instanceof StorageError) return err;
  const options = blobId === undefined ? { cause: err } : { cause: err, blobId };
  const code = errnoCode(err);
  if (code !== undefined && FULL_CODES.has(code)) {
    return new StorageError('STORAGE_FULL', `${what}: out of space`, options);
  }
  return new StorageError('STORAGE_UNAVAILABLE', `${what} failed`, options);
}
