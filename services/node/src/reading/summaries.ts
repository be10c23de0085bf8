import { networkOf } from '@rogatory/protocol';
import { requireClearance, isCleared, type Actor, type UserInfo } from '../administration/users.js';
import type { NodeContext } from '../context.js';
import type { DossierMeta, HandlingCode } from '../store/records.js';
import type { Direction, DossierKind, DossierRow } from '../store/mailbox-store.js';

/** One line of a list: metadata only. `redacted` when the user lacks the clearance its handling code needs. */
export interface DossierSummary {
  readonly id: string;
  readonly caseId: string | null;
  readonly direction: Direction;
  readonly kind: DossierKind;
  readonly status: string;
  readonly envelopeId: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly size: number;
  readonly redacted: boolean;
  readonly type?: string;
  readonly caseReference?: string;
  readonly counterparts?: readonly string[];
  readonly handlingCode?: HandlingCode;
  readonly deadline?: string;
  readonly openedAt?: number;
  readonly quarantineCode?: string;
  /**
   * A received dossier whose signing key its network has revoked since (show
   * and open only): still readable, signed before `revokedAt`.
   */
  readonly signerRevoked?: SignerRevocation;
}

export interface SignerRevocation {
  readonly kid: string;
  readonly revokedAt: number;
  readonly reason: string;
}

export function summarize(
  ctx: NodeContext,
  row: DossierRow,
  user: UserInfo,
): { summary: DossierSummary; meta: DossierMeta } {
  const meta = ctx.store.meta(row);
  const base = {
    id: row.id,
    caseId: row.case_id,
    direction: row.direction,
    kind: row.kind,
    status: row.status,
    envelopeId: row.envelope_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    size: row.total_size,
    ...(row.first_opened_at === null ? {} : { openedAt: row.first_opened_at }),
    ...(row.quarantine_code === null ? {} : { quarantineCode: row.quarantine_code }),
  };
  if (meta.kind === 'unknown')
    return { summary: { ...base, redacted: false, counterparts: [meta.sender] }, meta };
  if (!isCleared(user, meta.handlingCode))
    return { summary: { ...base, redacted: true, handlingCode: meta.handlingCode }, meta };
  const counterparts = row.direction === 'out' ? meta.recipients : [meta.sender];
  return {
    summary: {
      ...base,
      redacted: false,
      type: meta.type,
      caseReference: meta.caseReference,
      counterparts,
      handlingCode: meta.handlingCode,
      ...(meta.kind === 'introduction' || meta.deadline === undefined
        ? {}
        : { deadline: meta.deadline }),
    },
    meta,
  };
}

/** A dossier the user may read (role and clearance checked), with its summary and metadata. */
export function readable(
  ctx: NodeContext,
  actor: Actor,
  id: string,
  permission: 'dossier:read' | 'dossier:export' = 'dossier:read',
): { user: UserInfo; row: DossierRow; summary: DossierSummary; meta: DossierMeta } {
  const user = ctx.users.require(actor, permission);
  const row = ctx.store.requireDossier(id);
  const { summary, meta } = summarize(ctx, row, user);
  if (meta.kind !== 'unknown') requireClearance(user, meta.handlingCode);
  const signerRevoked = signerRevocation(ctx, row);
  return { user, row, summary: signerRevoked ? { ...summary, signerRevoked } : summary, meta };
}

/** The revocation of the key that signed a received dossier, if its network revoked it (live: the trust store as it is now). */
export function signerRevocation(ctx: NodeContext, row: DossierRow): SignerRevocation | undefined {
  if (row.direction !== 'in' || row.envelope_id === null) return undefined;
  const envelope = ctx.store.envelope(row.envelope_id);
  if (!envelope) return undefined;
  const kid = envelope.signature.kid;
  const revoked = ctx.trust.revocationOf(kid, networkOf(envelope.body.sender));
  return revoked ? { kid, revokedAt: revoked.revokedAt, reason: revoked.reason } : undefined;
}
