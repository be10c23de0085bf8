import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { TestWorld } from '@rogatory/protocol/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNodeError, type Actor } from '../src/index.js';
import {
  PASSWORD,
  makeNode,
  mlaRequest,
  offlineWorld,
  randomFile,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';
const DAY = 24 * 3600 * 1000;

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return isNodeError(err) ? err.code : 'NOT_A_NODE_ERROR';
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    return isNodeError(err) ? err.code : 'NOT_A_NODE_ERROR';
  }
}

describe('roles, four eyes, handling codes, deadlines and the audit log (no relay needed)', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let n: NodeFixture;
  let now = Date.now();
  let files: { path: string }[];
  let officer: Actor;
  let approverA: Actor;
  let approverB: Actor;
  let uncleared: Actor;

  beforeAll(async () => {
    world = await offlineWorld();
    tmp = await tempDir();
    n = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn'), clock: () => now });
    officer = n.user('officer', 'officer', ['restricted', 'witness-protection']);
    approverA = n.user('approver-a', 'approver', ['restricted', 'witness-protection']);
    approverB = n.user('approver-b', 'approver', ['restricted']);
    uncleared = n.user('uncleared', 'officer', []);
    files = [await randomFile(tmp.path, 'a.pdf', 5000), await randomFile(tmp.path, 'b.pdf', 7000)];
  });
  afterAll(async () => {
    await n.node.close();
    await tmp.remove();
  });

  const draft = (actor: Actor, patch: Parameters<typeof mlaRequest>[3] = {}) =>
    n.node.compose(actor, {
      content: mlaRequest(world, SN, KZ, patch),
      attachments: files.map((f) => ({ path: f.path })),
    });

  it('four eyes: the drafter, and anyone who edited the draft, cannot approve; another approver can', async () => {
    const own = await draft(approverA, { caseReference: 'FOUR-EYES-1' });
    n.node.submitForApproval(approverA, own);
    expect(await codeOf(n.node.approve(approverA, own))).toBe('FOUR_EYES_VIOLATION');
    expect(n.node.show(approverA, own).status).toBe('awaiting-approval');

    const edited = await draft(officer, { caseReference: 'FOUR-EYES-2' });
    await n.node.updateDraft(approverB, edited, {
      content: mlaRequest(world, SN, KZ, { caseReference: 'FOUR-EYES-2b' }),
    });
    n.node.submitForApproval(officer, edited);
    expect(await codeOf(n.node.approve(approverB, edited))).toBe('FOUR_EYES_VIOLATION');
    expect(await codeOf(n.node.approve(officer, edited))).toBe('NOT_AUTHORISED');
    const envelopeId = await n.node.approve(approverA, edited);
    expect(envelopeId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(n.node.show(officer, edited)).toMatchObject({
      status: 'approved',
      caseReference: 'FOUR-EYES-2b',
      approvals: [{ username: 'approver-a', decision: 'approved' }],
    });
    // Sealed and queued: it can no longer be edited or approved again.
    expect(await codeOf(n.node.approve(approverB, edited))).toBe('INVALID_STATE');
    expect(
      await codeOf(n.node.updateDraft(officer, edited, { content: mlaRequest(world, SN, KZ) })),
    ).toBe('INVALID_STATE');
  });

  it('roles: admins manage users but neither draft nor read; officers cannot manage users', async () => {
    expect(await codeOf(draft(n.admin))).toBe('NOT_AUTHORISED');
    expect(code(() => n.node.list(n.admin))).toBe('NOT_AUTHORISED');
    expect(code(() => n.node.listUsers(officer))).toBe('NOT_AUTHORISED');
    expect(
      code(() =>
        n.node.addUser(officer, {
          username: 'x-user',
          password: PASSWORD,
          role: 'admin',
          clearances: [],
        }),
      ),
    ).toBe('NOT_AUTHORISED');
    expect(
      code(() =>
        n.node.addUser(null, {
          username: 'x-user',
          password: PASSWORD,
          role: 'admin',
          clearances: [],
        }),
      ),
    ).toBe('NOT_AUTHORISED');
    expect(
      code(() =>
        n.node.addUser(n.admin, {
          username: 'officer',
          password: PASSWORD,
          role: 'officer',
          clearances: [],
        }),
      ),
    ).toBe('USER_EXISTS');
    expect(code(() => n.node.login('officer', 'wrong password!'))).toBe('AUTHENTICATION_FAILED');
    expect(code(() => n.node.login('nobody', PASSWORD))).toBe('AUTHENTICATION_FAILED');
  });

  it('handling codes: composing, listing, showing, opening and approving need the clearance', async () => {
    expect(await codeOf(draft(uncleared, { handlingCode: 'restricted' }))).toBe(
      'CLEARANCE_REQUIRED',
    );
    const wp = await draft(officer, {
      handlingCode: 'witness-protection',
      caseReference: 'WP-CASE-1',
    });
    const row = n.node.list(uncleared).find((d) => d.id === wp);
    expect(row).toMatchObject({ redacted: true, handlingCode: 'witness-protection' });
    expect(row?.caseReference).toBeUndefined();
    expect(n.node.list(uncleared, { caseReference: 'WP-CASE' })).toEqual([]);
    expect(n.node.list(officer, { caseReference: 'wp-case' }).map((d) => d.id)).toEqual([wp]);
    expect(code(() => n.node.show(uncleared, wp))).toBe('CLEARANCE_REQUIRED');
    expect(code(() => n.node.open(uncleared, wp))).toBe('CLEARANCE_REQUIRED');
    n.node.submitForApproval(officer, wp);
    expect(await codeOf(n.node.approve(approverB, wp))).toBe('CLEARANCE_REQUIRED');
    await n.node.approve(approverA, wp);
    expect(n.node.cases(uncleared).find((c) => c.dossiers.some((d) => d.id === wp))).toMatchObject({
      redacted: true,
    });
  });

  it('a disabled user is refused at once, even holding a logged-in actor', async () => {
    const temp = n.user('temp-officer', 'officer', ['restricted']);
    n.node.disableUser(n.admin, 'temp-officer');
    expect(await codeOf(draft(temp))).toBe('AUTHENTICATION_FAILED');
    expect(code(() => n.node.login('temp-officer', PASSWORD))).toBe('AUTHENTICATION_FAILED');
    expect(n.node.listUsers(n.admin).find((u) => u.username === 'temp-officer')?.disabled).toBe(
      true,
    );
  });

  it('stops the drafter on invalid content, unknown recipients and deadlines already past', async () => {
    const content = mlaRequest(world, SN, KZ);
    const { caseReference: _drop, ...header } =
      content.kind === 'request' ? content.header : ({} as never);
    const err = await n.node
      .compose(officer, {
        content: { ...content, header },
        attachments: files.map((f) => ({ path: f.path })),
      })
      .catch((e: unknown) => e);
    expect(isNodeError(err, 'CONTENT_INVALID')).toBe(true);
    expect((err as { issues: { path: string }[] }).issues.map((i) => i.path)).toContain(
      '/header/caseReference',
    );

    // The request refers to attachment 0: without attachments it is incomplete (rule A1).
    expect(
      await codeOf(
        n.node.compose(officer, { content: mlaRequest(world, SN, KZ), attachments: [] }),
      ),
    ).toBe('CONTENT_INVALID');
    const toNobody = {
      ...content,
      header: {
        ...(content.kind === 'request' ? content.header : ({} as never)),
        requestedAuthority: { address: 'nobody@casc', name: 'Nobody', country: 'KZ' },
      },
    };
    expect(
      await codeOf(
        n.node.compose(officer, {
          content: toNobody,
          attachments: files.map((f) => ({ path: f.path })),
        }),
      ),
    ).toBe('RECIPIENT_UNKNOWN');
    expect(
      await codeOf(
        n.node.compose(officer, {
          content: mlaRequest(world, SN, KZ),
          recipients: ['nobody@casc'],
          attachments: files.map((f) => ({ path: f.path })),
        }),
      ),
    ).toBe('RECIPIENT_UNKNOWN');
    expect(
      await codeOf(
        n.node.compose(officer, {
          content: mlaRequest(world, SN, KZ, { deadline: '2020-01-01' }),
          attachments: files.map((f) => ({ path: f.path })),
        }),
      ),
    ).toBe('CONTENT_INVALID');
    expect(
      await codeOf(
        n.node.compose(officer, {
          content: mlaRequest(world, SN, KZ),
          attachments: [{ path: files[0]!.path }, { path: join(tmp.path, 'missing.pdf') }],
        }),
      ),
    ).toBe('INPUT_INVALID');
  });

  it('lists overdue dossiers once their deadline has passed, and files them by case reference, counterpart, type and status', async () => {
    const tomorrow = new Date(now + DAY).toISOString().slice(0, 10);
    const id = await draft(officer, { deadline: tomorrow, caseReference: 'DEADLINE-CASE' });
    expect(n.node.overdue(officer).map((d) => d.id)).not.toContain(id);
    const saved = now;
    now += 3 * DAY;
    try {
      expect(n.node.overdue(officer).map((d) => d.id)).toContain(id);
      // A deadline in the past stops submission too (T2, checked again at each step).
      expect(code(() => n.node.submitForApproval(officer, id))).toBe('CONTENT_INVALID');
    } finally {
      now = saved;
    }
    expect(
      n.node
        .list(officer, { counterpart: KZ, type: 'mla', status: 'draft', caseReference: 'deadline' })
        .map((d) => d.id),
    ).toEqual([id]);
    expect(n.node.list(officer, { counterpart: 'ng-agf@wacap' })).toEqual([]);
    expect(n.node.list(officer, { since: now + DAY })).toEqual([]);
  });

  it('audits every state change without content, and detects altered, truncated and rolled-back logs', async () => {
    const entries = n.node.auditEntries(n.admin);
    expect(entries.map((e) => e.action)).toEqual(
      expect.arrayContaining([
        'node.init',
        'user.add',
        'user.disable',
        'auth.failed',
        'dossier.compose',
        'dossier.update',
        'dossier.submit',
        'dossier.approve',
      ]),
    );
    const text = JSON.stringify(entries);
    for (const secret of ['FOUR-EYES', 'WP-CASE', 'Jane SPECIMEN', PASSWORD])
      expect(text).not.toContain(secret);
    expect(n.node.verifyAudit(n.admin).ok).toBe(true);
    expect(code(() => n.node.verifyAudit(officer))).toBe('NOT_AUTHORISED');

    const db = new Database(join(n.dir, 'mailbox.db'));
    const last = db.prepare('SELECT * FROM audit ORDER BY seq DESC LIMIT 1').get() as Record<
      string,
      unknown
    >;
    db.prepare('DELETE FROM audit WHERE seq = ?').run(last['seq']);
    db.close();
    expect(n.node.verifyAudit(n.admin).problems.map((p) => p.code)).toContain('TRUNCATED');

    // Put the entry back: intact again.
    const db2 = new Database(join(n.dir, 'mailbox.db'));
    db2
      .prepare(
        'INSERT INTO audit (seq, at, actor, action, target, detail, prev_hash, hash) VALUES (@seq, @at, @actor, @action, @target, @detail, @prev_hash, @hash)',
      )
      .run(last);
    db2.close();
    expect(n.node.verifyAudit(n.admin).ok).toBe(true);

    // Truncating the table head along with the entries is caught by the head kept outside the database.
    const db3 = new Database(join(n.dir, 'mailbox.db'));
    const head = db3.prepare('SELECT * FROM audit_head').get() as { seq: number };
    const prev = db3.prepare('SELECT seq, hash FROM audit WHERE seq = ?').get(head.seq - 1) as {
      seq: number;
      hash: string;
    };
    db3.prepare('DELETE FROM audit WHERE seq = ?').run(head.seq);
    db3.prepare('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1').run(prev.seq, prev.hash);
    db3.close();
    expect(n.node.verifyAudit(n.admin).problems.map((p) => p.code)).toEqual(
      expect.arrayContaining(['HEAD_INVALID', 'TRUNCATED']),
    );

    await unlink(join(n.dir, 'audit-head.json'));
    expect(n.node.verifyAudit(n.admin).problems.map((p) => p.code)).toContain('HEAD_MISSING');
  });
});
