import { isCleared, type Actor } from '../administration/users.js';
import type { NodeContext } from '../context.js';
import { FINAL_STATUSES, dateOf, isStatus } from '../dossier-status.js';
import type { DossierMeta, HandlingCode } from '../store/records.js';
import type { Direction, DossierKind } from '../store/mailbox-store.js';
import { summarize, type DossierSummary } from './summaries.js';

export interface DossierFilter {
  /** Substring of the case reference (or the requested side's reference), case-insensitive. */
  readonly caseReference?: string;
  readonly counterpart?: string;
  /** Request or answer type. */
  readonly type?: string;
  readonly status?: string | readonly string[];
  readonly direction?: Direction;
  readonly kind?: DossierKind;
  readonly caseId?: string;
  /** Created at or after (ms). */
  readonly since?: number;
  /** Created before (ms). */
  readonly until?: number;
  /** Only dossiers whose deadline is before this date (YYYY-MM-DD) and that are not finished. */
  readonly overdueOn?: string;
}

export interface CaseSummary {
  readonly id: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly redacted: boolean;
  readonly caseReference?: string;
  readonly counterparts?: readonly string[];
  readonly requestType?: string;
  readonly handlingCode?: HandlingCode;
  readonly dossiers: readonly {
    readonly id: string;
    readonly kind: DossierKind;
    readonly direction: Direction;
    readonly status: string;
    readonly type?: string;
  }[];
}

export interface QuarantineEntry {
  readonly id: string;
  readonly envelopeId: string | null;
  readonly sender: string;
  readonly code: string;
  readonly receivedAt: number;
  readonly size: number;
}

function matches(summary: DossierSummary, meta: DossierMeta, filter: DossierFilter): boolean {
  if (filter.direction !== undefined && summary.direction !== filter.direction) return false;
  if (filter.kind !== undefined && summary.kind !== filter.kind) return false;
  if (filter.caseId !== undefined && summary.caseId !== filter.caseId) return false;
  if (filter.since !== undefined && summary.createdAt < filter.since) return false;
  if (filter.until !== undefined && summary.createdAt >= filter.until) return false;
  if (filter.status !== undefined) {
    const wanted = typeof filter.status === 'string' ? [filter.status] : filter.status;
    if (!wanted.includes(summary.status)) return false;
  }
  const contentFilter =
    filter.caseReference !== undefined ||
    filter.counterpart !== undefined ||
    filter.type !== undefined ||
    filter.overdueOn !== undefined;
  if (!contentFilter) return true;
  if (summary.redacted || meta.kind === 'unknown') return false;
  if (filter.type !== undefined && meta.type !== filter.type) return false;
  if (
    filter.counterpart !== undefined &&
    !(summary.counterparts ?? []).includes(filter.counterpart)
  )
    return false;
  if (filter.caseReference !== undefined) {
    const needle = filter.caseReference.toLowerCase();
    const refs = [
      meta.caseReference,
      meta.kind === 'answer' ? meta.requestedCaseReference : undefined,
    ];
    if (!refs.some((r) => r?.toLowerCase().includes(needle) === true)) return false;
  }
  if (filter.overdueOn !== undefined) {
    if (
      meta.kind === 'introduction' ||
      meta.deadline === undefined ||
      meta.deadline >= filter.overdueOn
    )
      return false;
    if (isStatus(summary.status) && FINAL_STATUSES.has(summary.status)) return false;
  }
  return true;
}

/** Dossiers the user may list, filtered on decrypted metadata in memory. */
export function list(ctx: NodeContext, actor: Actor, filter: DossierFilter = {}): DossierSummary[] {
  const user = ctx.users.require(actor, 'dossier:read');
  const out: DossierSummary[] = [];
  for (const row of ctx.store.allDossiers()) {
    const { summary, meta } = summarize(ctx, row, user);
    if (matches(summary, meta, filter)) out.push(summary);
  }
  return out;
}

/** Dossiers past their deadline (request deadline, or deadline for additional information) and not finished. */
export function overdue(ctx: NodeContext, actor: Actor, today?: string): DossierSummary[] {
  return list(ctx, actor, { overdueOn: today ?? dateOf(ctx.clock()) });
}

/** Cases with their dossiers, redacted where the user lacks clearance. */
export function cases(ctx: NodeContext, actor: Actor): CaseSummary[] {
  const user = ctx.users.require(actor, 'dossier:read');
  return ctx.store.allCases().map((row) => {
    const meta = ctx.store.caseMeta(row);
    const cleared = isCleared(user, meta.handlingCode);
    const dossiers = ctx.store.dossiersOfCase(row.id).map((d) => {
      const m = ctx.store.meta(d);
      return {
        id: d.id,
        kind: d.kind,
        direction: d.direction,
        status: d.status,
        ...(cleared && m.kind !== 'unknown' ? { type: m.type } : {}),
      };
    });
    const base = { id: row.id, createdAt: row.created_at, updatedAt: row.updated_at, dossiers };
    if (!cleared) return { ...base, redacted: true, handlingCode: meta.handlingCode };
    return {
      ...base,
      redacted: false,
      caseReference: meta.caseReference,
      counterparts: meta.counterparts,
      handlingCode: meta.handlingCode,
      ...(meta.requestType === undefined ? {} : { requestType: meta.requestType }),
    };
  });
}

/** Dossiers that failed verification: kept with their reason code, never silently dropped. */
export function quarantine(ctx: NodeContext, actor: Actor): QuarantineEntry[] {
  ctx.users.require(actor, 'quarantine:read');
  return ctx.store
    .allDossiers()
    .filter((r) => r.status === 'quarantined')
    .map((r) => {
      const meta = ctx.store.meta(r);
      return {
        id: r.id,
        envelopeId: r.envelope_id,
        sender: meta.sender,
        code: r.quarantine_code ?? 'UNKNOWN',
        receivedAt: r.created_at,
        size: r.total_size,
      };
    });
}
