/**
 * Streaming attachment encryption (docs/protocol.md, section 11).
 *
 * An attachment is cut into fixed-size chunks, encrypted with one
 * crypto_secretstream_xchacha20poly1305 stream under a fresh key, and each
 * ciphertext chunk is an object named by its SHA-256. The manifest (key,
 * header, sizes, hashes, chunk ids) travels inside the signed, encrypted
 * dossier. Memory use is bounded by a few chunks whatever the file size.
 */
import { sha256, toHex } from './bytes.js';
import {
  startDecryption,
  startEncryption,
  type AttachmentEncryption,
  type ByteSource,
  type DecryptAttachmentOptions,
  type EncryptAttachmentOptions,
} from './attachment-stream.js';

export {
  ATTACHMENT_LIMITS,
  AttachmentManifestSchema,
  AttachmentNameSchema,
  MediaTypeSchema,
  attachmentChunkCount,
  attachmentChunkLength,
  parseAttachmentManifest,
  type AttachmentManifest,
} from './attachment-manifest.js';
export {
  sodiumHashing,
  type AttachmentHashSession,
  type AttachmentHashing,
  type ChunkHashJob,
  type ChunkHashResult,
} from './attachment-hashing.js';
export type {
  AttachmentEncryption,
  ByteSource,
  DecryptAttachmentOptions,
  EncryptAttachmentOptions,
  EncryptedChunk,
} from './attachment-stream.js';

/**
 * Encrypt an attachment from a stream of plaintext pieces of any size.
 *
 * A fresh 32-byte key and secretstream header are generated; nothing is read
 * from `source` until `chunks` is iterated. Iterate `chunks` to the end
 * (storing each `bytes` under its `id`), then call `manifest()` and put the
 * manifest in the dossier. At most a few chunks are held in memory.
 *
 * @throws ProtocolError SCHEMA_INVALID (synchronously) for an invalid name,
 *   media type or chunk size; LIMIT_EXCEEDED (while iterating) for a source
 *   larger than the protocol allows. TypeError for a source that is not an
 *   iterable of Uint8Array.
 *
 * @example
 * const enc = encryptAttachment(fs.createReadStream(path), { name: 'report.pdf', mediaType: 'application/pdf' });
 * for await (const chunk of enc.chunks) await store.put(chunk.id, chunk.bytes);
 * const manifest = enc.manifest();
 */
export function encryptAttachment(
  source: ByteSource,
  options: EncryptAttachmentOptions,
): AttachmentEncryption {
  return startEncryption(source, options);
}

/**
 * Decrypt an attachment, given its manifest (validated here) and its
 * ciphertext chunks in order from an untrusted source. Yields plaintext
 * pieces, one per chunk: fresh buffers owned by the caller, or with
 * `reuseBuffers` buffers valid until the next piece is requested. A chunk
 * array taken from `chunks` is never used after the next one is requested,
 * so `chunks` may itself reuse its buffers.
 *
 * Each chunk's SHA-256 is checked against the id at its position before its
 * plaintext is released. The plaintext of the last chunk is released only
 * after every check has passed, so the iteration completes normally if and
 * only if the whole attachment is authentic and complete: a consumer that
 * sees an error MUST discard what it received.
 *
 * @throws ProtocolError, synchronously for a bad manifest (SCHEMA_INVALID,
 *   LIMIT_EXCEEDED, ENCODING_INVALID), then while iterating:
 *   CHUNK_HASH_MISMATCH (a chunk that is none of the listed ones),
 *   CHUNK_REORDERED (a chunk listed at a later position),
 *   CHUNK_DUPLICATED (a chunk listed at an earlier position),
 *   CHUNK_TRUNCATED (fewer chunks than listed, or the last one does not end the stream),
 *   CHUNK_EXTRA (more chunks than listed),
 *   DECRYPT_FAILED (a listed chunk that does not decrypt with the manifest's key, or ends the stream early),
 *   ATTACHMENT_MISMATCH (sizes or plaintext SHA-256 differ from the manifest).
 */
export function decryptAttachment(
  manifest: unknown,
  chunks: ByteSource,
  options?: DecryptAttachmentOptions,
): AsyncIterable<Uint8Array> {
  return startDecryption(manifest, chunks, options);
}

/**
 * The id of a ciphertext chunk: lowercase hex SHA-256 of its bytes. Relays
 * and stores, which never see manifests, check objects with it.
 * Requires `await ready()`.
 */
export function chunkId(bytes: Uint8Array): string {
  return toHex(sha256(bytes));
}
