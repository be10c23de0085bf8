import { audit, type NodeContext } from '../context.js';

/** What `status()` shows of the relay's misbehaviour. Codes and times only, never content. */
export interface RelayIncidents {
  /** Incidents counted since the node was initialised. */
  readonly total: number;
  readonly last: { readonly at: number; readonly code: string } | null;
}

const TOTAL = 'relay.incidents.total';
const LAST = 'relay.incidents.last';
/** A repeated transport-level incident (same code) is counted every time but audited at most this often. */
const AUDIT_EVERY_MS = 60_000;

const lastAudited = new WeakMap<NodeContext, Map<string, number>>();

/**
 * Record that the relay served something the node refused: a forged,
 * re-addressed or replayed item, bytes that are not the chunk they claim to
 * be, an evidence about another envelope, a malformed or oversized answer.
 * Counted (status) and audited as `relay.misbehaviour` with the code and a
 * target (`seq:N` or an id), never content. Item-level incidents are
 * audited each time: each explains an ack without storing. Transport-level
 * ones (`throttle`), which a relay can repeat at will, are audited at most
 * once a minute per code.
 */
export function relayIncident(
  ctx: NodeContext,
  code: string,
  target: string | null,
  options: { throttle?: boolean } = {},
): void {
  const now = ctx.clock();
  ctx.db.transaction(() => {
    ctx.db.setSetting(TOTAL, String(Number(ctx.db.setting(TOTAL) ?? '0') + 1));
    ctx.db.setSetting(LAST, JSON.stringify({ at: now, code }));
    if (options.throttle === true) {
      const seen = lastAudited.get(ctx) ?? new Map<string, number>();
      lastAudited.set(ctx, seen);
      const previous = seen.get(code);
      if (previous !== undefined && now - previous < AUDIT_EVERY_MS) return;
      seen.set(code, now);
    }
    audit(ctx, 'system', 'relay.misbehaviour', target, code);
  });
}

export function relayIncidents(ctx: NodeContext): RelayIncidents {
  const last = ctx.db.setting(LAST);
  let parsed: { at: number; code: string } | null = null;
  if (last !== undefined) {
    const value = JSON.parse(last) as { at?: unknown; code?: unknown };
    if (typeof value.at === 'number' && typeof value.code === 'string')
      parsed = { at: value.at, code: value.code };
  }
  return { total: Number(ctx.db.setting(TOTAL) ?? '0'), last: parsed };
}
