/**
 * `@rogatory/protocol/node`: the attachment API of the isomorphic package,
 * accelerated for Node. Same formats, same errors, same results; SHA-256
 * (chunk ids and the plaintext hash) runs with node:crypto on a worker
 * thread, overlapping with libsodium encryption on the calling thread.
 */
import {
  type AttachmentEncryption,
  type ByteSource,
  type DecryptAttachmentOptions,
  type EncryptAttachmentOptions,
} from '../attachment.js';
import { startDecryption, startEncryption } from '../attachment-stream.js';
import { workerHashing } from './hash-worker.js';

export { workerHashing, terminateHashWorker } from './hash-worker.js';
export { nativePrimitives, useNativeCrypto } from './native.js';
export {
  deriveKeyInWorker,
  deriveKeyInWorkerSync,
  pwhashStrInWorker,
  pwhashStrInWorkerSync,
  pwhashStrVerifyInWorker,
  pwhashStrVerifyInWorkerSync,
} from './kdf-worker.js';
export {
  encryptFile,
  decryptToFile,
  type EncryptFileOptions,
  type DecryptToFileOptions,
} from './files.js';

/**
 * `encryptAttachment` of `@rogatory/protocol`, hashing on a worker thread
 * unless `options.hashing` says otherwise.
 */
export function encryptAttachment(
  source: ByteSource,
  options: EncryptAttachmentOptions,
): AttachmentEncryption {
  return startEncryption(source, { ...options, hashing: options.hashing ?? workerHashing });
}

/**
 * `decryptAttachment` of `@rogatory/protocol`, hashing on a worker thread
 * unless `options.hashing` says otherwise.
 */
export function decryptAttachment(
  manifest: unknown,
  chunks: ByteSource,
  options: DecryptAttachmentOptions = {},
): AsyncIterable<Uint8Array> {
  return startDecryption(manifest, chunks, {
    ...options,
    hashing: options.hashing ?? workerHashing,
  });
}
