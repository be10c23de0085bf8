import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { audit, type NodeContext } from '../context.js';

/** Where the first sightings of unreferenced blobs are kept between passes. */
const SEEN_KEY = 'gc.unreferenced';
/** At most this many sightings are remembered (the rest are seen again next pass). */
const MAX_SEEN = 100_000;
/** Default grace: a blob nothing needs is deleted only once it has been seen so for this long. */
export const DEFAULT_GC_GRACE_MS = 24 * 3600 * 1000;

export interface GcReport {
  /** Blobs in the store when the pass listed it. */
  readonly stored: number;
  /** Of those, needed by a draft, a signed dossier or an envelope. */
  readonly referenced: number;
  /** Needed by nothing and deleted in this pass (seen unreferenced for at least the grace). */
  readonly deleted: number;
  readonly deletedBytes: number;
  /** Needed by nothing, but first seen so less than the grace ago: deleted by a later pass. */
  readonly waiting: number;
  readonly graceMs: number;
  readonly dryRun: boolean;
}

function readSeen(ctx: NodeContext): Map<string, number> {
  const text = ctx.db.setting(SEEN_KEY);
  const seen = new Map<string, number>();
  if (text === undefined) return seen;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null)
      for (const [id, at] of Object.entries(parsed))
        if (/^[0-9a-f]{64}$/.test(id) && typeof at === 'number') seen.set(id, at);
  } catch {
    // A damaged record only delays collection: every blob is seen anew.
  }
  return seen;
}

/**
 * Collect blobs left by an interrupted compose, approval or download. Two
 * passes at least `graceMs` apart: a blob that no row needs is first
 * remembered, and deleted only if a later pass still finds it unneeded after
 * the grace. Another process (a CLI command beside `serve`) may be writing
 * the blobs of a draft or a download whose row does not exist yet: the grace
 * (default 24 h) is far longer than any such write. A blob a row needs is
 * never deleted; the store is listed before the rows are read, so a blob
 * whose row appears in between counts as referenced on the next pass.
 */
export async function collectGarbage(
  ctx: NodeContext,
  options: { graceMs?: number; dryRun?: boolean; actor?: string } = {},
): Promise<GcReport> {
  const graceMs = options.graceMs ?? DEFAULT_GC_GRACE_MS;
  const dryRun = options.dryRun === true;
  const listed: string[] = [];
  for await (const id of ctx.blobs.list()) listed.push(id);
  const referenced = ctx.store.referencedBlobIds();
  const seen = readSeen(ctx);
  const now = ctx.clock();
  const next = new Map<string, number>();
  const due: string[] = [];
  let waiting = 0;
  let refCount = 0;
  for (const id of listed) {
    if (referenced.has(id)) {
      refCount += 1;
      continue;
    }
    const first = seen.get(id);
    if (first !== undefined && now - first >= graceMs && !dryRun) {
      due.push(id);
      continue;
    }
    waiting += 1;
    if (next.size < MAX_SEEN) next.set(id, first ?? now);
  }
  // Read the rows again just before deleting: a row may have appeared since the listing.
  const still = due.length > 0 ? ctx.store.referencedBlobIds() : referenced;
  let deleted = 0;
  let deletedBytes = 0;
  for (const id of due) {
    if (still.has(id)) {
      refCount += 1;
      continue;
    }
    const size = await ctx.blobs.size(id).catch(() => 0);
    await ctx.blobs.delete(id);
    deleted += 1;
    deletedBytes += size;
  }
  if (!dryRun) {
    ctx.db.setSetting(SEEN_KEY, JSON.stringify(Object.fromEntries(next)));
    if (deleted > 0 || waiting > 0)
      audit(
        ctx,
        options.actor ?? 'system',
        'node.gc',
        null,
        `deleted ${deleted}, waiting ${waiting}`,
      );
  }
  return {
    stored: listed.length,
    referenced: refCount,
    deleted,
    deletedBytes,
    waiting,
    graceMs,
    dryRun,
  };
}

export interface DiskUse {
  /** The database file with its write-ahead log. */
  readonly databaseBytes: number;
  /** Blobs: sealed dossiers and attachment chunks (all encrypted). */
  readonly blobs: number;
  readonly blobBytes: number;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** What the node keeps on disk (the blob store may be S3: then it is what the bucket holds for this node). */
export async function diskUse(ctx: NodeContext): Promise<DiskUse> {
  const db = join(ctx.dir, ctx.config.paths.database);
  const databaseBytes =
    (await fileSize(db)) + (await fileSize(`${db}-wal`)) + (await fileSize(`${db}-shm`));
  let blobs = 0;
  let blobBytes = 0;
  for await (const id of ctx.blobs.list()) {
    blobs += 1;
    blobBytes += await ctx.blobs.size(id).catch(() => 0);
  }
  return { databaseBytes, blobs, blobBytes };
}
