/**
 * Largest blob a store accepts unless configured otherwise: twice the
 * protocol's 16 MiB ciphertext chunk, so framing overhead never trips it
 * while a hostile sender still cannot make a store buffer or write more.
 */
export const DEFAULT_MAX_BLOB_SIZE = 32 * 1024 * 1024;

/** Bytes to store: all at once, or streamed (a Node `Readable` of Buffers qualifies). */
export type BlobSource = Uint8Array | AsyncIterable<Uint8Array>;

export interface PutOptions {
  /**
   * Upper bound on the blob's size for this call; the store's own
   * `maxBlobSize` still applies when it is lower. Reading stops as soon as
   * the source exceeds it.
   */
  readonly maxSize: number;
  /** The announced size; a source that yields more or fewer bytes is rejected. */
  readonly expectedSize?: number;
}

export interface PutResult {
  readonly id: string;
  readonly size: number;
  /** False when the blob was already stored and was left untouched. */
  readonly created: boolean;
}

/**
 * A content-addressed store of immutable blobs (ciphertext chunks), each
 * named by the lowercase hex SHA-256 of its bytes. Shared by the relay and
 * the authority node; adapters: {@link MemoryBlobStore}, FsBlobStore,
 * S3BlobStore. Every method rejects a malformed id with BLOB_ID_INVALID
 * before touching the backend.
 *
 * Guarantees of every implementation (checked by the conformance suite):
 * - `put` reads the source once, hashing as it goes, and makes the blob
 *   visible under `id` only after the whole source hashed to `id` within the
 *   size limits; otherwise it stores nothing and leaves nothing visible.
 * - Visibility is atomic: readers see the whole blob or no blob.
 * - Putting an id that is already stored verifies the source all the same,
 *   then succeeds without rewriting (`created: false`).
 * - Reads do not re-hash; consumers that need integrity (the protocol does)
 *   check the hash of what they read, or call `verify`.
 */
export interface BlobStore {
  /** Streams `source` into the store under `id`; see the guarantees above. */
  put(id: string, source: BlobSource, options?: PutOptions): Promise<PutResult>;
  /** Streams a blob's bytes; BLOB_NOT_FOUND surfaces on the first read. */
  get(id: string): AsyncIterable<Uint8Array>;
  /** A blob's bytes in one array. */
  getBytes(id: string): Promise<Uint8Array>;
  has(id: string): Promise<boolean>;
  /** The ids among `ids` that are not stored, de-duplicated, in first-seen order. */
  missing(ids: readonly string[]): Promise<string[]>;
  /** A blob's size in bytes. */
  size(id: string): Promise<number>;
  /** Removes a blob; removing an absent blob is not an error. */
  delete(id: string): Promise<void>;
  /** Every stored id, in no particular order (for garbage collection). */
  list(): AsyncIterable<string>;
  /** Re-reads a blob and reports whether its bytes still hash to its id. */
  verify(id: string): Promise<boolean>;
  /** Releases resources; the store must not be used afterwards. */
  close(): Promise<void>;
}
