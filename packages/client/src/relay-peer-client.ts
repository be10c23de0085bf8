import type { Dispatcher } from 'undici';
import {
  canonicalBytes,
  concatBytes,
  toBase64url,
  envelopeHash,
  isAddress,
  isProtocolError,
  parseEnvelope,
  type Envelope,
  type Evidence,
  type SigningKeyPair,
} from '@rogatory/protocol';
import {
  BATCH_LIMITS,
  BatchResponseSchema,
  EmptyResponseSchema,
  ForwardResponseSchema,
  INLINE_CHUNK_LIMITS,
  relayCallBodySha256,
  relayCallHeaders,
  type BatchItemResult,
} from '@rogatory/relay-api';
import {
  assertChunkId,
  chunkRequestBody,
  isReplayable,
  missingBatches,
  readMissing,
  readPutChunkResult,
  sha256Hex,
  type ChunkBody,
  type PutChunkResult,
} from './chunks.js';
import { RelayClientError, clientFail, findRelayClientError } from './errors.js';
import { expectEvidence, type EvidenceTrust } from './evidence-checks.js';
import {
  DEFAULT_RETRY_POLICY,
  checkRetryPolicy,
  defaultRuntime,
  withRetry,
  type RetryPolicy,
  type Runtime,
} from './retry.js';
import {
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_TIMEOUT_MS,
  Transport,
  attempt,
  jsonBody,
  rejectionFromBody,
  signalOf,
  type CallOptions,
  type CallSpec,
  type HttpResponse,
  type RejectionParser,
  type RequestBody,
} from './transport.js';
import {
  uploadChunks,
  type UploadChunk,
  type UploadOptions,
  type UploadProgress,
} from './upload.js';
import { parseEvidence, wireValidator } from './wire.js';

export interface RelayPeerClientOptions {
  /** The peer relay's base URL. */
  readonly baseUrl: string | URL;
  /** This relay's id (the caller), e.g. `relay@wacap`. */
  readonly from: string;
  /** The peer relay's id (the callee), bound into every signature. */
  readonly to: string;
  /** This relay's Ed25519 key, as listed in its network manifest. */
  readonly key: SigningKeyPair;
  /** The undici Dispatcher to send through; by default a keep-alive Agent shared by the process. */
  readonly dispatcher?: Dispatcher;
  readonly timeoutMs?: number;
  /**
   * Retries within one call; default 2, because the forwarding queue
   * retries whole tasks with its own backoff.
   */
  readonly retry?: Partial<RetryPolicy>;
  readonly maxResponseBytes?: number;
  /** When given, the peer's relay evidences must verify under it. */
  readonly trust?: EvidenceTrust;
  readonly runtime?: Partial<Runtime>;
}

const forwardShape = wireValidator(ForwardResponseSchema);
const batchShape = wireValidator(BatchResponseSchema);

const HAND_OVER_ROUTE = 'POST /v1/relay/envelopes';
const BATCH_ROUTE = 'POST /v1/relay/batch';

export interface HandOverOptions {
  readonly recipients?: readonly string[];
  /**
   * Objects of this envelope sent along, within INLINE_CHUNK_LIMITS: the
   * peer stores them (checking each against its id) before it checks
   * that every chunk is present. Saves a presence query and an upload
   * call per small object on every hop.
   */
  readonly inline?: readonly { readonly id: string; readonly bytes: Uint8Array }[];
}

/** A hand-over checked and encoded, with what reads the peer's answer to it. */
export interface PreparedHandOver {
  readonly kind: 'envelope';
  /** The canonical hand-over object: its length is what it adds to a batch (plus a comma). */
  readonly bytes: Uint8Array;
  readonly rejection: RejectionParser;
  readonly accepted: (evidences: readonly unknown[], status: number) => Evidence[];
}

/** An evidence item `{ evidence, envelope }`, checked and encoded. */
export interface PreparedEvidence {
  readonly kind: 'evidence';
  readonly bytes: Uint8Array;
}

/** One item's outcome in a batch. */
export type BatchOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: RelayClientError };

const encoder = new TextEncoder();

/** `{"envelopes":[...],"evidences":[...]}` from items encoded once: no second encoding of the whole. */
function batchBody(
  envelopes: readonly { bytes: Uint8Array }[],
  evidences: readonly { bytes: Uint8Array }[],
): Uint8Array {
  const parts: Uint8Array[] = [encoder.encode('{"envelopes":[')];
  envelopes.forEach((item, i) => parts.push(...(i === 0 ? [item.bytes] : [COMMA, item.bytes])));
  parts.push(encoder.encode('],"evidences":['));
  evidences.forEach((item, i) => parts.push(...(i === 0 ? [item.bytes] : [COMMA, item.bytes])));
  parts.push(encoder.encode(']}'));
  return concatBytes(...parts);
}
const COMMA = encoder.encode(',');

/** An evidence item to pass on, checked (schema of both; the peer verifies signatures); MALFORMED otherwise. */
function checkedEvidenceItem(item: { readonly evidence: Evidence; readonly envelope: Envelope }): {
  evidence: Evidence;
  envelope: Envelope;
} {
  try {
    return {
      evidence: parseEvidence(item.evidence, 'evidence to forward'),
      envelope: parseEnvelope(item.envelope),
    };
  } catch (cause) {
    return clientFail('MALFORMED', 'an evidence or its envelope is not valid', { cause });
  }
}

const emptyShape = wireValidator(EmptyResponseSchema);

/**
 * Relay-to-relay client: every request is signed (relay-call.ts) with a
 * fresh timestamp per attempt. Used by a relay's forwarding queue.
 */
export class RelayPeerClient {
  readonly from: string;
  readonly to: string;
  private readonly key: SigningKeyPair;
  private readonly transport: Transport;
  private readonly retry: RetryPolicy;
  private readonly runtime: Runtime;
  private readonly trust: EvidenceTrust | undefined;

  constructor(options: RelayPeerClientOptions) {
    if (!isAddress(options.from) || !isAddress(options.to))
      throw new TypeError('relay ids must be addresses');
    this.from = options.from;
    this.to = options.to;
    this.key = options.key;
    this.runtime = { ...defaultRuntime, ...options.runtime };
    this.retry = checkRetryPolicy({ ...DEFAULT_RETRY_POLICY, retries: 2, ...options.retry });
    this.trust = options.trust;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw new RangeError('timeoutMs must be positive');
    this.transport = new Transport({
      baseUrl: options.baseUrl,
      dispatcher: options.dispatcher,
      timeoutMs,
      maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      runtime: this.runtime,
    });
  }

  private signedHeaders(spec: CallSpec, body: RequestBody | undefined): Record<string, string> {
    const url = this.transport.url(spec.path);
    const path = url.pathname + url.search;
    if (
      body?.kind === 'stream' &&
      !(spec.method === 'PUT' && /\/v1\/relay\/chunks\/[0-9a-f]{64}$/.test(path))
    ) {
      throw new TypeError('only chunk uploads may stream their body');
    }
    const bodySha256 = relayCallBodySha256({
      method: spec.method,
      path,
      body: body?.kind === 'bytes' ? body.bytes : undefined,
    });
    return relayCallHeaders({
      from: this.from,
      to: this.to,
      method: spec.method,
      path,
      bodySha256,
      timestamp: this.runtime.now(),
      key: this.key,
    });
  }

  private call<T>(spec: CallSpec, read: (res: HttpResponse) => Promise<T>): Promise<T> {
    const once = (): Promise<T> =>
      attempt(this.transport, spec, (body) => this.signedHeaders(spec, body), read);
    return spec.replayable ? withRetry(this.retry, this.runtime, once, spec.signal) : once();
  }

  /** The ids among `ids` the peer does not hold (queried 10,000 at a time). */
  async missingChunks(ids: readonly string[], options?: CallOptions): Promise<string[]> {
    const route = 'POST /v1/relay/chunks/missing';
    const missing: string[] = [];
    for (const batch of missingBatches(ids)) {
      const bytes = canonicalBytes({ ids: batch });
      missing.push(
        ...(await this.call(
          {
            method: 'POST',
            path: '/v1/relay/chunks/missing',
            route,
            replayable: true,
            body: () => jsonBody(bytes),
            ...signalOf(options),
          },
          (res) => readMissing(res, batch, route),
        )),
      );
    }
    return missing;
  }

  /**
   * Upload one chunk to the peer. Signed with bodySha256 = the chunk id
   * (see relay-call.ts), so the body can stream from storage.
   */
  async putChunk(
    id: string,
    body: ChunkBody,
    size: number,
    options?: CallOptions,
  ): Promise<PutChunkResult> {
    assertChunkId(id);
    const route = 'PUT /v1/relay/chunks/:id';
    return this.call(
      {
        method: 'PUT',
        path: `/v1/relay/chunks/${id}`,
        route,
        replayable: isReplayable(body),
        body: () => chunkRequestBody(id, body, size),
        ...signalOf(options),
      },
      (res) => readPutChunkResult(res, id, size, route),
    );
  }

  /** Upload the chunks the peer lacks: resumable, bounded concurrency, progress (see upload.ts). */
  uploadChunks(
    chunks: AsyncIterable<UploadChunk> | Iterable<UploadChunk>,
    options?: UploadOptions,
  ): Promise<UploadProgress> {
    return uploadChunks(this, chunks, options);
  }

  /**
   * Forward an envelope (with the hops so far). Resolves with the peer's
   * relay evidences (RelayAcceptance per recipient it takes on; a
   * RelayRejection for a recipient it refuses), each checked to be about
   * this envelope. A rejection of the whole envelope throws with the
   * parsed RelayRejections as `evidences`.
   */
  async forwardEnvelope(
    envelope: Envelope,
    options: CallOptions & HandOverOptions = {},
  ): Promise<Evidence[]> {
    const prepared = this.prepareHandOver(envelope, options);
    return this.call(
      {
        method: 'POST',
        path: '/v1/relay/envelopes',
        route: HAND_OVER_ROUTE,
        replayable: true,
        body: () => jsonBody(prepared.bytes),
        rejection: prepared.rejection,
        ...signalOf(options),
      },
      async (res) => {
        const answer = forwardShape.parse(await res.json(), HAND_OVER_ROUTE, res.status);
        return prepared.accepted(answer.evidences, res.status);
      },
    );
  }

  /**
   * Check and encode a hand-over once, for `forwardEnvelope` or a batch
   * (`forwardBatch`): the encoded size tells the caller whether it fits.
   */
  prepareHandOver(envelope: Envelope, options: HandOverOptions = {}): PreparedHandOver {
    let checked: Envelope;
    try {
      checked = parseEnvelope(envelope);
    } catch (cause) {
      if (!isProtocolError(cause)) throw cause;
      return clientFail('MALFORMED', `envelope is not valid (${cause.code})`, { cause });
    }
    const hash = envelopeHash(checked);
    const route = HAND_OVER_ROUTE;
    // The recipients this relay hands over (default: all): the peer takes responsibility for exactly these.
    const recipients = options.recipients ?? checked.body.recipients;
    if (recipients.length === 0 || recipients.some((r) => !checked.body.recipients.includes(r))) {
      return clientFail(
        'MALFORMED',
        'recipients must be a non-empty subset of the envelope recipients',
      );
    }
    const inline = options.inline ?? [];
    const declared = new Map([
      [checked.body.dossier.id, checked.body.dossier.size],
      ...checked.body.chunks.map((c) => [c.id, c.size] as const),
    ]);
    let inlineBytes = 0;
    if (inline.length > INLINE_CHUNK_LIMITS.maxCount)
      clientFail('LIMIT_EXCEEDED', `at most ${INLINE_CHUNK_LIMITS.maxCount} inline chunks`);
    for (const c of inline) {
      assertChunkId(c.id);
      if (declared.get(c.id) !== c.bytes.length)
        clientFail(
          'MALFORMED',
          `inline chunk ${c.id} is not one of this envelope's, or has another size`,
        );
      if (c.bytes.length > INLINE_CHUNK_LIMITS.maxChunkBytes)
        clientFail('LIMIT_EXCEEDED', `inline chunk ${c.id} is too large`);
      inlineBytes += c.bytes.length;
      if (sha256Hex(c.bytes) !== c.id)
        clientFail(
          'CHUNK_HASH_MISMATCH',
          `inline chunk ${c.id}: the bytes do not hash to the chunk id`,
        );
    }
    if (inlineBytes > INLINE_CHUNK_LIMITS.maxTotalBytes)
      clientFail('LIMIT_EXCEEDED', 'inline chunks too large together');
    const bytes = canonicalBytes({
      envelope: checked,
      recipients: [...recipients],
      // Absent when empty: the hand-over of relays that predate inline chunks.
      ...(inline.length === 0
        ? {}
        : { inline: inline.map((c) => ({ id: c.id, bytes: toBase64url(c.bytes) })) }),
    });
    const evidencesOf = (
      values: readonly unknown[],
      kinds: readonly ('relay-acceptance' | 'relay-rejection')[],
      status: number,
    ): Evidence[] =>
      values.map((value) =>
        expectEvidence(value, {
          envelope: checked,
          hash,
          kinds,
          what: route,
          status,
          trust: this.trust,
        }),
      );
    const rejection: RejectionParser = (body, status) => {
      const missing = body.missing ?? body.error.missing;
      const ids = new Set([checked.body.dossier.id, ...checked.body.chunks.map((c) => c.id)]);
      if (missing?.some((id) => !ids.has(id)) === true) {
        throw new RelayClientError(
          'BAD_RESPONSE',
          `${route}: missing chunks that are not this envelope's`,
          { status },
        );
      }
      return {
        ...(missing === undefined ? {} : { missing }),
        ...(body.evidences === undefined
          ? {}
          : { evidences: evidencesOf(body.evidences, ['relay-rejection'], status) }),
      };
    };
    return {
      kind: 'envelope',
      bytes,
      rejection,
      accepted: (values, status) =>
        evidencesOf(values, ['relay-acceptance', 'relay-rejection'], status),
    };
  }

  /** Check and encode one evidence item for `forwardBatch`. */
  prepareEvidence(item: {
    readonly evidence: Evidence;
    readonly envelope: Envelope;
  }): PreparedEvidence {
    return { kind: 'evidence', bytes: canonicalBytes(checkedEvidenceItem(item)) };
  }

  /**
   * Hand over several envelopes and evidences in one signed call
   * (`POST /v1/relay/batch`). Each item gets its own outcome, as its
   * single-item route would have answered (evidences checked the same way);
   * a failure of the call itself (network, timeout, a 5xx of the whole
   * batch, a peer without the route: 404) throws. At most BATCH_LIMITS.
   */
  async forwardBatch(
    envelopes: readonly PreparedHandOver[],
    evidences: readonly PreparedEvidence[],
    options?: CallOptions,
  ): Promise<{ envelopes: BatchOutcome<Evidence[]>[]; evidences: BatchOutcome<undefined>[] }> {
    if (envelopes.length + evidences.length === 0) return { envelopes: [], evidences: [] };
    if (
      envelopes.length > BATCH_LIMITS.maxEnvelopes ||
      evidences.length > BATCH_LIMITS.maxEvidences
    ) {
      clientFail('LIMIT_EXCEEDED', 'too many items for one batch');
    }
    const bytes = batchBody(envelopes, evidences);
    if (bytes.length > BATCH_LIMITS.maxBytes) clientFail('LIMIT_EXCEEDED', 'batch too large');
    const route = BATCH_ROUTE;
    return this.call(
      {
        method: 'POST',
        path: '/v1/relay/batch',
        route,
        replayable: true,
        body: () => jsonBody(bytes),
        ...signalOf(options),
      },
      async (res) => {
        const answer = batchShape.parse(await res.json(), route, res.status);
        if (
          answer.envelopes.length !== envelopes.length ||
          answer.evidences.length !== evidences.length
        ) {
          throw new RelayClientError('BAD_RESPONSE', `${route}: not one result per item`, {
            status: res.status,
          });
        }
        const outcome = <T>(
          result: BatchItemResult,
          okStatus: number,
          rejection: RejectionParser | undefined,
          ok: () => T,
        ): BatchOutcome<T> => {
          try {
            if (result.status === okStatus) return { ok: true, value: ok() };
            if (result.status < 400)
              throw new RelayClientError(
                'BAD_RESPONSE',
                `${route}: unexpected item status ${result.status}`,
                { status: res.status },
              );
            const body = {
              error: result.error,
              evidences: result.evidences,
              missing: result.missing,
            };
            return {
              ok: false,
              error: rejectionFromBody(body, route, rejection, { status: result.status }),
            };
          } catch (err) {
            const failure =
              findRelayClientError(err) ??
              new RelayClientError('BAD_RESPONSE', `${route}: invalid item result`, {
                status: res.status,
                cause: err,
              });
            return { ok: false, error: failure };
          }
        };
        return {
          envelopes: answer.envelopes.map((result, i) => {
            const prepared = envelopes[i]!;
            return outcome(result, 200, prepared.rejection, () => {
              if (result.evidences === undefined)
                throw new RelayClientError(
                  'BAD_RESPONSE',
                  `${route}: an accepted item without evidences`,
                  { status: res.status },
                );
              return prepared.accepted(result.evidences, result.status);
            });
          }),
          evidences: answer.evidences.map((result) =>
            outcome(result, 202, undefined, () => undefined),
          ),
        };
      },
    );
  }

  /** Pass evidences on towards their envelopes' senders (202). */
  async forwardEvidences(
    items: readonly { readonly evidence: Evidence; readonly envelope: Envelope }[],
    options?: CallOptions,
  ): Promise<void> {
    const checked = items.map(checkedEvidenceItem);
    if (checked.length === 0) return;
    const route = 'POST /v1/relay/evidences';
    const bytes = canonicalBytes({ items: checked });
    await this.call(
      {
        method: 'POST',
        path: '/v1/relay/evidences',
        route,
        replayable: true,
        body: () => jsonBody(bytes),
        ...signalOf(options),
      },
      async (res) => {
        // relay-api.md gives `202 {}`; an empty 202 body is taken as the same answer.
        emptyShape.parse(await res.json(undefined, true), route, res.status);
      },
    );
  }
}
