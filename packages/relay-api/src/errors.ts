/**
 * The relay's error catalogue, the one table of the relay API: every code a
 * relay answers with, its HTTP status and what it means. The relay
 * (RelayError) and the client (RelayClientError) both take their codes from
 * it, and the table in docs/relay-api.md is generated from it
 * (`pnpm --filter @rogatory/relay-api docs:generate`; a test checks it is current).
 * Callers branch on these codes; they never change meaning.
 */
export const RELAY_ERRORS = {
  MALFORMED: {
    status: 400,
    meaning: 'Not JSON, not canonical, wrong types or a schema violation.',
  },
  CHUNK_ID_INVALID: { status: 400, meaning: 'A chunk id is not 64 lowercase hex characters.' },
  CHUNK_HASH_MISMATCH: { status: 400, meaning: 'Chunk bytes do not hash to the chunk id.' },
  UNAUTHENTICATED: {
    status: 401,
    meaning: 'Missing, expired or unknown session token or relay signature.',
  },
  CHALLENGE_INVALID: {
    status: 401,
    meaning: 'The session challenge is unknown, expired or already used.',
  },
  SIGNATURE_INVALID: { status: 403, meaning: 'A signature does not verify.' },
  SENDER_UNKNOWN: { status: 403, meaning: 'The sender is not a member of a trusted network.' },
  SENDER_REVOKED: { status: 403, meaning: 'The sender key is revoked.' },
  SENDER_KEY_EXPIRED: { status: 403, meaning: 'The sender key is outside its validity period.' },
  FORBIDDEN: {
    status: 403,
    meaning:
      "The session may not do this (e.g. the envelope sender is not the session's authority, or a chunk is not addressed to it).",
  },
  NOT_FOUND: { status: 404, meaning: 'No such chunk, envelope or route for this session.' },
  REPLAY: {
    status: 409,
    meaning: 'An envelope with this id but different content was accepted before.',
  },
  MAILBOX_RESET: {
    status: 409,
    meaning:
      "A mailbox ack names an epoch other than the relay's mailbox epoch: the mailbox store was replaced and the seqs name other items. Nothing was acked; read the mailbox again from 0.",
  },
  EXPIRED: { status: 410, meaning: 'The envelope has expired.' },
  LIMIT_EXCEEDED: {
    status: 413,
    meaning: "A body, chunk, recipient list or size is over the relay's limits.",
  },
  RECIPIENT_UNKNOWN: { status: 422, meaning: 'A recipient is not a member of a known network.' },
  RECIPIENT_UNREACHABLE: { status: 422, meaning: "There is no route to a recipient's network." },
  CHUNK_MISSING: {
    status: 422,
    meaning: 'The envelope references chunks the relay does not hold (listed in `missing`).',
  },
  HOP_LIMIT: { status: 422, meaning: 'Hop limit exceeded, or a routing loop.' },
  RATE_LIMITED: {
    status: 429,
    meaning:
      'Rate limit reached (per node, or per source address for session requests and bad tokens); retry after the `Retry-After` header.',
  },
  CHECKPOINT_INVALID: {
    status: 400,
    meaning:
      'A checkpoint note, cosignature line or witness request (`old` line, proof lines, blank line, note) is malformed (protocol §18.3, §18.5 step 1).',
  },
  CHECKPOINT_ROLLBACK: {
    status: 400,
    meaning:
      'The checkpoint is smaller than what it must extend: a witness request whose `old` size exceeds the checkpoint size (§18.5 step 4), or a publication ending below the chain the relay holds.',
  },
  LOG_UNKNOWN: {
    status: 404,
    meaning:
      "A publication or checkpoint of a log this relay does not take: publications are accepted for the relay's own network only, checkpoints witnessed for its manifest's peers only (§18.5 step 2), chains served for its own and its peer networks.",
  },
  WITNESS_CONFLICT: {
    status: 409,
    meaning:
      "The witness request's `old` size is not the size the witness last cosigned; the answer is `text/plain`, the stored size and a newline (§18.5 step 5).",
  },
  PUBLICATION_OUT_OF_ORDER: {
    status: 409,
    meaning:
      "The publication's `previous` is not the last checkpoint the relay holds for that network: push (or fetch) the missing publications first, in order.",
  },
  MANIFEST_ROLLBACK: {
    status: 409,
    meaning:
      'The publication carries a manifest edition older than, or different from at the same version, the edition the relay holds.',
  },
  PROOF_INVALID: {
    status: 422,
    meaning:
      'An inclusion or consistency proof does not verify or has the wrong shape (§18.2; witness steps 6–9).',
  },
  LOG_FORK_DETECTED: {
    status: 422,
    meaning:
      'The checkpoint has the size of one the relay holds (or cosigned) with another root hash: the network signed two views of its log (§18.7).',
  },
  STATEMENT_REFUSED: {
    status: 422,
    meaning:
      "A statement of a publication cannot be applied to the relay's trust store (a manifest that expired or skips an edition, a rotation or revocation of an unknown key); `detail` names the protocol code.",
  },
  INTERNAL: {
    status: 500,
    meaning:
      'An unforeseen failure of the relay, logged there by code; clients treat it as any 5xx (`UNAVAILABLE`, retried).',
  },
  UNAVAILABLE: {
    status: 503,
    meaning: 'The relay backend is unavailable or the relay is draining.',
  },
  STORAGE_FULL: {
    status: 507,
    meaning:
      "The relay's own storage (disk, object store) is out of space; nothing of the request was stored. Retried later, like `UNAVAILABLE`: the operator frees space.",
  },
  QUOTA_EXCEEDED: {
    status: 507,
    meaning:
      'The caller holds as many chunk bytes on the relay as its quota allows; not worth retrying until its envelopes are delivered or its unused uploads expire.',
  },
} as const satisfies Readonly<
  Record<string, { readonly status: number; readonly meaning: string }>
>;

export type RelayErrorCode = keyof typeof RELAY_ERRORS;

export function isRelayErrorCode(value: string): value is RelayErrorCode {
  return Object.hasOwn(RELAY_ERRORS, value);
}

/** The HTTP status a relay answers `code` with. */
export function statusOf(code: RelayErrorCode): number {
  return RELAY_ERRORS[code].status;
}

/**
 * A relay-to-relay call that does not authenticate (relay-call.ts):
 * UNAUTHENTICATED (401) for missing or malformed headers, a timestamp
 * outside the window or an unknown key; SIGNATURE_INVALID (403) when the
 * signature does not verify. The message names the header or key id, never
 * a signature value or body.
 */
export class RelayCallError extends Error {
  override readonly name = 'RelayCallError';
  readonly code: 'UNAUTHENTICATED' | 'SIGNATURE_INVALID';
  readonly status: number;

  constructor(
    code: 'UNAUTHENTICATED' | 'SIGNATURE_INVALID',
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(
      `${code}: ${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.status = statusOf(code);
  }
}

export function isRelayCallError(err: unknown): err is RelayCallError {
  return err instanceof RelayCallError;
}
