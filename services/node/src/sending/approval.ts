import { isProtocolError, sealDossier } from '@rogatory/protocol';
import { requireClearance, type Actor, type UserInfo } from '../administration/users.js';
import { audit, type NodeContext } from '../context.js';
import { signingIdentity } from '../administration/key-rotation.js';
import { handlingOf } from '../dossier-meta.js';
import { draftingIssues, encryptionKeyOf, requireValid } from '../drafting/content-checks.js';
import { nodeFail, toNodeError } from '../errors.js';
import type { DossierRow } from '../store/mailbox-store.js';

const DAY = 24 * 3600 * 1000;

/** An approver sends a dossier back to drafting. */
export function returnToDraft(ctx: NodeContext, actor: Actor, id: string): void {
  const user = ctx.users.require(actor, 'dossier:approve');
  const row = ctx.store.requireDossier(id);
  if (row.direction !== 'out' || row.status !== 'awaiting-approval')
    nodeFail('INVALID_STATE', `dossier ${id} is not awaiting approval`);
  requireClearance(user, handlingOf(ctx, row));
  const now = ctx.clock();
  ctx.db.transaction(() => {
    ctx.store.setStatus(id, 'draft', now);
    ctx.store.recordApproval(id, user.id, 'returned', now);
    audit(ctx, user.id, 'dossier.return', id);
  });
}

/**
 * Four-eyes approval: an approver who neither drafted nor edited the
 * dossier approves it; the node then signs and seals it (sealed object into
 * the blob store first), and queues it for sending, in one transaction.
 */
export async function approve(ctx: NodeContext, actor: Actor, id: string): Promise<string> {
  const user = ctx.users.require(actor, 'dossier:approve');
  const row = ctx.store.requireDossier(id);
  if (row.direction !== 'out' || row.status !== 'awaiting-approval')
    nodeFail('INVALID_STATE', `dossier ${id} is not awaiting approval`);
  checkFourEyes(row, user);
  requireClearance(user, handlingOf(ctx, row));
  const content = ctx.store.draftContent(row);
  const attachments = ctx.store.draftAttachments(row);
  const meta = ctx.store.meta(row);
  if (meta.kind === 'unknown') return nodeFail('INVALID_STATE', `dossier ${id} has no content`);
  requireValid(draftingIssues(ctx, content, meta.recipients, attachments.length));
  const now = ctx.clock();
  const recipients = meta.recipients.map((address) => ({
    address,
    encryptionKey: encryptionKeyOf(ctx, address),
  }));
  const archiveKey = ctx.config.encryptionCerts[ctx.config.encryptionCerts.length - 1]!.body.key;
  let sealed;
  try {
    sealed = sealDossier({
      sender: { address: ctx.address, identity: signingIdentity(ctx), archiveKey },
      recipients,
      content,
      attachments,
      createdAt: now,
      expiresAt: now + ctx.config.envelopeLifetimeDays * DAY,
    });
  } catch (cause) {
    if (isProtocolError(cause, 'LIMIT_EXCEEDED'))
      nodeFail(
        'INPUT_INVALID',
        'the dossier is too large to seal: move documents into attachments',
        { cause, detail: cause.code },
      );
    throw toNodeError(cause, 'seal dossier');
  }
  const envelope = sealed.envelope;
  try {
    await ctx.blobs.put(envelope.body.dossier.id, sealed.sealed, {
      maxSize: sealed.sealed.length,
      expectedSize: sealed.sealed.length,
    });
  } catch (cause) {
    throw toNodeError(cause, 'store sealed dossier');
  }
  ctx.db.transaction(() => {
    const current = ctx.store.requireDossier(id);
    if (current.status !== 'awaiting-approval')
      nodeFail('INVALID_STATE', `dossier ${id} changed while it was being approved`);
    ctx.store.markSealed(id, {
      envelopeId: envelope.body.id,
      sealedId: envelope.body.dossier.id,
      totalSize: envelope.body.totalSize,
      dossier: sealed.dossier,
      approvedBy: user.id,
      status: 'approved',
      now,
    });
    ctx.store.insertEnvelope(envelope, id, 'out', now);
    ctx.store.recordApproval(id, user.id, 'approved', now);
    ctx.store.enqueue('submit', id, envelope.body.id, now);
    audit(ctx, user.id, 'dossier.approve', id, envelope.body.id);
  });
  return envelope.body.id;
}

export function checkFourEyes(row: DossierRow, approver: UserInfo): void {
  const contributors = JSON.parse(row.contributors) as string[];
  if (row.drafted_by === approver.id || contributors.includes(approver.id)) {
    nodeFail(
      'FOUR_EYES_VIOLATION',
      `${approver.username} drafted dossier ${row.id}: another approver must approve it`,
    );
  }
}
