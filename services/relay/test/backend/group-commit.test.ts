/**
 * The embedded backend's group commit: writes queued in one turn of the
 * event loop share one SQLite transaction (one WAL commit, one fsync), each a
 * savepoint. `groupCommit: false` (what bench:relay's
 * embeddedSingleCommit section measures against) commits each on its own.
 * Counted in WAL frames read by a second connection: every commit appends at
 * least one frame, so N separate commits append at least N.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openEmbeddedBackend } from '../../src/backend/embedded.js';

const WRITES = 50;
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function framesForConcurrentWrites(groupCommit: boolean): Promise<{
  frames: number;
  items: number;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'rogatory-group-commit-'));
  dirs.push(dir);
  const file = join(dir, 'relay.db');
  const backend = await openEmbeddedBackend({ file, groupCommit });
  const observer = new Database(file);
  try {
    // Empty the WAL, so what follows counts only the writes below.
    observer.pragma('wal_checkpoint(TRUNCATE)');
    const addresses = Array.from({ length: WRITES }, (_, i) => `node-${i}@wacap`);
    // All queued in the same turn of the event loop.
    await Promise.all(
      addresses.map((a, i) => backend.pushEvidence(a, 'env-1', 'k', new Uint8Array([i]))),
    );
    const [status] = observer.pragma('wal_checkpoint(PASSIVE)') as { log: number }[];
    let items = 0;
    for (const a of addresses) items += (await backend.readMailbox(a, 0, 10)).length;
    return { frames: status!.log, items };
  } finally {
    observer.close();
    await backend.close();
  }
}

describe('embedded backend group commit', () => {
  it('commits the writes of one event-loop turn together; groupCommit false commits each alone', async () => {
    const grouped = await framesForConcurrentWrites(true);
    const single = await framesForConcurrentWrites(false);
    // Every write is stored either way.
    expect(grouped.items).toBe(WRITES);
    expect(single.items).toBe(WRITES);
    // One commit touches a handful of pages; fifty commits append at least fifty frames.
    expect(single.frames).toBeGreaterThanOrEqual(WRITES);
    expect(grouped.frames).toBeLessThan(WRITES / 2);
  });
});
