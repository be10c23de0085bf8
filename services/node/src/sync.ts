import {
  backoffDelay,
  isRelayClientError,
  type MailboxItem,
  type MailboxSubscription,
  type RetryPolicy,
} from '@rogatory/client';
import type { NodeContext, ProgressListener } from './context.js';
import { NodeError, toNodeError } from './errors.js';
import { processItem, type ItemOutcome } from './inbound.js';
import { codeOf, type Outbox, type OutboxReport } from './outbox.js';
import { relayIncident } from './relay-incidents.js';

/** What the sync loop reports, for a CLI or a UI. Never content. */
export type SyncEvent =
  | { readonly type: 'connected' }
  | { readonly type: 'disconnected'; readonly willReconnect: boolean }
  | { readonly type: 'item'; readonly seq: number; readonly outcome: ItemOutcome }
  | { readonly type: 'outbox'; readonly report: OutboxReport }
  | {
      readonly type: 'error';
      readonly code: string;
      readonly detail?: string;
      readonly seq?: number;
    };

export interface SyncReport {
  readonly items: readonly { readonly seq: number; readonly outcome: ItemOutcome }[];
  readonly outbox: OutboxReport;
}

export interface SyncHandle {
  /** Stop the subscription and the outbox worker; resolves when both are idle. */
  stop(): Promise<void>;
  /** Wake the outbox worker now (after an approval or an opening). */
  poke(): void;
}

const PAGE = 50;
const MAX_PAGES = 200;
/** Restart of the subscription after an item could not be stored: doubling from 1 s to 1 min (`retries` unused: it restarts until stopped). */
const RESTART: RetryPolicy = { retries: 0, baseMs: 1_000, maxMs: 60_000, jitter: 0 };
const OUTBOX_IDLE_MS = 30_000;

/**
 * Pull the mailbox over HTTP until it is empty (bounded), storing and then
 * acking each item in order, then flush the outbox. Stops at the first item
 * that cannot be stored and throws its error: that item stays unacked.
 */
export async function syncOnce(
  ctx: NodeContext,
  outbox: Outbox,
  onProgress?: ProgressListener,
): Promise<SyncReport> {
  const items: { seq: number; outcome: ItemOutcome }[] = [];
  let after = ctx.store.cursor();
  for (let page = 0; page < MAX_PAGES; page++) {
    let batch: MailboxItem[];
    try {
      batch = await ctx.relay.readMailbox(after, PAGE);
    } catch (err) {
      if (isRelayClientError(err, 'BAD_RESPONSE')) {
        // A malformed item (a relay fault) cannot be stored: record it and drop it, so it does not block the mailbox.
        if (err.seq !== undefined) {
          relayIncident(ctx, 'BAD_RESPONSE', `seq:${err.seq}`);
          await ctx.relay.ack([err.seq]);
          continue;
        }
        // A malformed, oversized or endless page: nothing in it is stored or acked.
        relayIncident(ctx, 'BAD_RESPONSE', null, { throttle: true });
      }
      throw toNodeError(err, 'read mailbox');
    }
    if (batch.length === 0) break;
    for (const item of batch) {
      const outcome = await processItem(ctx, item, onProgress);
      try {
        await ctx.relay.ack([item.seq]);
      } catch (err) {
        // Stored but not acked: the relay sends it again and it is recognised as a duplicate.
        throw toNodeError(err, 'ack mailbox item');
      }
      ctx.store.setCursor(item.seq);
      after = item.seq;
      items.push({ seq: item.seq, outcome });
    }
  }
  const report = await outbox.run({ force: true, ...(onProgress ? { onProgress } : {}) });
  return { items, outbox: report };
}

/**
 * Live sync: a mailbox subscription from the stored cursor (items stored,
 * then acked, then the cursor saved), and a background outbox worker with
 * backoff. An item that cannot be stored is not acked; the subscription is
 * restarted after a backoff so that the relay sends it again.
 */
export function startSync(
  ctx: NodeContext,
  outbox: Outbox,
  onEvent: (event: SyncEvent) => void = () => undefined,
): SyncHandle {
  const state = { stopped: false };
  const isStopped = (): boolean => state.stopped;
  let subscription: MailboxSubscription | undefined;
  let restartTimer: ReturnType<typeof setTimeout> | undefined;
  let restarts = 0;
  let wake: (() => void) | undefined;
  let outboxTimer: ReturnType<typeof setTimeout> | undefined;

  const emit = (event: SyncEvent): void => {
    try {
      onEvent(event);
    } catch {
      // A listener that throws must not stop the node.
    }
  };

  const subscribe = (): void => {
    if (state.stopped) return;
    const sub = ctx.relay.openMailbox({
      after: ctx.store.cursor(),
      onItem: async (item) => {
        if (state.stopped) return;
        try {
          const outcome = await processItem(ctx, item);
          emit({ type: 'item', seq: item.seq, outcome });
          restarts = 0;
          sub.ack([item.seq]).then(
            () => {
              if (state.stopped) return;
              try {
                ctx.store.setCursor(sub.cursor);
              } catch {
                // The cursor is an optimisation: the relay re-sends unacked items anyway.
              }
            },
            () => undefined,
          );
          wake?.();
        } catch (err) {
          const e = toNodeError(err, 'store mailbox item');
          emit({
            type: 'error',
            code: e.code,
            ...(e.detail === undefined ? {} : { detail: e.detail }),
            seq: item.seq,
          });
          scheduleRestart();
        }
      },
      onError: (err) => {
        const code = codeOf(err);
        if (isRelayClientError(err, 'BAD_RESPONSE')) {
          if (err.seq !== undefined) {
            // A malformed item is dropped as syncOnce drops it, or it would hold the cursor back for ever.
            relayIncident(ctx, code, `seq:${err.seq}`);
            sub.ack([err.seq]).catch(() => undefined);
          } else {
            // Malformed or oversized frames: the relay's doing, not the network's.
            relayIncident(ctx, code, null, { throttle: true });
          }
        }
        emit({ type: 'error', code });
      },
    });
    sub.on('connected', () => {
      emit({ type: 'connected' });
    });
    sub.on('disconnected', (info) => {
      emit({ type: 'disconnected', willReconnect: info.willReconnect });
    });
    subscription = sub;
  };

  const scheduleRestart = (): void => {
    if (state.stopped || restartTimer !== undefined) return;
    const delay = backoffDelay(RESTART, restarts, Math.random);
    restarts++;
    const old = subscription;
    subscription = undefined;
    void old?.close();
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      subscribe();
    }, delay);
  };

  const outboxLoop = async (): Promise<void> => {
    while (!state.stopped) {
      try {
        const report = await outbox.run();
        if (
          report.sent.length +
            report.rejected.length +
            report.evidencesPosted +
            report.failed +
            report.deferred >
          0
        )
          emit({ type: 'outbox', report });
      } catch (err) {
        const e = err instanceof NodeError ? err : toNodeError(err, 'outbox');
        emit({ type: 'error', code: e.code });
      }
      const next = ctx.store.nextOutboxAt();
      const delay =
        next === undefined
          ? OUTBOX_IDLE_MS
          : Math.max(50, Math.min(OUTBOX_IDLE_MS, next - ctx.clock()));
      await new Promise<void>((resolve) => {
        if (isStopped()) {
          resolve();
          return;
        }
        wake = resolve;
        outboxTimer = setTimeout(resolve, delay);
      });
      wake = undefined;
      if (outboxTimer !== undefined) clearTimeout(outboxTimer);
    }
  };

  subscribe();
  const loop = outboxLoop();
  return {
    poke: () => wake?.(),
    async stop() {
      state.stopped = true;
      if (restartTimer !== undefined) clearTimeout(restartTimer);
      wake?.();
      await subscription?.close();
      await loop;
    },
  };
}
