/**
 * Everyday administration (issue 13 item 2): password change and reset,
 * roles, clearances, enabling accounts, the audit list and export, cases
 * and a request joining the case its reference names. Library, REST and
 * CLI, each with its refusals.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestWorld } from '@rogatory/protocol/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntryHash } from '../src/administration/audit-log.js';
import { buildNodeApi, isNodeError } from '../src/index.js';
import { parseSince } from '../src/cli/ops-commands.js';
import {
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
const NEW_PASSWORD = 'another long password';

describe('accounts, audit list and export, cases', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let n: NodeFixture;
  let attachment: string;

  beforeAll(async () => {
    world = await offlineWorld();
    tmp = await tempDir();
    n = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn') });
    attachment = (await randomFile(tmp.path, 'warrant.pdf', 2048)).path;
  }, 60_000);

  afterAll(async () => {
    await n.node.close();
    await tmp.remove();
  });

  const compose = (actor: ReturnType<NodeFixture['user']>, ref: string, extra = {}) =>
    n.node.compose(actor, {
      content: mlaRequest(world, SN, KZ, { caseReference: ref }),
      attachments: [{ path: attachment }, { path: attachment }],
      ...extra,
    });

  it('changes a password only with the current one, and the old one stops working', () => {
    const officer = n.user('awa', 'officer');
    expect(() => n.node.changePassword(officer, 'not the password', NEW_PASSWORD)).toThrow(
      expect.objectContaining({ code: 'AUTHENTICATION_FAILED' }),
    );
    expect(() => n.node.changePassword(officer, PASSWORD, PASSWORD)).toThrow(
      expect.objectContaining({ code: 'INPUT_INVALID' }),
    );
    expect(() => n.node.changePassword(officer, PASSWORD, 'short')).toThrow();
    n.node.changePassword(officer, PASSWORD, NEW_PASSWORD);
    expect(() => n.node.login('awa', PASSWORD)).toThrow(
      expect.objectContaining({ code: 'AUTHENTICATION_FAILED' }),
    );
    expect(n.node.login('awa', NEW_PASSWORD).username).toBe('awa');
  });

  it('lets only an admin reset, re-role, re-clear and enable accounts, and keeps one enabled admin', () => {
    const officer = n.user('binta', 'officer');
    for (const attempt of [
      () => n.node.resetPassword(officer, 'awa', NEW_PASSWORD),
      () => n.node.setUserRole(officer, 'binta', 'admin'),
      () => n.node.setUserClearances(officer, 'binta', ['sealed']),
      () => n.node.enableUser(officer, 'binta'),
    ])
      expect(attempt).toThrow(expect.objectContaining({ code: 'NOT_AUTHORISED' }));

    n.node.resetPassword(n.admin, 'binta', NEW_PASSWORD);
    expect(n.node.login('binta', NEW_PASSWORD).username).toBe('binta');
    expect(() => n.node.resetPassword(n.admin, 'admin', NEW_PASSWORD)).toThrow(
      expect.objectContaining({ code: 'INVALID_STATE' }),
    );
    expect(() => n.node.resetPassword(n.admin, 'nobody', NEW_PASSWORD)).toThrow(
      expect.objectContaining({ code: 'NOT_FOUND' }),
    );

    // A role change takes effect at once for the logged-in actor.
    expect(n.node.setUserRole(n.admin, 'binta', 'approver').role).toBe('approver');
    expect(n.node.listUsers(n.admin).find((u) => u.username === 'binta')?.role).toBe('approver');
    expect(() => n.node.setUserRole(n.admin, 'admin', 'officer')).toThrow(
      expect.objectContaining({ code: 'INVALID_STATE' }),
    );
    expect(() => n.node.setUserRole(n.admin, 'binta', 'superuser' as 'admin')).toThrow();

    expect(n.node.setUserClearances(n.admin, 'binta', ['restricted', 'sealed']).clearances).toEqual(
      ['restricted', 'sealed'],
    );
    expect(n.node.setUserClearances(n.admin, 'binta', []).clearances).toEqual([]);

    n.node.disableUser(n.admin, 'binta');
    expect(() => n.node.login('binta', NEW_PASSWORD)).toThrow(
      expect.objectContaining({ code: 'AUTHENTICATION_FAILED' }),
    );
    expect(n.node.enableUser(n.admin, 'binta').disabled).toBe(false);
    expect(n.node.login('binta', NEW_PASSWORD).username).toBe('binta');

    const actions = n.node.auditEntries(n.admin, { target: 'binta' }).map((e) => e.action);
    expect(actions).toEqual([
      'user.add',
      'user.password-reset',
      'user.set-role',
      'user.set-clearance',
      'user.set-clearance',
      'user.disable',
      'user.enable',
    ]);
  });

  it('filters the audit log by actor, action and time, and refuses an unknown actor', () => {
    const mine = n.node.auditEntries(n.admin, { actor: 'admin', action: 'user.set-role' });
    expect(mine.map((e) => e.target)).toEqual(['binta']);
    expect(n.node.auditEntries(n.admin, { since: Date.now() + 60_000 })).toEqual([]);
    const awa = n.node.auditEntries(n.admin, { actor: 'awa' });
    expect(awa.map((e) => e.action)).toEqual(['user.password-change']);
    expect(() => n.node.auditEntries(n.admin, { actor: 'nobody' })).toThrow(
      expect.objectContaining({ code: 'NOT_FOUND' }),
    );
    expect(n.node.auditEntries(n.admin, { limit: 2 })).toHaveLength(2);
  });

  it('parses --since as an ISO date or an age, and refuses anything else', () => {
    const now = Date.parse('2026-12-05T12:00:00Z');
    expect(parseSince('90m', now)).toBe(now - 90 * 60_000);
    expect(parseSince('7d', now)).toBe(now - 7 * 86_400_000);
    expect(parseSince('2026-12-01', now)).toBe(Date.parse('2026-12-01'));
    expect(parseSince('2026-12-01T08:00Z', now)).toBe(Date.parse('2026-12-01T08:00Z'));
    for (const bad of ['yesterday', '7w', '2026-13-45', ''])
      expect(() => parseSince(bad, now)).toThrow(
        expect.objectContaining({ code: 'INPUT_INVALID' }),
      );
  });

  it('exports the audit log so that the chain recomputes away from the node, never over a file', async () => {
    const file = join(tmp.path, 'audit.jsonl');
    const result = n.node.exportAudit(n.admin, file);
    const lines = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ format: 'rogatory-audit-export/v1', node: SN });
    const entries = lines.slice(1, -1) as unknown as {
      seq: number;
      at: number;
      actor: string;
      action: string;
      target: string | null;
      detail: string | null;
      prevHash: string;
      hash: string;
    }[];
    expect(entries).toHaveLength(result.entries);
    let prev = '0'.repeat(64);
    for (const e of entries) {
      expect(e.prevHash).toBe(prev);
      expect(auditEntryHash(e, prev)).toBe(e.hash);
      prev = e.hash;
    }
    expect(entries.at(-1)?.action).toBe('audit.export');
    expect(lines.at(-1)).toMatchObject({ ok: true, head: { hash: prev } });
    expect(() => n.node.exportAudit(n.admin, file)).toThrow(
      expect.objectContaining({ code: 'PATH_REFUSED' }),
    );
    const officer = n.node.login('awa', NEW_PASSWORD);
    expect(() => n.node.exportAudit(officer, join(tmp.path, 'x.jsonl'))).toThrow(
      expect.objectContaining({ code: 'NOT_AUTHORISED' }),
    );
  });

  it('joins a request to the one case its reference names, unless asked for a new case', async () => {
    const officer = n.user('cheikh', 'officer', ['restricted']);
    const first = await compose(officer, 'SN-JOIN-1');
    const second = await compose(officer, 'SN-JOIN-1');
    const caseOf = (id: string) => n.node.show(officer, id).caseId;
    expect(caseOf(second)).toBe(caseOf(first));
    const separate = await compose(officer, 'SN-JOIN-1', { newCase: true });
    expect(caseOf(separate)).not.toBe(caseOf(first));
    // Now two cases carry the reference: the officer must choose.
    await expect(compose(officer, 'SN-JOIN-1')).rejects.toSatisfy(
      (e) => isNodeError(e, 'INPUT_INVALID') && (e as Error).message.includes('--case'),
    );
    const chosen = await compose(officer, 'SN-JOIN-1', { caseId: caseOf(first) });
    expect(caseOf(chosen)).toBe(caseOf(first));
    const c = n.node.cases(officer).find((x) => x.id === caseOf(first));
    expect(c?.dossiers.map((d) => d.id)).toEqual([first, second, chosen]);
  });

  describe('REST', () => {
    let app: FastifyInstance;
    let token: string;

    beforeAll(async () => {
      app = await buildNodeApi({ node: n.node, logger: false });
      const login = await app.inject({
        method: 'POST',
        url: '/api/v1/login',
        payload: { username: 'admin', password: PASSWORD },
      });
      token = login.json<{ token: string }>().token;
    });
    afterAll(async () => {
      await app.close();
    });
    const call = (method: 'GET' | 'PUT' | 'POST', url: string, payload?: unknown, t = token) =>
      app.inject({
        method,
        url: `/api/v1${url}`,
        headers: { authorization: `Bearer ${t}` },
        ...(payload === undefined ? {} : { payload: payload as object }),
      });

    it('manages accounts, ends the sessions of a user whose password is reset, and refuses bad bodies', async () => {
      n.user('dieynaba', 'officer');
      const login = await app.inject({
        method: 'POST',
        url: '/api/v1/login',
        payload: { username: 'dieynaba', password: PASSWORD },
      });
      const theirs = login.json<{ token: string }>().token;
      expect((await call('GET', '/cases', undefined, theirs)).statusCode).toBe(200);

      const reset = await call('PUT', '/users/dieynaba/password', { password: NEW_PASSWORD });
      expect(reset.statusCode).toBe(200);
      expect((await call('GET', '/cases', undefined, theirs)).statusCode).toBe(401);

      const role = await call('PUT', '/users/dieynaba/role', { role: 'approver' });
      expect(role.json()).toMatchObject({ username: 'dieynaba', role: 'approver' });
      const bad = await call('PUT', '/users/dieynaba/role', { role: 'root' });
      expect(bad.statusCode).toBe(400);
      expect(bad.json<{ error: { code: string } }>().error.code).toBe('INPUT_INVALID');
      const cleared = await call('PUT', '/users/dieynaba/clearances', { clearances: ['sealed'] });
      expect(cleared.json()).toMatchObject({ clearances: ['sealed'] });
      expect((await call('PUT', '/users/ghost/role', { role: 'officer' })).statusCode).toBe(404);
      expect((await call('POST', '/users/dieynaba/enable')).statusCode).toBe(200);

      const relog = await app.inject({
        method: 'POST',
        url: '/api/v1/login',
        payload: { username: 'dieynaba', password: NEW_PASSWORD },
      });
      const again = relog.json<{ token: string }>().token;
      const wrong = await call(
        'POST',
        '/me/password',
        { current: 'nope', password: PASSWORD },
        again,
      );
      expect(wrong.json<{ error: { code: string } }>().error.code).toBe('AUTHENTICATION_FAILED');
      const mine = await call(
        'POST',
        '/me/password',
        { current: NEW_PASSWORD, password: PASSWORD },
        again,
      );
      expect(mine.statusCode).toBe(200);
      // An officer may not manage accounts.
      const relog2 = await app.inject({
        method: 'POST',
        url: '/api/v1/login',
        payload: { username: 'awa', password: NEW_PASSWORD },
      });
      const awa = relog2.json<{ token: string }>().token;
      expect((await call('PUT', '/users/awa/role', { role: 'admin' }, awa)).statusCode).toBe(403);
    });

    it('lists audit entries with usernames, filtered', async () => {
      const res = await call('GET', '/audit?actor=admin&action=user.set-role');
      expect(res.statusCode).toBe(200);
      const entries = res.json<{ entries: { actor: string; target: string }[] }>().entries;
      expect(entries.map((e) => e.target)).toEqual(['binta', 'dieynaba']);
      expect(entries.every((e) => e.actor === 'admin')).toBe(true);
      expect((await call('GET', '/audit?action=user.nonsense')).statusCode).toBe(400);
    });
  });

  describe('CLI', () => {
    const cli = (args: string[], env: Record<string, string> = {}) =>
      runCliCaptured(['--dir', n.dir, ...args], env);

    beforeAll(async () => {
      await n.node.close();
    });

    it('user passwd, reset-password, set-role, set-clearance, enable', async () => {
      const passwd = await cli(['--user', 'cheikh', '--json', 'user', 'passwd'], {
        ROGATORY_NEW_PASSWORD: NEW_PASSWORD,
      });
      expect(passwd.code).toBe(0);
      expect(JSON.parse(passwd.out)).toMatchObject({ username: 'cheikh' });
      const wrong = await cli(['--user', 'cheikh', 'user', 'passwd'], {
        ROGATORY_NEW_PASSWORD: 'yet another long password',
      });
      expect(wrong.code).toBe(3);
      expect(wrong.err).toContain('AUTHENTICATION_FAILED');

      const reset = await cli(['--user', 'admin', 'user', 'reset-password', 'cheikh'], {
        ROGATORY_NEW_PASSWORD: PASSWORD,
      });
      expect(reset.code).toBe(0);
      expect(reset.out).toContain('password of cheikh reset');

      const role = await cli(['--user', 'admin', 'user', 'set-role', 'cheikh', 'approver']);
      expect(role.out).toContain('cheikh is now approver');
      const badRole = await cli(['--user', 'admin', 'user', 'set-role', 'cheikh', 'root']);
      expect(badRole.code).toBe(1);
      expect(badRole.err).toContain('the role must be one of officer, approver, admin');

      const clear = await cli([
        '--user',
        'admin',
        '--json',
        'user',
        'set-clearance',
        'cheikh',
        'restricted',
        'sealed',
      ]);
      expect(JSON.parse(clear.out)).toMatchObject({ clearances: ['restricted', 'sealed'] });
      const badClear = await cli([
        '--user',
        'admin',
        'user',
        'set-clearance',
        'cheikh',
        'top-secret',
      ]);
      expect(badClear.code).toBe(1);
      expect(badClear.err).toContain('unknown clearance top-secret');

      expect((await cli(['--user', 'admin', 'user', 'disable', 'cheikh'])).code).toBe(0);
      expect((await cli(['--user', 'cheikh', 'cases'])).code).toBe(3);
      expect((await cli(['--user', 'admin', 'user', 'enable', 'cheikh'])).code).toBe(0);
      expect((await cli(['--user', 'cheikh', 'cases'])).code).toBe(0);
    });

    it('audit list and audit export', async () => {
      const list = await cli([
        '--user',
        'admin',
        '--json',
        'audit',
        'list',
        '--actor',
        'admin',
        '--action',
        'user.set-role',
      ]);
      expect(list.code).toBe(0);
      const rows = JSON.parse(list.out) as { actor: string; target: string }[];
      expect(rows.map((r) => r.target)).toEqual(['binta', 'dieynaba', 'cheikh']);
      expect(rows.every((r) => r.actor === 'admin')).toBe(true);
      const table = await cli([
        '--user',
        'admin',
        'audit',
        'list',
        '--since',
        '1d',
        '--limit',
        '5',
      ]);
      expect(table.out).toMatch(/^SEQ +AT +ACTOR +ACTION/);
      expect(table.out.trim().split('\n')).toHaveLength(6);
      const badSince = await cli(['--user', 'admin', 'audit', 'list', '--since', 'last week']);
      expect(badSince.code).toBe(1);
      expect(badSince.err).toContain('--since');
      const badAction = await cli(['--user', 'admin', 'audit', 'list', '--action', 'nope']);
      expect(badAction.err).toContain('--action nope is not an audit action');
      const officer = await cli(['--user', 'awa', 'audit', 'list'], {
        ROGATORY_PASSWORD: NEW_PASSWORD,
      });
      expect(officer.code).toBe(3);

      const out = join(tmp.path, 'cli-audit.jsonl');
      const exported = await cli(['--user', 'admin', 'audit', 'export', '--out', out]);
      expect(exported.code).toBe(0);
      expect(exported.out).toContain(`audit log exported to ${out}`);
      const again = await cli(['--user', 'admin', 'audit', 'export', '--out', out]);
      expect(again.code).toBe(1);
      expect(again.err).toContain(`${out} exists already`);
    });

    it('cases list and cases show, by id or reference', async () => {
      const list = await cli(['--user', 'cheikh', '--json', 'cases']);
      const cases = JSON.parse(list.out) as {
        id: string;
        caseReference: string;
        dossiers: unknown[];
      }[];
      const joined = cases.filter((c) => c.caseReference === 'SN-JOIN-1');
      expect(joined.map((c) => c.dossiers.length).sort()).toEqual([1, 3]);
      const big = joined.find((c) => c.dossiers.length === 3)!;
      const shown = await cli(['--user', 'cheikh', 'cases', 'show', big.id]);
      expect(shown.code).toBe(0);
      expect(shown.out).toContain(`case ${big.id}  reference SN-JOIN-1`);
      expect(shown.out.match(/ sent +request/g)).toHaveLength(3);
      const ambiguous = await cli(['--user', 'cheikh', 'cases', 'show', 'SN-JOIN-1']);
      expect(ambiguous.code).toBe(1);
      expect(ambiguous.err).toContain('names 2 cases');
      const missing = await cli(['--user', 'cheikh', 'cases', 'show', 'NO-SUCH-CASE']);
      expect(missing.code).toBe(6);
      const filtered = await cli(['--user', 'cheikh', 'cases', 'list', '--reference', 'join']);
      expect(filtered.out.trim().split('\n')).toHaveLength(3);
    });
  });
});
