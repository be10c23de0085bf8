import {
  backoffDelay,
  isRelayClientError,
  isTransientError,
  type RelayClockOffset,
  type RetryPolicy,
} from '@rogatory/client';
import {
  ENVELOPE_LIMITS,
  isProtocolError,
  verifyEvidence,
  type Envelope,
  type Evidence,
} from '@rogatory/protocol';
import { isStorageError } from '@rogatory/storage';
import { audit, type NodeContext, type ProgressListener } from '../context.js';
import { codeOf, nodeFail } from '../errors.js';
import { applyAnswerToRequest } from '../answering/answer-threading.js';
import type { OutboxRow } from '../store/mailbox-store.js';
import { advance, deliveryProgress } from '../dossier-status.js';

/**
 * Backoff of queued submissions and evidences: doubling from 2 s to 10 min,
 * with jitter. `retries` is unused: the outbox never gives up on a transient
 * failure, it reschedules the row.
 */
export const OUTBOX_BACKOFF: RetryPolicy = {
  retries: 0,
  baseMs: 2_000,
  maxMs: 600_000,
  jitter: 0.3,
};

export interface OutboxReport {
  /** Local ids of dossiers the relay accepted in this run. */
  readonly sent: readonly string[];
  /** Local ids of dossiers the relay refused (a signed submission rejection is stored). */
  readonly rejected: readonly string[];
  /** Evidences (delivery, retrieval, recipient-rejection) posted. */
  readonly evidencesPosted: number;
  /** Items left queued for a later attempt (relay unreachable, chunks missing). */
  readonly deferred: number;
  /** Items given up after a permanent failure (state `failed`, visible in status; `retryFailed` re-queues them). */
  readonly failed: number;
  /** Local ids of the dossiers whose items failed for good in this run. */
  readonly failedIds: readonly string[];
  /** The code of each failure or deferral, in order (relay or storage codes). */
  readonly errors: readonly { readonly dossierId: string; readonly code: string }[];
}

type Outcome = 'sent' | 'rejected' | 'posted' | 'deferred' | 'failed';

/**
 * The relay refused an envelope because, by its clock, it was created in the
 * future: this machine's clock runs ahead of the relay's by more than the
 * protocol's tolerance. The envelope is kept and offered again once the
 * relay's clock has caught up with it (`acceptedFrom`, on this machine's
 * clock); `rogatory status --check-relay` shows the offset. Code CLOCK_AHEAD.
 */
class ClockAhead extends Error {
  readonly code = 'CLOCK_AHEAD';
  constructor(readonly acceptedFrom: number) {
    super("this machine's clock is ahead of the relay's beyond the tolerance");
    this.name = 'ClockAhead';
  }
}

/** Margin added to the measured offset (whole-second Date header, round trip). */
const CLOCK_MARGIN_MS = 5_000;

/**
 * When the relay's signed rejection is its "created in the future" (reason
 * MALFORMED, detail SCHEMA_INVALID, and the envelope's signed creation time
 * beyond the relay's clock plus the tolerance, by the relay's last Date
 * header): the time on this machine's clock from which the relay will
 * accept it. Otherwise undefined.
 */
export function clockAheadUntil(
  envelope: Envelope,
  rejection: Evidence,
  relayClock: RelayClockOffset | undefined,
): number | undefined {
  const reason = rejection.body.reason;
  if (reason?.code !== 'MALFORMED' || reason.detail !== 'SCHEMA_INVALID') return undefined;
  if (relayClock === undefined) return undefined;
  const relayNow = relayClock.measuredAt + relayClock.offsetMs;
  const ahead = envelope.body.createdAt - relayNow;
  if (ahead <= ENVELOPE_LIMITS.maxClockSkewMs - CLOCK_MARGIN_MS) return undefined;
  // On the relay's clock the envelope is accepted from createdAt - tolerance; back on ours.
  const from =
    envelope.body.createdAt -
    ENVELOPE_LIMITS.maxClockSkewMs -
    relayClock.offsetMs +
    CLOCK_MARGIN_MS;
  // Not past the envelope's own expiry (this machine's clock signed it): waiting longer is
  // pointless, and a relay's Date cannot park a submission for longer than the envelope lives.
  return from < envelope.body.expiresAt ? from : undefined;
}

/**
 * The outgoing queue: submissions of approved dossiers (upload of the
 * chunks the relay lacks, then the envelope) and evidences this node
 * issued. Survives restarts (rows in the database); one run at a time.
 */
export class Outbox {
  private readonly ctx: NodeContext;
  private running: Promise<OutboxReport> | undefined;

  constructor(ctx: NodeContext) {
    this.ctx = ctx;
  }

  /** Process every item that is due (every pending item with `force`). Runs one at a time: a call waits for the run in progress. */
  async run(
    options: { force?: boolean; onProgress?: ProgressListener } = {},
  ): Promise<OutboxReport> {
    for (let i = 0; i < 100 && this.running !== undefined; i++)
      await this.running.catch(() => undefined);
    const run = this.runOnce(options).finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async runOnce(options: {
    force?: boolean;
    onProgress?: ProgressListener;
  }): Promise<OutboxReport> {
    const report = {
      sent: [] as string[],
      rejected: [] as string[],
      evidencesPosted: 0,
      deferred: 0,
      failed: 0,
      failedIds: [] as string[],
      errors: [] as { dossierId: string; code: string }[],
    };
    const rows = this.ctx.store.dueOutbox(this.ctx.clock(), options.force === true);
    for (const row of rows) {
      let outcome: Outcome;
      try {
        outcome =
          row.kind === 'submit' ? await this.submit(row, options.onProgress) : await this.post(row);
      } catch (err) {
        outcome = this.failed(row, err);
        report.errors.push({ dossierId: row.dossier_id, code: codeOf(err) });
      }
      if (outcome === 'sent') report.sent.push(row.dossier_id);
      else if (outcome === 'rejected') report.rejected.push(row.dossier_id);
      else if (outcome === 'posted') report.evidencesPosted++;
      else if (outcome === 'deferred') report.deferred++;
      else {
        report.failed++;
        report.failedIds.push(row.dossier_id);
      }
    }
    return report;
  }

  private envelopeOf(row: OutboxRow): Envelope {
    return (
      this.ctx.store.envelope(row.envelope_id) ??
      nodeFail('LOCAL_DATA_TAMPERED', `outbox item ${row.id} names an unknown envelope`)
    );
  }

  private async submit(row: OutboxRow, onProgress?: ProgressListener): Promise<Outcome> {
    const { ctx } = this;
    const envelope = this.envelopeOf(row);
    const objects = [
      { id: envelope.body.dossier.id, size: envelope.body.dossier.size },
      ...envelope.body.chunks,
    ];
    await ctx.relay.uploadChunks(
      // A chunk is at most 16 MiB (1 MiB by default): read whole, it goes out as
      // one buffer (hashed once, one write) instead of a stream of small reads.
      objects.map((o) => ({ id: o.id, size: o.size, load: () => ctx.blobs.getBytes(o.id) })),
      onProgress
        ? {
            onProgress: (p) =>
              onProgress({
                phase: 'upload',
                subject: row.dossier_id,
                bytesDone: p.bytesDone,
                bytesTotal: envelope.body.totalSize,
              }),
          }
        : {},
    );
    let acceptance: Evidence;
    try {
      acceptance = await ctx.relay.submit(envelope);
    } catch (err) {
      if (
        isRelayClientError(err) &&
        err.evidence !== undefined &&
        !isTransientError(err) &&
        err.code !== 'CHUNK_MISSING'
      ) {
        const acceptedFrom = clockAheadUntil(envelope, err.evidence, ctx.relay.relayClockOffset());
        if (acceptedFrom !== undefined) throw new ClockAhead(acceptedFrom);
        this.rejected(row, envelope, err.evidence, err.code);
        return 'rejected';
      }
      throw err;
    }
    verifyEvidence(envelope, acceptance, ctx.trust);
    const now = ctx.clock();
    ctx.db.transaction(() => {
      ctx.store.insertEvidence(acceptance, now);
      const dossier = ctx.store.requireDossier(row.dossier_id);
      ctx.store.setStatus(dossier.id, advance(dossier.status, 'sent'), now);
      ctx.store.deleteOutbox(row.id);
      audit(ctx, 'system', 'dossier.send', dossier.id, envelope.body.id);
      if (dossier.kind === 'answer') {
        const content = ctx.store.signedDossier(dossier).body.content;
        if (content.kind === 'answer')
          applyAnswerToRequest(ctx, content, content.to.address, 'system');
      }
    });
    return 'sent';
  }

  /** The relay refused with a signed rejection: keep it as evidence, the dossier is rejected, the item done. */
  private rejected(row: OutboxRow, envelope: Envelope, evidence: Evidence, code: string): void {
    const { ctx } = this;
    let verified = false;
    try {
      verifyEvidence(envelope, evidence, ctx.trust);
      verified = true;
    } catch (err) {
      if (!isProtocolError(err)) throw err;
    }
    const now = ctx.clock();
    ctx.db.transaction(() => {
      if (verified) ctx.store.insertEvidence(evidence, now);
      const dossier = ctx.store.requireDossier(row.dossier_id);
      const meta = ctx.store.meta(dossier);
      const recipients = meta.kind === 'unknown' ? [] : meta.recipients;
      const status = verified
        ? deliveryProgress(recipients, ctx.store.evidences(envelope.body.id)).status
        : 'rejected';
      ctx.store.setStatus(dossier.id, advance(dossier.status, status), now);
      ctx.store.deleteOutbox(row.id);
      audit(ctx, 'system', 'dossier.send-rejected', dossier.id, code);
    });
  }

  private async post(row: OutboxRow): Promise<Outcome> {
    const { ctx } = this;
    const evidence = ctx.store.outboxEvidence(row);
    await ctx.relay.postEvidence(evidence, this.envelopeOf(row));
    ctx.db.transaction(() => {
      ctx.store.deleteOutbox(row.id);
      audit(ctx, 'system', 'evidence.sent', row.dossier_id, evidence.body.kind);
    });
    return 'posted';
  }

  /** Transient (relay unreachable, chunks not yet there, quota full): back off. Anything else: mark failed, keep the row. */
  private failed(row: OutboxRow, err: unknown): Outcome {
    const code = codeOf(err);
    if (err instanceof ClockAhead) {
      // Not before the relay's clock reaches the envelope (no sooner than the usual first backoff).
      const at = Math.max(err.acceptedFrom, this.ctx.clock() + OUTBOX_BACKOFF.baseMs);
      this.ctx.store.rescheduleOutbox(row.id, row.attempts + 1, at, code);
      return 'deferred';
    }
    const transient =
      isTransientError(err) ||
      isRelayClientError(err, 'CHUNK_MISSING') ||
      // The relay holds too many of our bytes: room comes back as our earlier envelopes are delivered.
      isRelayClientError(err, 'QUOTA_EXCEEDED') ||
      isRelayClientError(err, 'UNAUTHENTICATED') ||
      isStorageError(err, 'STORAGE_UNAVAILABLE');
    if (transient) {
      const attempts = row.attempts + 1;
      const delay = backoffDelay(OUTBOX_BACKOFF, attempts - 1, Math.random);
      this.ctx.store.rescheduleOutbox(row.id, attempts, this.ctx.clock() + delay, code);
      return 'deferred';
    }
    this.ctx.store.failOutbox(row.id, code);
    return 'failed';
  }
}
