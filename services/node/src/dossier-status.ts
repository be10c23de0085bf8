import type { AnswerType, Evidence } from '@rogatory/protocol';

/**
 * Status of a dossier. Outgoing: draft → awaiting-approval → approved →
 * sent → delivered → acknowledged → in-execution → executed | refused |
 * withdrawn, or rejected / not-delivered from rejection and non-delivery
 * evidences. Incoming: received → (the same answer-driven statuses) or
 * quarantined when verification failed.
 */
export const STATUSES = [
  'draft',
  'awaiting-approval',
  'approved',
  'sent',
  'received',
  'delivered',
  'rejected',
  'not-delivered',
  'quarantined',
  'acknowledged',
  'in-execution',
  'executed',
  'refused',
  'withdrawn',
] as const;
export type Status = (typeof STATUSES)[number];

/** Progress order: a status only moves forward (a late delivery evidence does not undo an answer). */
const RANK: Record<Status, number> = {
  draft: 0,
  'awaiting-approval': 1,
  approved: 2,
  sent: 3,
  received: 3,
  delivered: 4,
  rejected: 4,
  'not-delivered': 4,
  quarantined: 4,
  acknowledged: 5,
  'in-execution': 6,
  executed: 7,
  refused: 7,
  withdrawn: 7,
};

export const FINAL_STATUSES: ReadonlySet<Status> = new Set([
  'executed',
  'refused',
  'withdrawn',
  'rejected',
  'not-delivered',
  'quarantined',
]);

export function isStatus(value: string): value is Status {
  return (STATUSES as readonly string[]).includes(value);
}

/** The status after `next` is observed: `next` if it is further along, else the current one. */
export function advance(current: string, next: Status): Status {
  if (!isStatus(current)) return next;
  return RANK[next] > RANK[current] ? next : current;
}

/** What an answer does to the status of the request it replies to. */
export function statusForAnswer(type: AnswerType): Status {
  switch (type) {
    case 'acknowledgement':
    case 'request-additional-information':
      return 'acknowledged';
    case 'partial-execution':
      return 'in-execution';
    case 'full-execution':
      return 'executed';
    case 'refusal':
      return 'refused';
    case 'withdrawal':
      return 'withdrawn';
  }
}

export type RecipientProgress =
  'pending' | 'relayed' | 'delivered' | 'retrieved' | 'rejected' | 'not-delivered';

/**
 * Per-recipient progress of an outgoing envelope from the evidences held
 * (each already verified), and the dossier status they give: delivered
 * when every recipient's node stored it, rejected / not-delivered as soon
 * as one recipient cannot get it, sent otherwise.
 */
export function deliveryProgress(
  recipients: readonly string[],
  evidences: readonly Evidence[],
): { recipients: Record<string, RecipientProgress>; status: Status } {
  const order: Record<RecipientProgress, number> = {
    pending: 0,
    relayed: 1,
    delivered: 2,
    'not-delivered': 3,
    rejected: 3,
    retrieved: 4,
  };
  const state: Record<string, RecipientProgress> = Object.fromEntries(
    recipients.map((r) => [r, 'pending']),
  );
  const set = (r: string, s: RecipientProgress): void => {
    const current = state[r];
    if (current !== undefined && order[s] > order[current]) state[r] = s;
  };
  for (const ev of evidences) {
    const b = ev.body;
    if (b.kind === 'submission-rejection') for (const r of recipients) set(r, 'rejected');
    if (b.recipient === null) continue;
    switch (b.kind) {
      case 'relay-acceptance':
        set(b.recipient, 'relayed');
        break;
      case 'relay-rejection':
      case 'recipient-rejection':
        set(b.recipient, 'rejected');
        break;
      case 'non-delivery':
        set(b.recipient, 'not-delivered');
        break;
      case 'delivery':
        set(b.recipient, 'delivered');
        break;
      case 'retrieval':
        set(b.recipient, 'retrieved');
        break;
      default:
        break;
    }
  }
  const values = Object.values(state);
  const status: Status = values.some((v) => v === 'rejected')
    ? 'rejected'
    : values.some((v) => v === 'not-delivered')
      ? 'not-delivered'
      : values.every((v) => v === 'delivered' || v === 'retrieved')
        ? 'delivered'
        : 'sent';
  return { recipients: state, status };
}

/** Today's date `YYYY-MM-DD` (UTC) at time `now`. */
export function dateOf(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}
