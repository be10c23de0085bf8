import { BATCH_LIMITS, batchBodySize } from '@rogatory/relay-api';
import {
  isRelayClientError,
  type HandOverOptions,
  type PreparedEvidence,
  type PreparedHandOver,
  type RelayPeerClient,
} from '@rogatory/client';
import type { Envelope, Evidence } from '@rogatory/protocol';

interface Waiting<P, T> {
  readonly prepared: P;
  /** The same item through its single-item route (a peer without the batch route). */
  readonly single: () => Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Hands envelopes and evidences to one peer relay in batches: what the
 * forwarding workers ask for in the same turn of the event loop, or while
 * the calls in flight are busy, goes in one `POST /v1/relay/batch` (one
 * signature, one round trip, one request for the peer to authenticate).
 * Each item still settles on its own, as its single call would: accepted
 * with the peer's evidences, or refused with the peer's error and signed
 * rejections. A failure of the call itself fails every item in it (the
 * forwarding queue retries each with its backoff). A peer that does not know
 * the batch route (404) gets single calls from then on.
 */
export class PeerBatcher {
  private envelopes: Waiting<PreparedHandOver, Evidence[]>[] = [];
  private evidences: Waiting<PreparedEvidence, undefined>[] = [];
  private inFlight = 0;
  private scheduled = false;
  private batchRoute = true;

  constructor(
    private readonly client: RelayPeerClient,
    private readonly maxInFlight: number,
  ) {}

  async handOver(envelope: Envelope, options: HandOverOptions): Promise<Evidence[]> {
    const single = (): Promise<Evidence[]> => this.client.forwardEnvelope(envelope, options);
    if (!this.batchRoute) return single();
    const prepared = this.client.prepareHandOver(envelope, options);
    if (batchBodySize([prepared.bytes.length], []) > BATCH_LIMITS.maxBytes) return single();
    return new Promise((resolve, reject) => {
      this.envelopes.push({ prepared, single, resolve, reject });
      this.schedule();
    });
  }

  async evidence(item: {
    readonly evidence: Evidence;
    readonly envelope: Envelope;
  }): Promise<void> {
    const single = (): Promise<undefined> =>
      this.client.forwardEvidences([item]).then(() => undefined);
    if (!this.batchRoute) return single();
    const prepared = this.client.prepareEvidence(item);
    if (batchBodySize([], [prepared.bytes.length]) > BATCH_LIMITS.maxBytes) return single();
    await new Promise<undefined>((resolve, reject) => {
      this.evidences.push({ prepared, single, resolve, reject });
      this.schedule();
    });
  }

  /** Items waiting for a call (not yet sent). */
  get waiting(): number {
    return this.envelopes.length + this.evidences.length;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate: every task that becomes ready in this turn joins the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (!this.batchRoute) {
      // Queued while the call that found the route missing was in flight: single calls too.
      const queued = [...this.envelopes.splice(0), ...this.evidences.splice(0)] as Waiting<
        unknown,
        unknown
      >[];
      for (const w of queued) w.single().then(w.resolve, w.reject);
      return;
    }
    while (this.inFlight < this.maxInFlight && this.waiting > 0) {
      const envelopes = take(
        this.envelopes,
        BATCH_LIMITS.maxEnvelopes,
        (w) => w.prepared.bytes.length,
        [],
      );
      const evidences = take(
        this.evidences,
        BATCH_LIMITS.maxEvidences,
        (w) => w.prepared.bytes.length,
        envelopes.map((w) => w.prepared.bytes.length),
      );
      this.inFlight++;
      void this.send(envelopes, evidences).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async send(
    envelopes: Waiting<PreparedHandOver, Evidence[]>[],
    evidences: Waiting<PreparedEvidence, undefined>[],
  ): Promise<void> {
    try {
      const result = await this.client.forwardBatch(
        envelopes.map((w) => w.prepared),
        evidences.map((w) => w.prepared),
      );
      settle(envelopes, result.envelopes);
      settle(evidences, result.evidences);
    } catch (err) {
      if (isRelayClientError(err, 'NOT_FOUND') && err.status === 404) {
        // A peer that predates the batch route: single calls, for these and from now on.
        this.batchRoute = false;
        for (const w of [...envelopes, ...evidences] as Waiting<unknown, unknown>[])
          w.single().then(w.resolve, w.reject);
        return;
      }
      for (const w of [...envelopes, ...evidences]) w.reject(err);
    }
  }
}

/**
 * The first waiting items that fit one batch (by count, and by body size
 * together with `alongside`); at least one when nothing is alongside, since
 * each item alone was checked to fit when it was queued.
 */
function take<W>(
  queue: W[],
  maxItems: number,
  size: (w: W) => number,
  alongside: readonly number[],
): W[] {
  const sizes: number[] = [];
  let n = 0;
  while (n < queue.length && n < maxItems) {
    sizes.push(size(queue[n]!));
    if ((n > 0 || alongside.length > 0) && batchBodySize(alongside, sizes) > BATCH_LIMITS.maxBytes)
      break;
    n++;
  }
  return queue.splice(0, n);
}

function settle<T>(
  waiting: readonly Waiting<unknown, T>[],
  outcomes: readonly ({ ok: true; value: T } | { ok: false; error: unknown })[],
): void {
  waiting.forEach((w, i) => {
    const outcome = outcomes[i]!;
    if (outcome.ok) w.resolve(outcome.value);
    else w.reject(outcome.error);
  });
}
