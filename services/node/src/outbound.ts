import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  ATTACHMENT_LIMITS,
  checkContentParties,
  isProtocolError,
  sealDossier,
  validateDossierContent,
  type AttachmentManifest,
  type ByteSource,
  type ContentIssue,
  type DossierContent,
  type KeyRef,
} from '@rogatory/protocol';
import { encryptAttachment } from '@rogatory/protocol/node';
import { audit, type NodeContext, type ProgressListener } from './context.js';
import { NodeError, nodeFail, toNodeError } from './errors.js';
import { READ_ANY, type FileRoot } from './file-root.js';
import type { CaseMeta, DossierMeta, HandlingCode } from './store/records.js';
import type { DossierRow } from './store/store.js';
import { requireClearance, type Actor, type UserInfo } from './users.js';
import { advance, dateOf, statusForAnswer } from './workflow.js';

const DAY = 24 * 3600 * 1000;
/** Chunk writes (write + fsync) in flight while an attachment is encrypted. */
const STORE_CONCURRENCY = 4;

/** A file to attach: read and encrypted when the draft is composed; the node never stores its plaintext. */
export interface AttachmentInput {
  readonly path: string;
  /** Lowercase `type/subtype`; guessed from the extension when absent. */
  readonly mediaType?: string;
  /** Name recorded in the dossier; default the file's name. */
  readonly name?: string;
  /** When set, `path` must lie inside this directory, with no symbolic link below it (the REST API's `--file-root`). */
  readonly root?: FileRoot;
}

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

const MEDIA_TYPES: Readonly<Record<string, string>> = {
  pdf: 'application/pdf',
  txt: 'text/plain',
  csv: 'text/csv',
  json: 'application/json',
  xml: 'application/xml',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  zip: 'application/zip',
};

export function guessMediaType(path: string): string {
  const ext = /\.([A-Za-z0-9]{1,8})$/.exec(path)?.[1]?.toLowerCase();
  return (ext === undefined ? undefined : MEDIA_TYPES[ext]) ?? 'application/octet-stream';
}

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

function requireValid(issues: readonly ContentIssue[]): void {
  if (issues.length > 0)
    nodeFail('CONTENT_INVALID', `the content has ${issues.length} problem(s) to fix`, { issues });
}

/** Recipients: the authority the content addresses first, then any others; never the node itself. */
function recipientsOf(
  ctx: NodeContext,
  content: DossierContent,
  extra: readonly string[],
): string[] {
  const primary =
    content.kind === 'request' ? content.header.requestedAuthority.address : content.to.address;
  const all = [...new Set([primary, ...extra])];
  if (all.includes(ctx.address))
    nodeFail('INPUT_INVALID', 'the node cannot address a dossier to itself');
  return all;
}

/** The current encryption key of a recipient from the trusted manifests (RECIPIENT_UNKNOWN if none). */
function encryptionKeyOf(ctx: NodeContext, address: string): KeyRef {
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

/**
 * Encrypt attachment files into the blob store, streaming: each ciphertext
 * chunk is stored under its id as it is produced; only the manifests (with
 * the attachment keys) are returned, to be kept sealed in the draft.
 */
async function encryptAttachments(
  ctx: NodeContext,
  inputs: readonly AttachmentInput[],
  onProgress?: ProgressListener,
): Promise<AttachmentManifest[]> {
  const manifests: AttachmentManifest[] = [];
  for (const input of inputs) {
    const handle = await openAttachment(input);
    try {
      manifests.push(await encryptOpened(ctx, input, handle, onProgress));
    } finally {
      await handle.close().catch(() => undefined);
    }
  }
  return manifests;
}

/** Open an attachment file once; its size and type come from the open descriptor (no stat-then-open race). */
async function openAttachment(input: AttachmentInput): Promise<FileHandle> {
  if (input.root !== undefined) return input.root.openForReading(input.path);
  let handle: FileHandle;
  try {
    handle = await open(input.path, READ_ANY);
  } catch (cause) {
    return nodeFail('INPUT_INVALID', 'an attachment file cannot be read', { cause });
  }
  const info = await handle.stat().catch(() => undefined);
  if (info?.isFile() !== true) {
    await handle.close().catch(() => undefined);
    nodeFail('INPUT_INVALID', 'an attachment is not a regular file');
  }
  return handle;
}

async function encryptOpened(
  ctx: NodeContext,
  input: AttachmentInput,
  handle: FileHandle,
  onProgress?: ProgressListener,
): Promise<AttachmentManifest> {
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (cause) {
    return nodeFail('INPUT_INVALID', 'an attachment file cannot be read', { cause });
  }
  const name = input.name ?? basename(input.path);
  // Read from the descriptor opened above, never by path again; the stream
  // is created when the chunks are iterated and leaves the handle open.
  const source: ByteSource = {
    [Symbol.asyncIterator]: () => {
      const stream = handle.createReadStream({
        start: 0,
        autoClose: false,
        highWaterMark: ATTACHMENT_LIMITS.defaultChunkSize,
      });
      return stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
    },
  };
  let run;
  try {
    run = encryptAttachment(source, {
      name,
      mediaType: input.mediaType ?? guessMediaType(input.path),
      // Each chunk is copied into a buffer of our own before the next is
      // requested (below): the engine's buffers circulate, no garbage per chunk.
      reuseBuffers: true,
    });
  } catch (cause) {
    return nodeFail('INPUT_INVALID', 'invalid attachment name or media type', {
      cause,
      detail: isProtocolError(cause) ? cause.code : 'INPUT_INVALID',
    });
  }
  let done = 0;
  // Encryption goes on while the last few chunks are written and synced:
  // at most STORE_CONCURRENCY writes in flight, and every one has ended
  // (stored or failed) before this function returns or throws.
  const writes: Promise<void>[] = [];
  /** Buffers of the writes in flight, recycled when their write ends (at most STORE_CONCURRENCY + 1 exist). */
  const spare: Uint8Array[] = [];
  const copyOf = (bytes: Uint8Array): Uint8Array => {
    const i = spare.findIndex((b) => b.length >= bytes.length);
    const buffer = i < 0 ? new Uint8Array(bytes.length) : spare.splice(i, 1)[0]!;
    buffer.set(bytes);
    return buffer.subarray(0, bytes.length);
  };
  const store = async (id: string, bytes: Uint8Array): Promise<void> => {
    try {
      await ctx.blobs.put(id, bytes, { maxSize: bytes.length, expectedSize: bytes.length });
    } finally {
      if (spare.length <= STORE_CONCURRENCY) spare.push(new Uint8Array(bytes.buffer));
    }
    done += Math.max(0, bytes.length - 17);
    onProgress?.({
      phase: 'encrypt',
      subject: name,
      bytesDone: Math.min(done, size),
      bytesTotal: size,
    });
  };
  try {
    let failure: { readonly error: unknown } | undefined;
    try {
      for await (const chunk of run.chunks) {
        if (writes.length >= STORE_CONCURRENCY) await writes.shift();
        const write = store(chunk.id, copyOf(chunk.bytes));
        write.catch(() => undefined);
        writes.push(write);
      }
    } catch (error) {
      failure = { error };
    }
    const settled = await Promise.allSettled(writes.splice(0));
    const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    failure ??= rejected === undefined ? undefined : { error: rejected.reason };
    if (failure !== undefined) throw failure.error;
  } catch (cause) {
    throw isProtocolError(cause) && cause.code === 'LIMIT_EXCEEDED'
      ? new NodeError('INPUT_INVALID', 'the attachment is too large', {
          cause,
          detail: cause.code,
        })
      : toNodeError(cause, 'encrypt attachment');
  }
  return run.manifest();
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
      kind: content.kind,
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
      content.kind === 'request' ? content.requestType : content.answerType,
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
    ctx.db.sql
      .prepare(
        "INSERT INTO approvals (dossier_id, user_id, decision, at) VALUES (?, ?, 'returned', ?)",
      )
      .run(id, user.id, now);
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
      sender: { address: ctx.address, identity: ctx.keys.identity, archiveKey },
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
    ctx.db.sql
      .prepare(
        "INSERT INTO approvals (dossier_id, user_id, decision, at) VALUES (?, ?, 'approved', ?)",
      )
      .run(id, user.id, now);
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

export function handlingOf(ctx: NodeContext, row: DossierRow): HandlingCode {
  const meta = ctx.store.meta(row);
  return meta.kind === 'unknown' ? 'restricted' : meta.handlingCode;
}

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

function checkedContent(value: unknown): DossierContent {
  // Kind and parties are needed to route the draft; full validation follows.
  const issues = validateDossierContent(value);
  if (issues.length > 0)
    nodeFail('CONTENT_INVALID', `the content has ${issues.length} problem(s) to fix`, { issues });
  return value as DossierContent;
}
