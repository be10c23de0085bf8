import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  isProtocolError,
  issueEvidence,
  safeFileName,
  verifyEvidenceChain,
  type AttachmentManifest,
  type DossierContent,
  type Envelope,
  type Evidence,
  type ReasonCode,
} from '@rogatory/protocol';
import { decryptToFile } from '@rogatory/protocol/node';
import type { AuditAction } from './audit.js';
import { audit, type NodeContext, type ProgressListener } from './context.js';
import { nodeFail, toNodeError } from './errors.js';
import { ensureRealDirectory, sameDirectory } from './file-root.js';
import { storedChunks } from './inbound.js';
import type { DossierMeta, HandlingCode } from './store/records.js';
import type { Direction, DossierKind, DossierRow } from './store/store.js';
import { isCleared, requireClearance, type Actor, type UserInfo } from './users.js';
import {
  FINAL_STATUSES,
  dateOf,
  deliveryProgress,
  isStatus,
  type RecipientProgress,
} from './workflow.js';

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
}

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

export interface EvidenceSummary {
  readonly kind: string;
  readonly issuer: string;
  readonly recipient: string | null;
  readonly issuedAt: number;
  readonly reason: { readonly code: ReasonCode; readonly detail: string | null } | null;
}

export interface DossierDetails extends DossierSummary {
  readonly sender?: string;
  readonly recipients?: readonly string[];
  readonly progress?: Readonly<Record<string, RecipientProgress>>;
  readonly evidences: readonly EvidenceSummary[];
  readonly approvals: readonly {
    readonly username: string;
    readonly decision: string;
    readonly at: number;
  }[];
  readonly draftedBy?: string;
  /** What is queued for the relay about this dossier: its submission, or evidences this node issued. */
  readonly queued: readonly {
    readonly kind: string;
    readonly state: string;
    readonly attempts: number;
    readonly lastError: string | null;
  }[];
}

export interface AttachmentInfo {
  readonly index: number;
  readonly name: string;
  readonly mediaType: string;
  readonly size: number;
  readonly sha256: string;
}

export interface OpenedView {
  readonly summary: DossierSummary;
  readonly content: DossierContent;
  readonly attachments: readonly AttachmentInfo[];
  /** Signed dossier facts (absent for drafts). */
  readonly signed?: {
    readonly sender: string;
    readonly recipients: readonly string[];
    readonly createdAt: number;
    readonly signedBy: string;
  };
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

function summarize(
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
      ...(meta.deadline === undefined ? {} : { deadline: meta.deadline }),
    },
    meta,
  };
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
    if (meta.deadline === undefined || meta.deadline >= filter.overdueOn) return false;
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
  return { user, row, summary, meta };
}

/** Metadata, delivery progress, evidences and approvals of a dossier: no content, no Retrieval evidence. */
export function show(ctx: NodeContext, actor: Actor, id: string): DossierDetails {
  const { row, summary, meta } = readable(ctx, actor, id);
  const evidences = row.envelope_id === null ? [] : ctx.store.evidences(row.envelope_id);
  const approvals = ctx.db.sql
    .prepare(
      'SELECT u.username AS username, a.decision AS decision, a.at AS at FROM approvals a JOIN users u ON u.id = a.user_id WHERE a.dossier_id = ? ORDER BY a.id',
    )
    .all(id) as { username: string; decision: string; at: number }[];
  const drafter = row.drafted_by === null ? undefined : ctx.users.byId(row.drafted_by)?.username;
  return {
    ...summary,
    sender: meta.sender,
    recipients: meta.recipients,
    ...(row.direction === 'out' && row.envelope_id !== null
      ? { progress: deliveryProgress(meta.recipients, evidences).recipients }
      : {}),
    evidences: evidences.map(evidenceSummary),
    approvals,
    ...(drafter === undefined ? {} : { draftedBy: drafter }),
    queued: ctx.store
      .outboxRows()
      .filter((r) => r.dossier_id === id)
      .map((r) => ({
        kind: r.kind === 'submit' ? 'submission' : ctx.store.outboxEvidence(r).body.kind,
        state: r.state,
        attempts: r.attempts,
        lastError: r.last_error,
      })),
  };
}

export function evidenceSummary(ev: Evidence): EvidenceSummary {
  const b = ev.body;
  return {
    kind: b.kind,
    issuer: b.issuer,
    recipient: b.recipient,
    issuedAt: b.issuedAt,
    reason: b.reason,
  };
}

/** The evidences of a dossier and the result of verifying them as a chain (protocol §12.6). */
export interface EvidenceChainView {
  /** The envelope the evidences are about (absent before sealing). */
  readonly envelope?: Envelope;
  readonly evidences: readonly Evidence[];
  readonly chain?: {
    readonly ordered: readonly string[];
    readonly submission: string;
    readonly recipients: Readonly<Record<string, string>>;
  };
  /** Protocol code when the chain does not verify. */
  readonly error?: string;
}

export function evidenceChain(ctx: NodeContext, actor: Actor, id: string): EvidenceChainView {
  const { row } = readable(ctx, actor, id);
  if (row.envelope_id === null) return { evidences: [] };
  const envelope = ctx.store.envelope(row.envelope_id)!;
  const evidences = ctx.store.evidences(row.envelope_id);
  try {
    const chain = verifyEvidenceChain(envelope, evidences, ctx.trust);
    return {
      envelope,
      evidences,
      chain: {
        ordered: chain.ordered.map((e) => `${e.body.kind}:${e.body.issuer}`),
        submission: chain.submission,
        recipients: Object.fromEntries(chain.recipients),
      },
    };
  } catch (err) {
    if (!isProtocolError(err)) throw err;
    return { envelope, evidences, error: err.code };
  }
}

/**
 * Record an opening: audited every time; the first opening of a received
 * dossier also queues a signed Retrieval evidence for the sender.
 */
export function recordOpening(
  ctx: NodeContext,
  user: UserInfo,
  row: DossierRow,
  action: AuditAction,
): void {
  const now = ctx.clock();
  ctx.db.transaction(() => {
    const current = ctx.store.requireDossier(row.id);
    if (
      current.direction === 'in' &&
      current.kind !== 'unknown' &&
      current.first_opened_at === null &&
      current.envelope_id !== null
    ) {
      const envelope = ctx.store.envelope(current.envelope_id)!;
      // Never dated before our own Delivery evidence (issued when the dossier was stored).
      const issuedAt = Math.max(now, current.created_at);
      const retrieval = issueEvidence({
        kind: 'retrieval',
        envelope,
        issuer: ctx.address,
        key: ctx.keys.identity,
        issuedAt,
        recipient: ctx.address,
      });
      ctx.store.enqueue('evidence', current.id, current.envelope_id, now, retrieval);
      ctx.store.markOpened(current.id, user.id, now);
    }
    audit(ctx, user.id, action, row.id);
  });
}

function contentOf(
  ctx: NodeContext,
  row: DossierRow,
): { content: DossierContent; attachments: AttachmentManifest[]; signed?: OpenedView['signed'] } {
  if (row.status === 'quarantined')
    return nodeFail(
      'INVALID_STATE',
      `dossier ${row.id} is quarantined: it failed verification and cannot be opened`,
    );
  if (row.dossier_enc === null)
    return { content: ctx.store.draftContent(row), attachments: ctx.store.draftAttachments(row) };
  const dossier = ctx.store.signedDossier(row);
  const b = dossier.body;
  return {
    content: b.content,
    attachments: b.attachments,
    signed: {
      sender: b.sender,
      recipients: b.recipients,
      createdAt: b.createdAt,
      signedBy: dossier.signature.kid,
    },
  };
}

/** Open a dossier: its content and attachment list. Audited; the first opening of a received one sends a Retrieval evidence. */
export function open(ctx: NodeContext, actor: Actor, id: string): OpenedView {
  const { user, row } = readable(ctx, actor, id);
  const { content, attachments, signed } = contentOf(ctx, row);
  recordOpening(ctx, user, row, 'dossier.open');
  return {
    summary: summarize(ctx, ctx.store.requireDossier(id), user).summary,
    content,
    attachments: attachments.map((a, index) => ({
      index,
      name: a.name,
      mediaType: a.mediaType,
      size: a.size,
      sha256: a.sha256,
    })),
    ...(signed ? { signed } : {}),
  };
}

export interface SavedAttachment {
  readonly index: number;
  readonly name: string;
  readonly path: string;
  readonly size: number;
}

/**
 * Decrypt attachments into `destDir` (created if missing; existing files are
 * never overwritten; a symbolic link there is refused, PATH_REFUSED). Each
 * file appears only once complete and verified against its signed manifest.
 * Counts as an opening.
 */
export async function saveAttachments(
  ctx: NodeContext,
  actor: Actor,
  id: string,
  destDir: string,
  options: { indexes?: readonly number[]; onProgress?: ProgressListener } = {},
): Promise<SavedAttachment[]> {
  const { user, row } = readable(ctx, actor, id);
  const { attachments } = contentOf(ctx, row);
  const saved = await decryptAll(ctx, attachments, destDir, options);
  recordOpening(ctx, user, row, 'dossier.attachments-saved');
  return saved;
}

export async function decryptAll(
  ctx: NodeContext,
  attachments: readonly AttachmentManifest[],
  destDir: string,
  options: {
    indexes?: readonly number[];
    onProgress?: ProgressListener;
    names?: (index: number, name: string) => string;
  } = {},
): Promise<SavedAttachment[]> {
  const dir = resolve(destDir);
  await mkdir(dirname(dir), { recursive: true, mode: 0o700 });
  // Never write through a link at the directory itself: an export creates
  // it inside a checked directory, and a link planted there (before or while
  // it is created) would send decrypted files elsewhere.
  const dirInfo = await ensureRealDirectory(dir);
  const used = new Set<string>();
  const saved: SavedAttachment[] = [];
  for (const [index, manifest] of attachments.entries()) {
    if (options.indexes !== undefined && !options.indexes.includes(index)) continue;
    let name = options.names
      ? options.names(index, manifest.name)
      : safeFileName(manifest.name, `attachment-${index}`);
    if (used.has(name)) name = `${index}-${name}`;
    used.add(name);
    const path = join(dir, name);
    if (!(await sameDirectory(dir, dirInfo)))
      nodeFail('PATH_REFUSED', 'the destination directory was replaced while writing');
    try {
      const size = await decryptToFile(manifest, storedChunks(ctx, manifest.chunks), path);
      options.onProgress?.({
        phase: 'decrypt',
        subject: name,
        bytesDone: size,
        bytesTotal: manifest.size,
      });
      saved.push({ index, name, path, size });
    } catch (err) {
      if (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'EEXIST')
        nodeFail('INPUT_INVALID', `a file named ${name} exists already in the destination`);
      throw toNodeError(err, `decrypt attachment ${index}`);
    }
  }
  return saved;
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
