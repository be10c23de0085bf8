import type { FastifyInstance } from 'fastify';
import type { NewUser, UserInfo as UserRecord } from '../administration/users.js';
import { actorOf, requirePermission } from './context.js';
import {
  AUTHED,
  AuditList,
  AuditQuery,
  AuditReport,
  CaseList,
  ClearancesBody,
  LoginThrottleReset,
  NewUserBody,
  NodeStatus,
  PasswordBody,
  PasswordChangeBody,
  QuarantineList,
  RoleBody,
  SyncReply,
  UserInfo,
  UserList,
  UsernameParams,
  errorResponses,
} from './schemas.js';

const security = [{ bearer: [] }];

function userView(u: UserRecord): Omit<UserRecord, 'id'> {
  return {
    username: u.username,
    role: u.role,
    clearances: u.clearances,
    disabled: u.disabled,
    createdAt: u.createdAt,
  };
}

/** Accounts (admins). */
export function userRoutes(app: FastifyInstance): void {
  const { node, sessions, limiter } = app.nodeApi;
  const tags = ['users'];

  app.post(
    '/login-throttle/reset',
    {
      schema: {
        tags,
        security,
        summary:
          'Forget every failed-login counter (admins): lets users who share an address with a guesser in again',
        response: { 200: LoginThrottleReset, ...errorResponses(...AUTHED) },
      },
    },
    (request) => {
      const admin = requirePermission(node, actorOf(request), 'users:manage');
      const cleared = limiter.reset();
      request.log.info({ user: admin.username, cleared }, 'login throttle reset');
      return { cleared };
    },
  );

  app.get(
    '/users',
    {
      schema: {
        tags,
        security,
        summary: 'List accounts (admins)',
        response: { 200: UserList, ...errorResponses(...AUTHED) },
      },
    },
    (request) => ({ users: node.listUsers(actorOf(request)).map(userView) }),
  );

  app.post<{ Body: NewUser }>(
    '/users',
    {
      schema: {
        tags,
        security,
        summary: 'Add an account (admins)',
        body: NewUserBody,
        response: { 201: UserInfo, ...errorResponses(...AUTHED, 'USER_EXISTS') },
      },
    },
    async (request, reply) =>
      reply.code(201).send(userView(node.addUser(actorOf(request), request.body))),
  );

  app.post<{ Params: UsernameParams }>(
    '/users/:username/disable',
    {
      schema: {
        tags,
        security,
        summary: 'Disable an account (admins); its sessions end at once',
        params: UsernameParams,
        response: { 200: UserInfo, ...errorResponses(...AUTHED, 'NOT_FOUND', 'INVALID_STATE') },
      },
    },
    (request) => {
      const user = node.disableUser(actorOf(request), request.params.username);
      sessions.revokeUser(user.username);
      return userView(user);
    },
  );

  app.post<{ Params: UsernameParams }>(
    '/users/:username/enable',
    {
      schema: {
        tags,
        security,
        summary: 'Enable a disabled account again (admins)',
        params: UsernameParams,
        response: { 200: UserInfo, ...errorResponses(...AUTHED, 'NOT_FOUND') },
      },
    },
    (request) => userView(node.enableUser(actorOf(request), request.params.username)),
  );

  app.put<{ Params: UsernameParams; Body: PasswordBody }>(
    '/users/:username/password',
    {
      schema: {
        tags,
        security,
        summary: "Set another user's password (admins); that user's sessions end at once",
        params: UsernameParams,
        body: PasswordBody,
        response: { 200: UserInfo, ...errorResponses(...AUTHED, 'NOT_FOUND', 'INVALID_STATE') },
      },
    },
    (request) => {
      const user = node.resetPassword(
        actorOf(request),
        request.params.username,
        request.body.password,
      );
      sessions.revokeUser(user.username);
      return userView(user);
    },
  );

  app.put<{ Params: UsernameParams; Body: RoleBody }>(
    '/users/:username/role',
    {
      schema: {
        tags,
        security,
        summary: "Change a user's role (admins; the last enabled admin keeps theirs)",
        params: UsernameParams,
        body: RoleBody,
        response: { 200: UserInfo, ...errorResponses(...AUTHED, 'NOT_FOUND', 'INVALID_STATE') },
      },
    },
    (request) =>
      userView(node.setUserRole(actorOf(request), request.params.username, request.body.role)),
  );

  app.put<{ Params: UsernameParams; Body: ClearancesBody }>(
    '/users/:username/clearances',
    {
      schema: {
        tags,
        security,
        summary: "Replace a user's clearances (admins)",
        params: UsernameParams,
        body: ClearancesBody,
        response: { 200: UserInfo, ...errorResponses(...AUTHED, 'NOT_FOUND') },
      },
    },
    (request) =>
      userView(
        node.setUserClearances(actorOf(request), request.params.username, request.body.clearances),
      ),
  );

  app.post<{ Body: PasswordChangeBody }>(
    '/me/password',
    {
      schema: {
        tags,
        security,
        summary:
          'Change your own password (the current one is checked); all your sessions end, log in again',
        body: PasswordChangeBody,
        response: { 200: UserInfo, ...errorResponses(...AUTHED, 'INPUT_INVALID') },
      },
    },
    (request) => {
      const user = node.changePassword(
        actorOf(request),
        request.body.current,
        request.body.password,
      );
      sessions.revokeUser(user.username);
      return userView(user);
    },
  );
}

/** Node-wide views and operations: status, sync, cases, quarantine, audit. */
export function nodeRoutes(app: FastifyInstance): void {
  const { node } = app.nodeApi;
  const tags = ['node'];

  app.get(
    '/status',
    {
      schema: {
        tags,
        security,
        summary: 'Node overview: counts, queue state, trust (no content)',
        response: { 200: NodeStatus, ...errorResponses(...AUTHED) },
      },
    },
    (request) => {
      actorOf(request);
      return node.status();
    },
  );

  app.post(
    '/sync',
    {
      schema: {
        tags,
        security,
        summary: 'Pull the mailbox once and flush the outbox now',
        response: {
          200: SyncReply,
          ...errorResponses(
            ...AUTHED,
            'RELAY_UNREACHABLE',
            'RELAY_REJECTED',
            'DOWNLOAD_FAILED',
            'STORAGE_FULL',
            'STORAGE_FAILED',
          ),
        },
      },
    },
    async (request) => {
      actorOf(request);
      const report = await node.syncOnce();
      request.log.info(
        { items: report.items.length, sent: report.outbox.sent.length },
        'sync requested',
      );
      return report;
    },
  );

  app.get(
    '/cases',
    {
      schema: {
        tags,
        security,
        summary: 'Cases with their dossiers (redacted where the user lacks clearance)',
        response: { 200: CaseList, ...errorResponses(...AUTHED) },
      },
    },
    (request) => ({ cases: node.cases(actorOf(request)) }),
  );

  app.get(
    '/quarantine',
    {
      schema: {
        tags,
        security,
        summary: 'Received dossiers that failed verification, with their reason codes',
        response: { 200: QuarantineList, ...errorResponses(...AUTHED) },
      },
    },
    (request) => ({ quarantine: node.quarantine(actorOf(request)) }),
  );

  app.get(
    '/audit/verify',
    {
      schema: {
        tags,
        security,
        summary: "Check the audit log's hash chain and heads (admins)",
        response: { 200: AuditReport, ...errorResponses(...AUTHED) },
      },
    },
    (request) => node.verifyAudit(actorOf(request)),
  );

  app.get<{ Querystring: AuditQuery }>(
    '/audit',
    {
      schema: {
        tags,
        security,
        summary: 'Audit entries, oldest first, filtered (admins); ids and codes only, no content',
        querystring: AuditQuery,
        response: { 200: AuditList, ...errorResponses(...AUTHED, 'NOT_FOUND') },
      },
    },
    (request) => {
      const actor = actorOf(request);
      const q = request.query;
      const entries = node.auditEntries(actor, {
        limit: q.limit ?? 200,
        ...(q.since === undefined ? {} : { since: q.since }),
        ...(q.actor === undefined ? {} : { actor: q.actor }),
        ...(q.action === undefined ? {} : { action: q.action }),
        ...(q.target === undefined ? {} : { target: q.target }),
      });
      const names = new Map(node.listUsers(actor).map((u) => [u.id, u.username]));
      return { entries: entries.map((e) => ({ ...e, actor: names.get(e.actor) ?? e.actor })) };
    },
  );
}
