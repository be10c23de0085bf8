/**
 * Housekeeping (issue 13 item 6): blobs left by an interrupted compose are
 * collected by two passes a grace apart, never a blob a row needs; status
 * shows the disk use.
 */
import { join } from 'node:path';
import type { TestWorld } from '@rogatory/protocol/testing';
import type { BlobStore } from '@rogatory/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNodeError } from '../src/index.js';
import {
  FillableBlobStore,
  PASSWORD,
  makeNode,
  mlaRequest,
  offlineWorld,
  randomFile,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';
import { runCliCaptured } from './support/run-cli.js';

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';
const HOUR = 3600_000;

async function listed(store: BlobStore): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of store.list()) ids.push(id);
  return ids.sort();
}

describe('garbage collection of blobs and disk use', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let n: NodeFixture;
  let disk: FillableBlobStore;
  let now = Date.now();
  let files: string[];

  beforeAll(async () => {
    world = await offlineWorld();
    tmp = await tempDir();
    n = await makeNode({
      world,
      address: SN,
      dir: join(tmp.path, 'sn'),
      clock: () => now,
      wrapBlobStore: (store) => (disk = new FillableBlobStore(store)),
    });
    files = [
      (await randomFile(tmp.path, 'a.pdf', 3000)).path,
      (await randomFile(tmp.path, 'b.pdf', 5000)).path,
      (await randomFile(tmp.path, 'c.pdf', 7000)).path,
    ];
  }, 60_000);
  afterAll(async () => {
    await n.node.close().catch(() => undefined);
    await tmp.remove();
  });

  it('deletes what an interrupted compose left only after the grace, never what a draft or a sealed dossier needs', async () => {
    const officer = n.user('officer', 'officer', ['restricted']);
    const approver = n.user('approver', 'approver', ['restricted']);
    const draft = await n.node.compose(officer, {
      content: mlaRequest(world, SN, KZ, { caseReference: 'SN-GC-1' }),
      attachments: [{ path: files[0]! }, { path: files[1]! }],
    });
    const kept = await listed(disk);
    expect(kept).toHaveLength(2);

    // The disk fills after one more blob: the compose fails and leaves that blob behind.
    disk.fullAfter = 1;
    await expect(
      n.node.compose(officer, {
        content: mlaRequest(world, SN, KZ, { caseReference: 'SN-GC-2' }),
        attachments: [{ path: files[2]! }, { path: files[1]! }, { path: files[0]! }],
      }),
    ).rejects.toSatisfy((e) => isNodeError(e, 'STORAGE_FULL'));
    disk.full = false;
    disk.fullAfter = undefined;
    const after = await listed(disk);
    const orphans = after.filter((id) => !kept.includes(id));
    expect(orphans).toHaveLength(1);

    // First pass: seen, not deleted. A dry run changes nothing.
    const dry = await n.node.collectGarbage(n.admin, { dryRun: true });
    expect(dry).toMatchObject({ stored: 3, referenced: 2, deleted: 0, waiting: 1, dryRun: true });
    const first = await n.node.collectGarbage(n.admin);
    expect(first).toMatchObject({ stored: 3, referenced: 2, deleted: 0, waiting: 1 });
    now += 23 * HOUR;
    expect(await n.node.collectGarbage(n.admin)).toMatchObject({ deleted: 0, waiting: 1 });
    now += 2 * HOUR;
    const last = await n.node.collectGarbage(n.admin);
    expect(last).toMatchObject({ stored: 3, referenced: 2, deleted: 1, waiting: 0 });
    expect(last.deletedBytes).toBeGreaterThan(7000);
    expect(await listed(disk)).toEqual(kept);

    // The draft still opens with its attachments; approval seals it, and the sealed blob stays too.
    expect(n.node.open(officer, draft).attachments).toHaveLength(2);
    n.node.submitForApproval(officer, draft);
    await n.node.approve(approver, draft).catch(() => undefined);
    const sealedStore = await listed(disk);
    expect(sealedStore.length).toBeGreaterThan(2);
    await n.node.collectGarbage(n.admin);
    now += 48 * HOUR;
    expect(await n.node.collectGarbage(n.admin)).toMatchObject({ deleted: 0, waiting: 0 });
    expect(await listed(disk)).toEqual(sealedStore);
    expect(n.node.auditEntries(n.admin, { action: 'node.gc' }).length).toBeGreaterThan(0);
  });

  it('is for admins only', async () => {
    const officer = n.node.login('officer', PASSWORD);
    await expect(n.node.collectGarbage(officer)).rejects.toSatisfy((e) =>
      isNodeError(e, 'NOT_AUTHORISED'),
    );
  });

  it('rogatory gc and the disk line of rogatory status', async () => {
    const use = await n.node.diskUse();
    expect(use.blobs).toBe((await listed(disk)).length);
    expect(use.databaseBytes).toBeGreaterThan(0);
    await n.node.close();
    const cli = (args: string[]) => runCliCaptured(['--dir', n.dir, ...args]);
    const gc = await cli(['--user', 'admin', 'gc', '--dry-run']);
    expect(gc.code).toBe(0);
    expect(gc.out).toContain(`${String(use.blobs)} blobs stored`);
    expect(gc.out).toContain('dry run');
    const bad = await cli(['--user', 'admin', 'gc', '--grace-hours', '0']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('--grace-hours must be a number from 1 to 720');
    const status = await cli(['status']);
    expect(status.out).toMatch(
      new RegExp(`disk +database [0-9.]+ (bytes|KiB|MiB), ${String(use.blobs)} blobs`),
    );
    const json = await cli(['--json', 'status']);
    expect(JSON.parse(json.out)).toMatchObject({ disk: { blobs: use.blobs } });
  });
});
