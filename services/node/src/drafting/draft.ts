import type { DossierContent } from '@rogatory/protocol';
import { isCleared, requireClearance, type Actor, type UserInfo } from '../administration/users.js';
import { requestAnsweredBy } from '../answering/answer-threading.js';
import { audit, type NodeContext, type ProgressListener } from '../context.js';
import { caseMetaOf, handlingOf, metaOf } from '../dossier-meta.js';
import { nodeFail } from '../errors.js';
import type { HandlingCode } from '../store/records.js';
import type { DossierRow } from '../store/mailbox-store.js';
import { encryptAttachments, type AttachmentInput } from './attachment-encryption.js';
import {
  checkedContent,
  draftingIssues,
  encryptionKeyOf,
  recipientsOf,
  requireValid,
} from './content-checks.js';

export interface ComposeInput {
  /** A request (one of the four types) or an answer, as JSON (docs/protocol.md §10). */
  readonly content: unknown;
  /** Further recipients beyond the one the content addresses. */
  readonly recipients?: readonly string[];
  readonly attachments?: readonly AttachmentInput[];
  /**
   * Put a request into an existing case (answers always go to their request's
   * case). Without it, a request whose case reference names exactly one case
   * the drafter may see joins that case.
   */
  readonly caseId?: string;
  /** Open a new case even if the case reference names an existing one. */
  readonly newCase?: boolean;
  readonly onProgress?: ProgressListener;
}

/** Handling code and case of a draft: a request carries its own; an answer inherits its request's. */
function placement(
  ctx: NodeContext,
  user: UserInfo,
  content: DossierContent,
  caseId: string | undefined,
  newCase: boolean,
): { handlingCode: HandlingCode; caseId: string | undefined; request?: DossierRow } {
  if (content.kind === 'request') {
    if (caseId !== undefined && !ctx.store.caseRow(caseId))
      nodeFail('NOT_FOUND', `no case ${caseId}`);
    return {
      handlingCode: content.header.handlingCode,
      caseId:
        caseId ?? (newCase ? undefined : caseByReference(ctx, user, content.header.caseReference)),
    };
  }
  if (content.kind !== 'answer')
    return nodeFail(
      'INPUT_INVALID',
      'introduction dossiers are sent with `rogatory introduce`, not drafted',
    );
  const request = requestAnsweredBy(ctx, content, content.to.address);
  if (!request)
    return nodeFail(
      'NOT_FOUND',
      `no request with envelope id ${content.inReplyTo.envelopeId} between this node and ${content.to.address}`,
    );
  const meta = ctx.store.meta(request);
  return {
    handlingCode: meta.kind === 'unknown' ? 'restricted' : meta.handlingCode,
    caseId: request.case_id ?? undefined,
    request,
  };
}

/**
 * The case a new request joins by its case reference: the one case this node
 * opened with a request of its own under that reference, that the drafter is
 * cleared for; none (a new case) if there is none;
 * INPUT_INVALID naming the cases if several match (the officer chooses with
 * `--case`, or `--new-case`).
 */
function caseByReference(ctx: NodeContext, user: UserInfo, reference: string): string | undefined {
  const found: string[] = [];
  for (const row of ctx.store.allCases()) {
    const meta = ctx.store.caseMeta(row);
    if (meta.caseReference !== reference || !isCleared(user, meta.handlingCode)) continue;
    // Only cases this node opened with a request of its own: a received request carries the
    // other authority's reference, which may equal one of ours by chance.
    if (ctx.store.dossiersOfCase(row.id).some((d) => d.direction === 'out' && d.kind === 'request'))
      found.push(row.id);
  }
  if (found.length <= 1) return found[0];
  return nodeFail(
    'INPUT_INVALID',
    `the case reference names ${String(found.length)} cases (${found.join(', ')}); choose one with --case <id>, or open a new one with --new-case`,
  );
}

/** A request joining a case adds its recipients to the case's counterparts. */
function joinCounterparts(
  ctx: NodeContext,
  caseId: string,
  recipients: readonly string[],
  now: number,
): void {
  const row = ctx.store.caseRow(caseId);
  if (!row) return;
  const meta = ctx.store.caseMeta(row);
  const missing = recipients.filter((r) => !meta.counterparts.includes(r));
  if (missing.length > 0)
    ctx.store.updateCase(
      caseId,
      { ...meta, counterparts: [...meta.counterparts, ...missing] },
      now,
    );
}

/** Create a draft: validate, encrypt the attachments into the blob store, then write the rows in one transaction. */
export async function compose(
  ctx: NodeContext,
  actor: Actor,
  input: ComposeInput,
): Promise<string> {
  const user = ctx.users.require(actor, 'dossier:draft');
  const attachments = input.attachments ?? [];
  const content = checkedContent(input.content);
  const recipients = recipientsOf(ctx, content, input.recipients ?? []);
  requireValid(draftingIssues(ctx, content, recipients, attachments.length));
  const place = placement(ctx, user, content, input.caseId, input.newCase === true);
  requireClearance(user, place.handlingCode);
  for (const r of recipients) encryptionKeyOf(ctx, r);

  const manifests = await encryptAttachments(ctx, attachments, input.onProgress);
  const now = ctx.clock();
  const meta = metaOf(content, ctx.address, recipients, place.handlingCode);
  return ctx.db.transaction(() => {
    const caseId = place.caseId ?? ctx.store.insertCase(caseMetaOf(meta, recipients), now);
    if (place.caseId !== undefined && content.kind === 'request')
      joinCounterparts(ctx, caseId, recipients, now);
    const id = ctx.store.insertDossier({
      caseId,
      direction: 'out',
      kind: meta.kind,
      status: 'draft',
      now,
      draftedBy: user.id,
      meta,
      content,
      attachments: manifests,
    });
    ctx.store.touchCase(caseId, now);
    audit(
      ctx,
      user.id,
      'dossier.compose',
      id,
      content.kind === 'request'
        ? content.requestType
        : content.kind === 'answer'
          ? content.answerType
          : content.kind,
    );
    return id;
  });
}

/** Replace a draft's content (and optionally its attachments); the editor becomes a co-drafter (four-eyes). */
export async function updateDraft(
  ctx: NodeContext,
  actor: Actor,
  id: string,
  input: Omit<ComposeInput, 'caseId' | 'newCase'> & { keepAttachments?: boolean },
): Promise<void> {
  const user = ctx.users.require(actor, 'dossier:draft');
  const row = ctx.store.requireDossier(id);
  if (row.direction !== 'out' || row.status !== 'draft')
    nodeFail('INVALID_STATE', `dossier ${id} is not a draft`);
  requireClearance(user, handlingOf(ctx, row));
  const content = checkedContent(input.content);
  if (content.kind !== row.kind)
    nodeFail('INPUT_INVALID', 'a draft cannot change from request to answer');
  const kept = input.keepAttachments === false ? [] : ctx.store.draftAttachments(row);
  const attachments = input.attachments ?? [];
  const recipients = recipientsOf(ctx, content, input.recipients ?? []);
  requireValid(draftingIssues(ctx, content, recipients, kept.length + attachments.length));
  const place = placement(ctx, user, content, undefined, true);
  requireClearance(user, place.handlingCode);
  const added = await encryptAttachments(ctx, attachments, input.onProgress);
  const now = ctx.clock();
  const contributors = [...new Set([...(JSON.parse(row.contributors) as string[]), user.id])];
  ctx.db.transaction(() => {
    ctx.store.updateDraft(id, {
      meta: metaOf(content, ctx.address, recipients, place.handlingCode),
      content,
      attachments: [...kept, ...added],
      contributors,
      now,
    });
    audit(ctx, user.id, 'dossier.update', id);
  });
}

/** Draft → awaiting-approval, after validating again (deadlines may have passed since drafting). */
export function submitForApproval(ctx: NodeContext, actor: Actor, id: string): void {
  const user = ctx.users.require(actor, 'dossier:draft');
  const row = ctx.store.requireDossier(id);
  if (row.direction !== 'out' || row.status !== 'draft')
    nodeFail('INVALID_STATE', `dossier ${id} is not a draft`);
  requireClearance(user, handlingOf(ctx, row));
  const content = ctx.store.draftContent(row);
  const meta = ctx.store.meta(row);
  if (meta.kind === 'unknown') return nodeFail('INVALID_STATE', `dossier ${id} has no content`);
  requireValid(
    draftingIssues(ctx, content, meta.recipients, ctx.store.draftAttachments(row).length),
  );
  const now = ctx.clock();
  ctx.db.transaction(() => {
    ctx.store.setStatus(id, 'awaiting-approval', now);
    audit(ctx, user.id, 'dossier.submit', id);
  });
}
