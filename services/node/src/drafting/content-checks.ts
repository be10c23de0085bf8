import {
  checkContentParties,
  isProtocolError,
  networkOf,
  validateDossierContent,
  type ContentIssue,
  type DossierContent,
  type KeyRef,
} from '@rogatory/protocol';
import type { NodeContext } from '../context.js';
import { dateOf } from '../dossier-status.js';
import { nodeFail } from '../errors.js';

/** Validate content as a drafter must fix it: schema, rules, deadlines against today, parties. */
export function draftingIssues(
  ctx: NodeContext,
  content: unknown,
  recipients: readonly string[],
  attachmentCount: number,
): ContentIssue[] {
  const issues = validateDossierContent(content, { attachmentCount, today: dateOf(ctx.clock()) });
  if (issues.length === 0)
    issues.push(...checkContentParties(content as DossierContent, ctx.address, recipients));
  return issues;
}

export function requireValid(issues: readonly ContentIssue[]): void {
  if (issues.length > 0)
    nodeFail('CONTENT_INVALID', `the content has ${issues.length} problem(s) to fix`, { issues });
}

/** Recipients: the authority the content addresses first, then any others; never the node itself. */
export function recipientsOf(
  ctx: NodeContext,
  content: DossierContent,
  extra: readonly string[],
): string[] {
  const primary =
    content.kind === 'request'
      ? content.header.requestedAuthority.address
      : content.kind === 'answer'
        ? content.to.address
        : content.to;
  const all = [...new Set([primary, ...extra])];
  if (all.includes(ctx.address))
    nodeFail('INPUT_INVALID', 'the node cannot address a dossier to itself');
  return all;
}

/**
 * The current encryption key of a recipient from the trusted manifests
 * (RECIPIENT_UNKNOWN if none). A recipient whose identity key its network
 * has revoked (as of now, or whose key was rotated in by a revoked key) is
 * refused with RECIPIENT_REVOKED, whatever its encryption keys: a revoked
 * identity may be in other hands (detail KEY_REVOKED).
 */
export function encryptionKeyOf(ctx: NodeContext, address: string): KeyRef {
  const entry = ctx.trust.authority(address) ?? ctx.trust.poc(address);
  if (entry) {
    try {
      ctx.trust.resolveSigningKey(address, entry.key.kid, ctx.clock());
    } catch (cause) {
      if (isProtocolError(cause, 'KEY_REVOKED')) {
        const since = ctx.trust.revocationOf(entry.key.kid, networkOf(address))?.revokedAt;
        return nodeFail(
          'RECIPIENT_REVOKED',
          `the identity key of ${address} is revoked${since === undefined ? '' : ` since ${new Date(since).toISOString()}`}: nothing is sealed to it`,
          { cause, detail: cause.code },
        );
      }
      if (!isProtocolError(cause)) throw cause;
    }
  }
  try {
    const key = ctx.trust.encryptionKeysFor(address, ctx.clock())[0];
    if (key) return key;
  } catch (cause) {
    if (!isProtocolError(cause)) throw cause;
    return nodeFail('RECIPIENT_UNKNOWN', `${address} is not a member of a trusted network`, {
      cause,
      detail: cause.code,
    });
  }
  return nodeFail('RECIPIENT_UNKNOWN', `${address} has no usable encryption key`);
}

/** Kind and parties are needed to route a draft; full validation follows (draftingIssues). */
export function checkedContent(value: unknown): DossierContent {
  const issues = validateDossierContent(value);
  if (issues.length > 0)
    nodeFail('CONTENT_INVALID', `the content has ${issues.length} problem(s) to fix`, { issues });
  return value as DossierContent;
}
