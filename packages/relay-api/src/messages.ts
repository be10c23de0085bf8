import {
  AddressSchema,
  Base64url,
  ENVELOPE_LIMITS,
  Hex256,
  KeyIdSchema,
  Timestamp,
} from '@rogatory/protocol';
import { Type, type Static, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import {
  BATCH_LIMITS,
  INLINE_CHUNK_LIMITS,
  MAILBOX_LIMITS,
  MAX_MISSING_BATCH,
  RELAY_EVIDENCE_ITEMS,
} from './limits.js';

/**
 * One schema per message of the relay API (docs/relay-api.md), requests and
 * answers. Request wrappers are strict (exactly these members); answer
 * wrappers tolerate extra members (additive API evolution). Protocol objects
 * inside them (envelopes, evidences) are `Unknown` here: they are checked by
 * the protocol package's own strict parsers and signature checks.
 */

// ---- Requests (what nodes and peer relays send) ----

/** `POST /v1/session/challenge`. */
export const ChallengeRequestSchema = Type.Object(
  { address: AddressSchema },
  { additionalProperties: false },
);

/** `POST /v1/session`: the signed answer to a challenge. */
export const SessionRequestSchema = Type.Object(
  {
    body: Type.Object(
      {
        type: Type.Literal('session'),
        relay: AddressSchema,
        address: AddressSchema,
        challenge: Type.String({ pattern: '^[A-Za-z0-9_-]{1,200}$' }),
        issuedAt: Timestamp,
      },
      { additionalProperties: false },
    ),
    signature: Type.Object(
      { kid: KeyIdSchema, value: Type.String({ pattern: '^[A-Za-z0-9_-]{86}$' }) },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type SessionRequest = Static<typeof SessionRequestSchema>;

/** `POST /v1/chunks/missing` and `POST /v1/relay/chunks/missing`. */
export const MissingRequestSchema = Type.Object(
  { ids: Type.Array(Hex256, { maxItems: MAX_MISSING_BATCH }) },
  { additionalProperties: false },
);

/** `POST /v1/evidences`, and each item of `POST /v1/relay/evidences`: an evidence with the envelope it is about. */
export const EvidenceItemSchema = Type.Object(
  { evidence: Type.Unknown(), envelope: Type.Unknown() },
  { additionalProperties: false },
);

/** `POST /v1/relay/evidences`. */
export const RelayEvidencesRequestSchema = Type.Object(
  {
    items: Type.Array(Type.Unknown(), {
      minItems: RELAY_EVIDENCE_ITEMS.min,
      maxItems: RELAY_EVIDENCE_ITEMS.max,
    }),
  },
  { additionalProperties: false },
);

/** One small object carried inside a hand-over (within INLINE_CHUNK_LIMITS). */
export const InlineChunkSchema = Type.Object(
  {
    id: Hex256,
    // base64url without padding of at most INLINE_CHUNK_LIMITS.maxChunkBytes.
    bytes: Type.String({
      pattern: '^[A-Za-z0-9_-]*$',
      maxLength: Math.ceil((INLINE_CHUNK_LIMITS.maxChunkBytes * 4) / 3),
    }),
  },
  { additionalProperties: false },
);

/**
 * `POST /v1/relay/envelopes`, and each envelope item of `POST /v1/relay/batch`.
 * `recipients` must be a non-empty subset of the envelope's, which only
 * the parsed envelope can tell.
 */
export const HandOverSchema = Type.Object(
  {
    envelope: Type.Unknown(),
    recipients: Type.Array(AddressSchema, { minItems: 1, maxItems: ENVELOPE_LIMITS.maxRecipients }),
    inline: Type.Optional(
      Type.Array(InlineChunkSchema, { maxItems: INLINE_CHUNK_LIMITS.maxCount }),
    ),
  },
  { additionalProperties: false },
);
export type HandOver = Static<typeof HandOverSchema>;

/** `POST /v1/relay/batch`. */
export const BatchRequestSchema = Type.Object(
  {
    envelopes: Type.Array(Type.Unknown(), { maxItems: BATCH_LIMITS.maxEnvelopes }),
    evidences: Type.Array(Type.Unknown(), { maxItems: BATCH_LIMITS.maxEvidences }),
  },
  { additionalProperties: false },
);

const AckSeqsSchema = Type.Array(Type.Integer({ minimum: 1 }), {
  minItems: 1,
  maxItems: MAILBOX_LIMITS.maxAckSeqs,
});

/**
 * A mailbox epoch: the id of the relay's mailbox store. Seqs are comparable
 * only within one epoch; a relay whose store was replaced (a backend switch
 * without migration, a lost Redis) answers with another one, and its seqs
 * start again at 1. Optional everywhere for compatibility: a relay that
 * does not send one is read as before, and a client sends one only after a
 * relay gave it one.
 */
export const MailboxEpochSchema = Type.String({ pattern: '^[A-Za-z0-9_-]{8,64}$' });

/**
 * `POST /v1/mailbox/ack`. With `epoch`, the relay acks only when it is its
 * current epoch (`409 MAILBOX_RESET` otherwise, nothing acked): seqs of an
 * old epoch name other items in the new one.
 */
export const AckRequestSchema = Type.Object(
  { seqs: AckSeqsSchema, epoch: Type.Optional(MailboxEpochSchema) },
  { additionalProperties: false },
);

/** `GET /v1/mailbox` query: decimal `after` (up to 15 digits) and `limit` (up to 4). */
export const MailboxQuerySchema = Type.Object({
  after: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
});

/**
 * What a node sends on the mailbox WebSocket. `epoch`: the epoch `after`
 * (or the acked seqs) belong to; a subscribe naming another epoch than the
 * relay's reads from 0, an ack naming another one is refused (MAILBOX_RESET).
 */
export const ClientFrameSchema = Type.Union([
  Type.Object(
    {
      type: Type.Literal('subscribe'),
      after: Type.Integer({ minimum: 0 }),
      epoch: Type.Optional(MailboxEpochSchema),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { type: Type.Literal('ack'), seqs: AckSeqsSchema, epoch: Type.Optional(MailboxEpochSchema) },
    { additionalProperties: false },
  ),
]);

// ---- Answers (what a relay sends) ----

/** Mailbox sequence numbers start at 1; `after: 0` means "from the beginning". */
export const SeqSchema = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

/** Every refusal: `{ error: { code, message, detail? }, missing?, evidence | evidences? }`. */
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
export type ErrorBody = Static<typeof ErrorBodySchema>;

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
export type BatchItemResult = Static<typeof BatchItemResultSchema>;

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
  /** The relay's mailbox epoch (the items' seqs belong to it). */
  epoch: Type.Optional(MailboxEpochSchema),
});

/** What the relay sends on the mailbox WebSocket. */
export const ServerFrameSchema = Type.Union([
  Type.Object({
    type: Type.Literal('item'),
    item: Type.Unknown(),
    /** The relay's mailbox epoch (the item's seq belongs to it). */
    epoch: Type.Optional(MailboxEpochSchema),
  }),
  Type.Object({ type: Type.Literal('acked'), seqs: Type.Array(SeqSchema, { maxItems: 100_000 }) }),
  Type.Object({ type: Type.Literal('error'), code: Type.String({ maxLength: 64 }) }),
]);
export type ServerFrame = Static<typeof ServerFrameSchema>;

/** A message schema compiled once. */
export interface MessageCheck<T> {
  check(value: unknown): value is T;
  /** Where `value` first breaks the schema: JSON pointer and rule, never the value (it may hold personal data). */
  where(value: unknown): string;
}

/** Compile a message schema; the relay and the client each wrap a failure in their own typed error. */
export function messageCheck<S extends TSchema>(schema: S): MessageCheck<Static<S>> {
  const compiled = Compile(schema);
  return {
    check: (value: unknown): value is Static<S> => compiled.Check(value),
    where(value: unknown): string {
      const first = compiled.Errors(value)[0];
      return first ? `${first.instancePath || '/'} (${first.keyword})` : '/';
    },
  };
}

// ---- Trust distribution (key transparency, protocol §18 and §18.10) ----

/**
 * `POST /v1/trust/publications` answer: the network's log size and manifest
 * edition the relay holds after the publication, and the witnesses (relay
 * ids) whose cosignature its stored note now carries.
 */
export const TrustPublishResponseSchema = Type.Object({
  network: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  edition: Type.Integer({ minimum: 0 }),
  cosigners: Type.Array(Type.String()),
});

/** `GET /v1/trust/networks` answer: per network whose chain the relay holds, its size, edition and root hash (standard base64). */
export const TrustNetworksResponseSchema = Type.Object({
  networks: Type.Array(
    Type.Object({
      network: Type.String(),
      size: Type.Integer({ minimum: 0 }),
      edition: Type.Integer({ minimum: 0 }),
      rootHash: Type.String(),
    }),
  ),
});

/** `GET /v1/trust/publications/:network` query: the publications ending above `after` (default 0). */
export const TrustPublicationsQuerySchema = Type.Object(
  { after: Type.Optional(Type.String({ pattern: '^(0|[1-9][0-9]{0,15})$' })) },
  { additionalProperties: false },
);

/** `GET /v1/trust/publications/:network` answer: Publications (checked by the protocol's verifyPublication), in order, at most TRUST_LIMITS.maxPage. */
export const TrustPublicationsResponseSchema = Type.Object({
  publications: Type.Array(Type.Unknown(), { maxItems: 100 }),
});
