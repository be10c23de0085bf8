/**
 * Backup and restore drill (issue 14 item 2): back a node up under traffic,
 * destroy it, restore it into a new folder; it syncs on from its cursor,
 * nothing missing, the audit log verifies, no duplicate Delivery. And a
 * damaged backup is refused before anything is written.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { terminateHashWorker } from '@rogatory/protocol/node';
import type { TestWorld } from '@rogatory/protocol/testing';
import { startTestRelays, type TestNetworkOfRelays } from '@rogatory/relay/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupNode, restoreNode } from '../src/administration/backup.js';
import type { CliIO } from '../src/cli/io.js';
import { runCli } from '../src/cli/program.js';
import { AuthorityNode, isNodeError } from '../src/index.js';
import {
  PASSPHRASE,
  PASSWORD,
  eventually,
  makeNode,
  mlaRequest,
  randomFile,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';

describe('node backup and restore drill', () => {
  let net: TestNetworkOfRelays;
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let sn: NodeFixture;
  let kz: NodeFixture;
  let restored: AuthorityNode | undefined;
  let files: string[];

  beforeAll(async () => {
    net = await startTestRelays({ backend: { kind: 'embedded' } });
    world = net.world;
    tmp = await tempDir();
    sn = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn') });
    kz = await makeNode({ world, address: KZ, dir: join(tmp.path, 'kz') });
    files = [
      (await randomFile(tmp.path, 'warrant.pdf', 300_000)).path,
      (await randomFile(tmp.path, 'records.csv', 200_000)).path,
    ];
  }, 120_000);

  afterAll(async () => {
    await sn.node.close();
    await kz.node.close().catch(() => undefined);
    await restored?.close();
    await net.stop();
    await terminateHashWorker();
    await tmp.remove();
  });

  it('restores a node backed up under traffic: every dossier there or redelivered once, audit intact', async () => {
    const officer = sn.user('officer', 'officer', ['restricted']);
    const approver = sn.user('approver', 'approver', ['restricted']);
    const kzOfficer = kz.user('kz-officer', 'officer', ['restricted']);
    const send = async (ref: string): Promise<string> => {
      const id = await sn.node.compose(officer, {
        content: mlaRequest(world, SN, KZ, { caseReference: ref }),
        attachments: [{ path: files[0]! }, { path: files[1]! }],
        newCase: true,
      });
      sn.node.submitForApproval(officer, id);
      return sn.node.approve(approver, id);
    };
    const flush = async (): Promise<void> => {
      await sn.node.syncOnce();
    };

    // Three dossiers received before the backup.
    const before = [await send('BK-1'), await send('BK-2'), await send('BK-3')];
    await flush();
    await eventually('three dossiers at kz', async () => {
      await kz.node.syncOnce();
      const got = kz.node.inbox(kzOfficer).map((d) => d.envelopeId);
      return before.every((e) => got.includes(e)) ? true : undefined;
    });

    // Under traffic: Senegal sends two more and Kazakhstan drafts while the backup runs.
    const out = join(tmp.path, 'backup');
    const [during, , report] = await Promise.all([
      Promise.all([send('BK-4'), send('BK-5')]).then(async (ids) => {
        await flush();
        return ids;
      }),
      kz.node.compose(kzOfficer, {
        content: mlaRequest(world, KZ, SN, { caseReference: 'KZ-DRAFT-1' }),
        attachments: [{ path: files[0]! }, { path: files[1]! }],
      }),
      backupNode(kz.dir, out),
    ]);
    expect(report).toMatchObject({ address: KZ, blobsInObjectStore: false });
    expect(report.blobs).toBeGreaterThan(6);
    const manifest = JSON.parse(await readFile(join(out, 'backup.json'), 'utf8')) as {
      files: { path: string }[];
    };
    expect(manifest.files.map((f) => f.path)).toEqual(
      expect.arrayContaining(['mailbox.db', 'node.json', 'audit-head.json']),
    );

    // The disk is lost.
    await kz.node.close();
    await rm(kz.dir, { recursive: true, force: true });
    // While the node is down, two more are sent.
    const after = [await send('BK-6'), await send('BK-7')];
    await flush();

    // Restore into a new folder, open, check, sync on.
    const dir = join(tmp.path, 'kz-restored');
    const r = await restoreNode(out, dir);
    expect(r).toMatchObject({ address: KZ, auditHeadSeq: report.auditHeadSeq });
    restored = await AuthorityNode.open({ dir, passphrase: PASSPHRASE });
    const integrity = await restored.integrity();
    expect(integrity.audit.ok).toBe(true);
    expect(integrity.missingBlobs).toEqual([]);
    const actor = restored.login('kz-officer', PASSWORD);
    const all = [...before, ...during, ...after];
    await eventually('every dossier at the restored node', async () => {
      await restored!.syncOnce();
      const got = restored!.inbox(actor).map((d) => d.envelopeId);
      return all.every((e) => got.includes(e)) ? true : undefined;
    });
    const inbox = restored.inbox(actor).filter((d) => d.direction === 'in');
    expect(inbox.map((d) => d.envelopeId).sort()).toEqual([...all].sort());
    // Each received dossier opens (its blobs are there).
    for (const d of inbox) expect(restored.open(actor, d.id).attachments).toHaveLength(2);
    expect(restored.verifyAudit(restored.login('admin', PASSWORD)).ok).toBe(true);

    // The sender sees exactly one Delivery per dossier.
    await flush();
    await eventually('deliveries at the sender', async () => {
      await sn.node.syncOnce();
      const summaries = sn.node.list(officer, { direction: 'out', kind: 'request' });
      return summaries.filter((s) => s.status === 'delivered').length >= all.length
        ? true
        : undefined;
    });
    for (const d of sn.node.list(officer, { direction: 'out', kind: 'request' })) {
      const deliveries = sn.node.show(officer, d.id).evidences.filter((e) => e.kind === 'delivery');
      expect(deliveries.length, d.id).toBe(1);
    }
  }, 240_000);

  it('refuses a damaged backup or a folder that is not empty, writing nothing', async () => {
    const out = join(tmp.path, 'backup');
    await expect(restoreNode(out, join(tmp.path, 'sn'))).rejects.toSatisfy((e) =>
      isNodeError(e, 'NODE_EXISTS'),
    );
    const db = join(out, 'mailbox.db');
    const bytes = await readFile(db);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100]! + 1) % 256;
    await writeFile(db, bytes);
    const target = join(tmp.path, 'kz-damaged');
    await expect(restoreNode(out, target)).rejects.toSatisfy(
      (e) => isNodeError(e, 'VERIFICATION_FAILED') && (e as Error).message.includes('mailbox.db'),
    );
    expect(existsSync(target)).toBe(false);
    await expect(restoreNode(join(tmp.path, 'nowhere'), target)).rejects.toSatisfy((e) =>
      isNodeError(e, 'INPUT_INVALID'),
    );
    await expect(backupNode(join(tmp.path, 'nowhere'), join(tmp.path, 'b2'))).rejects.toSatisfy(
      (e) => isNodeError(e, 'NODE_NOT_FOUND'),
    );
  });

  it('rogatory backup and rogatory restore (CLI), with the check after restoring', async () => {
    const run = async (args: string[]) => {
      let out = '';
      let err = '';
      const io: CliIO = {
        out: (t) => {
          out += t;
        },
        err: (t) => {
          err += t;
        },
        env: { ROGATORY_PASSPHRASE: PASSPHRASE },
        isTTY: false,
      };
      return { code: await runCli(args, io), out, err };
    };
    const out = join(tmp.path, 'sn-backup');
    const b = await run(['--dir', sn.dir, 'backup', '--out', out]);
    expect(b.code).toBe(0);
    expect(b.out).toMatch(new RegExp(`backup of ${SN} written to ${out}: \\d+ files, \\d+ blobs`));
    const again = await run(['--dir', sn.dir, 'backup', '--out', out]);
    expect(again.code).toBe(1);
    expect(again.err).toContain('is not empty');
    const dir = join(tmp.path, 'sn-restored');
    const r = await run(['--dir', dir, '--json', 'restore', '--from', out]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({
      address: SN,
      ok: true,
      check: { audit: { ok: true }, missingBlobs: [] },
    });
  });
});
