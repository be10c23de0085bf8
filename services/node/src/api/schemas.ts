import { Type, type Static, type TSchema } from 'typebox';
import { INTRODUCTION_DECLINE_REASONS, REQUEST_TYPES } from '@rogatory/protocol';
import { AUDIT_ACTIONS } from '../administration/audit-log.js';
import { CLEARANCES, NewUserSchema, ROLES } from '../administration/users.js';
import { STATUSES } from '../dossier-status.js';
import { API_ERRORS, API_ERROR_CODES, type ApiErrorCode } from './errors.js';

/**
 * Every request and response body of the REST API, as JSON Schema (TypeBox).
 * Fastify validates requests and serialises responses with them, and
 * @fastify/swagger turns them into the OpenAPI document.
 */

const HANDLING_CODES = ['none', 'restricted', 'witness-protection', 'sealed'] as const;
const Timestamp = Type.Integer({ description: 'milliseconds since the epoch' });
const IsoDate = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'YYYY-MM-DD' });
/** Dossier content (docs/protocol.md §10): validated by the node, not here, so its issues name fields. */
const Content = Type.Object(
  {},
  { additionalProperties: true, description: 'dossier content (protocol §10)' },
);
const Anything = Type.Unknown();

// ------------------------------------------------------------------ errors

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.Enum(API_ERROR_CODES),
      message: Type.String(),
      detail: Type.Optional(
        Type.String({ description: 'the lower-level (protocol, storage, relay) code' }),
      ),
      issues: Type.Optional(
        Type.Array(
          Type.Object({
            path: Type.String({ description: 'JSON pointer to the field' }),
            message: Type.String(),
          }),
        ),
      ),
    }),
  },
  { additionalProperties: false },
);

/** Response entries for the error codes a route may answer with, grouped by status and described by code. */
export function errorResponses(...codes: ApiErrorCode[]): Record<number, TSchema> {
  const all: ApiErrorCode[] = [...new Set<ApiErrorCode>(['INPUT_INVALID', 'INTERNAL', ...codes])];
  const byStatus = new Map<number, ApiErrorCode[]>();
  for (const code of all) {
    const status = API_ERRORS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<number, TSchema> = {};
  for (const [status, list] of byStatus)
    out[status] = { ...ErrorSchema, description: `Error: ${list.join(', ')}` };
  return out;
}

/** Errors every authenticated route may answer with. */
export const AUTHED: ApiErrorCode[] = [
  'UNAUTHENTICATED',
  'AUTHENTICATION_FAILED',
  'NOT_AUTHORISED',
  // Past the bad-token budget of the client's address (src/api/limits.ts).
  'RATE_LIMITED',
];
/** Errors of routes that read one dossier. */
export const DOSSIER_READ: ApiErrorCode[] = [
  ...AUTHED,
  'NOT_FOUND',
  'CLEARANCE_REQUIRED',
  'LOCAL_DATA_TAMPERED',
  'STORAGE_FAILED',
];

// ------------------------------------------------------------------ auth

export const LoginBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 64 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  { additionalProperties: false },
);
export type LoginBody = Static<typeof LoginBody>;

export const UserView = Type.Object({
  username: Type.String(),
  roles: Type.Array(Type.Enum(ROLES)),
  clearances: Type.Array(Type.Enum(CLEARANCES)),
});

export const LoginReply = Type.Object({
  token: Type.String({ description: 'bearer token: 32 random bytes, base64url' }),
  expiresAt: Timestamp,
  user: UserView,
});

export const Ok = Type.Object({ ok: Type.Boolean() });

export const LoginThrottleReset = Type.Object({
  /** Failed-login counters dropped. */
  cleared: Type.Integer({ minimum: 0 }),
});

// ------------------------------------------------------------------ dossiers

export const DossierIdParams = Type.Object({
  id: Type.String({ pattern: '^d-[0-9a-f]{16}$', description: 'local dossier id' }),
});
export type DossierIdParams = Static<typeof DossierIdParams>;

export const ListQuery = Type.Object(
  {
    caseReference: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    counterpart: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    status: Type.Optional(Type.Array(Type.Enum(STATUSES), { maxItems: STATUSES.length })),
    direction: Type.Optional(Type.Enum(['in', 'out'])),
    kind: Type.Optional(Type.Enum(['request', 'answer', 'unknown'])),
    caseId: Type.Optional(Type.String({ pattern: '^c-[0-9a-f]{16}$' })),
    from: Type.Optional({ ...IsoDate, description: 'created on or after this day (UTC)' }),
    to: Type.Optional({ ...IsoDate, description: 'created before the end of this day (UTC)' }),
    overdue: Type.Optional(
      Type.Boolean({ description: 'only dossiers past their deadline and not finished' }),
    ),
  },
  { additionalProperties: false },
);
export type ListQuery = Static<typeof ListQuery>;

export const OverdueQuery = Type.Object(
  { today: Type.Optional(IsoDate) },
  { additionalProperties: false },
);
export type OverdueQuery = Static<typeof OverdueQuery>;

const summaryProperties = {
  id: Type.String(),
  caseId: Type.Union([Type.String(), Type.Null()]),
  direction: Type.Enum(['in', 'out']),
  kind: Type.Enum(['request', 'answer', 'unknown']),
  status: Type.String(),
  envelopeId: Type.Union([Type.String(), Type.Null()]),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  size: Type.Integer(),
  redacted: Type.Boolean({
    description: 'the user lacks the clearance: no case reference, counterpart or type',
  }),
  type: Type.Optional(Type.String()),
  caseReference: Type.Optional(Type.String()),
  counterparts: Type.Optional(Type.Array(Type.String())),
  handlingCode: Type.Optional(Type.Enum(HANDLING_CODES)),
  deadline: Type.Optional(Type.String()),
  openedAt: Type.Optional(Timestamp),
  quarantineCode: Type.Optional(Type.String()),
  signerRevoked: Type.Optional(
    Type.Object({ kid: Type.String(), revokedAt: Timestamp, reason: Type.String() }),
  ),
};
export const DossierSummary = Type.Object(summaryProperties);
export const DossierList = Type.Object({ dossiers: Type.Array(DossierSummary) });

const EvidenceSummary = Type.Object({
  kind: Type.String(),
  issuer: Type.String(),
  recipient: Type.Union([Type.String(), Type.Null()]),
  issuedAt: Timestamp,
  reason: Type.Union([
    Type.Object({ code: Type.String(), detail: Type.Union([Type.String(), Type.Null()]) }),
    Type.Null(),
  ]),
});

export const DossierDetails = Type.Object({
  ...summaryProperties,
  sender: Type.Optional(Type.String()),
  recipients: Type.Optional(Type.Array(Type.String())),
  progress: Type.Optional(Type.Record(Type.String(), Type.String())),
  evidences: Type.Array(EvidenceSummary),
  approvals: Type.Array(
    Type.Object({ username: Type.String(), decision: Type.String(), at: Timestamp }),
  ),
  draftedBy: Type.Optional(Type.String()),
  queued: Type.Array(
    Type.Object({
      kind: Type.String(),
      state: Type.String(),
      attempts: Type.Integer(),
      lastError: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
});

const AttachmentPath = Type.Object(
  {
    path: Type.String({ minLength: 1, maxLength: 4096, description: 'a file on the node host' }),
    mediaType: Type.Optional(
      Type.String({ pattern: '^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$' }),
    ),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  },
  { additionalProperties: false },
);
const Attachments = Type.Array(AttachmentPath, { maxItems: 100 });
const Recipients = Type.Array(Type.String({ minLength: 3, maxLength: 200 }), { maxItems: 50 });

export const ComposeBody = Type.Object(
  {
    content: Content,
    recipients: Type.Optional(Recipients),
    attachments: Type.Optional(Attachments),
    caseId: Type.Optional(Type.String({ pattern: '^c-[0-9a-f]{16}$' })),
    newCase: Type.Optional(
      Type.Boolean({
        description:
          'open a new case even if the case reference names an existing one (by default a request joins it)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ComposeBody = Static<typeof ComposeBody>;

export const UpdateDraftBody = Type.Object(
  {
    content: Content,
    recipients: Type.Optional(Recipients),
    attachments: Type.Optional(Attachments),
    keepAttachments: Type.Optional(
      Type.Boolean({ description: 'keep the draft attachments when none are given' }),
    ),
  },
  { additionalProperties: false },
);
export type UpdateDraftBody = Static<typeof UpdateDraftBody>;

export const ReplyBody = Type.Object(
  { content: Content, attachments: Type.Optional(Attachments) },
  { additionalProperties: false },
);
export type ReplyBody = Static<typeof ReplyBody>;

export const ExportBody = Type.Object(
  {
    dir: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'a directory on the node host',
    }),
    sealed: Type.Optional(
      Type.Boolean({
        description:
          'a sealed bundle: no dossier, attachments or content key; proves signatures and evidences only',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ExportBody = Static<typeof ExportBody>;

/** A warning about a request (never a refusal); codes in drafting/recipient-warnings.ts. */
export const DraftWarning = Type.Object({
  code: Type.Enum(['COMPETENCE_NOT_LISTED', 'LANGUAGE_NOT_LISTED']),
  recipient: Type.String(),
  value: Type.String({ description: 'the request type or language concerned' }),
  listed: Type.Array(Type.String(), { description: "what the recipient's manifest entry lists" }),
  message: Type.String(),
});

export const DossierState = Type.Object({
  id: Type.String(),
  status: Type.String(),
  envelopeId: Type.Optional(Type.String()),
  warnings: Type.Optional(Type.Array(DraftWarning)),
});

export const OpenedView = Type.Object({
  summary: DossierSummary,
  content: Anything,
  attachments: Type.Array(
    Type.Object({
      index: Type.Integer(),
      name: Type.String(),
      mediaType: Type.String(),
      size: Type.Integer(),
      sha256: Type.String(),
    }),
  ),
  signed: Type.Optional(
    Type.Object({
      sender: Type.String(),
      recipients: Type.Array(Type.String()),
      createdAt: Timestamp,
      signedBy: Type.String(),
    }),
  ),
});

export const EvidenceChain = Type.Object({
  envelope: Type.Optional(Anything),
  evidences: Type.Array(Anything),
  chain: Type.Optional(
    Type.Object({
      ordered: Type.Array(Type.String()),
      submission: Type.String(),
      recipients: Type.Record(Type.String(), Type.String()),
    }),
  ),
  error: Type.Optional(
    Type.String({ description: 'protocol code when the chain does not verify' }),
  ),
});

export const ExportReply = Type.Object({
  dir: Type.String(),
  kind: Type.Union([Type.Literal('full'), Type.Literal('sealed')]),
  files: Type.Array(Type.String()),
});

// ------------------------------------------------------------------ cases, quarantine

export const CaseList = Type.Object({
  cases: Type.Array(
    Type.Object({
      id: Type.String(),
      createdAt: Timestamp,
      updatedAt: Timestamp,
      redacted: Type.Boolean(),
      caseReference: Type.Optional(Type.String()),
      counterparts: Type.Optional(Type.Array(Type.String())),
      requestType: Type.Optional(Type.String()),
      handlingCode: Type.Optional(Type.Enum(HANDLING_CODES)),
      dossiers: Type.Array(
        Type.Object({
          id: Type.String(),
          kind: Type.String(),
          direction: Type.String(),
          status: Type.String(),
          type: Type.Optional(Type.String()),
        }),
      ),
    }),
  ),
});

export const QuarantineList = Type.Object({
  quarantine: Type.Array(
    Type.Object({
      id: Type.String(),
      envelopeId: Type.Union([Type.String(), Type.Null()]),
      sender: Type.String(),
      code: Type.String(),
      receivedAt: Timestamp,
      size: Type.Integer(),
    }),
  ),
});

// ------------------------------------------------------------------ users

export const UsernameParams = Type.Object({
  username: NewUserSchema.properties.username,
});
export type UsernameParams = Static<typeof UsernameParams>;

export { NewUserSchema as NewUserBody };

export const UserInfo = Type.Object({
  username: Type.String(),
  role: Type.Enum(ROLES),
  clearances: Type.Array(Type.Enum(CLEARANCES)),
  disabled: Type.Boolean(),
  createdAt: Timestamp,
});
export const UserList = Type.Object({ users: Type.Array(UserInfo) });

// ------------------------------------------------------------------ node

export const PasswordBody = Type.Object(
  { password: NewUserSchema.properties.password },
  { additionalProperties: false },
);
export type PasswordBody = Static<typeof PasswordBody>;

export const PasswordChangeBody = Type.Object(
  {
    current: Type.String({ minLength: 1, maxLength: 1024 }),
    password: NewUserSchema.properties.password,
  },
  { additionalProperties: false },
);
export type PasswordChangeBody = Static<typeof PasswordChangeBody>;

export const RoleBody = Type.Object(
  { role: NewUserSchema.properties.role },
  { additionalProperties: false },
);
export type RoleBody = Static<typeof RoleBody>;

export const ClearancesBody = Type.Object(
  { clearances: NewUserSchema.properties.clearances },
  { additionalProperties: false },
);
export type ClearancesBody = Static<typeof ClearancesBody>;

export const AuditQuery = Type.Object(
  {
    since: Type.Optional(Type.Integer({ minimum: 0, description: 'entries at or after (ms)' })),
    actor: Type.Optional(
      Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$', description: 'a username or system' }),
    ),
    action: Type.Optional(Type.Enum(AUDIT_ACTIONS)),
    target: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 200 })),
  },
  { additionalProperties: false },
);
export type AuditQuery = Static<typeof AuditQuery>;

export const AuditList = Type.Object({
  entries: Type.Array(
    Type.Object({
      seq: Type.Integer(),
      at: Timestamp,
      actor: Type.String({ description: 'username, or system' }),
      action: Type.String(),
      target: Type.Union([Type.String(), Type.Null()]),
      detail: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
});

export const AuditReport = Type.Object({
  ok: Type.Boolean(),
  entries: Type.Integer(),
  head: Type.Union([Type.Object({ seq: Type.Integer(), hash: Type.String() }), Type.Null()]),
  problems: Type.Array(Type.Object({ code: Type.String(), seq: Type.Optional(Type.Integer()) })),
});

export const NodeStatus = Type.Object({
  address: Type.String(),
  network: Type.String(),
  relay: Type.Object({ url: Type.String(), id: Type.String() }),
  identityKid: Type.String(),
  listedInManifest: Type.Boolean(),
  trustedNetworks: Type.Array(Type.String()),
  mailboxCursor: Type.Integer(),
  dossiers: Type.Record(Type.String(), Type.Integer()),
  outbox: Type.Object({
    pending: Type.Integer(),
    failed: Type.Integer(),
    nextAttemptAt: Type.Union([Timestamp, Type.Null()]),
  }),
  users: Type.Integer(),
  relayIncidents: Type.Object({
    total: Type.Integer(),
    last: Type.Union([Type.Object({ at: Timestamp, code: Type.String() }), Type.Null()]),
  }),
  /** Trust logs followed (D4): edition and log size per network, fork alarms. */
  trust: Type.Object({
    networks: Type.Array(
      Type.Object({
        network: Type.String(),
        edition: Type.Union([Type.Integer(), Type.Null()]),
        logSize: Type.Integer(),
        forkAlarm: Type.Boolean(),
      }),
    ),
    openAlarms: Type.Integer(),
    forksTotal: Type.Integer(),
  }),
});

const OutboxReport = Type.Object({
  sent: Type.Array(Type.String()),
  rejected: Type.Array(Type.String()),
  evidencesPosted: Type.Integer(),
  deferred: Type.Integer(),
  failed: Type.Integer(),
  errors: Type.Array(Type.Object({ dossierId: Type.String(), code: Type.String() })),
});

export const SyncReply = Type.Object({
  items: Type.Array(
    Type.Object({
      seq: Type.Integer(),
      outcome: Type.Object(
        {
          kind: Type.Enum([
            'received',
            'quarantined',
            'duplicate',
            'refused',
            'evidence',
            'ignored',
          ]),
        },
        { additionalProperties: true },
      ),
    }),
  ),
  outbox: OutboxReport,
});

// ------------------------------------------------------------------ directory

export const DirectoryQuery = Type.Object(
  {
    country: Type.Optional(Type.String({ pattern: '^[A-Za-z]{2}$' })),
    network: Type.Optional(Type.String({ maxLength: 64 })),
    type: Type.Optional(Type.String({ maxLength: 64 })),
    language: Type.Optional(Type.String({ maxLength: 35 })),
    text: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type DirectoryQuery = Static<typeof DirectoryQuery>;

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const DirectoryList = Type.Object({
  entries: Type.Array(
    Type.Object({
      address: Type.String(),
      role: Type.Enum(['authority', 'poc']),
      name: Nullable(Type.String()),
      country: Nullable(Type.String()),
      network: Type.String(),
      competences: Type.Array(Type.String()),
      languages: Type.Array(Type.String()),
      vouchedBy: Type.Array(
        Type.Union([
          Type.Object({
            kind: Type.Literal('manifest'),
            network: Type.String(),
            edition: Type.Integer(),
          }),
          Type.Object({
            kind: Type.Literal('introduction'),
            issuer: Type.String(),
            network: Type.String(),
            validUntil: Timestamp,
          }),
        ]),
      ),
    }),
  ),
});

// ------------------------------------------------------------ introductions

const RequestTypeName = Type.Enum(REQUEST_TYPES);
const Address = Type.String({ minLength: 3, maxLength: 200 });

export const IntroductionIdParams = Type.Object({
  id: Type.String({
    pattern: '^i-[0-9a-f]{16}$',
    description: 'introduction request id (GET /introductions, inbox)',
  }),
});
export type IntroductionIdParams = Static<typeof IntroductionIdParams>;

export const IntroductionRequestBody = Type.Object(
  {
    to: Address,
    country: Type.String({ pattern: '^[A-Za-z]{2}$' }),
    requestType: RequestTypeName,
    languages: Type.Array(Type.String({ maxLength: 35 }), { minItems: 1, maxItems: 5 }),
    note: Type.Optional(Type.String({ maxLength: 2000 })),
    caseReference: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    submit: Type.Optional(Type.Boolean({ description: 'submit for approval at once' })),
  },
  { additionalProperties: false },
);
export type IntroductionRequestBody = Static<typeof IntroductionRequestBody>;

export const IntroductionIssueBody = Type.Object(
  {
    authority: Address,
    competences: Type.Optional(Type.Array(RequestTypeName, { minItems: 1, maxItems: 4 })),
    note: Type.Optional(Type.String({ maxLength: 2000 })),
    validDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 1095 })),
  },
  { additionalProperties: false },
);
export type IntroductionIssueBody = Static<typeof IntroductionIssueBody>;

export const IntroductionReferBody = Type.Object(
  { to: Address, remarks: Type.Optional(Type.String({ maxLength: 2000 })) },
  { additionalProperties: false },
);
export type IntroductionReferBody = Static<typeof IntroductionReferBody>;

export const IntroductionDeclineBody = Type.Object(
  {
    reason: Type.Enum(INTRODUCTION_DECLINE_REASONS),
    note: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type IntroductionDeclineBody = Static<typeof IntroductionDeclineBody>;

export const IntroductionReceiveBody = Type.Object(
  { introduction: Anything },
  { additionalProperties: false },
);
export type IntroductionReceiveBody = Static<typeof IntroductionReceiveBody>;

const Introduced = Type.Object({
  hash: Type.String(),
  issuer: Type.String(),
  subject: Type.String(),
  audience: Type.String(),
  competences: Type.Array(Type.String()),
  validUntil: Timestamp,
});

export const IntroductionAnswerReply = Type.Object({
  dossierId: Type.String({ description: 'the answer dossier, awaiting approval (four eyes)' }),
  introduction: Type.Optional(Anything),
});

export const IntroducedReply = Introduced;

export const IntroductionExport = Type.Object({
  introductions: Type.Array(Anything, {
    description: 'signed Introductions, as `rogatory-network log add` reads them',
  }),
});

export const IntroductionOverview = Type.Object({
  requests: Type.Array(
    Type.Object({
      id: Type.String(),
      envelopeId: Nullable(Type.String()),
      poc: Type.String(),
      country: Type.String(),
      requestType: Type.String(),
      languages: Type.Array(Type.String()),
      caseReference: Nullable(Type.String()),
      dossierStatus: Type.String(),
      outcome: Type.Enum(['pending', 'introduced', 'declined', 'refused']),
      answeredBy: Nullable(Type.String()),
      introductions: Type.Array(Introduced),
      reason: Nullable(Type.String()),
      text: Nullable(Type.String()),
      code: Nullable(Type.String()),
      createdAt: Timestamp,
    }),
  ),
  inbox: Type.Array(
    Type.Object({
      id: Type.String(),
      role: Type.Enum(['poc', 'referee']),
      state: Type.Enum(['open', 'introduced', 'referred', 'declined']),
      requestId: Type.String(),
      requester: Type.String(),
      from: Type.String(),
      country: Type.String(),
      requestType: Type.String(),
      languages: Type.Array(Type.String()),
      note: Nullable(Type.String()),
      caseReference: Nullable(Type.String()),
      receivedAt: Timestamp,
      answer: Nullable(
        Type.Object({
          dossierId: Type.String(),
          outcome: Type.Enum(['introduced', 'referred', 'declined']),
          to: Nullable(Type.String()),
          subject: Nullable(Type.String()),
          reason: Nullable(Type.String()),
          dossierStatus: Type.String(),
        }),
      ),
    }),
  ),
  introducedTo: Type.Array(
    Type.Object({
      id: Type.String(),
      requestId: Type.String(),
      requester: Type.String(),
      poc: Type.String(),
      state: Type.String(),
      introductions: Type.Array(Introduced),
      code: Nullable(Type.String()),
      receivedAt: Timestamp,
    }),
  ),
});
