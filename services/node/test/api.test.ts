import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestWorld } from '@rogatory/protocol/testing';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ERRORS, buildNodeApi } from '../src/index.js';
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
const V1 = '/api/v1';

interface ErrorReply {
  error: {
    code: string;
    message: string;
    detail?: string;
    issues?: { path: string; message: string }[];
  };
}

function errorOf(res: LightMyRequestResponse): ErrorReply['error'] {
  const body = res.json<ErrorReply>();
  expect(Object.keys(body)).toEqual(['error']);
  return body.error;
}

describe('REST API (app.inject, one offline node)', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let n: NodeFixture;
  let app: FastifyInstance;
  let now = Date.now();
  const logLines: string[] = [];
  let files: { path: string }[];
  const tokens: Record<string, string> = {};

  async function login(username: string, password = PASSWORD): Promise<LightMyRequestResponse> {
    return app.inject({ method: 'POST', url: `${V1}/login`, payload: { username, password } });
  }

  function as(username: string) {
    const headers = { authorization: `Bearer ${tokens[username]!}` };
    return {
      get: (url: string) => app.inject({ method: 'GET', url: `${V1}${url}`, headers }),
      post: (url: string, payload?: object) =>
        app.inject({
          method: 'POST',
          url: `${V1}${url}`,
          headers,
          ...(payload === undefined ? {} : { payload }),
        }),
      put: (url: string, payload: object) =>
        app.inject({ method: 'PUT', url: `${V1}${url}`, headers, payload }),
    };
  }

  const draftBody = (patch: Parameters<typeof mlaRequest>[3] = {}) => ({
    content: mlaRequest(world, SN, KZ, patch),
    attachments: files.map((f) => ({ path: f.path })),
  });

  beforeAll(async () => {
    world = await offlineWorld();
    tmp = await tempDir();
    n = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn') });
    n.user('officer', 'officer', ['restricted', 'witness-protection']);
    n.user('approver-a', 'approver', ['restricted', 'witness-protection']);
    n.user('approver-b', 'approver', ['restricted', 'witness-protection']);
    n.user('uncleared', 'officer', []);
    files = [await randomFile(tmp.path, 'a.pdf', 3000), await randomFile(tmp.path, 'b.pdf', 4000)];
    app = await buildNodeApi({
      node: n.node,
      clock: () => now,
      sessionTtlMs: 60_000,
      loginLimits: {
        perUserAndAddress: 3,
        perAddress: 8,
        baseDelayMs: 60_000,
        maxDelayMs: 60_000,
      },
      logger: { level: 'debug', stream: { write: (line: string) => logLines.push(line) } },
    });
    for (const u of ['admin', 'officer', 'approver-a', 'approver-b', 'uncleared']) {
      const res = await login(u);
      expect(res.statusCode).toBe(200);
      tokens[u] = res.json<{ token: string }>().token;
    }
  });

  afterAll(async () => {
    await app.close();
    await n.node.close();
    await tmp.remove();
  });

  describe('sessions', () => {
    it('logs in with a 32-byte base64url token, the user and an expiry', async () => {
      const res = await login('officer');
      expect(res.statusCode).toBe(200);
      const body = res.json<{ token: string; expiresAt: number; user: unknown }>();
      expect(body.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(body.token, 'base64url')).toHaveLength(32);
      expect(body.expiresAt).toBe(now + 60_000);
      expect(body.user).toEqual({
        username: 'officer',
        roles: ['officer'],
        clearances: ['restricted', 'witness-protection'],
      });
    });

    it('refuses a wrong password, a missing, malformed or unknown token', async () => {
      const wrong = await login('approver-b', 'not the password at all');
      expect(wrong.statusCode).toBe(401);
      expect(errorOf(wrong).code).toBe('AUTHENTICATION_FAILED');
      for (const authorization of [undefined, 'Bearer', 'Basic abc', `Bearer ${'A'.repeat(43)}`]) {
        const res = await app.inject({
          method: 'GET',
          url: `${V1}/dossiers`,
          ...(authorization === undefined ? {} : { headers: { authorization } }),
        });
        expect(res.statusCode).toBe(401);
        expect(errorOf(res).code).toBe('UNAUTHENTICATED');
      }
    });

    it('logout ends the session at once; other sessions of the user stay', async () => {
      const token = (await login('officer')).json<{ token: string }>().token;
      const headers = { authorization: `Bearer ${token}` };
      expect((await app.inject({ method: 'GET', url: `${V1}/dossiers`, headers })).statusCode).toBe(
        200,
      );
      const out = await app.inject({ method: 'POST', url: `${V1}/logout`, headers });
      expect(out.json()).toEqual({ ok: true });
      const after = await app.inject({ method: 'GET', url: `${V1}/dossiers`, headers });
      expect(after.statusCode).toBe(401);
      expect(errorOf(after).code).toBe('UNAUTHENTICATED');
      expect((await as('officer').get('/dossiers')).statusCode).toBe(200);
    });

    it('sessions expire after their TTL', async () => {
      const token = (await login('officer')).json<{ token: string }>().token;
      const headers = { authorization: `Bearer ${token}` };
      now += 59_000;
      expect((await app.inject({ method: 'GET', url: `${V1}/status`, headers })).statusCode).toBe(
        200,
      );
      now += 1_000;
      const expired = await app.inject({ method: 'GET', url: `${V1}/status`, headers });
      expect(expired.statusCode).toBe(401);
      expect(errorOf(expired).code).toBe('UNAUTHENTICATED');
      // The shared tokens were issued a minute ago as well: renew them.
      for (const u of Object.keys(tokens))
        tokens[u] = (await login(u)).json<{ token: string }>().token;
    });

    it('throttles failed logins per username and address, even with the right password from there, then per address', async () => {
      n.user('target', 'officer');
      for (let i = 0; i < 3; i++)
        expect((await login('target', 'wrong password!')).statusCode).toBe(401);
      const blocked = await login('target');
      expect(blocked.statusCode).toBe(429);
      expect(errorOf(blocked).code).toBe('RATE_LIMITED');
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
      // Other usernames still log in until the address budget (8 failures) is spent.
      expect((await login('officer')).statusCode).toBe(200);
      for (let i = 0; i < 5; i++) await login(`nobody-${i}`, 'wrong password!');
      expect(errorOf(await login('officer')).code).toBe('RATE_LIMITED');
      now += 60_000;
      expect((await login('target')).statusCode).toBe(200);
      for (const u of Object.keys(tokens))
        tokens[u] = (await login(u)).json<{ token: string }>().token;
    });
  });

  describe('dossiers', () => {
    it('compose → submit → four eyes → approve over HTTP', async () => {
      const created = await as('approver-a').post(
        '/dossiers',
        draftBody({ caseReference: 'API-4EYES-1' }),
      );
      expect(created.statusCode).toBe(201);
      const { id } = created.json<{ id: string; status: string }>();
      // No warning: the recipient accepts the type and language of the request.
      expect(created.json()).toEqual({ id, status: 'draft', warnings: [] });

      expect((await as('approver-a').post(`/dossiers/${id}/submit`)).json()).toEqual({
        id,
        status: 'awaiting-approval',
        warnings: [],
      });
      const own = await as('approver-a').post(`/dossiers/${id}/approve`);
      expect(own.statusCode).toBe(403);
      expect(errorOf(own).code).toBe('FOUR_EYES_VIOLATION');
      const officer = await as('officer').post(`/dossiers/${id}/approve`);
      expect(officer.statusCode).toBe(403);
      expect(errorOf(officer).code).toBe('NOT_AUTHORISED');

      const approved = await as('approver-b').post(`/dossiers/${id}/approve`);
      expect(approved.statusCode).toBe(200);
      expect(approved.json()).toMatchObject({
        id,
        status: 'approved',
        envelopeId: expect.any(String),
      });

      const shown = await as('officer').get(`/dossiers/${id}`);
      expect(shown.statusCode).toBe(200);
      expect(shown.json()).toMatchObject({
        id,
        status: 'approved',
        caseReference: 'API-4EYES-1',
        draftedBy: 'approver-a',
        approvals: [expect.objectContaining({ username: 'approver-b' })],
      });
      const again = await as('approver-b').post(`/dossiers/${id}/approve`);
      expect(again.statusCode).toBe(409);
      expect(errorOf(again).code).toBe('INVALID_STATE');

      const ev = await as('officer').get(`/dossiers/${id}/evidences`);
      expect(ev.statusCode).toBe(200);
      expect(ev.json<{ envelope: { id?: string } }>().envelope).toBeDefined();
    });

    it('update, return and open a draft; filters on the list', async () => {
      const { id } = (
        await as('officer').post('/dossiers', draftBody({ caseReference: 'API-EDIT-1' }))
      ).json<{
        id: string;
      }>();
      const updated = await as('officer').put(`/dossiers/${id}`, {
        content: mlaRequest(world, SN, KZ, { caseReference: 'API-EDIT-2' }),
        keepAttachments: true,
      });
      expect(updated.statusCode).toBe(200);
      await as('officer').post(`/dossiers/${id}/submit`);
      expect((await as('approver-a').post(`/dossiers/${id}/return`)).json()).toEqual({
        id,
        status: 'draft',
        warnings: [],
      });

      const opened = await as('officer').post(`/dossiers/${id}/open`);
      expect(opened.statusCode).toBe(200);
      const view = opened.json<{
        content: { header: { caseReference: string } };
        attachments: { name: string }[];
      }>();
      expect(view.content.header.caseReference).toBe('API-EDIT-2');
      expect(view.attachments.map((a) => a.name)).toEqual(['a.pdf', 'b.pdf']);

      const listed = await as('officer').get(
        '/dossiers?caseReference=api-edit-2&status=draft&direction=out',
      );
      expect(listed.json<{ dossiers: { id: string }[] }>().dossiers.map((d) => d.id)).toEqual([id]);
      const none = await as('officer').get(
        '/dossiers?caseReference=api-edit-2&status=sent&status=approved',
      );
      expect(none.json<{ dossiers: unknown[] }>().dossiers).toEqual([]);
      const future = await as('officer').get('/dossiers?from=2999-01-01');
      expect(future.json<{ dossiers: unknown[] }>().dossiers).toEqual([]);
      const today = new Date(now).toISOString().slice(0, 10);
      const todays = await as('officer').get(
        `/dossiers?from=${today}&to=${today}&caseReference=API-EDIT-2`,
      );
      expect(todays.json<{ dossiers: unknown[] }>().dossiers).toHaveLength(1);
      expect((await as('officer').get('/overdue')).statusCode).toBe(200);
      const cases = await as('officer').get('/cases');
      const ofCase = cases
        .json<{ cases: { dossiers: { id: string }[] }[] }>()
        .cases.filter((c) => c.dossiers.some((d) => d.id === id));
      expect(ofCase).toHaveLength(1);
    });

    it('a witness-protection dossier: redacted in lists and 403 CLEARANCE_REQUIRED for an uncleared officer', async () => {
      const { id } = (
        await as('officer').post(
          '/dossiers',
          draftBody({ caseReference: 'API-WP-1', handlingCode: 'witness-protection' }),
        )
      ).json<{ id: string }>();
      for (const res of [
        await as('uncleared').get(`/dossiers/${id}`),
        await as('uncleared').post(`/dossiers/${id}/open`),
        await as('uncleared').get(`/dossiers/${id}/evidences`),
      ]) {
        expect(res.statusCode).toBe(403);
        expect(errorOf(res).code).toBe('CLEARANCE_REQUIRED');
        expect(res.body).not.toContain('API-WP-1');
      }
      const listed = await as('uncleared').get('/dossiers');
      const row = listed
        .json<{ dossiers: Record<string, unknown>[] }>()
        .dossiers.find((d) => d['id'] === id);
      expect(row).toMatchObject({ redacted: true, handlingCode: 'witness-protection' });
      expect(row).not.toHaveProperty('caseReference');
      expect(listed.body).not.toContain('API-WP-1');
      expect((await as('officer').get(`/dossiers/${id}`)).json()).toMatchObject({
        caseReference: 'API-WP-1',
      });
    });

    it('invalid content → 422 CONTENT_INVALID with issues naming fields, never values', async () => {
      const content = mlaRequest(world, SN, KZ, { caseReference: 'API-BAD-1' }) as unknown as {
        header: Record<string, unknown>;
      };
      const broken = {
        ...content,
        header: { ...content.header, caseReference: '', deadline: 'SECRET-VALUE' },
      };
      const res = await as('officer').post('/dossiers', {
        content: broken,
        attachments: files.map((f) => ({ path: f.path })),
      });
      expect(res.statusCode).toBe(422);
      const err = errorOf(res);
      expect(err.code).toBe('CONTENT_INVALID');
      expect(err.issues!.length).toBeGreaterThan(0);
      expect(err.issues!.every((i) => i.path.startsWith('/'))).toBe(true);
      expect(err.issues!.map((i) => i.path).join(' ')).toMatch(/\/header\//);
      expect(res.body).not.toContain('SECRET-VALUE');
    });

    it('an unreadable attachment path is a 400, not a 500', async () => {
      const res = await as('officer').post('/dossiers', {
        content: mlaRequest(world, SN, KZ),
        attachments: [{ path: join(tmp.path, 'missing.pdf') }, { path: files[0]!.path }],
      });
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).code).toBe('INPUT_INVALID');
    });
  });

  describe('malformed requests are typed 400s', () => {
    it('broken JSON, missing fields, extra fields, wrong types, bad ids and queries', async () => {
      const headers = {
        authorization: `Bearer ${tokens['officer']!}`,
        'content-type': 'application/json',
      };
      const broken = await app.inject({
        method: 'POST',
        url: `${V1}/dossiers`,
        headers,
        payload: '{"content": ',
      });
      expect(broken.statusCode).toBe(400);
      expect(errorOf(broken).code).toBe('INPUT_INVALID');

      const missing = await as('officer').post('/dossiers', { attachments: [] });
      expect(missing.statusCode).toBe(400);
      expect(errorOf(missing).issues).toContainEqual(
        expect.objectContaining({ path: '/body/content' }),
      );

      const extra = await as('officer').post('/dossiers', { content: {}, secret: 'x' });
      expect(errorOf(extra)).toMatchObject({
        code: 'INPUT_INVALID',
        issues: [expect.objectContaining({ path: '/body/secret' })],
      });

      const wrongType = await as('officer').post('/dossiers', { content: 'not an object' });
      expect(wrongType.statusCode).toBe(400);

      const badId = await as('officer').get('/dossiers/..%2F..%2Fetc');
      expect(badId.statusCode).toBe(400);
      expect(errorOf(badId).issues).toContainEqual(expect.objectContaining({ path: '/params/id' }));

      const unknownId = await as('officer').get('/dossiers/d-0000000000000000');
      expect(unknownId.statusCode).toBe(404);
      expect(errorOf(unknownId).code).toBe('NOT_FOUND');

      const badQuery = await as('officer').get('/dossiers?status=bogus&from=yesterday');
      expect(badQuery.statusCode).toBe(400);
      expect(errorOf(badQuery).code).toBe('INPUT_INVALID');
      const badDate = await as('officer').get('/dossiers?from=2026-13-45');
      expect(badDate.statusCode).toBe(400);

      const badLogin = await app.inject({
        method: 'POST',
        url: `${V1}/login`,
        payload: { username: 'x' },
      });
      expect(errorOf(badLogin).code).toBe('INPUT_INVALID');

      const noRoute = await as('officer').get('/nothing-here');
      expect(noRoute.statusCode).toBe(404);
      expect(errorOf(noRoute).code).toBe('ROUTE_NOT_FOUND');

      const badUrl = await app.inject({ method: 'GET', url: `${V1}/dossiers/%E0%A4%A`, headers });
      expect(badUrl.statusCode).toBe(400);
      expect(errorOf(badUrl).code).toBe('INPUT_INVALID');
    });
  });

  describe('users, audit, status, quarantine, sync', () => {
    it('admins manage accounts; a disabled account loses its sessions at once', async () => {
      const created = await as('admin').post('/users', {
        username: 'newbie',
        password: PASSWORD,
        role: 'officer',
        clearances: ['restricted'],
      });
      expect(created.statusCode).toBe(201);
      expect(created.json()).toEqual({
        username: 'newbie',
        role: 'officer',
        clearances: ['restricted'],
        disabled: false,
        createdAt: expect.any(Number),
      });
      expect(created.body).not.toContain(PASSWORD);
      const dup = await as('admin').post('/users', {
        username: 'newbie',
        password: PASSWORD,
        role: 'officer',
        clearances: [],
      });
      expect(dup.statusCode).toBe(409);
      expect(errorOf(dup).code).toBe('USER_EXISTS');
      const weak = await as('admin').post('/users', {
        username: 'weak',
        password: 'short',
        role: 'officer',
        clearances: [],
      });
      expect(errorOf(weak).code).toBe('INPUT_INVALID');

      tokens['newbie'] = (await login('newbie')).json<{ token: string }>().token;
      expect((await as('newbie').get('/dossiers')).statusCode).toBe(200);
      const listed = await as('admin').get('/users');
      expect(
        listed.json<{ users: { username: string }[] }>().users.map((u) => u.username),
      ).toContain('newbie');
      expect(listed.body).not.toMatch(/password|hash/i);

      const forbidden = await as('officer').get('/users');
      expect(forbidden.statusCode).toBe(403);
      expect(errorOf(forbidden).code).toBe('NOT_AUTHORISED');

      const disabled = await as('admin').post('/users/newbie/disable');
      expect(disabled.json()).toMatchObject({ username: 'newbie', disabled: true });
      expect(errorOf(await as('newbie').get('/dossiers')).code).toBe('UNAUTHENTICATED');
      expect(errorOf(await login('newbie')).code).toBe('AUTHENTICATION_FAILED');
      expect((await as('admin').post('/users/nobody/disable')).statusCode).toBe(404);
      expect((await as('admin').post('/users/Not%20A%20Name/disable')).statusCode).toBe(400);
    });

    it('admins see no dossiers; audit verify, status and quarantine', async () => {
      expect(errorOf(await as('admin').get('/dossiers')).code).toBe('NOT_AUTHORISED');
      const audit = await as('admin').get('/audit/verify');
      expect(audit.json()).toMatchObject({ ok: true, problems: [] });
      expect(errorOf(await as('officer').get('/audit/verify')).code).toBe('NOT_AUTHORISED');
      const status = await as('officer').get('/status');
      expect(status.json()).toMatchObject({ address: SN, users: expect.any(Number) });
      expect((await as('admin').get('/quarantine')).json()).toEqual({ quarantine: [] });
    });

    it('sync against an unreachable relay is a 503 RELAY_UNREACHABLE', async () => {
      const res = await as('officer').post('/sync');
      expect(res.statusCode).toBe(503);
      expect(errorOf(res).code).toBe('RELAY_UNREACHABLE');
    });
  });

  describe('documentation and logs', () => {
    const ROUTES = [
      'post /api/v1/login',
      'post /api/v1/logout',
      'get /api/v1/dossiers',
      'post /api/v1/dossiers',
      'get /api/v1/dossiers/{id}',
      'put /api/v1/dossiers/{id}',
      'post /api/v1/dossiers/{id}/submit',
      'post /api/v1/dossiers/{id}/approve',
      'post /api/v1/dossiers/{id}/return',
      'post /api/v1/dossiers/{id}/reply',
      'post /api/v1/dossiers/{id}/open',
      'get /api/v1/dossiers/{id}/evidences',
      'post /api/v1/dossiers/{id}/export',
      'get /api/v1/overdue',
      'get /api/v1/cases',
      'get /api/v1/quarantine',
      'get /api/v1/users',
      'post /api/v1/users',
      'post /api/v1/users/{username}/disable',
      'post /api/v1/users/{username}/enable',
      'put /api/v1/users/{username}/password',
      'put /api/v1/users/{username}/role',
      'put /api/v1/users/{username}/clearances',
      'post /api/v1/me/password',
      'get /api/v1/audit',
      'get /api/v1/audit/verify',
      'get /api/v1/status',
      'post /api/v1/sync',
      'post /api/v1/login-throttle/reset',
      'get /api/v1/directory',
      'get /api/v1/introductions',
      'post /api/v1/introductions/requests',
      'post /api/v1/introductions/{id}/issue',
      'post /api/v1/introductions/{id}/refer',
      'post /api/v1/introductions/{id}/decline',
      'get /api/v1/introductions/export',
      'post /api/v1/introductions/receive',
    ];

    it('GET /openapi.json is an OpenAPI 3 document with every route, its schemas and its error responses', async () => {
      const res = await app.inject({ method: 'GET', url: '/openapi.json' });
      expect(res.statusCode).toBe(200);
      const doc = JSON.parse(res.body) as {
        openapi: string;
        paths: Record<
          string,
          Record<
            string,
            {
              responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
              requestBody?: unknown;
              security?: unknown;
            }
          >
        >;
      };
      expect(doc.openapi).toMatch(/^3\./);
      const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.keys(ops).map((m) => `${m} ${path}`),
      );
      expect(documented.sort()).toEqual([...ROUTES].sort());
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          const statuses = Object.keys(op.responses);
          expect(
            statuses.some((s) => s === '200' || s === '201'),
            `${method} ${path}`,
          ).toBe(true);
          expect(statuses).toContain('400');
          expect(statuses).toContain('500');
          if (path !== '/api/v1/login') {
            expect(statuses, `${method} ${path}`).toContain('401');
            expect(op.security).toEqual([{ bearer: [] }]);
          }
          for (const s of statuses)
            expect(
              op.responses[s]!.content?.['application/json']?.schema,
              `${method} ${path} ${s}`,
            ).toBeDefined();
        }
      }
      for (const r of [
        'post /api/v1/login',
        'post /api/v1/dossiers',
        'put /api/v1/dossiers/{id}',
        'post /api/v1/users',
        'post /api/v1/dossiers/{id}/export',
      ]) {
        const [m, p] = r.split(' ') as [string, string];
        expect(doc.paths[p]![m]!.requestBody, r).toBeDefined();
      }
      expect(Object.keys(doc.paths['/api/v1/dossiers/{id}/approve']!['post']!.responses)).toEqual(
        expect.arrayContaining(['403', '404', '409', '422']),
      );
    });

    it('every code of the API error table is documented in the README "REST API" section', async () => {
      const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
      const start = readme.indexOf('## REST API');
      expect(start).toBeGreaterThanOrEqual(0);
      const next = readme.indexOf('\n## ', start + 1);
      const section = readme.slice(start, next === -1 ? undefined : next);
      for (const [code, { status }] of Object.entries(API_ERRORS))
        expect(section, code).toMatch(new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`));
    });

    it('logs hold no tokens, passwords, case references or bodies', () => {
      const all = logLines.join('');
      expect(all.length).toBeGreaterThan(0);
      for (const token of Object.values(tokens)) expect(all).not.toContain(token);
      expect(all).not.toContain(PASSWORD);
      expect(all).not.toMatch(/API-(4EYES|EDIT|WP|BAD)/i);
      expect(all).not.toContain('SECRET-VALUE');
    });
  });
});
