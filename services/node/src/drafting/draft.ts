import type { DossierContent } from '@rogatory/protocol';
import { requireClearance, type Actor } from '../administration/users.js';
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
  /** Put a request into an existing case (answers always go to their request's case). */
  readonly caseId?: string;
  readonly onProgress?: ProgressListener;
}

/** Handling code and case of a draft: a request carries its own; an answer inherits its request's. */
function placement(
  ctx: NodeContext,
  content: DossierContent,
  caseId: string | undefined,
): { handlingCode: HandlingCode; caseId: string | undefined; request?: DossierRow } {
  if (content.kind === 'request') {
    if (caseId !== undefined && !ctx.store.caseRow(caseId))
      nodeFail('NOT_FOUND', `no case ${caseId}`);
    return { handlingCode: content.header.handlingCode, caseId };
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
  const place = placement(ctx, content, input.caseId);
  requireClearance(user, place.handlingCode);
  for (const r of recipients) encryptionKeyOf(ctx, r);

  const manifests = await encryptAttachments(ctx, attachments, input.onProgress);
  const now = ctx.clock();
  const meta = metaOf(content, ctx.address, recipients, place.handlingCode);
  return ctx.db.transaction(() => {
    const caseId = place.caseId ?? ctx.store.insertCase(caseMetaOf(meta, recipients), now);
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
  input: Omit<ComposeInput, 'caseId'> & { keepAttachments?: boolean },
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
  const place = placement(ctx, content, undefined);
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
