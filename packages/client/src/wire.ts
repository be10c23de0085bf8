import {
  AddressSchema,
  Base64url,
  ENVELOPE_LIMITS,
  EvidenceSchema,
  Hex256,
  Timestamp,
  checkEvidenceShape,
  isProtocolError,
  parseEnvelope,
  type Envelope,
  type Evidence,
} from '@rogatory/protocol';
import { Type, type Static, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { RelayClientError } from './errors.js';

/**
 * One schema per message the relay sends (docs/relay-api.md). Wrappers
 * tolerate extra properties (additive API evolution); the protocol objects
 * inside them are checked by the protocol package's own strict parsers.
 */

/** Most ids one `POST /v1/chunks/missing` may carry. */
export const MAX_MISSING_BATCH = 10_000;

/**
 * Small objects a relay may carry inside `POST /v1/relay/envelopes` instead
 * of asking which the peer lacks and uploading them one call each (the
 * sealed dossier, small attachments): at most `maxCount` of them, each at
 * most `maxChunkBytes`, together at most `maxTotalBytes` (before base64url).
 */
export const INLINE_CHUNK_LIMITS = { maxChunkBytes: 64 * 1024, maxCount: 16, maxTotalBytes: 256 * 1024 } as const;

/**
 * One `POST /v1/relay/batch` call: at most `maxEnvelopes` hand-overs and
 * `maxEvidences` evidence items, at most `maxBytes` of body. A relay fills a
 * batch with whatever is waiting for the same peer, so under load one call
 * (one signature, one round trip) carries many envelopes; an item that
 * alone exceeds `maxBytes` goes through the single-item route.
 */
export const BATCH_LIMITS = { maxEnvelopes: 64, maxEvidences: 256, maxBytes: 8 * 1024 * 1024 } as const;

/** Mailbox sequence numbers start at 1; `after: 0` means "from the beginning". */
export const SeqSchema = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

export const ErrorBodySchema = Type.Object({
  error: Type.Object({
    code: Type.String({ maxLength: 64 }),
    message: Type.Optional(Type.String()),
    missing: Type.Optional(Type.Array(Hex256, { maxItems: ENVELOPE_LIMITS.maxChunks + 1 })),
  }),
  evidence: Type.Optional(Type.Unknown()),
  evidences: Type.Optional(Type.Array(Type.Unknown(), { maxItems: ENVELOPE_LIMITS.maxRecipients })),
  missing: Type.Optional(Type.Array(Hex256, { maxItems: ENVELOPE_LIMITS.maxChunks + 1 })),
});

export const ChallengeResponseSchema = Type.Object({
  challenge: Base64url(32),
  relay: AddressSchema,
  expiresAt: Timestamp,
});

export const SessionResponseSchema = Type.Object({
  token: Type.String({ pattern: '^[A-Za-z0-9_-]+$', minLength: 16, maxLength: 1024 }),
  expiresAt: Timestamp,
  address: AddressSchema,
});

export const MissingResponseSchema = Type.Object({
  missing: Type.Array(Hex256, { maxItems: MAX_MISSING_BATCH }),
});

export const PutChunkResponseSchema = Type.Object({
  id: Hex256,
  size: Type.Integer({ minimum: 0, maximum: ENVELOPE_LIMITS.maxChunkBytes }),
});

export const SubmitResponseSchema = Type.Object({ evidence: Type.Unknown() });

export const ForwardResponseSchema = Type.Object({
  evidences: Type.Array(Type.Unknown(), { maxItems: ENVELOPE_LIMITS.maxRecipients }),
});

export const EmptyResponseSchema = Type.Object({});

/** One item's answer in a batch: `status` as the single-item route would answer, with its body's fields. */
export const BatchItemResultSchema = Type.Object({
  status: Type.Integer({ minimum: 200, maximum: 599 }),
  evidences: Type.Optional(Type.Array(Type.Unknown(), { maxItems: ENVELOPE_LIMITS.maxRecipients })),
  error: Type.Optional(Type.Unknown()),
  missing: Type.Optional(Type.Unknown()),
});

export const BatchResponseSchema = Type.Object({
  envelopes: Type.Array(BatchItemResultSchema, { maxItems: BATCH_LIMITS.maxEnvelopes }),
  evidences: Type.Array(BatchItemResultSchema, { maxItems: BATCH_LIMITS.maxEvidences }),
});

export const AckResponseSchema = Type.Object({
  acked: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
});

export const MailboxItemWireSchema = Type.Union([
  Type.Object({ seq: SeqSchema, kind: Type.Literal('envelope'), envelope: Type.Unknown() }),
  Type.Object({ seq: SeqSchema, kind: Type.Literal('evidence'), evidence: Type.Unknown() }),
]);

export const MailboxResponseSchema = Type.Object({
  items: Type.Array(Type.Unknown()),
});

/** What the relay sends on the mailbox WebSocket. */
export const ServerFrameSchema = Type.Union([
  Type.Object({ type: Type.Literal('item'), item: Type.Unknown() }),
  Type.Object({ type: Type.Literal('acked'), seqs: Type.Array(SeqSchema, { maxItems: 100_000 }) }),
  Type.Object({ type: Type.Literal('error'), code: Type.String({ maxLength: 64 }) }),
]);
export type ServerFrame = Static<typeof ServerFrameSchema>;

/** A mailbox item, checked: the envelope or evidence is a well-formed protocol object. */
export type MailboxItem =
  | { readonly seq: number; readonly kind: 'envelope'; readonly envelope: Envelope }
  | { readonly seq: number; readonly kind: 'evidence'; readonly evidence: Evidence };

export interface WireValidator<T> {
  /** The value typed, or BAD_RESPONSE naming the offending path (never the value). */
  parse(value: unknown, what: string, status?: number): T;
}

export function wireValidator<S extends TSchema>(schema: S): WireValidator<Static<S>> {
  const compiled = Compile(schema);
  return {
    parse(value, what, status = 0) {
      if (compiled.Check(value)) return value;
      const first = compiled.Errors(value)[0];
      const where = first ? `${first.instancePath || '/'} (${first.keyword})` : '/';
      throw new RelayClientError('BAD_RESPONSE', `${what}: invalid at ${where}`, { status });
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
    throw new RelayClientError('BAD_RESPONSE', `${what}: ${evidence.body.kind} evidence with inconsistent reason, recipient or issuer`, { status, cause });
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
