import type { FastifyInstance } from 'fastify';
import { actorOf } from './context.js';
import {
  AUTHED,
  DOSSIER_READ,
  IntroducedReply,
  IntroductionAnswerReply,
  IntroductionDeclineBody,
  IntroductionExport,
  IntroductionIdParams,
  IntroductionIssueBody,
  IntroductionOverview,
  IntroductionReceiveBody,
  IntroductionReferBody,
  IntroductionRequestBody,
  DossierState,
  errorResponses,
} from './schemas.js';

const security = [{ bearer: [] }];
const tags = ['introductions'];
const ANSWER_ERRORS = [
  ...DOSSIER_READ,
  'INVALID_STATE',
  'CONTENT_INVALID',
  'RECIPIENT_UNKNOWN',
  'RECIPIENT_REVOKED',
] as const;

/** The point-of-contact workflow (`rogatory introduce`): answers are put up for approval (POST /dossiers/:id/approve). */
export function introductionRoutes(app: FastifyInstance): void {
  const { node } = app.nodeApi;

  app.get(
    '/introductions',
    {
      schema: {
        tags,
        security,
        summary:
          "This node's introduction requests and their outcome; on a PoC node the requests and referrals received; introductions of this node to others",
        response: { 200: IntroductionOverview, ...errorResponses(...AUTHED) },
      },
    },
    (request) => {
      const actor = actorOf(request);
      return {
        requests: node.introductionStatus(actor),
        inbox: node.introductionInbox(actor),
        introducedTo: node.introductionsOfSelf(actor),
      };
    },
  );

  app.post<{ Body: IntroductionRequestBody }>(
    '/introductions/requests',
    {
      schema: {
        tags,
        security,
        summary: 'Draft an introduction request to a point of contact (then submit and approve it)',
        body: IntroductionRequestBody,
        response: { 201: DossierState, ...errorResponses(...ANSWER_ERRORS) },
      },
    },
    (request, reply) => {
      const b = request.body;
      const id = node.requestIntroduction(actorOf(request), {
        to: b.to,
        country: b.country,
        requestType: b.requestType,
        languages: b.languages,
        ...(b.note === undefined ? {} : { note: b.note }),
        ...(b.caseReference === undefined ? {} : { caseReference: b.caseReference }),
        submit: b.submit === true,
      });
      return reply
        .code(201)
        .send({ id, status: b.submit === true ? 'awaiting-approval' : 'draft', warnings: [] });
    },
  );

  app.post<{ Params: IntroductionIdParams; Body: IntroductionIssueBody }>(
    '/introductions/:id/issue',
    {
      schema: {
        tags,
        security,
        summary:
          'On a PoC node: sign an Introduction and put the answer (to the requester, copy to the authority) up for approval',
        params: IntroductionIdParams,
        body: IntroductionIssueBody,
        response: { 201: IntroductionAnswerReply, ...errorResponses(...ANSWER_ERRORS) },
      },
    },
    (request, reply) => {
      const b = request.body;
      const result = node.issueIntroduction(actorOf(request), request.params.id, {
        authority: b.authority,
        ...(b.competences === undefined ? {} : { competences: b.competences }),
        ...(b.note === undefined ? {} : { note: b.note }),
        ...(b.validDays === undefined ? {} : { validDays: b.validDays }),
      });
      return reply.code(201).send(result);
    },
  );

  app.post<{ Params: IntroductionIdParams; Body: IntroductionReferBody }>(
    '/introductions/:id/refer',
    {
      schema: {
        tags,
        security,
        summary: "On a PoC node: refer a request to a peer network's point of contact",
        params: IntroductionIdParams,
        body: IntroductionReferBody,
        response: { 201: IntroductionAnswerReply, ...errorResponses(...ANSWER_ERRORS) },
      },
    },
    (request, reply) => {
      const b = request.body;
      const result = node.referIntroduction(actorOf(request), request.params.id, {
        to: b.to,
        ...(b.remarks === undefined ? {} : { remarks: b.remarks }),
      });
      return reply.code(201).send(result);
    },
  );

  app.post<{ Params: IntroductionIdParams; Body: IntroductionDeclineBody }>(
    '/introductions/:id/decline',
    {
      schema: {
        tags,
        security,
        summary: 'On a PoC node: decline a request or a referral with a reason',
        params: IntroductionIdParams,
        body: IntroductionDeclineBody,
        response: { 201: IntroductionAnswerReply, ...errorResponses(...ANSWER_ERRORS) },
      },
    },
    (request, reply) => {
      const b = request.body;
      const result = node.declineIntroduction(actorOf(request), request.params.id, {
        reason: b.reason,
        ...(b.note === undefined ? {} : { note: b.note }),
      });
      return reply.code(201).send(result);
    },
  );

  app.get(
    '/introductions/export',
    {
      schema: {
        tags,
        security,
        summary:
          'On a PoC node: the approved introductions it issued, as `rogatory-network log add` reads them',
        response: { 200: IntroductionExport, ...errorResponses(...AUTHED) },
      },
    },
    (request) => node.exportIntroductions(actorOf(request)),
  );

  app.post<{ Body: IntroductionReceiveBody }>(
    '/introductions/receive',
    {
      schema: {
        tags,
        security,
        summary:
          'Verify and keep an introduction given out of band (422 VERIFICATION_FAILED with its code as detail; nothing kept)',
        body: IntroductionReceiveBody,
        response: {
          201: IntroducedReply,
          ...errorResponses(...AUTHED, 'VERIFICATION_FAILED', 'STORAGE_FAILED'),
        },
      },
    },
    (request, reply) =>
      reply.code(201).send(node.receiveIntroduction(actorOf(request), request.body.introduction)),
  );
}
