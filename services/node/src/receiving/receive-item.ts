import { isRelayClientError, isTransientError, type MailboxItem } from '@rogatory/client';
import {
  envelopeHash,
  isProtocolError,
  issueEvidence,
  networkOf,
  openDossier,
  verifyEnvelope,
  verifyEvidence,
  type AttachmentManifest,
  type Envelope,
  type Evidence,
  type OpenedDossier,
} from '@rogatory/protocol';
import { decryptAttachment } from '@rogatory/protocol/node';
import { isStorageError } from '@rogatory/storage';
import { audit, storedChunks, type NodeContext, type ProgressListener } from '../context.js';
import { signingIdentity, takeUpNewKeys } from '../administration/key-rotation.js';
import { NodeError, findCause, toNodeError } from '../errors.js';
import { applyAnswerToRequest, requestAnsweredBy } from '../answering/answer-threading.js';
import { caseMetaOf, metaOf } from '../dossier-meta.js';
import { relayIncident } from './relay-incidents.js';
import type { HandlingCode } from '../store/records.js';
import { advance, deliveryProgress } from '../dossier-status.js';
import { evidenceTime } from '../evidence-time.js';
import { recordIntroductionDossier } from '../introductions/workflow.js';

export type ItemOutcome =
  | { readonly kind: 'received'; readonly dossierId: string; readonly envelopeId: string }
  | {
      readonly kind: 'quarantined';
      readonly dossierId: string;
      readonly envelopeId: string;
      readonly code: string;
    }
  | { readonly kind: 'duplicate'; readonly envelopeId: string }
  /** Not stored (forged, not addressed to this node, another envelope under a stored id): acked, shown as a relay incident. */
  | { readonly kind: 'refused'; readonly envelopeId: string; readonly code: string }
  | {
      readonly kind: 'evidence';
      readonly dossierId: string;
      readonly evidenceKind: string;
      readonly status: string;
    }
  | { readonly kind: 'ignored'; readonly reason: string };

/**
 * Handle one mailbox item. Resolves when the item is stored durably (or
 * deliberately dropped): only then may the caller ack it. Throws a
 * NodeError when it could not be stored (download failed, storage full,
 * relay unreachable): the caller must not ack, the item comes again.
 */
export async function processItem(
  ctx: NodeContext,
  item: MailboxItem,
  onProgress?: ProgressListener,
): Promise<ItemOutcome> {
  return item.kind === 'envelope'
    ? processEnvelope(ctx, item.envelope, item.seq, onProgress)
    : processEvidence(ctx, item.evidence);
}

/** Chunks downloaded at once when receiving (as the client uploads: DEFAULT_UPLOAD_CONCURRENCY). */
const DOWNLOAD_CONCURRENCY = 4;

async function processEnvelope(
  ctx: NodeContext,
  envelope: Envelope,
  seq: number,
  onProgress?: ProgressListener,
): Promise<ItemOutcome> {
  const env = envelope.body;
  // Checked before anything is downloaded: what fails here is never stored (see refuse).
  const refusal = precheck(ctx, envelope);
  if (ctx.store.hasEnvelope(env.id)) {
    // A retried delivery of something already stored (our ack was lost): ack again, nothing else.
    const known = ctx.store.envelope(env.id);
    if (known && envelopeHash(known) === envelopeHash(envelope))
      return { kind: 'duplicate', envelopeId: env.id };
    // A quarantine this node could not decide (its sender unknown here) yields to an envelope
    // that verifies: an unverifiable forgery under a genuine id cannot make the node drop it.
    if (refusal !== undefined || !ctx.store.dropQuarantined(env.id, UNDECIDED))
      return refuse(ctx, env.id, seq, 'REPLAY');
    audit(ctx, 'system', 'dossier.quarantine-superseded', null, `seq:${seq}`);
  }
  // A key its network revoked: not the relay's doing (its trust may be older), so the
  // dossier is kept in quarantine, unread, and its sender told; nothing is downloaded.
  if (refusal === 'KEY_REVOKED') return quarantine(ctx, envelope, seq, refusal);
  if (refusal !== undefined && !UNDECIDED.has(refusal)) return refuse(ctx, env.id, seq, refusal);

  // Blobs first, rows after: a failure here leaves no row, and the item unacked.
  // A few downloads in flight hide the per-request round trip; each streams into the store.
  const objects = [env.dossier, ...env.chunks];
  let done = 0;
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < objects.length && failure === undefined; i = next++) {
      const object = objects[i]!;
      try {
        await fetchObject(ctx, object.id, object.size);
      } catch (err) {
        failure ??= { err };
        return;
      }
      done += object.size;
      onProgress?.({
        phase: 'download',
        subject: env.id,
        bytesDone: done,
        bytesTotal: env.totalSize,
      });
    }
  };
  // Every worker ends before a failure is reported: no write is left running behind it.
  await Promise.all(
    Array.from({ length: Math.min(DOWNLOAD_CONCURRENCY, objects.length) }, () => worker()),
  );
  if (failure !== undefined) {
    const detail = failure.err instanceof NodeError ? failure.err.detail : undefined;
    if (detail === 'CHUNK_HASH_MISMATCH' || detail === 'BAD_RESPONSE')
      relayIncident(ctx, detail, `seq:${seq}`, { throttle: true });
    throw failure.err;
  }
  const sealed = await ctx.blobs.getBytes(env.dossier.id).catch((err: unknown) => {
    throw toNodeError(err, 'read sealed dossier');
  });

  // A key made by `rogatory keys rotate-encryption` in another process opens what is sealed to it.
  await takeUpNewKeys(ctx);
  let opened: OpenedDossier;
  try {
    opened = openDossier({
      envelope,
      sealed,
      reader: { address: ctx.address, encryptionKeys: ctx.keys.encryption },
      trust: ctx.trust,
    });
    for (const manifest of opened.dossier.body.attachments) await checkAttachment(ctx, manifest);
  } catch (err) {
    if (isProtocolError(err)) return quarantine(ctx, envelope, seq, err.code);
    throw toNodeError(err, 'verify dossier');
  }
  return store(ctx, envelope, seq, opened);
}

/**
 * The checks a relay can be held to, made on the envelope alone: signed by
 * its sender under a trusted key and addressed to this node. Our relay
 * verified the same signature before accepting it (relay-api.md), so a
 * failure means the relay (or one upstream) forged or re-addressed it, or
 * its trust material differs from ours (the code says which).
 */
function precheck(ctx: NodeContext, envelope: Envelope): string | undefined {
  if (!envelope.body.recipients.includes(ctx.address)) return 'NOT_ADDRESSED';
  try {
    // Steps 1-3 and the hops only (protocol §8.6: a recipient does not repeat steps 4-6): the
    // creation time was judged by the relay's clock; this node's own clock, if it runs behind,
    // must not make it drop a genuine envelope as "created in the future".
    verifyEnvelope(envelope, {
      trust: ctx.trust,
      now: Math.max(ctx.clock(), envelope.body.createdAt),
      checkExpiry: false,
    });
  } catch (err) {
    if (isProtocolError(err)) return err.code;
    throw err;
  }
  // A dossier that reaches the node after its signing key was revoked is refused whatever
  // time it claims: a compromised key can date what it signs (§16.4).
  if (ctx.trust.revocationOf(envelope.signature.kid, networkOf(envelope.body.sender)))
    return 'KEY_REVOKED';
  return undefined;
}

/**
 * Failures that say only that this node's trust material cannot decide yet:
 * the relay, whose manifest may be newer, accepted a sender this node does
 * not know. Such an envelope is downloaded and quarantined (kept, acked, shown
 * to the operator), never dropped: a genuine dossier from a newly admitted
 * member must not be lost to a manifest that has not reached this node.
 */
const UNDECIDED: ReadonlySet<string> = new Set(['KEY_UNKNOWN', 'TRUST_CHAIN_BROKEN']);

/**
 * An envelope the node will not store. It is acked all the same, so that it
 * cannot hold up the mailbox, with no evidence: nothing is signed about an
 * envelope nobody is accountable for. The sender of a genuine envelope
 * that was mangled on the way gets no Delivery evidence, so its NonDelivery
 * deadline reports the loss. No row is kept, so the envelope id stays free
 * for the genuine envelope: a forger cannot make the node drop it.
 */
function refuse(ctx: NodeContext, envelopeId: string, seq: number, code: string): ItemOutcome {
  relayIncident(ctx, code, `seq:${seq}`);
  return { kind: 'refused', envelopeId, code };
}

/** Download one object into the blob store unless it is there; the store checks its hash and size. */
async function fetchObject(ctx: NodeContext, id: string, size: number): Promise<void> {
  try {
    if (await ctx.blobs.has(id)) return;
    await ctx.blobs.put(id, ctx.relay.getChunk(id), { maxSize: size, expectedSize: size });
  } catch (err) {
    throw downloadError(err, id);
  }
}

function downloadError(err: unknown, id: string): NodeError {
  const storage = findCause(err, isStorageError);
  if (storage?.code === 'STORAGE_FULL')
    return new NodeError('STORAGE_FULL', `no space to store chunk ${id}`, {
      cause: err,
      detail: storage.code,
    });
  const relay = findCause(err, isRelayClientError);
  if (relay?.code === 'NOT_FOUND')
    return new NodeError('DOWNLOAD_FAILED', `chunk ${id} is missing at the relay`, {
      cause: err,
      detail: 'CHUNK_MISSING',
    });
  if (relay?.code === 'CHUNK_HASH_MISMATCH')
    return new NodeError('DOWNLOAD_FAILED', `chunk ${id} arrived corrupted`, {
      cause: err,
      detail: 'CHUNK_HASH_MISMATCH',
    });
  if (relay && isTransientError(relay))
    return new NodeError('RELAY_UNREACHABLE', `chunk ${id} could not be fetched`, {
      cause: err,
      detail: relay.code,
    });
  if (relay)
    return new NodeError('DOWNLOAD_FAILED', `chunk ${id} could not be fetched`, {
      cause: err,
      detail: relay.code,
    });
  if (
    storage?.code === 'BLOB_HASH_MISMATCH' ||
    storage?.code === 'BLOB_SIZE_MISMATCH' ||
    storage?.code === 'BLOB_TOO_LARGE'
  ) {
    return new NodeError('DOWNLOAD_FAILED', `chunk ${id} arrived corrupted`, {
      cause: err,
      detail: 'CHUNK_HASH_MISMATCH',
    });
  }
  return toNodeError(err, `fetch chunk ${id}`);
}

/** Decrypt an attachment from the stored chunks and discard the plaintext: the dossier is accepted only if every attachment is intact. */
async function checkAttachment(ctx: NodeContext, manifest: AttachmentManifest): Promise<void> {
  // Each piece is wiped and dropped before the next: its buffer can be reused.
  for await (const piece of decryptAttachment(manifest, storedChunks(ctx, manifest.chunks), {
    reuseBuffers: true,
  }))
    piece.fill(0);
}

function quarantine(ctx: NodeContext, envelope: Envelope, seq: number, code: string): ItemOutcome {
  const now = ctx.clock();
  const env = envelope.body;
  // A recipient-rejection can only be issued by a listed recipient (the relay would refuse any other).
  // None for an envelope whose sender this node cannot resolve: nobody is accountable for it yet,
  // and a genuine one (the relay's manifest being newer) must not be told it was refused.
  const rejection =
    env.recipients.includes(ctx.address) && !UNDECIDED.has(code)
      ? issueEvidence({
          kind: 'recipient-rejection',
          envelope,
          issuer: ctx.address,
          key: signingIdentity(ctx),
          issuedAt: evidenceTime(now, envelope),
          recipient: ctx.address,
          reason: { code: 'QUARANTINED', detail: code },
        })
      : undefined;
  const dossierId = ctx.db.transaction(() => {
    const id = ctx.store.insertDossier({
      caseId: null,
      direction: 'in',
      kind: 'unknown',
      status: 'quarantined',
      now,
      envelopeId: env.id,
      sealedId: env.dossier.id,
      totalSize: env.totalSize,
      quarantineCode: code,
      meta: { kind: 'unknown', sender: env.sender, recipients: env.recipients, detail: code },
    });
    ctx.store.insertEnvelope(envelope, id, 'in', now, seq);
    if (rejection) ctx.store.enqueue('evidence', id, env.id, now, rejection);
    audit(ctx, 'system', 'dossier.quarantine', id, code);
    return id;
  });
  return { kind: 'quarantined', dossierId, envelopeId: env.id, code };
}

function store(
  ctx: NodeContext,
  envelope: Envelope,
  seq: number,
  opened: OpenedDossier,
): ItemOutcome {
  const now = ctx.clock();
  const env = envelope.body;
  const content = opened.dossier.body.content;
  const request = requestAnsweredBy(ctx, content, env.sender);
  let handlingCode: HandlingCode;
  if (content.kind === 'request') handlingCode = content.header.handlingCode;
  else if (content.kind !== 'answer') handlingCode = 'none';
  else {
    const requestMeta = request ? ctx.store.meta(request) : undefined;
    // An answer to a request this node does not hold (or not from its counterpart) gets its own case, restricted.
    handlingCode =
      requestMeta && requestMeta.kind !== 'unknown' ? requestMeta.handlingCode : 'restricted';
  }
  const meta = metaOf(content, env.sender, env.recipients, handlingCode);
  const delivery = issueEvidence({
    kind: 'delivery',
    envelope,
    issuer: ctx.address,
    key: signingIdentity(ctx),
    issuedAt: evidenceTime(now, envelope),
    recipient: ctx.address,
  });
  const dossierId = ctx.db.transaction(() => {
    const caseId = request?.case_id ?? ctx.store.insertCase(caseMetaOf(meta, [env.sender]), now);
    const id = ctx.store.insertDossier({
      caseId,
      direction: 'in',
      kind: meta.kind,
      status: 'received',
      now,
      envelopeId: env.id,
      sealedId: env.dossier.id,
      totalSize: env.totalSize,
      meta,
      dossier: opened.dossier,
    });
    ctx.store.insertEnvelope(envelope, id, 'in', now, seq);
    ctx.store.enqueue('evidence', id, env.id, now, delivery);
    ctx.store.touchCase(caseId, now);
    audit(ctx, 'system', 'dossier.receive', id, env.id);
    applyAnswerToRequest(ctx, content, env.sender, 'system');
    if (meta.kind === 'introduction') recordIntroductionDossier(ctx, content, env, id);
    return id;
  });
  return { kind: 'received', dossierId, envelopeId: env.id };
}

/** An evidence about one of our envelopes: verify it against the stored envelope, store it, move the status. */
function processEvidence(ctx: NodeContext, evidence: Evidence): ItemOutcome {
  const envelopeId = evidence.body.envelopeId;
  const envelope =
    ctx.store.envelopeDirection(envelopeId) === 'out' ? ctx.store.envelope(envelopeId) : undefined;
  if (!envelope) {
    relayIncident(ctx, 'UNKNOWN_ENVELOPE', envelopeId);
    return { kind: 'ignored', reason: 'UNKNOWN_ENVELOPE' };
  }
  try {
    verifyEvidence(envelope, evidence, ctx.trust);
  } catch (err) {
    if (!isProtocolError(err)) throw err;
    relayIncident(ctx, err.code, envelopeId);
    return { kind: 'ignored', reason: err.code };
  }
  const now = ctx.clock();
  return ctx.db.transaction(() => {
    const row = ctx.store.dossierByEnvelope(envelopeId)!;
    const fresh = ctx.store.insertEvidence(evidence, now);
    let status = row.status;
    if (fresh) {
      const meta = ctx.store.meta(row);
      const recipients = meta.kind === 'unknown' ? envelope.body.recipients : meta.recipients;
      status = advance(
        row.status,
        deliveryProgress(recipients, ctx.store.evidences(envelopeId)).status,
      );
      if (status !== row.status) ctx.store.setStatus(row.id, status, now);
      audit(ctx, 'system', 'evidence.receive', row.id, evidence.body.kind);
    }
    return { kind: 'evidence', dossierId: row.id, evidenceKind: evidence.body.kind, status };
  });
}
