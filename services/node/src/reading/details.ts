import {
  isProtocolError,
  verifyEvidenceChain,
  type Envelope,
  type Evidence,
  type ReasonCode,
} from '@rogatory/protocol';
import type { Actor } from '../administration/users.js';
import type { NodeContext } from '../context.js';
import { deliveryProgress, type RecipientProgress } from '../dossier-status.js';
import { readable, type DossierSummary } from './summaries.js';

export interface EvidenceSummary {
  readonly kind: string;
  readonly issuer: string;
  readonly recipient: string | null;
  readonly issuedAt: number;
  readonly reason: { readonly code: ReasonCode; readonly detail: string | null } | null;
}

export interface DossierDetails extends DossierSummary {
  readonly sender?: string;
  readonly recipients?: readonly string[];
  readonly progress?: Readonly<Record<string, RecipientProgress>>;
  readonly evidences: readonly EvidenceSummary[];
  readonly approvals: readonly {
    readonly username: string;
    readonly decision: string;
    readonly at: number;
  }[];
  readonly draftedBy?: string;
  /** What is queued for the relay about this dossier: its submission, or evidences this node issued. */
  readonly queued: readonly {
    readonly kind: string;
    readonly state: string;
    readonly attempts: number;
    readonly lastError: string | null;
  }[];
}

/** Metadata, delivery progress, evidences and approvals of a dossier: no content, no Retrieval evidence. */
export function show(ctx: NodeContext, actor: Actor, id: string): DossierDetails {
  const { row, summary, meta } = readable(ctx, actor, id);
  const evidences = row.envelope_id === null ? [] : ctx.store.evidences(row.envelope_id);
  const approvals = ctx.store.approvals(id);
  const drafter = row.drafted_by === null ? undefined : ctx.users.byId(row.drafted_by)?.username;
  return {
    ...summary,
    sender: meta.sender,
    recipients: meta.recipients,
    ...(row.direction === 'out' && row.envelope_id !== null
      ? { progress: deliveryProgress(meta.recipients, evidences).recipients }
      : {}),
    evidences: evidences.map(evidenceSummary),
    approvals,
    ...(drafter === undefined ? {} : { draftedBy: drafter }),
    queued: ctx.store
      .outboxRows()
      .filter((r) => r.dossier_id === id)
      .map((r) => ({
        kind: r.kind === 'submit' ? 'submission' : ctx.store.outboxEvidence(r).body.kind,
        state: r.state,
        attempts: r.attempts,
        lastError: r.last_error,
      })),
  };
}

export function evidenceSummary(ev: Evidence): EvidenceSummary {
  const b = ev.body;
  return {
    kind: b.kind,
    issuer: b.issuer,
    recipient: b.recipient,
    issuedAt: b.issuedAt,
    reason: b.reason,
  };
}

/** The evidences of a dossier and the result of verifying them as a chain (protocol §12.6). */
export interface EvidenceChainView {
  /** The envelope the evidences are about (absent before sealing). */
  readonly envelope?: Envelope;
  readonly evidences: readonly Evidence[];
  readonly chain?: {
    readonly ordered: readonly string[];
    readonly submission: string;
    readonly recipients: Readonly<Record<string, string>>;
  };
  /** Protocol code when the chain does not verify. */
  readonly error?: string;
}

export function evidenceChain(ctx: NodeContext, actor: Actor, id: string): EvidenceChainView {
  const { row } = readable(ctx, actor, id);
  if (row.envelope_id === null) return { evidences: [] };
  const envelope = ctx.store.envelope(row.envelope_id)!;
  const evidences = ctx.store.evidences(row.envelope_id);
  // Sealed but not accepted by the relay yet (queued): no chain to verify, nothing wrong with it.
  if (evidences.length === 0) return { envelope, evidences };
  try {
    const chain = verifyEvidenceChain(envelope, evidences, ctx.trust);
    return {
      envelope,
      evidences,
      chain: {
        ordered: chain.ordered.map((e) => `${e.body.kind}:${e.body.issuer}`),
        submission: chain.submission,
        recipients: Object.fromEntries(chain.recipients),
      },
    };
  } catch (err) {
    if (!isProtocolError(err)) throw err;
    return { envelope, evidences, error: err.code };
  }
}
