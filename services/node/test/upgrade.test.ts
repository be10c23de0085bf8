/**
 * Upgrading a node in place (issue 14 item 5): a node folder whose SQLite
 * file has the previous schema (every migration but the last) is opened by
 * the current code, migrated forward, with its dossiers, users and audit
 * log intact; a file written by a newer node is refused, untouched.
 */
import { copyFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { terminateHashWorker } from '@rogatory/protocol/node';
import type { TestWorld } from '@rogatory/protocol/testing';
import { startTestRelays, type TestNetworkOfRelays } from '@rogatory/relay/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorityNode, isNodeError } from '../src/index.js';
import { MIGRATIONS } from '../src/store/schema.js';
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
const GH = 'gh-ago@wacap';
const DB = 'mailbox.db';

/**
 * Rewrites `file` as the previous layout would have stored the same data:
 * a fresh file with the first `version` migrations, every row copied
 * column by column where the column exists in that layout. Exact for a
 * last migration that only adds (migration 4 adds a column and an index);
 * one that rewrites data needs its inverse here.
 */
function writePreviousLayout(file: string, out: string, version: number): void {
  const old = new Database(out);
  try {
    old.pragma('foreign_keys = OFF');
    for (const m of MIGRATIONS.slice(0, version)) old.exec(m);
    old.exec(`ATTACH DATABASE '${file.replaceAll("'", "''")}' AS cur`);
    const tables = old
      .prepare<[], { name: string }>(
        "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
      )
      .all()
      .map((r) => r.name);
    old.transaction(() => {
      for (const t of tables) {
        const cols = (table: string, schema: string): string[] =>
          old
            .prepare<[], { name: string }>(`PRAGMA ${schema}.table_info("${table}")`)
            .all()
            .map((c) => c.name);
        const current = new Set(cols(t, 'cur'));
        const shared = cols(t, 'main').filter((c) => current.has(c));
        const list = shared.map((c) => `"${c}"`).join(', ');
        old.exec(`INSERT INTO main."${t}" (${list}) SELECT ${list} FROM cur."${t}"`);
      }
      const seq = old
        .prepare("SELECT 1 FROM cur.sqlite_master WHERE name = 'sqlite_sequence'")
        .get();
      if (seq !== undefined) {
        old.exec('DELETE FROM main.sqlite_sequence');
        old.exec('INSERT INTO main.sqlite_sequence SELECT * FROM cur.sqlite_sequence');
      }
    })();
    old.exec('DETACH DATABASE cur');
    old.pragma(`user_version = ${String(version)}`);
  } finally {
    old.close();
  }
}

function columnsOf(file: string, table: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return db
      .prepare<[], { name: string }>(`PRAGMA table_info("${table}")`)
      .all()
      .map((c) => c.name);
  } finally {
    db.close();
  }
}

function userVersion(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

describe('node upgrade between schema versions', () => {
  let net: TestNetworkOfRelays;
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let sn: NodeFixture;
  let gh: NodeFixture;
  let upgraded: AuthorityNode | undefined;
  let attachment: string;

  beforeAll(async () => {
    net = await startTestRelays({ backend: { kind: 'embedded' }, networks: ['wacap'] });
    world = net.world;
    tmp = await tempDir();
    sn = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn') });
    gh = await makeNode({ world, address: GH, dir: join(tmp.path, 'gh') });
    attachment = (await randomFile(tmp.path, 'warrant.pdf', 50_000)).path;
  }, 120_000);

  afterAll(async () => {
    await sn.node.close();
    await gh.node.close().catch(() => undefined);
    await upgraded?.close();
    await net.stop();
    await terminateHashWorker();
    await tmp.remove();
  });

  it('opens a folder written by the previous layout: migrated forward, dossiers and audit intact, syncs on', async () => {
    const officer = sn.user('officer', 'officer', ['restricted']);
    const approver = sn.user('approver', 'approver', ['restricted']);
    const ghOfficer = gh.user('gh-officer', 'officer', ['restricted']);
    const send = async (ref: string): Promise<string> => {
      const id = await sn.node.compose(officer, {
        content: mlaRequest(world, SN, GH, { caseReference: ref }),
        attachments: [{ path: attachment }, { path: attachment }],
        newCase: true,
      });
      sn.node.submitForApproval(officer, id);
      const envelopeId = await sn.node.approve(approver, id);
      await sn.node.syncOnce();
      return envelopeId;
    };
    const before = [await send('UP-1'), await send('UP-2')];
    await eventually('both dossiers at gh', async () => {
      await gh.node.syncOnce();
      const got = gh.node.inbox(ghOfficer).map((d) => d.envelopeId);
      return before.every((e) => got.includes(e)) ? true : undefined;
    });
    const firstIn = gh.node.inbox(ghOfficer).find((d) => d.envelopeId === before[0])!;
    const openedBefore = gh.node.open(ghOfficer, firstIn.id);
    // After the opening: opening marks the dossier opened.
    const inboxBefore = gh.node.inbox(ghOfficer);
    const auditBefore = gh.node.verifyAudit(gh.admin);
    expect(auditBefore.ok).toBe(true);
    await gh.node.close();

    // The folder as the previous version left it.
    const file = join(gh.dir, DB);
    const current = join(tmp.path, 'current.db');
    await copyFile(file, current);
    for (const suffix of ['', '-wal', '-shm']) await rm(`${file}${suffix}`, { force: true });
    const previous = MIGRATIONS.length - 1;
    writePreviousLayout(current, file, previous);
    expect(userVersion(file)).toBe(previous);
    expect(columnsOf(file, 'introductions')).not.toContain('dossier_id');

    upgraded = await AuthorityNode.open({ dir: gh.dir, passphrase: PASSPHRASE });
    expect(userVersion(file)).toBe(MIGRATIONS.length);
    expect(columnsOf(file, 'introductions')).toContain('dossier_id');
    const actor = upgraded.login('gh-officer', PASSWORD);
    expect(upgraded.inbox(actor)).toEqual(inboxBefore);
    expect(upgraded.open(actor, firstIn.id)).toEqual(openedBefore);
    const integrity = await upgraded.integrity();
    expect(integrity.audit.ok).toBe(true);
    expect(integrity.missingBlobs).toEqual([]);
    const admin = upgraded.login('admin', PASSWORD);
    const report = upgraded.verifyAudit(admin);
    expect(report.ok).toBe(true);

    // It works on: a dossier sent after the upgrade arrives once, nothing before it again.
    const after = await send('UP-3');
    await eventually('the dossier sent after the upgrade', async () => {
      await upgraded!.syncOnce();
      return upgraded!.inbox(actor).some((d) => d.envelopeId === after) ? true : undefined;
    });
    const ids = upgraded
      .inbox(actor)
      .filter((d) => d.direction === 'in')
      .map((d) => d.envelopeId)
      .sort();
    expect(ids).toEqual([...before, after].sort());
    expect(upgraded.verifyAudit(admin).ok).toBe(true);
  });

  it('refuses a folder written by a newer node with CONFIG_INVALID, and changes nothing in it', async () => {
    const dir = join(tmp.path, 'newer');
    const fx = await makeNode({ world, address: SN, dir });
    await fx.node.close();
    const file = join(dir, DB);
    const db = new Database(file);
    db.pragma(`user_version = ${String(MIGRATIONS.length + 1)}`);
    db.close();
    const tablesBefore = columnsOf(file, 'introductions');

    const err = await AuthorityNode.open({ dir, passphrase: PASSPHRASE }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isNodeError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/newer version/);
    expect(userVersion(file)).toBe(MIGRATIONS.length + 1);
    expect(columnsOf(file, 'introductions')).toEqual(tablesBefore);
  });
});
