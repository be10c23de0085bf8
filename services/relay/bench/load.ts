/**
 * Load generation for bench-relay: the nodes (one RelayClient and one
 * mailbox subscription per authority), a tracker of which envelope reached
 * which mailbox when, a closed loop (bounded concurrency, for throughput)
 * and an open loop (paced submissions, for latency).
 */
import {
  RelayClient,
  isRelayClientError,
  type MailboxItem,
  type MailboxSubscription,
} from '@rogatory/client';
import type { TestWorld } from '@rogatory/protocol/testing';
import { Agent } from 'undici';
import type { SealedDossier } from './workload.js';

/** Longest wait for one envelope to reach its recipient's mailbox before it counts as lost. */
const RECEIPT_TIMEOUT_MS = 120_000;
/** Acks are sent in batches: at most this many seqs, at most this long after the first one. */
const ACK_BATCH = 256;
const ACK_DELAY_MS = 5;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** When each envelope id reached a recipient's mailbox (performance.now()). */
export class ReceiptTracker {
  private readonly waiting = new Map<
    string,
    { resolve: (at: number | undefined) => void; timer: NodeJS.Timeout }
  >();
  private readonly early = new Map<string, number>();
  /** Items pushed again (same envelope id seen twice): should stay 0. */
  duplicates = 0;
  private readonly seen = new Set<string>();

  received(id: string, at: number): void {
    if (this.seen.has(id)) {
      this.duplicates++;
      return;
    }
    this.seen.add(id);
    const waiter = this.waiting.get(id);
    if (waiter) {
      this.waiting.delete(id);
      clearTimeout(waiter.timer);
      waiter.resolve(at);
    } else {
      this.early.set(id, at);
    }
  }

  /** Resolves with the receipt time, or undefined after RECEIPT_TIMEOUT_MS or cancel(). */
  wait(id: string): Promise<number | undefined> {
    const at = this.early.get(id);
    if (at !== undefined) {
      this.early.delete(id);
      return Promise.resolve(at);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, RECEIPT_TIMEOUT_MS);
      this.waiting.set(id, { resolve, timer });
    });
  }

  cancel(id: string): void {
    const waiter = this.waiting.get(id);
    if (!waiter) return;
    this.waiting.delete(id);
    clearTimeout(waiter.timer);
    waiter.resolve(undefined);
  }
}

/**
 * One authority's node: its client, and its mailbox subscription acking
 * every item in batches. With `submitUrls`, it submits through several
 * instances of its relay in turn (as behind a load balancer); its mailbox
 * stays on `baseUrl`.
 */
export class BenchNode {
  readonly client: RelayClient;
  /** The clients submissions go through, in turn (the mailbox client first). */
  readonly submitters: RelayClient[];
  private nextSubmitter = 0;
  private sub: MailboxSubscription | undefined;
  private pending: number[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  itemsReceived = 0;
  evidencesReceived = 0;
  ackErrors = 0;

  constructor(
    readonly address: string,
    world: TestWorld,
    baseUrl: string,
    private readonly tracker: ReceiptTracker,
    submitUrls: readonly string[] = [],
  ) {
    const network = address.split('@')[1]!;
    const clientOf = (url: string): RelayClient =>
      new RelayClient({
        baseUrl: url,
        address,
        identity: world.authority(address).identity,
        relayId: `relay@${network}`,
        retry: { retries: 2, baseMs: 20 },
      });
    this.client = clientOf(baseUrl);
    this.submitters = [this.client, ...submitUrls.filter((u) => u !== baseUrl).map(clientOf)];
  }

  /** Log every client in. */
  async login(): Promise<void> {
    await Promise.all(this.submitters.map((c) => c.login()));
  }

  /** The client for the next submission. */
  submitter(): RelayClient {
    const client = this.submitters[this.nextSubmitter]!;
    this.nextSubmitter = (this.nextSubmitter + 1) % this.submitters.length;
    return client;
  }

  /** Subscribe from seq 0 and wait until the socket is open. */
  async openMailbox(): Promise<void> {
    const sub = this.client.openMailbox({
      after: 0,
      onItem: (item) => {
        this.onItem(item);
      },
      onError: (err) => {
        process.stderr.write(
          `mailbox ${this.address}: ${isRelayClientError(err) ? err.code : 'error'}\n`,
        );
      },
    });
    this.sub = sub;
    const end = Date.now() + 20_000;
    while (!sub.connected) {
      if (Date.now() > end) throw new Error(`mailbox of ${this.address} did not connect`);
      await sleep(10);
    }
  }

  private onItem(item: MailboxItem): void {
    const at = performance.now();
    this.itemsReceived++;
    if (item.kind === 'envelope') this.tracker.received(item.envelope.body.id, at);
    else this.evidencesReceived++;
    this.pending.push(item.seq);
    if (this.pending.length >= ACK_BATCH) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), ACK_DELAY_MS);
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.sub || this.pending.length === 0) return;
    const seqs = this.pending;
    this.pending = [];
    this.sub.ack(seqs).catch(() => {
      this.ackErrors++;
    });
  }

  async close(): Promise<void> {
    this.flush();
    await this.sub?.close();
  }
}

export interface RunFigures {
  readonly submitted: number;
  readonly accepted: number;
  readonly delivered: number;
  readonly lost: number;
  readonly errors: Readonly<Record<string, number>>;
  /** From the first submission to the last receipt. */
  readonly elapsedMs: number;
  /** Submit-to-receipt latencies of delivered envelopes, ms, ascending. */
  readonly latenciesMs: readonly number[];
  /** Submit-to-SubmissionAcceptance (the HTTP answer) of accepted envelopes, ms, ascending. */
  readonly acceptLatenciesMs: readonly number[];
  /** Open loop only: how late submissions left against their schedule, ms, ascending. */
  readonly lagMs: readonly number[];
}

/** Nearest-rank percentile of an ascending list. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ]!;
}

class Run {
  submitted = 0;
  accepted = 0;
  delivered = 0;
  lost = 0;
  readonly errors: Record<string, number> = {};
  readonly latencies: number[] = [];
  readonly acceptLatencies: number[] = [];
  readonly lag: number[] = [];
  first = Number.POSITIVE_INFINITY;
  last = 0;

  constructor(
    private readonly tracker: ReceiptTracker,
    private readonly senders: ReadonlyMap<string, BenchNode>,
  ) {}

  /** Submit one envelope and wait for its receipt; resolves when it is delivered, refused or lost. */
  async one(item: SealedDossier): Promise<void> {
    const node = this.senders.get(item.from);
    if (!node) throw new Error(`no sender node ${item.from}`);
    const id = item.envelope.body.id;
    const receipt = this.tracker.wait(id);
    this.submitted++;
    const start = performance.now();
    this.first = Math.min(this.first, start);
    try {
      await node.submitter().submit(item.envelope);
      this.accepted++;
      this.acceptLatencies.push(performance.now() - start);
    } catch (err) {
      const code = isRelayClientError(err) ? err.code : 'INTERNAL';
      this.errors[code] = (this.errors[code] ?? 0) + 1;
      this.tracker.cancel(id);
      return;
    }
    const at = await receipt;
    if (at === undefined) {
      this.lost++;
      return;
    }
    this.delivered++;
    this.last = Math.max(this.last, at);
    this.latencies.push(at - start);
  }

  figures(): RunFigures {
    return {
      submitted: this.submitted,
      accepted: this.accepted,
      delivered: this.delivered,
      lost: this.lost,
      errors: this.errors,
      elapsedMs: this.delivered > 0 ? this.last - this.first : 0,
      latenciesMs: [...this.latencies].sort((a, b) => a - b),
      acceptLatenciesMs: [...this.acceptLatencies].sort((a, b) => a - b),
      lagMs: [...this.lag].sort((a, b) => a - b),
    };
  }
}

/** Closed loop: `concurrency` submissions in flight; each slot frees when its envelope reaches the recipient. */
export async function closedLoop(options: {
  items: readonly SealedDossier[];
  concurrency: number;
  tracker: ReceiptTracker;
  senders: ReadonlyMap<string, BenchNode>;
}): Promise<RunFigures> {
  const run = new Run(options.tracker, options.senders);
  let next = 0;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < options.items.length) await run.one(options.items[next++]!);
    }),
  );
  return run.figures();
}

/**
 * Open loop: submission i leaves at start + i / rate whatever happened to
 * the earlier ones (no coordination with completions). Latency still runs
 * from just before each POST; `lagMs` says how far the generator itself
 * fell behind the schedule.
 */
export async function openLoop(options: {
  items: readonly SealedDossier[];
  ratePerSec: number;
  tracker: ReceiptTracker;
  senders: ReadonlyMap<string, BenchNode>;
}): Promise<RunFigures> {
  const run = new Run(options.tracker, options.senders);
  const { items, ratePerSec } = options;
  const interval = 1000 / ratePerSec;
  const start = performance.now() + 10;
  const inFlight: Promise<void>[] = [];
  let i = 0;
  while (i < items.length) {
    const now = performance.now();
    while (i < items.length && start + i * interval <= now) {
      run.lag.push(now - (start + i * interval));
      inFlight.push(run.one(items[i]!));
      i++;
    }
    if (i < items.length) await sleep(Math.max(0, start + i * interval - performance.now()));
  }
  await Promise.all(inFlight);
  return run.figures();
}

/**
 * The baseline's load: the same bytes POSTed at the same concurrency with
 * the HTTP client RelayClient uses by default (undici's request API on a
 * keep-alive pool, same headers), minus RelayClient's own work (session,
 * envelope checks, timeouts): the floor the relay sections are compared to.
 */
export async function baselineLoop(options: {
  url: string;
  bodies: readonly Uint8Array[];
  concurrency: number;
}): Promise<{ completed: number; failed: number; elapsedMs: number }> {
  const target = new URL('/v1/envelopes', options.url);
  const agent = new Agent({ keepAliveTimeout: 10_000 });
  let next = 0;
  let completed = 0;
  let failed = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < options.bodies.length) {
        const body = options.bodies[next++]!;
        try {
          const res = await agent.request({
            origin: target.origin,
            path: target.pathname,
            method: 'POST',
            headers: {
              accept: 'application/json',
              'content-type': 'application/json',
              authorization: 'Bearer baseline',
            },
            body,
          });
          JSON.parse(await res.body.text());
          if (res.statusCode === 200) completed++;
          else failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  const elapsedMs = performance.now() - start;
  await agent.close();
  return { completed, failed, elapsedMs };
}
