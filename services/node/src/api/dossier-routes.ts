import type { FastifyInstance } from 'fastify';
import type { AttachmentInput } from '../drafting/attachment-encryption.js';
import type { DossierFilter } from '../reading/lists.js';
import { actorOf, hostPath, requirePermission, type ApiContext } from './context.js';
import { ApiError } from './errors.js';
import {
  AUTHED,
  ComposeBody,
  DOSSIER_READ,
  DossierDetails,
  DossierIdParams,
  DossierList,
  DossierState,
  EvidenceChain,
  ExportBody,
  ExportReply,
  ListQuery,
  OpenedView,
  OverdueQuery,
  ReplyBody,
  UpdateDraftBody,
  errorResponses,
} from './schemas.js';

const security = [{ bearer: [] }];
const tags = ['dossiers'];
const DAY = 24 * 3600 * 1000;

const DRAFT_ERRORS = [
  ...DOSSIER_READ,
  'PATH_REFUSED',
  'CONTENT_INVALID',
  'RECIPIENT_UNKNOWN',
  'RECIPIENT_REVOKED',
  'INVALID_STATE',
  'STORAGE_FULL',
] as const;

function attachmentsOf(
  ctx: ApiContext,
  list: readonly { path: string; mediaType?: string; name?: string }[] | undefined,
): AttachmentInput[] | undefined {
  const root = ctx.fileRoot;
  return list?.map((a) => ({ ...a, path: hostPath(ctx, a.path), ...(root ? { root } : {}) }));
}

function dayStart(date: string, what: string): number {
  const ms = Date.parse(`${date}T00:00:00Z`);
  if (Number.isNaN(ms)) throw new ApiError('INPUT_INVALID', `${what} is not a valid date`);
  return ms;
}

function filterOf(q: ListQuery, today: string): DossierFilter {
  return {
    ...(q.caseReference === undefined ? {} : { caseReference: q.caseReference }),
    ...(q.counterpart === undefined ? {} : { counterpart: q.counterpart }),
    ...(q.type === undefined ? {} : { type: q.type }),
    ...(q.status === undefined ? {} : { status: q.status }),
    ...(q.direction === undefined ? {} : { direction: q.direction }),
    ...(q.kind === undefined ? {} : { kind: q.kind }),
    ...(q.caseId === undefined ? {} : { caseId: q.caseId }),
    ...(q.from === undefined ? {} : { since: dayStart(q.from, 'from') }),
    ...(q.to === undefined ? {} : { until: dayStart(q.to, 'to') + DAY }),
    ...(q.overdue === true ? { overdueOn: today } : {}),
  };
}

/** Dossier metadata, drafting, the four-eyes workflow, opening, evidences and export. */
export function dossierRoutes(app: FastifyInstance): void {
  const ctx = app.nodeApi;
  const { node } = ctx;
  const today = (): string => new Date(ctx.clock()).toISOString().slice(0, 10);

  app.get<{ Querystring: ListQuery }>(
    '/dossiers',
    {
      schema: {
        tags,
        security,
        summary: 'List dossiers (metadata only; redacted where the user lacks clearance)',
        querystring: ListQuery,
        response: { 200: DossierList, ...errorResponses(...AUTHED) },
      },
    },
    (request) => ({ dossiers: node.list(actorOf(request), filterOf(request.query, today())) }),
  );

  app.get<{ Querystring: OverdueQuery }>(
    '/overdue',
    {
      schema: {
        tags,
        security,
        summary: 'Dossiers past their deadline and not finished',
        querystring: OverdueQuery,
        response: { 200: DossierList, ...errorResponses(...AUTHED) },
      },
    },
    (request) => ({
      dossiers: node.overdue(actorOf(request), request.query.today ?? today()),
    }),
  );

  app.get<{ Params: DossierIdParams }>(
    '/dossiers/:id',
    {
      schema: {
        tags,
        security,
        summary:
          'Metadata, delivery progress, evidences and approvals (no content; not an opening)',
        params: DossierIdParams,
        response: { 200: DossierDetails, ...errorResponses(...DOSSIER_READ) },
      },
    },
    (request) => node.show(actorOf(request), request.params.id),
  );

  app.post<{ Body: ComposeBody }>(
    '/dossiers',
    {
      schema: {
        tags,
        security,
        summary: 'Draft a request or an answer; attachments are files on the node host',
        body: ComposeBody,
        response: { 201: DossierState, ...errorResponses(...DRAFT_ERRORS) },
      },
    },
    async (request, reply) => {
      const { content, recipients, caseId, newCase } = request.body;
      const attachments = attachmentsOf(ctx, request.body.attachments);
      const id = await node.compose(actorOf(request), {
        content,
        ...(recipients ? { recipients } : {}),
        ...(attachments ? { attachments } : {}),
        ...(caseId === undefined ? {} : { caseId }),
        ...(newCase === true ? { newCase } : {}),
      });
      return reply
        .code(201)
        .send({ id, status: 'draft', warnings: node.warnings(actorOf(request), id) });
    },
  );

  app.put<{ Params: DossierIdParams; Body: UpdateDraftBody }>(
    '/dossiers/:id',
    {
      schema: {
        tags,
        security,
        summary: 'Replace a draft (the editor becomes a co-drafter and may not approve it)',
        params: DossierIdParams,
        body: UpdateDraftBody,
        response: { 200: DossierState, ...errorResponses(...DRAFT_ERRORS) },
      },
    },
    async (request) => {
      const { content, recipients, keepAttachments } = request.body;
      const attachments = attachmentsOf(ctx, request.body.attachments);
      await node.updateDraft(actorOf(request), request.params.id, {
        content,
        ...(recipients ? { recipients } : {}),
        ...(attachments ? { attachments } : {}),
        ...(keepAttachments === undefined ? {} : { keepAttachments }),
      });
      return {
        id: request.params.id,
        status: 'draft',
        warnings: node.warnings(actorOf(request), request.params.id),
      };
    },
  );

  app.post<{ Params: DossierIdParams }>(
    '/dossiers/:id/submit',
    {
      schema: {
        tags,
        security,
        summary: 'Submit a draft for approval (content validated again)',
        params: DossierIdParams,
        response: { 200: DossierState, ...errorResponses(...DRAFT_ERRORS) },
      },
    },
    (request) => {
      node.submitForApproval(actorOf(request), request.params.id);
      return {
        id: request.params.id,
        status: 'awaiting-approval',
        warnings: node.warnings(actorOf(request), request.params.id),
      };
    },
  );

  app.post<{ Params: DossierIdParams }>(
    '/dossiers/:id/approve',
    {
      schema: {
        tags,
        security,
        summary: 'Four-eyes approval: sign, seal and queue for sending',
        params: DossierIdParams,
        response: {
          200: DossierState,
          ...errorResponses(...DRAFT_ERRORS, 'FOUR_EYES_VIOLATION', 'STORAGE_FAILED'),
        },
      },
    },
    async (request) => {
      // Warnings are computed while the content is still a draft: once sealed it is not held as one.
      const warnings = node.warnings(actorOf(request), request.params.id);
      const envelopeId = await node.approve(actorOf(request), request.params.id);
      return { id: request.params.id, status: 'approved', envelopeId, warnings };
    },
  );

  app.post<{ Params: DossierIdParams }>(
    '/dossiers/:id/return',
    {
      schema: {
        tags,
        security,
        summary: 'An approver sends the dossier back to drafting',
        params: DossierIdParams,
        response: { 200: DossierState, ...errorResponses(...DOSSIER_READ, 'INVALID_STATE') },
      },
    },
    (request) => {
      node.returnToDraft(actorOf(request), request.params.id);
      return {
        id: request.params.id,
        status: 'draft',
        warnings: node.warnings(actorOf(request), request.params.id),
      };
    },
  );

  app.post<{ Params: DossierIdParams; Body: ReplyBody }>(
    '/dossiers/:id/reply',
    {
      schema: {
        tags,
        security,
        summary: 'Draft an answer to a sent or received request (inReplyTo, from, to filled in)',
        params: DossierIdParams,
        body: ReplyBody,
        response: { 201: DossierState, ...errorResponses(...DRAFT_ERRORS) },
      },
    },
    async (request, reply) => {
      const attachments = attachmentsOf(ctx, request.body.attachments);
      const id = await node.reply(actorOf(request), request.params.id, {
        content: request.body.content,
        ...(attachments ? { attachments } : {}),
      });
      return reply
        .code(201)
        .send({ id, status: 'draft', warnings: node.warnings(actorOf(request), id) });
    },
  );

  app.post<{ Params: DossierIdParams }>(
    '/dossiers/:id/open',
    {
      schema: {
        tags,
        security,
        summary:
          'Content and attachment list; audited; the first opening of a received dossier sends a Retrieval evidence',
        params: DossierIdParams,
        response: { 200: OpenedView, ...errorResponses(...DOSSIER_READ, 'INVALID_STATE') },
      },
    },
    (request) => node.open(actorOf(request), request.params.id),
  );

  app.get<{ Params: DossierIdParams }>(
    '/dossiers/:id/evidences',
    {
      schema: {
        tags,
        security,
        summary: 'The envelope, its evidences and their verification as a chain',
        params: DossierIdParams,
        response: { 200: EvidenceChain, ...errorResponses(...DOSSIER_READ) },
      },
    },
    (request) => node.evidences(actorOf(request), request.params.id),
  );

  app.post<{ Params: DossierIdParams; Body: ExportBody }>(
    '/dossiers/:id/export',
    {
      schema: {
        tags,
        security,
        summary:
          'Write a self-contained, offline-verifiable bundle into a directory on the node host',
        params: DossierIdParams,
        body: ExportBody,
        response: {
          200: ExportReply,
          ...errorResponses(...DOSSIER_READ, 'INVALID_STATE', 'STORAGE_FULL', 'PATH_REFUSED'),
        },
      },
    },
    async (request) => {
      const actor = actorOf(request);
      let dir = hostPath(ctx, request.body.dir);
      if (ctx.fileRoot !== undefined) {
        // Directories are created only for those who may export.
        requirePermission(node, actor, 'dossier:export');
        dir = await ctx.fileRoot.makeDirectory(request.body.dir);
      }
      return node.exportBundle(actor, request.params.id, dir, {
        sealed: request.body.sealed === true,
      });
    },
  );
}
