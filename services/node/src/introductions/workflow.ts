import {
  INTRODUCTION_DECLINE_REASONS,
  REQUEST_TYPES,
  hashOf,
  networkOf,
  signIntroduction,
  type DossierContent,
  type Introduction,
  type IntroductionAnswerContent,
  type IntroductionReferralContent,
  type IntroductionRequestContent,
} from '@rogatory/protocol';
import type { Actor, UserInfo } from '../administration/users.js';
import { audit, type NodeContext } from '../context.js';
import { metaOf } from '../dossier-meta.js';
import { draftingIssues, encryptionKeyOf, requireValid } from '../drafting/content-checks.js';
import { NodeError, nodeFail } from '../errors.js';
import type { DossierRow } from '../store/mailbox-store.js';
import {
  IntroductionTable,
  type IntroducedRecord,
  type IntroductionCase,
  type IntroductionRequestRow,
  type IntroductionState,
} from '../store/introduction-table.js';
import { acceptIntroduction, checkIntroduction, type IntroductionRefusal } from './verify.js';

const DAY = 24 * 3600 * 1000;
/** How long an issued introduction vouches, unless the PoC says otherwise. */
export const DEFAULT_INTRODUCTION_DAYS = 365;

export type RequestTypeName = (typeof REQUEST_TYPES)[number];
export type DeclineReason = (typeof INTRODUCTION_DECLINE_REASONS)[number];

export interface IntroductionRequestInput {
  /** The point of contact asked (of a trusted manifest). */
  readonly to: string;
  readonly country: string;
  readonly requestType: RequestTypeName;
  readonly languages: readonly string[];
  readonly note?: string;
  readonly caseReference?: string;
  /** Submit for approval at once instead of leaving a draft. */
  readonly submit?: boolean;
}

/** What the requesting officer sees of one of the node's introduction requests. */
export interface IntroductionRequestView {
  /** The local dossier id of the request (draft, approve and show it like any dossier). */
  readonly id: string;
  readonly envelopeId: string | null;
  readonly poc: string;
  readonly country: string;
  readonly requestType: string;
  readonly languages: readonly string[];
  readonly caseReference: string | null;
  readonly dossierStatus: string;
  /** `pending` until a point of contact answers. */
  readonly outcome: 'pending' | 'introduced' | 'declined' | 'refused';
  readonly answeredBy: string | null;
  readonly introductions: readonly IntroducedRecord[];
  readonly reason: string | null;
  readonly text: string | null;
  /** Why the introductions carried were refused (INTRODUCTION_REFUSALS); none was stored. */
  readonly code: string | null;
  readonly createdAt: number;
}

/** A request or referral received by a point of contact. */
export interface IntroductionInboxEntry {
  readonly id: string;
  /** `poc`: asked by an authority; `referee`: referred by a peer network's PoC. */
  readonly role: 'poc' | 'referee';
  readonly state: 'open' | 'introduced' | 'referred' | 'declined';
  readonly requestId: string;
  readonly requester: string;
  readonly from: string;
  readonly country: string;
  readonly requestType: string;
  readonly languages: readonly string[];
  readonly note: string | null;
  readonly caseReference: string | null;
  readonly receivedAt: number;
  readonly answer: {
    readonly dossierId: string;
    readonly outcome: 'introduced' | 'referred' | 'declined';
    readonly to: string | null;
    readonly subject: string | null;
    readonly reason: string | null;
    /** The answer dossier's status: awaiting-approval until an approver signs it off (four eyes). */
    readonly dossierStatus: string;
  } | null;
}

/** An introduction kept by an authority that was introduced to someone (the subject's copy). */
export interface IntroductionOfSelf {
  readonly id: string;
  readonly requestId: string;
  readonly requester: string;
  readonly poc: string;
  readonly state: IntroductionState;
  readonly introductions: readonly IntroducedRecord[];
  readonly code: string | null;
  readonly receivedAt: number;
}

function table(ctx: NodeContext): IntroductionTable {
  return new IntroductionTable(ctx.db, ctx.cipher);
}

/** Whether this node is a point of contact of its own trusted manifest, under the key it holds. */
export function isPoc(ctx: NodeContext): boolean {
  return ctx.trust.poc(ctx.address)?.key.kid === ctx.keys.identity.kid;
}

function requirePoc(ctx: NodeContext): void {
  if (!isPoc(ctx))
    nodeFail(
      'INVALID_STATE',
      `${ctx.address} is not a point of contact of its trusted manifest (rogatory init --poc, then rogatory-network poc add)`,
    );
}

/**
 * Create an outgoing introduction dossier (drafted by `user`): validated as
 * any dossier, every recipient with a usable encryption key. It is then
 * submitted and approved like any dossier: four eyes holds.
 */
function draftIntroduction(
  ctx: NodeContext,
  user: UserInfo,
  content: DossierContent,
  recipients: readonly string[],
  options: { submit: boolean; caseId?: string | null },
): string {
  requireValid(draftingIssues(ctx, content, recipients, 0));
  for (const r of recipients) encryptionKeyOf(ctx, r);
  const now = ctx.clock();
  const meta = metaOf(content, ctx.address, recipients, 'none');
  return ctx.db.transaction(() => {
    const caseId =
      options.caseId ??
      ctx.store.insertCase(
        {
          caseReference: meta.kind === 'introduction' ? meta.caseReference : 'introduction',
          counterparts: [...recipients],
          handlingCode: 'none',
        },
        now,
      );
    const id = ctx.store.insertDossier({
      caseId,
      direction: 'out',
      kind: 'introduction',
      status: options.submit ? 'awaiting-approval' : 'draft',
      now,
      draftedBy: user.id,
      meta,
      content,
      attachments: [],
    });
    ctx.store.touchCase(caseId, now);
    audit(ctx, user.id, 'dossier.compose', id, content.kind);
    if (options.submit) audit(ctx, user.id, 'dossier.submit', id);
    return id;
  });
}

/** The content of an outgoing dossier: the draft, or what was signed. */
function outgoingContent(ctx: NodeContext, row: DossierRow): DossierContent {
  return row.content_enc ? ctx.store.draftContent(row) : ctx.store.signedDossier(row).body.content;
}

// ------------------------------------------------------------ requester side

/** An officer asks a point of contact for a competent authority: a draft of kind introduction-request. */
export function requestIntroduction(
  ctx: NodeContext,
  actor: Actor,
  input: IntroductionRequestInput,
): string {
  const user = ctx.users.require(actor, 'dossier:draft');
  if (!ctx.trust.poc(input.to))
    nodeFail('RECIPIENT_UNKNOWN', `${input.to} is not a point of contact of a trusted network`);
  const content: IntroductionRequestContent = {
    kind: 'introduction-request',
    from: ctx.address,
    to: input.to,
    country: input.country.toUpperCase(),
    requestType: input.requestType,
    languages: [...input.languages],
    ...(input.note === undefined ? {} : { note: input.note }),
    ...(input.caseReference === undefined ? {} : { caseReference: input.caseReference }),
  };
  return draftIntroduction(ctx, user, content, [input.to], { submit: input.submit === true });
}

/** The officer's introduction requests and their outcome (one, with `id`). */
export function introductionStatus(
  ctx: NodeContext,
  actor: Actor,
  id?: string,
): IntroductionRequestView[] {
  ctx.users.require(actor, 'dossier:read');
  const rows = id === undefined ? ctx.store.allDossiers() : [ctx.store.requireDossier(id)];
  const views: IntroductionRequestView[] = [];
  const t = table(ctx);
  for (const row of rows) {
    if (row.direction !== 'out' || row.kind !== 'introduction') continue;
    const meta = ctx.store.meta(row);
    if (meta.kind !== 'introduction' || meta.type !== 'introduction-request') continue;
    const content = outgoingContent(ctx, row);
    if (content.kind !== 'introduction-request') continue;
    const answer = row.envelope_id ? t.caseByRequest(row.envelope_id, 'requester') : undefined;
    const result = answer ? t.record(answer).result : undefined;
    views.push({
      id: row.id,
      envelopeId: row.envelope_id,
      poc: content.to,
      country: content.country,
      requestType: content.requestType,
      languages: content.languages,
      caseReference: content.caseReference ?? null,
      dossierStatus: row.status,
      outcome: answer ? (answer.status as IntroductionRequestView['outcome']) : 'pending',
      answeredBy: result?.poc ?? null,
      introductions: result?.introductions ?? [],
      reason: result?.reason ?? null,
      text: result?.text ?? null,
      code: result?.code ?? null,
      createdAt: row.created_at,
    });
  }
  if (id !== undefined && views.length === 0)
    nodeFail('NOT_FOUND', `dossier ${id} is not an introduction request of this node`);
  return views;
}

/** Introductions of this node to others (its copy as the subject). */
export function introductionsOfSelf(ctx: NodeContext, actor: Actor): IntroductionOfSelf[] {
  ctx.users.require(actor, 'dossier:read');
  const t = table(ctx);
  return t.cases(['subject']).map((row) => {
    const rec = t.record(row);
    return {
      id: row.id,
      requestId: row.request_id,
      requester: rec.requester,
      poc: rec.from,
      state: row.status,
      introductions: rec.result?.introductions ?? [],
      code: rec.result?.code ?? null,
      receivedAt: row.created_at,
    };
  });
}

// ------------------------------------------------------------------ PoC side

/** Requests and referrals this point of contact received, oldest first. */
export function introductionInbox(ctx: NodeContext, actor: Actor): IntroductionInboxEntry[] {
  ctx.users.require(actor, 'dossier:read');
  const t = table(ctx);
  return t.cases(['poc', 'referee']).map((row) => inboxEntry(ctx, t, row));
}

function inboxEntry(
  ctx: NodeContext,
  t: IntroductionTable,
  row: IntroductionRequestRow,
): IntroductionInboxEntry {
  const rec = t.record(row);
  const q = rec.inquiry;
  const answer = rec.answer;
  return {
    id: row.id,
    role: row.role as 'poc' | 'referee',
    state:
      row.status === 'pending' || row.status === 'refused' || answerReturned(ctx, rec)
        ? 'open'
        : row.status,
    requestId: row.request_id,
    requester: rec.requester,
    from: rec.from,
    country: q?.country ?? '',
    requestType: q?.requestType ?? '',
    languages: q?.languages ?? [],
    note: q?.note ?? null,
    caseReference: q?.caseReference ?? null,
    receivedAt: row.created_at,
    answer: answer
      ? {
          dossierId: answer.dossierId,
          outcome: answer.outcome,
          to: answer.to ?? null,
          subject: answer.subject ?? null,
          reason: answer.reason ?? null,
          dossierStatus: ctx.store.dossierRow(answer.dossierId)?.status ?? 'unknown',
        }
      : null,
  };
}

/** An open request or referral of this PoC, with its record. */
function openCase(
  ctx: NodeContext,
  id: string,
  roles: readonly ('poc' | 'referee')[],
): {
  row: IntroductionRequestRow;
  rec: IntroductionCase;
  inquiry: NonNullable<IntroductionCase['inquiry']>;
} {
  requirePoc(ctx);
  const t = table(ctx);
  const row = t.caseRow(id);
  if (!row || !(roles as readonly string[]).includes(row.role))
    return nodeFail('NOT_FOUND', `no introduction request ${id} for this point of contact`);
  const rec = t.record(row);
  if (row.status !== 'pending' && !answerReturned(ctx, rec))
    nodeFail('INVALID_STATE', `introduction request ${id} is already ${row.status}`);
  if (!rec.inquiry) return nodeFail('INVALID_STATE', `introduction request ${id} has no inquiry`);
  return { row, rec, inquiry: rec.inquiry };
}

/**
 * An answer an approver sent back to drafting (`return`) is answered anew:
 * the returned dossier stays a draft, its introduction is never sent nor exported.
 */
function answerReturned(ctx: NodeContext, rec: IntroductionCase): boolean {
  return rec.answer !== undefined && ctx.store.dossierRow(rec.answer.dossierId)?.status === 'draft';
}

function caseOf(ctx: NodeContext, row: IntroductionRequestRow): string | null {
  return ctx.store.dossierRow(row.dossier_id)?.case_id ?? null;
}

export interface IssueInput {
  /** The authority introduced: listed in a trusted manifest. */
  readonly authority: string;
  /** Defaults to the request type asked for. */
  readonly competences?: readonly RequestTypeName[];
  readonly note?: string;
  readonly validDays?: number;
}

/**
 * Sign an Introduction with this PoC's key (audience: the requester) and put
 * an introduction-answer (outcome introduced) to the requester, with a copy
 * to the introduced authority, up for approval: nothing leaves the node
 * until a second person approves it.
 */
export function issueIntroduction(
  ctx: NodeContext,
  actor: Actor,
  id: string,
  input: IssueInput,
): { dossierId: string; introduction: Introduction } {
  const user = ctx.users.require(actor, 'dossier:draft');
  const { row, rec, inquiry } = openCase(ctx, id, ['poc', 'referee']);
  const subject = ctx.trust.authority(input.authority);
  if (!subject)
    return nodeFail(
      'RECIPIENT_UNKNOWN',
      `${input.authority} is not an authority of a trusted manifest`,
    );
  if (input.authority === rec.requester)
    nodeFail('INPUT_INVALID', 'the requesting authority cannot be introduced to itself');
  const days = input.validDays ?? DEFAULT_INTRODUCTION_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > 3 * DEFAULT_INTRODUCTION_DAYS)
    nodeFail('INPUT_INVALID', `validity must be 1..${3 * DEFAULT_INTRODUCTION_DAYS} days`);
  const now = ctx.clock();
  let introduction: Introduction;
  try {
    introduction = signIntroduction(
      {
        issuer: ctx.address,
        subject: input.authority,
        subjectKey: subject.key,
        audience: rec.requester,
        competences: [...(input.competences ?? [inquiry.requestType])],
        note: input.note ?? '',
        issuedAt: now,
        validUntil: now + days * DAY,
      },
      ctx.keys.identity,
    );
  } catch (cause) {
    return nodeFail('INPUT_INVALID', 'the introduction is not valid', { cause });
  }
  const content: IntroductionAnswerContent = {
    kind: 'introduction-answer',
    from: ctx.address,
    to: rec.requester,
    answerTo: row.request_id,
    requester: rec.requester,
    outcome: 'introduced',
    introductions: [introduction],
  };
  const t = table(ctx);
  const dossierId = ctx.db.transaction(() => {
    const dossierId = draftIntroduction(ctx, user, content, [rec.requester, input.authority], {
      submit: true,
      caseId: caseOf(ctx, row),
    });
    t.insertIntroduction({
      introduction,
      direction: 'issued',
      requestId: row.request_id,
      dossierId,
      now,
    });
    t.updateCase(
      row.id,
      'introduced',
      {
        ...rec,
        answer: {
          dossierId,
          outcome: 'introduced',
          subject: input.authority,
          by: user.id,
          at: now,
        },
      },
      now,
    );
    audit(ctx, user.id, 'introduction.issue', row.id, hashOf(introduction));
    return dossierId;
  });
  return { dossierId, introduction };
}

/** Refer a request to a peer network's point of contact (an introduction-referral, up for approval). */
export function referIntroduction(
  ctx: NodeContext,
  actor: Actor,
  id: string,
  input: { to: string; remarks?: string },
): { dossierId: string } {
  const user = ctx.users.require(actor, 'dossier:draft');
  const { row, rec, inquiry } = openCase(ctx, id, ['poc']);
  if (!ctx.trust.poc(input.to))
    nodeFail('RECIPIENT_UNKNOWN', `${input.to} is not a point of contact of a trusted network`);
  if (networkOf(input.to) === networkOf(ctx.address))
    nodeFail('INPUT_INVALID', "a referral goes to a peer network's point of contact");
  const requester = ctx.trust.authority(rec.requester);
  if (!requester)
    return nodeFail('RECIPIENT_UNKNOWN', `${rec.requester} is no longer in a trusted manifest`);
  const content: IntroductionReferralContent = {
    kind: 'introduction-referral',
    from: ctx.address,
    to: input.to,
    requestId: row.request_id,
    requester: rec.requester,
    requesterKey: requester.key,
    request: { ...inquiry, languages: [...inquiry.languages] },
    ...(input.remarks === undefined ? {} : { remarks: input.remarks }),
  };
  const now = ctx.clock();
  const dossierId = ctx.db.transaction(() => {
    const dossierId = draftIntroduction(ctx, user, content, [input.to], {
      submit: true,
      caseId: caseOf(ctx, row),
    });
    table(ctx).updateCase(
      row.id,
      'referred',
      { ...rec, answer: { dossierId, outcome: 'referred', to: input.to, by: user.id, at: now } },
      now,
    );
    audit(ctx, user.id, 'introduction.refer', row.id, input.to);
    return dossierId;
  });
  return { dossierId };
}

/** Decline a request or a referral: an introduction-answer (outcome declined) to the requester, up for approval. */
export function declineIntroduction(
  ctx: NodeContext,
  actor: Actor,
  id: string,
  input: { reason: string; note?: string },
): { dossierId: string } {
  const user = ctx.users.require(actor, 'dossier:draft');
  if (!(INTRODUCTION_DECLINE_REASONS as readonly string[]).includes(input.reason))
    nodeFail(
      'INPUT_INVALID',
      `the reason must be one of ${INTRODUCTION_DECLINE_REASONS.join(', ')}`,
    );
  const reason = input.reason as DeclineReason;
  const { row, rec } = openCase(ctx, id, ['poc', 'referee']);
  const content: IntroductionAnswerContent = {
    kind: 'introduction-answer',
    from: ctx.address,
    to: rec.requester,
    answerTo: row.request_id,
    requester: rec.requester,
    outcome: 'declined',
    reason,
    ...(input.note === undefined ? {} : { text: input.note }),
  };
  const now = ctx.clock();
  const dossierId = ctx.db.transaction(() => {
    const dossierId = draftIntroduction(ctx, user, content, [rec.requester], {
      submit: true,
      caseId: caseOf(ctx, row),
    });
    table(ctx).updateCase(
      row.id,
      'declined',
      { ...rec, answer: { dossierId, outcome: 'declined', reason, by: user.id, at: now } },
      now,
    );
    audit(ctx, user.id, 'introduction.decline', row.id, reason);
    return dossierId;
  });
  return { dossierId };
}

/** Statuses of an answer dossier before its approval: the introduction it carries has not been issued yet. */
const UNAPPROVED = new Set(['draft', 'awaiting-approval']);

/**
 * The introductions this PoC issued whose answer was approved, in the form
 * `rogatory-network log add <file>` reads (`{ "introductions": [...] }`).
 */
export function exportIntroductions(
  ctx: NodeContext,
  actor: Actor,
): { introductions: Introduction[] } {
  const user = ctx.users.require(actor, 'dossier:read');
  const introductions = table(ctx)
    .introductions('issued')
    .filter((r) => {
      const status = r.dossierId ? ctx.store.dossierRow(r.dossierId)?.status : undefined;
      return status !== undefined && !UNAPPROVED.has(status);
    })
    .map((r) => r.introduction);
  audit(ctx, user.id, 'introduction.export', null, String(introductions.length));
  return { introductions };
}

// ------------------------------------------------------------------ receiving

function introduced(intro: Introduction): IntroducedRecord {
  const b = intro.body;
  return {
    hash: hashOf(intro),
    issuer: b.issuer,
    subject: b.subject,
    audience: b.audience,
    competences: [...b.competences],
    validUntil: b.validUntil,
  };
}

/** Check every introduction of an answer before keeping any: all or none. */
function checkAll(
  ctx: NodeContext,
  intros: readonly unknown[],
): { ok: true } | { ok: false; code: IntroductionRefusal } {
  for (const value of intros) {
    try {
      checkIntroduction(ctx, value);
    } catch (err) {
      if (err instanceof NodeError && err.code === 'VERIFICATION_FAILED' && err.detail)
        return { ok: false, code: err.detail as IntroductionRefusal };
      throw err;
    }
  }
  return { ok: true };
}

/**
 * A received introduction dossier (called in the receiving transaction, after
 * the dossier row is written): a request or referral opens a case for this
 * PoC; an answer tells the requesting officer the outcome, and its
 * introductions are verified and stored, or all refused with a code.
 */
export function recordIntroductionDossier(
  ctx: NodeContext,
  content: DossierContent,
  envelope: { readonly id: string; readonly sender: string },
  dossierId: string,
): void {
  const t = table(ctx);
  const now = ctx.clock();
  if (content.kind === 'introduction-request') {
    if (t.caseByRequest(envelope.id, 'poc')) return;
    const { kind: _k, from, to: _t, ...inquiry } = content;
    t.insertCase({
      requestId: envelope.id,
      role: 'poc',
      dossierId,
      status: 'pending',
      record: { requester: from, from: envelope.sender, inquiry: { ...inquiry } },
      now,
    });
    audit(ctx, 'system', 'introduction.receive', dossierId, content.kind);
    return;
  }
  if (content.kind === 'introduction-referral') {
    // Only a point of contact refers: anything else would make this PoC write to whom it names.
    if (!ctx.trust.poc(envelope.sender)) {
      audit(ctx, 'system', 'introduction.refused', dossierId, 'KEY_WRONG_ROLE');
      return;
    }
    if (t.caseByRequest(content.requestId, 'referee')) return;
    t.insertCase({
      requestId: content.requestId,
      role: 'referee',
      dossierId,
      status: 'pending',
      record: {
        requester: content.requester,
        from: envelope.sender,
        requesterKey: content.requesterKey,
        inquiry: { ...content.request },
      },
      now,
    });
    audit(ctx, 'system', 'introduction.receive', dossierId, content.kind);
    return;
  }
  if (content.kind !== 'introduction-answer') return;
  const intros = content.introductions ?? [];
  const asRequester = content.requester === ctx.address;
  const asSubject = !asRequester && intros.some((i) => i.body.subject === ctx.address);
  if (!asRequester && !asSubject) return;
  const role = asRequester ? 'requester' : 'subject';
  let status: IntroductionState = content.outcome === 'declined' ? 'declined' : 'introduced';
  let code: IntroductionRefusal | undefined;
  // Only a point of contact answers: a decline from anyone else is no outcome.
  if (!ctx.trust.poc(envelope.sender)) code = 'KEY_WRONG_ROLE';
  else if (asRequester) {
    const request = ctx.store.dossierByEnvelope(content.answerTo);
    const requestMeta = request ? ctx.store.meta(request) : undefined;
    if (
      !request ||
      request.direction !== 'out' ||
      requestMeta?.kind !== 'introduction' ||
      requestMeta.type !== 'introduction-request'
    )
      code = 'INTRODUCTION_UNSOLICITED';
  }
  const mine = asRequester ? intros : intros.filter((i) => i.body.subject === ctx.address);
  if (code === undefined && status === 'introduced') {
    const checked = checkAll(ctx, mine);
    if (!checked.ok) code = checked.code;
  }
  if (code !== undefined) status = 'refused';
  else if (status === 'introduced')
    for (const intro of mine)
      acceptIntroduction(ctx, intro, { requestId: content.answerTo, dossierId });
  const record: IntroductionCase = {
    requester: content.requester,
    from: envelope.sender,
    result: {
      poc: envelope.sender,
      dossierId,
      introductions: status === 'introduced' ? mine.map(introduced) : [],
      ...(content.reason === undefined ? {} : { reason: content.reason }),
      ...(content.text === undefined ? {} : { text: content.text }),
      ...(code === undefined ? {} : { code }),
    },
  };
  const existing = t.caseByRequest(content.answerTo, role);
  // A later answer that is not an introduction never hides one already kept.
  if (existing?.status === 'introduced' && status !== 'introduced') {
    audit(ctx, 'system', 'introduction.refused', dossierId, code ?? 'ALREADY_INTRODUCED');
    return;
  }
  if (existing) t.updateCase(existing.id, status, { ...t.record(existing), ...record }, now);
  else t.insertCase({ requestId: content.answerTo, role, dossierId, status, record, now });
  audit(
    ctx,
    'system',
    status === 'refused' ? 'introduction.refused' : 'introduction.receive',
    dossierId,
    code ?? `${content.kind} ${status}`,
  );
}

/** Verify and keep one introduction given directly (not carried by a dossier). */
export function receiveIntroduction(
  ctx: NodeContext,
  actor: Actor,
  value: unknown,
): IntroducedRecord {
  const user = ctx.users.require(actor, 'dossier:draft');
  try {
    const { introduction, fresh } = acceptIntroduction(ctx, value, {
      requestId: null,
      dossierId: null,
    });
    if (fresh) audit(ctx, user.id, 'introduction.receive', null, hashOf(introduction));
    return introduced(introduction);
  } catch (err) {
    if (err instanceof NodeError && err.code === 'VERIFICATION_FAILED')
      audit(ctx, user.id, 'introduction.refused', null, err.detail ?? null);
    throw err;
  }
}
