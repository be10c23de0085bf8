import type { Envelope, Evidence, EvidenceKind } from '@rogatory/protocol';
import { Ledger } from '../accounting.js';
import type { ScenarioResult } from '../scenario.js';

/**
 * The shared Ledger (../accounting.ts) does the counting; this keeps beside
 * it the indexes part B's scenarios wait on (has every accepted envelope
 * arrived? has this NonDelivery come back?), so that waits and counts never
 * disagree about what was recorded.
 */
export class Tally {
  readonly ledger = new Ledger();
  private readonly envelopes = new Map<string, Envelope>();
  private readonly acceptedIds = new Set<string>();
  /** `${id} ${recipient}` -> distinct mailbox seqs. */
  private readonly reads = new Map<string, Set<number>>();
  /** `${id} ${kind} ${recipient}`. */
  private readonly evidences = new Set<string>();

  sent(envelope: Envelope): void {
    this.envelopes.set(envelope.body.id, envelope);
    this.ledger.send(envelope);
  }

  accepted(envelopeId: string): void {
    this.acceptedIds.add(envelopeId);
    this.ledger.accept(envelopeId);
  }

  /** The submission failed without an answer: it may or may not have been committed. */
  cutOff(envelopeId: string): void {
    this.ledger.cutOff(envelopeId);
  }

  isAccepted(envelopeId: string): boolean {
    return this.acceptedIds.has(envelopeId);
  }

  envelope(envelopeId: string): Envelope | undefined {
    return this.envelopes.get(envelopeId);
  }

  delivered(recipient: string, envelope: Envelope, seq: number): void {
    const key = `${envelope.body.id} ${recipient}`;
    let seqs = this.reads.get(key);
    if (!seqs) this.reads.set(key, (seqs = new Set()));
    seqs.add(seq);
    this.ledger.deliver(recipient, envelope, seq);
  }

  deliveryCount(envelopeId: string, recipient: string): number {
    return this.reads.get(`${envelopeId} ${recipient}`)?.size ?? 0;
  }

  /** A verified evidence read from `sender`'s mailbox. */
  evidence(sender: string, evidence: Evidence): void {
    const b = evidence.body;
    this.evidences.add(`${b.envelopeId} ${b.kind} ${b.recipient ?? ''}`);
    this.ledger.evidence(sender, evidence);
  }

  hasEvidence(envelopeId: string, kind: EvidenceKind, recipient: string | null): boolean {
    return this.evidences.has(`${envelopeId} ${kind} ${recipient ?? ''}`);
  }

  /** Every evidence owed so far came back. */
  settled(): boolean {
    const { owed, received } = this.ledger.evidenceCounts();
    return received >= owed;
  }

  /** Every accepted envelope (but those `except` names) reached every recipient. */
  allDelivered(except: (envelopeId: string) => boolean = () => false): boolean {
    for (const id of this.acceptedIds) {
      if (except(id)) continue;
      for (const r of this.envelopes.get(id)?.body.recipients ?? [])
        if (this.deliveryCount(id, r) === 0) return false;
    }
    return true;
  }

  get acceptedCount(): number {
    return this.acceptedIds.size;
  }

  result(
    extra: { measured?: Record<string, number | string | boolean>; notes?: string[] } = {},
  ): ScenarioResult {
    return this.ledger.result(extra);
  }
}
