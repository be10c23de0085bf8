import type { DossierContent } from '@rogatory/protocol';
import type { NodeContext } from './context.js';
import type { CaseMeta, DossierMeta, HandlingCode } from './store/records.js';
import type { DossierRow } from './store/mailbox-store.js';

/** The metadata record of a dossier (kept sealed beside it): what lists and filters read without opening it. */
export function metaOf(
  content: DossierContent,
  sender: string,
  recipients: readonly string[],
  handlingCode: HandlingCode,
): DossierMeta {
  if (content.kind === 'request') {
    const h = content.header;
    return {
      kind: 'request',
      type: content.requestType,
      caseReference: h.caseReference,
      sender,
      recipients: [...recipients],
      handlingCode,
      ...(h.deadline === undefined ? {} : { deadline: h.deadline }),
      urgency: h.urgency,
    };
  }
  if (content.kind !== 'answer') {
    return {
      kind: 'introduction',
      type: content.kind,
      caseReference: introductionReference(content),
      sender,
      recipients: [...recipients],
      handlingCode,
      ...(content.kind === 'introduction-referral' ? { requestId: content.requestId } : {}),
      ...(content.kind === 'introduction-answer' ? { requestId: content.answerTo } : {}),
    };
  }
  const deadline =
    content.answerType === 'request-additional-information'
      ? content.additionalInformation.deadline
      : undefined;
  return {
    kind: 'answer',
    type: content.answerType,
    caseReference: content.inReplyTo.caseReference,
    ...(content.inReplyTo.requestedCaseReference === undefined
      ? {}
      : { requestedCaseReference: content.inReplyTo.requestedCaseReference }),
    sender,
    recipients: [...recipients],
    handlingCode,
    inReplyTo: content.inReplyTo.envelopeId,
    ...(deadline === undefined ? {} : { deadline }),
  };
}

/** What lists show as the case reference of an introduction dossier: the officer's reference, if given. */
function introductionReference(
  content: Exclude<DossierContent, { kind: 'request' } | { kind: 'answer' }>,
): string {
  const reference =
    content.kind === 'introduction-request'
      ? content.caseReference
      : content.kind === 'introduction-referral'
        ? content.request.caseReference
        : undefined;
  return reference ?? 'introduction';
}

export function caseMetaOf(meta: DossierMeta, counterparts: readonly string[]): CaseMeta {
  if (meta.kind === 'unknown')
    return {
      caseReference: 'unknown',
      counterparts: [...counterparts],
      handlingCode: 'restricted',
    };
  return {
    caseReference: meta.caseReference,
    counterparts: [...counterparts],
    handlingCode: meta.handlingCode,
    ...(meta.kind === 'request' ? { requestType: meta.type } : {}),
    ...(meta.kind === 'answer' && meta.requestedCaseReference !== undefined
      ? { requestedCaseReference: meta.requestedCaseReference }
      : {}),
  };
}

/** The handling code of a stored dossier; one whose content is unknown (quarantined) is restricted. */
export function handlingOf(ctx: NodeContext, row: DossierRow): HandlingCode {
  const meta = ctx.store.meta(row);
  return meta.kind === 'unknown' ? 'restricted' : meta.handlingCode;
}
