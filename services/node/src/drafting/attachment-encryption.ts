import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  ATTACHMENT_LIMITS,
  isProtocolError,
  type AttachmentManifest,
  type ByteSource,
} from '@rogatory/protocol';
import { encryptAttachment } from '@rogatory/protocol/node';
import type { NodeContext, ProgressListener } from '../context.js';
import { NodeError, nodeFail, toNodeError } from '../errors.js';
import { whyUnreadable } from '../files/file-errors.js';
import { READ_ANY, type FileRoot } from '../files/file-root.js';

/** Chunk writes (write + fsync) in flight while an attachment is encrypted. */
const STORE_CONCURRENCY = 4;

/** A file to attach: read and encrypted when the draft is composed; the node never stores its plaintext. */
export interface AttachmentInput {
  readonly path: string;
  /** Lowercase `type/subtype`; guessed from the extension when absent. */
  readonly mediaType?: string;
  /** Name recorded in the dossier; default the file's name. */
  readonly name?: string;
  /** When set, `path` must lie inside this directory, with no symbolic link below it (the REST API's `--file-root`). */
  readonly root?: FileRoot;
}

const MEDIA_TYPES: Readonly<Record<string, string>> = {
  pdf: 'application/pdf',
  txt: 'text/plain',
  csv: 'text/csv',
  json: 'application/json',
  xml: 'application/xml',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  zip: 'application/zip',
};

export function guessMediaType(path: string): string {
  const ext = /\.([A-Za-z0-9]{1,8})$/.exec(path)?.[1]?.toLowerCase();
  return (ext === undefined ? undefined : MEDIA_TYPES[ext]) ?? 'application/octet-stream';
}

/**
 * Encrypt attachment files into the blob store, streaming: each ciphertext
 * chunk is stored under its id as it is produced; only the manifests (with
 * the attachment keys) are returned, to be kept sealed in the draft.
 */
export async function encryptAttachments(
  ctx: NodeContext,
  inputs: readonly AttachmentInput[],
  onProgress?: ProgressListener,
): Promise<AttachmentManifest[]> {
  const manifests: AttachmentManifest[] = [];
  for (const input of inputs) {
    const handle = await openAttachment(input);
    try {
      manifests.push(await encryptOpened(ctx, input, handle, onProgress));
    } finally {
      await handle.close().catch(() => undefined);
    }
  }
  return manifests;
}

/** Open an attachment file once; its size and type come from the open descriptor (no stat-then-open race). */
async function openAttachment(input: AttachmentInput): Promise<FileHandle> {
  if (input.root !== undefined) return input.root.openForReading(input.path);
  let handle: FileHandle;
  try {
    handle = await open(input.path, READ_ANY);
  } catch (cause) {
    return nodeFail('INPUT_INVALID', `attachment ${input.path} ${whyUnreadable(cause)}`, {
      cause,
    });
  }
  const info = await handle.stat().catch(() => undefined);
  if (info?.isFile() !== true) {
    await handle.close().catch(() => undefined);
    nodeFail('INPUT_INVALID', `attachment ${input.path} is not a regular file`);
  }
  return handle;
}

async function encryptOpened(
  ctx: NodeContext,
  input: AttachmentInput,
  handle: FileHandle,
  onProgress?: ProgressListener,
): Promise<AttachmentManifest> {
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (cause) {
    return nodeFail('INPUT_INVALID', `attachment ${input.path} ${whyUnreadable(cause)}`, {
      cause,
    });
  }
  const name = input.name ?? basename(input.path);
  // Read from the descriptor opened above, never by path again; the stream
  // is created when the chunks are iterated and leaves the handle open.
  const source: ByteSource = {
    [Symbol.asyncIterator]: () => {
      const stream = handle.createReadStream({
        start: 0,
        autoClose: false,
        highWaterMark: ATTACHMENT_LIMITS.defaultChunkSize,
      });
      return stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
    },
  };
  let run;
  try {
    run = encryptAttachment(source, {
      name,
      mediaType: input.mediaType ?? guessMediaType(input.path),
    });
  } catch (cause) {
    return nodeFail('INPUT_INVALID', `attachment ${input.path}: invalid name or media type`, {
      cause,
      detail: isProtocolError(cause) ? cause.code : 'INPUT_INVALID',
    });
  }
  let done = 0;
  // Encryption goes on while the last few chunks are written and synced:
  // at most STORE_CONCURRENCY writes in flight, and every one has ended
  // (stored or failed) before this function returns or throws.
  // Each chunk has a buffer of its own (no reuseBuffers): a write in flight
  // keeps its bytes while the next chunks are encrypted.
  const writes: Promise<void>[] = [];
  const store = async (id: string, bytes: Uint8Array): Promise<void> => {
    await ctx.blobs.put(id, bytes, { maxSize: bytes.length, expectedSize: bytes.length });
    done += Math.max(0, bytes.length - 17);
    onProgress?.({
      phase: 'encrypt',
      subject: name,
      bytesDone: Math.min(done, size),
      bytesTotal: size,
    });
  };
  try {
    let failure: { readonly error: unknown } | undefined;
    try {
      for await (const chunk of run.chunks) {
        if (writes.length >= STORE_CONCURRENCY) await writes.shift();
        const write = store(chunk.id, chunk.bytes);
        write.catch(() => undefined);
        writes.push(write);
      }
    } catch (error) {
      failure = { error };
    }
    const settled = await Promise.allSettled(writes.splice(0));
    const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    failure ??= rejected === undefined ? undefined : { error: rejected.reason };
    if (failure !== undefined) throw failure.error;
  } catch (cause) {
    throw isProtocolError(cause) && cause.code === 'LIMIT_EXCEEDED'
      ? new NodeError('INPUT_INVALID', 'the attachment is too large', {
          cause,
          detail: cause.code,
        })
      : toNodeError(cause, 'encrypt attachment');
  }
  return run.manifest();
}
