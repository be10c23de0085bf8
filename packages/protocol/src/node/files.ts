import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  ATTACHMENT_LIMITS,
  type AttachmentEncryption,
  type ByteSource,
  type DecryptAttachmentOptions,
  type EncryptAttachmentOptions,
} from '../attachment.js';
import { startDecryption, startEncryption } from '../attachment-stream.js';
import { workerHashing } from './hash-worker.js';

/** Options of {@link encryptFile}: those of `encryptAttachment`, with the name defaulting to the file's. */
export type EncryptFileOptions = Omit<EncryptAttachmentOptions, 'name'> & {
  /** File name recorded in the manifest; default: the last component of `path`. */
  readonly name?: string;
};

/** Options of {@link decryptToFile}. */
export interface DecryptToFileOptions extends DecryptAttachmentOptions {
  /** Replace an existing file at the destination; default false (fails with EEXIST). */
  readonly overwrite?: boolean;
}

/**
 * Encrypt a file from disk, streaming (worker hashing unless `hashing` is
 * given). Drain `chunks`, then read `manifest()`.
 */
export function encryptFile(path: string, options: EncryptFileOptions): AttachmentEncryption {
  const chunkSize = options.chunkSize ?? ATTACHMENT_LIMITS.defaultChunkSize;
  const opened = {
    ...options,
    name: options.name ?? basename(path),
    hashing: options.hashing ?? workerHashing,
  };
  // A lazy source: the file is opened only when the chunks are iterated, and
  // closed when the iteration ends, whichever way it ends.
  const source: ByteSource = {
    [Symbol.asyncIterator]: () =>
      createReadStream(path, {
        highWaterMark: Math.max(chunkSize, ATTACHMENT_LIMITS.defaultChunkSize),
      })[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>,
  };
  return startEncryption(source, opened);
}

/**
 * Decrypt an attachment into a file. The plaintext is written to a
 * temporary file next to `path`, synced, and moved to `path` only when every
 * check has passed; on any failure the temporary file is removed and nothing
 * appears at `path`. Resolves with the number of bytes written.
 *
 * @throws the ProtocolError codes of `decryptAttachment`, or a file system error.
 */
export async function decryptToFile(
  manifest: unknown,
  chunks: ByteSource,
  path: string,
  options: DecryptToFileOptions = {},
): Promise<number> {
  // Each piece is written before the next is requested: its buffer can be reused.
  const plaintext = startDecryption(manifest, chunks, {
    reuseBuffers: true,
    ...options,
    hashing: options.hashing ?? workerHashing,
  });
  const temporary = join(
    dirname(path),
    `.${basename(path)}.${randomBytes(6).toString('hex')}.partial`,
  );
  const handle = await open(temporary, 'wx', 0o600);
  let written = 0;
  let moved = false;
  try {
    for await (const piece of plaintext) {
      let offset = 0;
      while (offset < piece.length) {
        const { bytesWritten } = await handle.write(piece, offset, piece.length - offset);
        offset += bytesWritten;
      }
      written += piece.length;
    }
    await handle.sync();
    await handle.close();
    if (options.overwrite === true) {
      await rename(temporary, path);
      moved = true;
    } else {
      // link() fails if `path` exists: no check-then-act race.
      await link(temporary, path);
    }
    return written;
  } finally {
    await handle.close().catch(() => undefined);
    if (!moved) await unlink(temporary).catch(() => undefined);
  }
}
