/** Limits of the relay API that callers and relays both apply (docs/relay-api.md). */

/** Most ids one `POST /v1/chunks/missing` (or `/v1/relay/chunks/missing`) may carry. */
export const MAX_MISSING_BATCH = 10_000;

/**
 * Small objects a relay may carry inside `POST /v1/relay/envelopes` instead
 * of asking which the peer lacks and uploading them one call each (the
 * sealed dossier, small attachments): at most `maxCount` of them, each at
 * most `maxChunkBytes`, together at most `maxTotalBytes` (before base64url).
 */
export const INLINE_CHUNK_LIMITS = {
  maxChunkBytes: 64 * 1024,
  maxCount: 16,
  maxTotalBytes: 256 * 1024,
} as const;

/**
 * One `POST /v1/relay/batch` call: at most `maxEnvelopes` hand-overs and
 * `maxEvidences` evidence items, at most `maxBytes` of body. A relay fills a
 * batch with whatever is waiting for the same peer, so under load one call
 * (one signature, one round trip) carries many envelopes; an item that
 * alone exceeds `maxBytes` goes through the single-item route.
 */
export const BATCH_LIMITS = {
  maxEnvelopes: 64,
  maxEvidences: 256,
  maxBytes: 8 * 1024 * 1024,
} as const;

/** Evidence items in one `POST /v1/relay/evidences`. */
export const RELAY_EVIDENCE_ITEMS = { min: 1, max: 100 } as const;

/**
 * The mailbox: `GET /v1/mailbox` pages (`limit` defaults to `defaultPage`
 * and is taken into 1…`maxPage`), acks of 1…`maxAckSeqs` seqs (HTTP and
 * WebSocket), and the WebSocket's frame rules (a frame over `maxFrameBytes`
 * ends the connection; more than `maxInvalidFrames` invalid ones close it).
 */
export const MAILBOX_LIMITS = {
  defaultPage: 100,
  maxPage: 1000,
  maxAckSeqs: 10_000,
  maxFrameBytes: 256 * 1024,
  maxInvalidFrames: 10,
} as const;

/**
 * Request body limits in bytes. Envelope-carrying routes depend on the
 * relay's `maxEnvelopeBytes` (bodyLimits()); chunk uploads on its `maxChunkBytes`.
 */
export const BODY_LIMITS = {
  challenge: 4 * 1024,
  login: 8 * 1024,
  ack: 256 * 1024,
  /** Every other JSON body (e.g. `/v1/chunks/missing`). */
  other: 1024 * 1024,
} as const;

/** Body limits of the routes that carry envelopes, for a relay whose envelopes are at most `maxEnvelopeBytes`. */
export function envelopeBodyLimits(maxEnvelopeBytes: number): {
  submission: number;
  evidence: number;
  relayEvidences: number;
  handOver: number;
  batch: number;
} {
  return {
    submission: maxEnvelopeBytes,
    evidence: maxEnvelopeBytes + 64 * 1024,
    relayEvidences: maxEnvelopeBytes + 1024 * 1024,
    // The envelope, what wraps it, and up to INLINE_CHUNK_LIMITS of small objects in base64url.
    handOver:
      maxEnvelopeBytes +
      64 * 1024 +
      Math.ceil((INLINE_CHUNK_LIMITS.maxTotalBytes * 4) / 3) +
      INLINE_CHUNK_LIMITS.maxCount * 128,
    batch: BATCH_LIMITS.maxBytes,
  };
}

/** Bytes of a batch body holding items of these encoded sizes (what a batch must keep within BATCH_LIMITS.maxBytes). */
export function batchBodySize(
  envelopeBytes: readonly number[],
  evidenceBytes: readonly number[],
): number {
  const list = (sizes: readonly number[]): number =>
    sizes.reduce((n, s) => n + s, 0) + Math.max(0, sizes.length - 1);
  return '{"envelopes":[],"evidences":[]}'.length + list(envelopeBytes) + list(evidenceBytes);
}

/**
 * Key transparency routes (docs/relay-api.md "Trust distribution"): a
 * publication is at most `maxPublicationBytes` and `maxEntries` entries; one
 * `GET /v1/trust/publications/:network` page holds at most `maxPage`
 * publications; a witness request body (`old` line, up to 63 proof lines, a
 * blank line and a checkpoint note of at most 64 KiB) at most
 * `maxWitnessRequestBytes`.
 */
export const TRUST_LIMITS = {
  maxPublicationBytes: 16 * 1024 * 1024,
  maxEntries: 1000,
  maxPage: 100,
  maxWitnessRequestBytes: 2 * 64 * 1024,
} as const;
