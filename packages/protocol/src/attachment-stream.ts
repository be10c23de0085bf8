/**
 * The attachment stream engine behind `encryptAttachment` and
 * `decryptAttachment`. Not exported from the package index: it also accepts
 * fixed key material, which only test vectors and benchmarks may use (reusing
 * a key and header for two plaintexts would reuse the keystream).
 */
import {
  ATTACHMENT_LIMITS,
  attachmentChunkLength,
  checkAttachmentOptions,
  parseAttachmentManifest,
  type AttachmentManifest,
} from './attachment-manifest.js';
import {
  sodiumHashing,
  type AttachmentHashing,
  type ChunkHashResult,
} from './attachment-hashing.js';
import { equalBytes, fromBase64url, fromHex, toBase64url, toHex } from './bytes.js';
import { fail } from './errors.js';
import { SecretstreamCipher } from './secretstream.js';
import { ready, sodium } from './sodium.js';

/** A plaintext or ciphertext source: any (async) iterable of byte arrays of any size. */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Options of `encryptAttachment`. */
export interface EncryptAttachmentOptions {
  /** File name (no path, 1..255 code points, no `/`, `\`, control characters; not `.` or `..`). */
  readonly name: string;
  /** Lowercase media type `type/subtype`, without parameters. */
  readonly mediaType: string;
  /** Plaintext bytes per chunk, 16 .. 16 MiB; default 1 MiB. */
  readonly chunkSize?: number;
  /** Where SHA-256 runs; default {@link sodiumHashing} (inline, isomorphic). */
  readonly hashing?: AttachmentHashing;
  /**
   * How many chunks may be encrypted ahead of the consumer while their
   * hashes are computed (1..64). Default: 4 for chunks up to 1 MiB, fewer
   * for larger chunks, so that about 4 MiB of chunks are in flight.
   */
  readonly maxChunksInFlight?: number;
  /**
   * Recycle ciphertext buffers: each chunk's `bytes` is valid only until the
   * next chunk is requested (then it is overwritten). For consumers that
   * write or send a chunk before asking for the next one: no garbage per
   * chunk, so memory stays flat however long the attachment. Default false
   * (every chunk has a buffer of its own).
   */
  readonly reuseBuffers?: boolean;
}

/** Options of `decryptAttachment`. */
export interface DecryptAttachmentOptions {
  /** Where SHA-256 runs; default {@link sodiumHashing} (inline, isomorphic). */
  readonly hashing?: AttachmentHashing;
  /** How many chunks may be decrypted ahead of the consumer while their hashes are checked (1..64). */
  readonly maxChunksInFlight?: number;
  /**
   * Recycle plaintext buffers: each yielded array is valid only until the
   * next one is requested. For consumers that write a piece before asking
   * for the next. Default false.
   */
  readonly reuseBuffers?: boolean;
}

/** One ciphertext chunk, ready to be stored or sent as the object named `id`. */
export interface EncryptedChunk {
  /** Lowercase hex SHA-256 of `bytes`: the object name. */
  readonly id: string;
  /** Position in the attachment, from 0. */
  readonly index: number;
  /** The ciphertext chunk (plaintext length + 17 bytes); a fresh buffer owned by the consumer. */
  readonly bytes: Uint8Array;
}

/** A running attachment encryption: drain `chunks`, then read `manifest()`. */
export interface AttachmentEncryption {
  /** The ciphertext chunks in order. Can be iterated once; stopping early abandons the attachment. */
  readonly chunks: AsyncIterable<EncryptedChunk>;
  /**
   * The attachment manifest, to be placed in the dossier. Throws if `chunks`
   * has not been drained to the end without error.
   */
  manifest(): AttachmentManifest;
}

/** Fixed key and header, for test vectors and benchmarks only. */
export interface FixedKeyMaterial {
  readonly key: Uint8Array;
  readonly header: Uint8Array;
}

const MiB = 1024 * 1024;

function noop(): void {
  // A rejection is observed later, when the job is awaited in order.
}

function resolveWindow(value: number | undefined, chunkSize: number): number {
  if (value === undefined) return Math.max(1, Math.min(4, Math.floor((4 * MiB) / chunkSize)));
  if (!Number.isSafeInteger(value) || value < 1 || value > 64) {
    throw new RangeError('maxChunksInFlight must be an integer from 1 to 64');
  }
  return value;
}

function isByteSource(value: unknown): value is ByteSource {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { [Symbol.asyncIterator]?: unknown; [Symbol.iterator]?: unknown };
  return typeof v[Symbol.asyncIterator] === 'function' || typeof v[Symbol.iterator] === 'function';
}

function checkPiece(piece: unknown, what: string): asserts piece is Uint8Array {
  if (!(piece instanceof Uint8Array)) throw new TypeError(`${what} must yield Uint8Array values`);
}

/** An async iterable that can be iterated once: a second iteration is a bug, not an empty stream. */
function once<T>(start: () => AsyncGenerator<T, void, undefined>, what: string): AsyncIterable<T> {
  let used = false;
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      if (used) throw new TypeError(`${what} can be iterated only once`);
      used = true;
      return start();
    },
  };
}

interface PlainChunk {
  /** A view on a buffer the engine owns entirely. */
  readonly bytes: Uint8Array;
  readonly last: boolean;
}

/**
 * Re-cut a source into chunks of exactly `chunkSize` bytes, the last one
 * possibly partial (or empty for an empty source). Every source byte is
 * copied exactly once, into a buffer the engine owns (so it can be
 * transferred, and pooled fs buffers are never aliased). A full chunk is
 * held back until the source shows more data or ends, so that the last
 * chunk is known when it is emitted.
 */
async function* rechunk(
  source: ByteSource,
  chunkSize: number,
  take: () => Uint8Array,
): AsyncGenerator<PlainChunk, void, undefined> {
  let buf: Uint8Array | undefined;
  let fill = 0;
  let full: Uint8Array | undefined;
  for await (const piece of source) {
    checkPiece(piece, 'the attachment source');
    let offset = 0;
    while (offset < piece.length) {
      if (full !== undefined) {
        const complete = full;
        full = undefined;
        yield { bytes: complete, last: false };
      }
      buf ??= take();
      const n = Math.min(chunkSize - fill, piece.length - offset);
      buf.set(n === piece.length ? piece : piece.subarray(offset, offset + n), fill);
      fill += n;
      offset += n;
      if (fill === chunkSize) {
        full = buf;
        buf = undefined;
        fill = 0;
      }
    }
  }
  if (full !== undefined) yield { bytes: full, last: true };
  else yield { bytes: buf === undefined ? new Uint8Array(0) : buf.subarray(0, fill), last: true };
}

interface EncryptPending {
  readonly index: number;
  readonly job: Promise<ChunkHashResult>;
}

/**
 * Start encrypting an attachment. Validates the options synchronously
 * (SCHEMA_INVALID); the work happens while `chunks` is iterated.
 */
export function startEncryption(
  source: ByteSource,
  options: EncryptAttachmentOptions,
  fixed?: FixedKeyMaterial,
): AttachmentEncryption {
  checkAttachmentOptions({
    name: options.name,
    mediaType: options.mediaType,
    chunkSize: options.chunkSize ?? ATTACHMENT_LIMITS.defaultChunkSize,
  });
  if (!isByteSource(source))
    throw new TypeError(
      'the attachment source must be an iterable or async iterable of Uint8Array',
    );
  const { name, mediaType } = options;
  const chunkSize = options.chunkSize ?? ATTACHMENT_LIMITS.defaultChunkSize;
  const hashing = options.hashing ?? sodiumHashing;
  const window = resolveWindow(options.maxChunksInFlight, chunkSize);
  const reuse = options.reuseBuffers === true;
  if (
    fixed !== undefined &&
    (fixed.key.length !== ATTACHMENT_LIMITS.keyBytes ||
      fixed.header.length !== ATTACHMENT_LIMITS.headerBytes)
  ) {
    throw new RangeError('fixed key material must be a 32-byte key and a 24-byte header');
  }
  let result: AttachmentManifest | undefined;

  async function* run(): AsyncGenerator<EncryptedChunk, void, undefined> {
    await ready();
    const s = sodium();
    const key =
      fixed === undefined ? s.crypto_secretstream_xchacha20poly1305_keygen() : fixed.key.slice();
    let stream: Awaited<ReturnType<typeof SecretstreamCipher.push>>;
    try {
      stream = await SecretstreamCipher.push(key, fixed?.header);
    } catch (err) {
      s.memzero(key);
      throw err;
    }
    const { cipher, header } = stream;
    const session = hashing.open();
    const pending: EncryptPending[] = [];
    const pool: Uint8Array[] = [];
    /** Ciphertext buffers of full chunks back from the consumer (reuseBuffers). */
    const outPool: Uint8Array[] = [];
    const fullLength = chunkSize + ATTACHMENT_LIMITS.chunkOverhead;
    const recycle = (bytes: Uint8Array): void => {
      if (
        reuse &&
        bytes.length === fullLength &&
        bytes.byteOffset === 0 &&
        bytes.buffer.byteLength === fullLength &&
        outPool.length <= window
      ) {
        outPool.push(bytes);
      }
    };
    const ids: string[] = [];
    let size = 0;
    let index = 0;

    const take = (): Uint8Array => pool.pop() ?? new Uint8Array(chunkSize);
    const settle = async (entry: EncryptPending): Promise<EncryptedChunk> => {
      const done = await entry.job;
      const plain = done.plaintext;
      // Reuse whole-chunk plaintext buffers: fewer large allocations.
      if (
        plain.buffer instanceof ArrayBuffer &&
        plain.byteOffset === 0 &&
        plain.buffer.byteLength === chunkSize &&
        pool.length <= window
      ) {
        pool.push(new Uint8Array(plain.buffer));
      }
      const id = toHex(done.digest);
      ids.push(id);
      return { id, index: entry.index, bytes: done.ciphertext };
    };

    try {
      for await (const chunk of rechunk(source, chunkSize, take)) {
        size += chunk.bytes.length;
        if (size > ATTACHMENT_LIMITS.maxSize)
          fail('LIMIT_EXCEEDED', `attachment larger than ${ATTACHMENT_LIMITS.maxSize} bytes`);
        if (index >= ATTACHMENT_LIMITS.maxChunks) {
          fail(
            'LIMIT_EXCEEDED',
            `attachment has more than ${ATTACHMENT_LIMITS.maxChunks} chunks: use a larger chunkSize`,
          );
        }
        const tag = chunk.last
          ? s.crypto_secretstream_xchacha20poly1305_TAG_FINAL
          : s.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
        const into = reuse && chunk.bytes.length === chunkSize ? outPool.pop() : undefined;
        const ciphertext = cipher.push(chunk.bytes, tag, into);
        // Both buffers are the engine's until the chunk is yielded: hashing may
        // move them (to a worker) and hand back equal ones, which are used.
        const job = session.chunk({
          ciphertext,
          plaintext: chunk.bytes,
          ciphertextOwned: true,
          plaintextOwned: true,
        });
        job.catch(noop);
        pending.push({ index: index++, job });
        while (pending.length > window) {
          const out = await settle(pending.shift()!);
          yield out;
          recycle(out.bytes);
        }
      }
      while (pending.length > 0) {
        const out = await settle(pending.shift()!);
        yield out;
        recycle(out.bytes);
      }
      const digest = await session.finish();
      result = {
        name,
        mediaType,
        size,
        sha256: toHex(digest),
        key: toBase64url(key),
        header: toBase64url(header),
        chunkSize,
        chunks: ids,
      };
    } finally {
      session.close();
      cipher.dispose();
      s.memzero(key);
    }
  }

  return {
    chunks: once(run, 'attachment chunks'),
    manifest(): AttachmentManifest {
      if (result === undefined)
        throw new Error(
          'the attachment manifest is available only after all chunks have been consumed',
        );
      return { ...result, chunks: [...result.chunks] };
    },
  };
}

type DecryptPending =
  | { readonly index: number; readonly oversized: true }
  | {
      readonly index: number;
      readonly oversized: false;
      readonly job: Promise<ChunkHashResult>;
      readonly tag: number | undefined;
    };

/**
 * Decrypt an attachment. Validates the manifest synchronously; the work
 * happens while the result is iterated.
 */
export function startDecryption(
  manifest: unknown,
  chunks: ByteSource,
  options: DecryptAttachmentOptions = {},
): AsyncIterable<Uint8Array> {
  const m = parseAttachmentManifest(manifest);
  if (!isByteSource(chunks))
    throw new TypeError('attachment chunks must be an iterable or async iterable of Uint8Array');
  const hashing = options.hashing ?? sodiumHashing;
  const window = resolveWindow(options.maxChunksInFlight, m.chunkSize);
  const reuse = options.reuseBuffers === true;
  const count = m.chunks.length;
  const maxChunkBytes = m.chunkSize + ATTACHMENT_LIMITS.chunkOverhead;

  async function* run(): AsyncGenerator<Uint8Array, void, undefined> {
    await ready();
    const s = sodium();
    const TAG_MESSAGE = s.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    const TAG_FINAL = s.crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    const positions = new Map<string, number>();
    m.chunks.forEach((id, i) => positions.set(id, i));
    const key = fromBase64url(m.key, 'attachment key');
    let cipher: SecretstreamCipher;
    try {
      cipher = await SecretstreamCipher.pull(key, fromBase64url(m.header, 'attachment header'));
    } finally {
      s.memzero(key);
    }
    const session = hashing.open();
    const pending: DecryptPending[] = [];
    /** Plaintext buffers of full chunks back from the consumer (reuseBuffers). */
    const outPool: Uint8Array[] = [];
    const recycle = (bytes: Uint8Array): void => {
      if (
        reuse &&
        bytes.length === m.chunkSize &&
        bytes.byteOffset === 0 &&
        bytes.buffer.byteLength === m.chunkSize &&
        outPool.length <= window
      ) {
        outPool.push(bytes);
      }
    };
    let produced = 0;
    let held: Uint8Array | undefined;
    let extra = false;
    let index = 0;

    /** Check the oldest pending chunk; its plaintext, or undefined for the last chunk (held back). */
    const verify = async (entry: DecryptPending): Promise<Uint8Array | undefined> => {
      const i = entry.index;
      if (entry.oversized)
        return fail(
          'CHUNK_HASH_MISMATCH',
          `chunk ${i} is longer than any chunk of this attachment`,
        );
      const done = await entry.job;
      const id = toHex(done.digest);
      if (id !== m.chunks[i]) {
        const at = positions.get(id);
        if (at === undefined)
          fail('CHUNK_HASH_MISMATCH', `chunk ${i} does not match id ${m.chunks[i]!}`);
        if (at < i) fail('CHUNK_DUPLICATED', `chunk ${i} repeats chunk ${at} (${id})`);
        fail('CHUNK_REORDERED', `chunk ${i} is chunk ${at} (${id}) of this attachment`);
      }
      if (entry.tag === undefined) fail('DECRYPT_FAILED', `chunk ${i} (${id}) does not decrypt`);
      const last = i === count - 1;
      if (!last && entry.tag === TAG_FINAL)
        fail('DECRYPT_FAILED', `chunk ${i} (${id}) ends the stream before the last chunk`);
      if (!last && entry.tag !== TAG_MESSAGE)
        fail('DECRYPT_FAILED', `chunk ${i} (${id}) carries an unexpected tag`);
      if (last && entry.tag === TAG_MESSAGE)
        fail('CHUNK_TRUNCATED', `the last chunk (${id}) does not end the stream`);
      if (last && entry.tag !== TAG_FINAL)
        fail('DECRYPT_FAILED', `the last chunk (${id}) carries an unexpected tag`);
      if (done.plaintext.length !== attachmentChunkLength(m, i)) {
        fail(
          'ATTACHMENT_MISMATCH',
          `chunk ${i} (${id}) has another length than the manifest implies`,
        );
      }
      produced += done.plaintext.length;
      if (!last) return done.plaintext;
      held = done.plaintext;
      return undefined;
    };

    try {
      for await (const ciphertext of chunks) {
        checkPiece(ciphertext, 'attachment chunks');
        if (index >= count) {
          extra = true;
          break;
        }
        const i = index++;
        if (ciphertext.length > maxChunkBytes) {
          // Cannot be any chunk of a well-formed attachment: not worth hashing.
          pending.push({ index: i, oversized: true });
          break;
        }
        const into = reuse && ciphertext.length === maxChunkBytes ? outPool.pop() : undefined;
        const opened = cipher.pull(ciphertext, into);
        // The plaintext is not trusted (nor released) before its chunk id is checked in `verify`.
        const job = session.chunk({
          ciphertext,
          // A fresh empty array: hashing may detach (transfer) what it is given.
          plaintext: opened === false ? new Uint8Array(0) : opened.message,
          ciphertextOwned: false,
          plaintextOwned: true,
        });
        job.catch(noop);
        const tag = opened === false ? undefined : opened.tag;
        pending.push({ index: i, oversized: false, job, tag });
        // After a failed pull or an early final tag nothing more can decrypt:
        // classify what we have. After the last chunk, read on to detect extra chunks.
        if (tag === undefined || (tag === TAG_FINAL && i !== count - 1)) break;
        while (pending.length > window) {
          const plain = await verify(pending.shift()!);
          if (plain !== undefined) {
            yield plain;
            recycle(plain);
          }
        }
      }
      while (pending.length > 0) {
        const plain = await verify(pending.shift()!);
        if (plain !== undefined) {
          yield plain;
          recycle(plain);
        }
      }
      if (extra) fail('CHUNK_EXTRA', `more than the ${count} chunks the manifest lists`);
      if (index < count || held === undefined)
        fail('CHUNK_TRUNCATED', `chunk stream ended after ${index} of ${count} chunks`);
      const digest = await session.finish();
      if (produced !== m.size)
        fail('ATTACHMENT_MISMATCH', 'decrypted size differs from the manifest');
      if (!equalBytes(digest, fromHex(m.sha256, 'sha256')))
        fail('ATTACHMENT_MISMATCH', 'plaintext SHA-256 differs from the manifest');
      yield held;
    } finally {
      session.close();
      cipher.dispose();
    }
  }

  return once(run, 'the decrypted attachment');
}
