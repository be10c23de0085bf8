import {
  EvidenceSchema,
  checkEvidenceShape,
  isProtocolError,
  parseEnvelope,
  type Envelope,
  type Evidence,
} from '@rogatory/protocol';
import { MailboxItemWireSchema, messageCheck } from '@rogatory/relay-api';
import type { Static, TSchema } from 'typebox';
import { RelayClientError } from './errors.js';

/**
 * What the client makes of the relay's answers: each checked against its
 * schema in @rogatory/relay-api (the one home of the API's messages), then
 * the protocol objects inside by the protocol's own strict parsers.
 */

/** A mailbox item, checked: the envelope or evidence is a well-formed protocol object. */
export type MailboxItem =
  | { readonly seq: number; readonly kind: 'envelope'; readonly envelope: Envelope }
  | { readonly seq: number; readonly kind: 'evidence'; readonly evidence: Evidence };

export interface WireValidator<T> {
  /** The value typed, or BAD_RESPONSE naming the offending path (never the value). */
  parse(value: unknown, what: string, status?: number): T;
}

export function wireValidator<S extends TSchema>(schema: S): WireValidator<Static<S>> {
  const shape = messageCheck(schema);
  return {
    parse(value, what, status = 0) {
      if (shape.check(value)) return value;
      throw new RelayClientError('BAD_RESPONSE', `${what}: invalid at ${shape.where(value)}`, {
        status,
      });
    },
  };
}

const evidenceShape = wireValidator(EvidenceSchema);
const mailboxItemShape = wireValidator(MailboxItemWireSchema);

/**
 * Check a received evidence: schema (EvidenceSchema) and the kind-dependent
 * presence of `reason` and `recipient` (as protocol.md requires). The
 * signature is checked separately, when the caller gave a trust store.
 */
export function parseEvidence(value: unknown, what: string, status = 0): Evidence {
  const evidence = evidenceShape.parse(value, what, status);
  try {
    checkEvidenceShape(evidence.body);
  } catch (cause) {
    throw new RelayClientError(
      'BAD_RESPONSE',
      `${what}: ${evidence.body.kind} evidence with inconsistent reason, recipient or issuer`,
      { status, cause },
    );
  }
  return evidence;
}

/** Check a received envelope (schema and consistency, via the protocol's parseEnvelope). */
export function parseWireEnvelope(value: unknown, what: string, status = 0): Envelope {
  try {
    return parseEnvelope(value);
  } catch (cause) {
    if (!isProtocolError(cause)) throw cause;
    throw new RelayClientError('BAD_RESPONSE', `${what}: not a valid envelope (${cause.code})`, {
      status,
      cause,
    });
  }
}

/**
 * Check one mailbox item. On failure the error carries the item's `seq`
 * when that much could be read, so a subscriber can report or ack it.
 */
export function parseMailboxItem(value: unknown, status = 0): MailboxItem {
  const seq = seqOf(value);
  try {
    const item = mailboxItemShape.parse(value, 'mailbox item', status);
    return item.kind === 'envelope'
      ? {
          seq: item.seq,
          kind: 'envelope',
          envelope: parseWireEnvelope(item.envelope, 'mailbox item', status),
        }
      : {
          seq: item.seq,
          kind: 'evidence',
          evidence: parseEvidence(item.evidence, 'mailbox item', status),
        };
  } catch (err) {
    if (err instanceof RelayClientError && seq !== undefined) {
      throw new RelayClientError('BAD_RESPONSE', `mailbox item ${seq} is malformed`, {
        status,
        cause: err,
        seq,
      });
    }
    throw err;
  }
}

function seqOf(value: unknown): number | undefined {
  if (typeof value !== 'object' || value === null || !('seq' in value)) return undefined;
  const seq = value.seq;
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 1 ? seq : undefined;
}
