import type { DossierContent, TrustStore } from '@rogatory/protocol';
import { requireClearance, type Actor } from '../administration/users.js';
import type { NodeContext } from '../context.js';
import { sameLanguage } from '../directory/directory.js';
import { handlingOf } from '../dossier-meta.js';

/**
 * Stable codes of the warnings a request can draw. A warning never stops
 * drafting, submitting or approving: the manifest may lag behind what an
 * authority really handles; the officer decides.
 */
export const DRAFT_WARNINGS = {
  /** The recipient's manifest entry does not list the request type among its competences. */
  COMPETENCE_NOT_LISTED: 'the recipient does not list this request type among its competences',
  /** The recipient's manifest entry does not list the request's language. */
  LANGUAGE_NOT_LISTED: 'the recipient does not list the language of the request',
} as const;
export type DraftWarningCode = keyof typeof DRAFT_WARNINGS;

export interface DraftWarning {
  readonly code: DraftWarningCode;
  readonly recipient: string;
  /** The request type or language concerned (a code, never free text). */
  readonly value: string;
  /** What the recipient lists instead. */
  readonly listed: readonly string[];
  readonly message: string;
}

/**
 * Warnings for a request to authorities listed in trusted manifests: its
 * type not among an authority's `competences`, its language not among its
 * `languages` (same primary subtag counts). Answers, and recipients that are
 * points of contact, draw none.
 */
export function recipientWarnings(
  trust: TrustStore,
  content: DossierContent,
  recipients: readonly string[],
): DraftWarning[] {
  if (content.kind !== 'request') return [];
  const out: DraftWarning[] = [];
  for (const recipient of recipients) {
    const entry = trust.authority(recipient);
    if (!entry) continue;
    if (!entry.competences.includes(content.requestType))
      out.push({
        code: 'COMPETENCE_NOT_LISTED',
        recipient,
        value: content.requestType,
        listed: entry.competences,
        message: `${recipient} does not list ${content.requestType} among its competences (${entry.competences.join(', ')})`,
      });
    const language = content.header.language;
    if (!entry.languages.some((l) => sameLanguage(l, language)))
      out.push({
        code: 'LANGUAGE_NOT_LISTED',
        recipient,
        value: language,
        listed: entry.languages,
        message: `${recipient} does not list the language ${language} (it lists ${entry.languages.join(', ')})`,
      });
  }
  return out;
}

/**
 * The warnings of an outgoing dossier still in drafting or awaiting approval
 * (empty once sealed: its content is no longer held as a draft).
 */
export function dossierWarnings(ctx: NodeContext, actor: Actor, id: string): DraftWarning[] {
  const user = ctx.users.require(actor, 'dossier:draft');
  const row = ctx.store.requireDossier(id);
  if (row.direction !== 'out' || (row.status !== 'draft' && row.status !== 'awaiting-approval'))
    return [];
  requireClearance(user, handlingOf(ctx, row));
  const meta = ctx.store.meta(row);
  if (meta.kind === 'unknown') return [];
  return recipientWarnings(ctx.trust, ctx.store.draftContent(row), meta.recipients);
}
