import type { BlobStore } from '@rogatory/storage';
import type { RelayBackend } from './backend/types.js';

/** Entries kept at most; the oldest go first. */
const DEFAULT_MAX_ENTRIES = 100_000;

/**
 * Which chunks are stored, without a stat per chunk per submission.
 *
 * Chunks are content-addressed and immutable; the only way one disappears is
 * garbage collection, and GC deletes only a chunk that no envelope lists and
 * whose last upload note is older than `uploadGraceMs` (rechecked right before
 * each delete, see `collectGarbage`). So once this instance has seen a chunk
 * stored and then recorded an upload note for it at `at`, the chunk stays
 * until at least `at + uploadGraceMs`. An entry says "present" only for half
 * that time (the other half absorbs clock differences between instances
 * sharing a store); after it, or when unknown, the blob store is asked.
 */
export class ChunkPresence {
  private readonly until = new Map<string, number>();
  private readonly maxEntries: number;

  constructor(
    private readonly o: {
      readonly blobs: BlobStore;
      readonly backend: RelayBackend;
      readonly clock: () => number;
      readonly uploadGraceMs: number;
      readonly maxEntries?: number;
    },
  ) {
    this.maxEntries = o.maxEntries ?? DEFAULT_MAX_ENTRIES;
  }

  /**
   * Call only after the chunk was found stored (a completed put, or the blob
   * store saying so) and then the upload note at `notedAt` was written.
   */
  remember(id: string, notedAt: number): void {
    const until = notedAt + Math.floor(this.o.uploadGraceMs / 2);
    if (!(until > this.o.clock())) return;
    this.until.delete(id);
    if (this.until.size >= this.maxEntries) {
      const oldest = this.until.keys().next();
      if (oldest.done !== true) this.until.delete(oldest.value);
    }
    this.until.set(id, until);
  }

  /** Before this instance deletes a chunk. */
  forget(id: string): void {
    this.until.delete(id);
  }

  /** True when this instance knows the chunk stored (no I/O; false means "ask the store"). */
  knownPresent(id: string): boolean {
    const until = this.until.get(id);
    return until !== undefined && this.o.clock() < until;
  }

  /** The ids the blob store lacks (each once), as `BlobStore.missing`. */
  async missing(ids: readonly string[]): Promise<string[]> {
    const now = this.o.clock();
    const unknown: string[] = [];
    for (const id of new Set(ids)) {
      const until = this.until.get(id);
      if (until !== undefined && now < until) continue;
      if (until !== undefined) this.until.delete(id);
      unknown.push(id);
    }
    return unknown.length === 0 ? [] : this.o.blobs.missing(unknown);
  }

  /**
   * One GC pass: the backend names the orphans; each is checked once more
   * right before its delete, because an upload may have renewed it meanwhile
   * (through this instance or another), and deleting takes a while when there
   * are many.
   */
  async collectGarbage(
    now: () => number,
    retention: { readonly chunkRetentionMs: number; readonly uploadGraceMs: number },
  ): Promise<number> {
    const { orphanChunks } = await this.o.backend.collectGarbage(now(), retention);
    let deleted = 0;
    for (const id of orphanChunks) {
      this.forget(id);
      if (await this.o.backend.chunkReferenced(id, now(), retention.uploadGraceMs)) continue;
      await this.o.blobs.delete(id);
      deleted++;
    }
    return deleted;
  }
}
