import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  issueEvidence,
  safeFileName,
  type AttachmentManifest,
  type DossierContent,
} from '@rogatory/protocol';
import { decryptToFile } from '@rogatory/protocol/node';
import type { AuditAction } from '../administration/audit-log.js';
import type { Actor, UserInfo } from '../administration/users.js';
import { audit, storedChunks, type NodeContext, type ProgressListener } from '../context.js';
import { evidenceTime } from '../evidence-time.js';
import { signingIdentity } from '../administration/key-rotation.js';
import { nodeFail, toNodeError } from '../errors.js';
import { ensureRealDirectory, sameDirectory } from '../files/file-root.js';
import type { DossierRow } from '../store/mailbox-store.js';
import { readable, summarize, type DossierSummary } from './summaries.js';

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
      // Never dated before our own Delivery evidence (issued when the dossier was stored, not
      // before the envelope's creation time).
      const issuedAt = Math.max(evidenceTime(now, envelope), current.created_at);
      const retrieval = issueEvidence({
        kind: 'retrieval',
        envelope,
        issuer: ctx.address,
        key: signingIdentity(ctx),
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
  const { user, row, summary: read } = readable(ctx, actor, id);
  const { content, attachments, signed } = contentOf(ctx, row);
  recordOpening(ctx, user, row, 'dossier.open');
  const summary = summarize(ctx, ctx.store.requireDossier(id), user).summary;
  return {
    summary: read.signerRevoked ? { ...summary, signerRevoked: read.signerRevoked } : summary,
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
