import {
  backoffDelay,
  isRelayClientError,
  type MailboxItem,
  type MailboxSubscription,
  type RetryPolicy,
} from '@rogatory/client';
import { audit, type NodeContext, type ProgressListener } from '../context.js';
import { codeOf, toNodeError } from '../errors.js';
import { processItem, type ItemOutcome } from './receive-item.js';
import { relayIncident } from './relay-incidents.js';

/** What the mailbox side of sync reports, for a CLI or a UI. Never content. */
export type MailboxEvent =
  | { readonly type: 'connected' }
  | { readonly type: 'disconnected'; readonly willReconnect: boolean }
  | { readonly type: 'item'; readonly seq: number; readonly outcome: ItemOutcome }
  /** The relay's mailbox is another store (new epoch): the cursor went back to 0, everything is read again. */
  | { readonly type: 'mailbox-reset'; readonly epoch: string }
  | {
      readonly type: 'error';
      readonly code: string;
      readonly detail?: string;
      readonly seq?: number;
    };

export interface MailboxSubscriptionHandle {
  /** Stop the subscription; resolves when it is closed. */
  stop(): Promise<void>;
}

const PAGE = 50;
const MAX_PAGES = 200;
/** Restart of the subscription after an item could not be stored: doubling from 1 s to 1 min (`retries` unused: it restarts until stopped). */
const RESTART: RetryPolicy = { retries: 0, baseMs: 1_000, maxMs: 60_000, jitter: 0 };

/**
 * The relay gave its mailbox epoch: record it with the cursor. A new one
 * (its store was replaced: a backend switch without migration, a lost
 * Redis) means its seqs start again and name other items: the cursor goes
 * back to 0, in the same transaction as the audit entry, and the caller
 * reads everything again (items stored before are recognised as
 * duplicates). Returns true on such a reset.
 */
export function noteMailboxEpoch(ctx: NodeContext, epoch: string): boolean {
  if (ctx.store.mailboxEpoch() === epoch) return false;
  return ctx.db.transaction(() => {
    const { previous, cursor } = ctx.store.setMailboxEpoch(epoch);
    if (previous === undefined || previous === epoch) return false;
    audit(ctx, 'system', 'mailbox.reset', null, `epoch:${previous}->${epoch} cursor:${cursor}`);
    return true;
  });
}

/**
 * Pull the mailbox over HTTP until it is empty (bounded), storing and then
 * acking each item in order. Stops at the first item that cannot be stored
 * and throws its error: that item stays unacked. A relay whose mailbox
 * epoch changed is read again from 0 (noteMailboxEpoch).
 */
export async function pullMailbox(
  ctx: NodeContext,
  onProgress?: ProgressListener,
): Promise<{ seq: number; outcome: ItemOutcome }[]> {
  const items: { seq: number; outcome: ItemOutcome }[] = [];
  let after = ctx.store.cursor();
  pages: for (let page = 0; page < MAX_PAGES; page++) {
    let batch: MailboxItem[];
    let pageEpoch: string | undefined;
    try {
      const answer = await ctx.relay.readMailboxPage(after, PAGE);
      pageEpoch = answer.epoch;
      if (answer.epoch !== undefined && noteMailboxEpoch(ctx, answer.epoch)) {
        after = 0;
        continue;
      }
      batch = answer.items;
    } catch (err) {
      if (isRelayClientError(err, 'BAD_RESPONSE')) {
        // A malformed item (a relay fault) cannot be stored: record it and drop it, so it does not block the mailbox.
        if (err.seq !== undefined) {
          relayIncident(ctx, 'BAD_RESPONSE', `seq:${err.seq}`);
          // No epoch: the seq comes from the page just read, whose epoch the malformed page hid.
          await ctx.relay.ack([err.seq]);
          continue;
        }
        // A malformed, oversized or endless page: nothing in it is stored or acked.
        relayIncident(ctx, 'BAD_RESPONSE', null, { throttle: true });
      }
      throw toNodeError(err, 'read mailbox');
    }
    if (batch.length === 0) break;
    // Acks name the epoch the page was read under (a relay reset since refuses them); none from a relay that gives none.
    const ackOptions = pageEpoch === undefined ? undefined : { epoch: pageEpoch };
    for (const item of batch) {
      const outcome = await processItem(ctx, item, onProgress);
      try {
        await ctx.relay.ack([item.seq], ackOptions);
      } catch (err) {
        // The relay's mailbox was reset since the read: read again, the new epoch resets the cursor.
        if (isRelayClientError(err, 'MAILBOX_RESET')) continue pages;
        // Stored but not acked: the relay sends it again and it is recognised as a duplicate.
        throw toNodeError(err, 'ack mailbox item');
      }
      ctx.store.setCursor(item.seq);
      after = item.seq;
      items.push({ seq: item.seq, outcome });
    }
  }
  return items;
}

/**
 * Live mailbox: a subscription from the stored cursor (items stored, then
 * acked, then the cursor saved). An item that cannot be stored is not acked;
 * the subscription is restarted after a backoff so that the relay sends it
 * again. `onStored` runs after each stored item (it may have queued an
 * evidence to send). `onEvent` must not throw.
 */
export function subscribeMailbox(
  ctx: NodeContext,
  options: { onEvent: (event: MailboxEvent) => void; onStored?: () => void },
): MailboxSubscriptionHandle {
  const emit = options.onEvent;
  let stopped = false;
  let subscription: MailboxSubscription | undefined;
  let restartTimer: ReturnType<typeof setTimeout> | undefined;
  let restarts = 0;
  const subscribe = (): void => {
    if (stopped) return;
    const epoch = ctx.store.mailboxEpoch();
    const sub = ctx.relay.openMailbox({
      after: ctx.store.cursor(),
      ...(epoch === undefined ? {} : { epoch }),
      onEpoch: (next) => {
        if (stopped) return;
        try {
          if (noteMailboxEpoch(ctx, next)) emit({ type: 'mailbox-reset', epoch: next });
        } catch (err) {
          emit({ type: 'error', code: toNodeError(err, 'store mailbox epoch').code });
        }
      },
      onItem: async (item) => {
        if (stopped) return;
        try {
          const outcome = await processItem(ctx, item);
          emit({ type: 'item', seq: item.seq, outcome });
          restarts = 0;
          sub.ack([item.seq]).then(
            () => {
              if (stopped) return;
              try {
                // A cursor of the epoch the store holds only (an ack of the old epoch may confirm late).
                if (sub.currentEpoch === ctx.store.mailboxEpoch()) ctx.store.setCursor(sub.cursor);
              } catch {
                // The cursor is an optimisation: the relay re-sends unacked items anyway.
              }
            },
            () => undefined,
          );
          options.onStored?.();
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
    if (stopped || restartTimer !== undefined) return;
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

  subscribe();
  return {
    async stop() {
      stopped = true;
      if (restartTimer !== undefined) clearTimeout(restartTimer);
      await subscription?.close();
    },
  };
}
