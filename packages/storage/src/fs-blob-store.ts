import { createHash, randomBytes } from 'node:crypto';
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { assertBlobId, BLOB_ID_PATTERN } from './blob-id.js';
import {
  DEFAULT_MAX_BLOB_SIZE,
  type BlobSource,
  type BlobStore,
  type PutOptions,
  type PutResult,
} from './blob-store.js';
import { mapLimit } from './concurrency.js';
import { errnoCode, storageFail, toStorageError } from './errors.js';
import { WORKER_IO_MAX_BYTES, durablePut, readWhole } from './fs-io-worker.js';
import {
  assertMaxBlobSize,
  asUint8Array,
  ingest,
  readSource,
  resolveLimits,
  type IngestLimits,
  type SourceReader,
} from './ingest.js';

export interface FsBlobStoreOptions {
  /** Root directory; created if missing. One store owns it (several processes may share it safely). */
  readonly dir: string;
  /** Largest blob accepted; defaults to {@link DEFAULT_MAX_BLOB_SIZE}. */
  readonly maxBlobSize?: number;
  /**
   * Write in-memory blobs of up to 256 KiB, and read whole blobs, on worker
   * threads with synchronous calls (fs-io-worker.ts): about half the CPU per
   * small blob. For stores that take many small blobs (a relay's dossiers
   * and inline chunks). Off by default: a store of large chunks gains
   * nothing, and each worker costs about 9 MB of RSS while it runs.
   */
  readonly workerIo?: boolean;
}

/** Temp files live under `<dir>/.tmp/<pid>-<random>/`, one folder per open store. */
const TEMP_ROOT = '.tmp';
const TEMP_DIR_PATTERN = /^(\d+)-[0-9a-f]{16}$/;
const SHARD_PATTERN = /^[0-9a-f]{2}$/;
/** Largest read of `get`: one syscall and one buffer per MiB (chunks are 1 MiB by default). */
const READ_SIZE = 1024 * 1024;
const STAT_CONCURRENCY = 32;

/** Temp folders of stores open in this process, which startup cleanup must spare. */
const liveTempDirs = new Set<string>();

function isNotFound(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) !== 'ESRCH';
  }
}

async function syncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } catch (err) {
    // A few filesystems cannot fsync a directory; their renames are as durable as they get.
    if (errnoCode(err) !== 'EINVAL') throw err;
  } finally {
    await handle.close();
  }
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

/**
 * A BlobStore in a directory: `<dir>/ab/cd/<id>` for id `abcd...`. A put
 * streams into a temp file under `<dir>/.tmp` (same filesystem, so the final
 * rename is atomic), fsyncs it, renames it into place and fsyncs the shard
 * directory, so a crash leaves either the whole blob or none. Temp folders
 * left by dead processes are removed when a store opens. With `workerIo`,
 * small in-memory blobs take the same steps on a worker thread.
 */
export class FsBlobStore implements BlobStore {
  readonly dir: string;
  readonly #tempDir: string;
  readonly #maxBlobSize: number;
  readonly #workerIo: boolean;
  #tempCounter = 0;
  #closed = false;
  /** Shard directories known to exist durably (made or found by an earlier put): no mkdir per put. */
  readonly #shards = new Set<string>();

  private constructor(dir: string, tempDir: string, maxBlobSize: number, workerIo: boolean) {
    this.dir = dir;
    this.#tempDir = tempDir;
    this.#maxBlobSize = maxBlobSize;
    this.#workerIo = workerIo;
  }

  /** Creates the directory if needed, removes stale temp files and returns a ready store. */
  static async open(options: FsBlobStoreOptions): Promise<FsBlobStore> {
    if (typeof options.dir !== 'string' || options.dir === '')
      storageFail('OPTIONS_INVALID', 'dir must be a non-empty path');
    const maxBlobSize = options.maxBlobSize ?? DEFAULT_MAX_BLOB_SIZE;
    assertMaxBlobSize(maxBlobSize, Number.MAX_SAFE_INTEGER);
    const dir = resolve(options.dir);
    const tempRoot = join(dir, TEMP_ROOT);
    const tempDir = join(tempRoot, `${process.pid}-${randomBytes(8).toString('hex')}`);
    // Claimed before it exists, so a store opening concurrently in this process spares it.
    liveTempDirs.add(tempDir);
    try {
      await mkdir(tempRoot, { recursive: true });
      await removeStaleTempDirs(tempRoot);
      await mkdir(tempDir);
    } catch (err) {
      liveTempDirs.delete(tempDir);
      throw toStorageError(err, 'opening the blob directory');
    }
    return new FsBlobStore(dir, tempDir, maxBlobSize, options.workerIo === true);
  }

  async put(id: string, source: BlobSource, options?: PutOptions): Promise<PutResult> {
    assertBlobId(id);
    const limits = resolveLimits(this.#maxBlobSize, options, id);
    // To the worker goes a copy, taken before the hash is checked: what is checked is what is written,
    // whatever the caller does with its buffer meanwhile.
    const owned =
      this.#workerIo && source instanceof Uint8Array && source.length <= WORKER_IO_MAX_BYTES
        ? new Uint8Array(source)
        : undefined;
    const reader = readSource(owned ?? source);
    try {
      this.#assertOpen();
      if (owned !== undefined) return await this.#putBytes(id, owned, reader, limits);
      return await this.#put(id, reader, limits);
    } finally {
      await reader.close();
    }
  }

  /**
   * Bytes already in memory, in a buffer of their own: checked here (hash
   * and limits, before anything is written), then handed to the
   * blob-writing worker thread (see fs-io-worker.ts), which takes the same
   * steps as #put.
   */
  async #putBytes(
    id: string,
    bytes: Uint8Array,
    reader: SourceReader,
    limits: IngestLimits,
  ): Promise<PutResult> {
    const size = await ingest(id, reader, limits, () => undefined);
    try {
      const created = await durablePut({
        tmp: join(this.#tempDir, `${id}.${this.#tempCounter++}`),
        dest: this.#blobPath(id),
        root: this.dir,
        bytes,
      });
      return { id, size, created };
    } catch (err) {
      throw toStorageError(err, 'writing a blob', id);
    }
  }

  async #put(id: string, reader: SourceReader, limits: IngestLimits): Promise<PutResult> {
    const finalPath = this.#blobPath(id);
    if (await this.#exists(finalPath, id)) {
      // Verify the caller's bytes all the same, so a put never "succeeds" with wrong data.
      const size = await ingest(id, reader, limits, () => undefined);
      // Another process may have renamed it there without having fsynced the directory yet.
      try {
        await syncDir(dirname(finalPath));
      } catch (err) {
        throw toStorageError(err, 'writing a blob', id);
      }
      return { id, size, created: false };
    }

    const tempPath = join(this.#tempDir, `${id}.${this.#tempCounter++}`);
    let handle: FileHandle | undefined;
    try {
      handle = await open(tempPath, 'wx', 0o600);
      const file = handle;
      const size = await ingest(id, reader, limits, (chunk) => writeAll(file, chunk));
      await handle.sync();
      await handle.close();
      handle = undefined;

      const shardDir = join(this.dir, id.slice(0, 2), id.slice(2, 4));
      // A concurrent put of the same id may rename first; the bytes are identical, so either wins.
      let made = false;
      if (this.#shards.has(shardDir)) {
        try {
          await rename(tempPath, finalPath);
        } catch (err) {
          // The shard was removed behind our back: make it again.
          if (errnoCode(err) !== 'ENOENT') throw err;
          this.#shards.delete(shardDir);
        }
      }
      if (!this.#shards.has(shardDir)) {
        await mkdir(shardDir, { recursive: true });
        made = true;
        await rename(tempPath, finalPath);
      }
      await syncDir(shardDir);
      if (made) {
        // Shard directories must themselves be durable entries of their parents, whoever made them
        // (this put, or another process a moment ago that may not have fsynced them yet): once per
        // shard and process.
        await syncDir(join(this.dir, id.slice(0, 2)));
        await syncDir(this.dir);
      }
      this.#shards.add(shardDir);
      return { id, size, created: true };
    } catch (err) {
      if (handle !== undefined) await handle.close().catch(() => undefined);
      await rm(tempPath, { force: true }).catch(() => undefined);
      throw toStorageError(err, 'writing a blob', id);
    }
  }

  async *get(id: string): AsyncIterable<Uint8Array> {
    assertBlobId(id);
    let handle: FileHandle;
    try {
      handle = await open(this.#blobPath(id), 'r');
    } catch (err) {
      if (isNotFound(err)) storageFail('BLOB_NOT_FOUND', 'no blob under this id', { blobId: id });
      throw toStorageError(err, 'opening a blob', id);
    }
    try {
      let left: number;
      try {
        left = (await handle.stat()).size;
      } catch (err) {
        throw toStorageError(err, 'reading a blob', id);
      }
      for (;;) {
        // A fresh buffer each time: the consumer may keep what we yielded.
        // Sized to what is left, so a small blob does not cost a large buffer.
        const length = Math.max(1, Math.min(READ_SIZE, left));
        const buffer = new Uint8Array(length);
        let bytesRead: number;
        try {
          ({ bytesRead } = await handle.read(buffer, 0, length, null));
        } catch (err) {
          throw toStorageError(err, 'reading a blob', id);
        }
        if (bytesRead === 0) return;
        left -= bytesRead;
        yield bytesRead === length ? buffer : buffer.subarray(0, bytesRead);
      }
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  async getBytes(id: string): Promise<Uint8Array> {
    assertBlobId(id);
    try {
      const path = this.#blobPath(id);
      // The worker reads small blobs only; a larger one is read here.
      const small = this.#workerIo ? await readWhole(path) : undefined;
      return small ?? asUint8Array(await readFile(path));
    } catch (err) {
      if (isNotFound(err)) storageFail('BLOB_NOT_FOUND', 'no blob under this id', { blobId: id });
      throw toStorageError(err, 'reading a blob', id);
    }
  }

  async has(id: string): Promise<boolean> {
    assertBlobId(id);
    return this.#exists(this.#blobPath(id), id);
  }

  async missing(ids: readonly string[]): Promise<string[]> {
    for (const id of ids) assertBlobId(id);
    const unique = [...new Set(ids)];
    const present = await mapLimit(unique, STAT_CONCURRENCY, (id) =>
      this.#exists(this.#blobPath(id), id),
    );
    return unique.filter((_, index) => !present[index]);
  }

  async size(id: string): Promise<number> {
    assertBlobId(id);
    try {
      return (await stat(this.#blobPath(id))).size;
    } catch (err) {
      if (isNotFound(err)) storageFail('BLOB_NOT_FOUND', 'no blob under this id', { blobId: id });
      throw toStorageError(err, 'reading a blob size', id);
    }
  }

  async delete(id: string): Promise<void> {
    assertBlobId(id);
    try {
      // No directory fsync: a delete lost in a crash is redone by the next GC pass.
      await unlink(this.#blobPath(id));
    } catch (err) {
      if (!isNotFound(err)) throw toStorageError(err, 'deleting a blob', id);
    }
  }

  async *list(): AsyncIterable<string> {
    for (const first of await this.#subdirs(this.dir)) {
      const firstPath = join(this.dir, first);
      for (const second of await this.#subdirs(firstPath)) {
        const shard = join(firstPath, second);
        const prefix = first + second;
        let entries;
        try {
          entries = await readdir(shard, { withFileTypes: true });
        } catch (err) {
          if (isNotFound(err)) continue;
          throw toStorageError(err, 'listing blobs');
        }
        for (const entry of entries) {
          if (entry.isFile() && BLOB_ID_PATTERN.test(entry.name) && entry.name.startsWith(prefix))
            yield entry.name;
        }
      }
    }
  }

  async verify(id: string): Promise<boolean> {
    assertBlobId(id);
    const hash = createHash('sha256');
    for await (const chunk of this.get(id)) hash.update(chunk);
    return hash.digest('hex') === id;
  }

  /** Removes this store's temp folder; puts in flight fail. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    liveTempDirs.delete(this.#tempDir);
    await rm(this.#tempDir, { recursive: true, force: true });
  }

  #assertOpen(): void {
    if (this.#closed) storageFail('STORAGE_UNAVAILABLE', 'the store is closed');
  }

  #blobPath(id: string): string {
    return join(this.dir, id.slice(0, 2), id.slice(2, 4), id);
  }

  async #exists(path: string, id: string): Promise<boolean> {
    try {
      return (await stat(path)).isFile();
    } catch (err) {
      if (isNotFound(err)) return false;
      throw toStorageError(err, 'checking a blob', id);
    }
  }

  async #subdirs(path: string): Promise<string[]> {
    try {
      const entries = await readdir(path, { withFileTypes: true });
      return entries
        .filter((entry) => entry.isDirectory() && SHARD_PATTERN.test(entry.name))
        .map((entry) => entry.name);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw toStorageError(err, 'listing blobs');
    }
  }
}

/**
 * Removes temp folders whose owner is gone: another process that no longer
 * runs, or an earlier incarnation of this pid (a container restarted as pid
 * 1) that no open store of this process claims.
 */
async function removeStaleTempDirs(tempRoot: string): Promise<void> {
  for (const entry of await readdir(tempRoot, { withFileTypes: true })) {
    const match = TEMP_DIR_PATTERN.exec(entry.name);
    if (match === null || !entry.isDirectory()) continue;
    const path = join(tempRoot, entry.name);
    const pid = Number(match[1]);
    const stale = pid === process.pid ? !liveTempDirs.has(path) : !isProcessAlive(pid);
    if (stale) await rm(path, { recursive: true, force: true });
  }
}
