import type { DossierContent } from '@rogatory/protocol';
import { audit, type NodeContext } from '../context.js';
import { advance, statusForAnswer } from '../dossier-status.js';
import type { DossierRow } from '../store/mailbox-store.js';

/**
 * The request an answer replies to, if this node holds it and `counterpart`
 * is the other party of that request: an authority cannot move the status
 * of (or thread into) a request it is not party to by naming its envelope id.
 */
export function requestAnsweredBy(
  ctx: NodeContext,
  answer: DossierContent,
  counterpart: string,
): DossierRow | undefined {
  if (answer.kind !== 'answer') return undefined;
  const request = ctx.store.dossierByEnvelope(answer.inReplyTo.envelopeId);
  if (!request || request.kind !== 'request') return undefined;
  const meta = ctx.store.meta(request);
  if (meta.kind !== 'request') return undefined;
  const parties = request.direction === 'out' ? meta.recipients : [meta.sender];
  return parties.includes(counterpart) ? request : undefined;
}

/** An answer moves the status of the request it replies to (when this node holds that request, between the same parties). */
export function applyAnswerToRequest(
  ctx: NodeContext,
  answer: DossierContent,
  counterpart: string,
  actor: string,
): void {
  if (answer.kind !== 'answer') return;
  const request = requestAnsweredBy(ctx, answer, counterpart);
  if (!request) return;
  const next = advance(request.status, statusForAnswer(answer.answerType));
  if (next === request.status) return;
  ctx.store.setStatus(request.id, next, ctx.clock());
  audit(ctx, actor, 'dossier.status', request.id, next);
}
