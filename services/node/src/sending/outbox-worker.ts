import type { NodeContext } from '../context.js';
import { NodeError, toNodeError } from '../errors.js';
import type { Outbox, OutboxReport } from './outbox.js';

/** What the background outbox worker reports. Codes only, never content. */
export type OutboxEvent =
  | { readonly type: 'outbox'; readonly report: OutboxReport }
  | { readonly type: 'error'; readonly code: string };

export interface OutboxWorker {
  /** Run the outbox now (after an approval, an opening or a stored item). */
  poke(): void;
  /** Stop; resolves when the run in progress has ended. */
  stop(): Promise<void>;
}

/** The longest the worker sleeps with nothing due (an item may be queued by another process). */
const OUTBOX_IDLE_MS = 30_000;

/**
 * The outbox in the background: runs what is due, then sleeps until the
 * next item is due (each item's backoff, sending/outbox.ts), at most
 * OUTBOX_IDLE_MS, or until poked. `onEvent` must not throw.
 */
export function startOutboxWorker(
  ctx: NodeContext,
  outbox: Outbox,
  onEvent: (event: OutboxEvent) => void,
): OutboxWorker {
  let stopped = false;
  let wake: (() => void) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const loop = async (): Promise<void> => {
    while (!stopped) {
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
          onEvent({ type: 'outbox', report });
      } catch (err) {
        const e = err instanceof NodeError ? err : toNodeError(err, 'outbox');
        onEvent({ type: 'error', code: e.code });
      }
      const next = ctx.store.nextOutboxAt();
      const delay =
        next === undefined
          ? OUTBOX_IDLE_MS
          : Math.max(50, Math.min(OUTBOX_IDLE_MS, next - ctx.clock()));
      await new Promise<void>((resolve) => {
        if (stopped) {
          resolve();
          return;
        }
        wake = resolve;
        timer = setTimeout(resolve, delay);
      });
      wake = undefined;
      if (timer !== undefined) clearTimeout(timer);
    }
  };

  const running = loop();
  return {
    poke: () => wake?.(),
    async stop() {
      stopped = true;
      wake?.();
      await running;
    },
  };
}
