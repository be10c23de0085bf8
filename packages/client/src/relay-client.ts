import type { Dispatcher } from 'undici';
import {
  CONTEXTS,
  canonicalBytes,
  encodeEnvelope,
  envelopeHash,
  isAddress,
  isProtocolError,
  parseEnvelope,
  signBytes,
  type Envelope,
  type Evidence,
  type SigningKeyPair,
} from '@rogatory/protocol';
import {
  assertChunkId,
  chunkRequestBody,
  collectBytes,
  isReplayable,
  missingBatches,
  readMissing,
  readPutChunkResult,
  verifiedChunk,
  type ChunkBody,
  type PutChunkResult,
} from './chunks.js';
import { RelayClientError, clientFail, isRelayClientError } from './errors.js';
import { expectEvidence, type EvidenceTrust } from './evidence-checks.js';
import {
  MailboxSubscription,
  type MailboxSessionSource,
  type OpenMailboxOptions,
} from './mailbox-subscription.js';
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
  DEFAULT_MIN_BYTES_PER_SECOND,
  DEFAULT_TIMEOUT_MS,
  Transport,
  attempt,
  jsonBody,
  signalOf,
  type CallOptions,
  type CallSpec,
  type HttpResponse,
  type RejectionParser,
  type RelayClockOffset,
} from './transport.js';
import {
  uploadChunks,
  type UploadChunk,
  type UploadOptions,
  type UploadProgress,
} from './upload.js';
import {
  AckResponseSchema,
  ChallengeResponseSchema,
  EmptyResponseSchema,
  MAILBOX_LIMITS,
  MailboxResponseSchema,
  SessionResponseSchema,
  SubmitResponseSchema,
} from '@rogatory/relay-api';
import { parseEvidence, parseMailboxItem, wireValidator, type MailboxItem } from './wire.js';

export interface RelayClientOptions {
  /** The relay's base URL, e.g. `https://relay.wacap.example`; a path prefix is kept. */
  readonly baseUrl: string | URL;
  /** The authority address this node signs in as. */
  readonly address: string;
  /** The authority's Ed25519 identity key (signs the session challenge). */
  readonly identity: SigningKeyPair;
  /**
   * The relay id this node expects (from its manifest). When set, login
   * refuses to sign a challenge naming another relay, so a relay in the
   * middle cannot use this node's signature to open a session elsewhere.
   */
  readonly relayId?: string;
  /**
   * The undici Dispatcher to send through (an Agent of your own; in tests,
   * one that injects faults); by default a keep-alive Agent shared by the process.
   */
  readonly dispatcher?: Dispatcher;
  /** Idle timeout of each exchange in ms (no answer or no body progress); default 30 s. */
  readonly timeoutMs?: number;
  /** Retries of transient failures; default DEFAULT_RETRY_POLICY. */
  readonly retry?: Partial<RetryPolicy>;
  /** Largest JSON answer read into memory; default 64 MiB. */
  readonly maxResponseBytes?: number;
  /**
   * Slowest average rate of a response body once it has been arriving for
   * longer than `timeoutMs` (bytes/s; 0 for no floor); default 16 KiB/s.
   */
  readonly minBytesPerSecond?: number;
  /** When given, relay evidences returned by `submit` must verify under it. */
  readonly trust?: EvidenceTrust;
  /** Clock, sleep and randomness (tests). */
  readonly runtime?: Partial<Runtime>;
}

export interface SessionInfo {
  readonly relay: string;
  readonly address: string;
  /** When the relay says the token expires (relay clock). */
  readonly expiresAt: number;
}

interface Session {
  readonly token: string;
  readonly relay: string;
  readonly expiresAt: number;
  /** Local time after which the token is renewed before use. */
  readonly refreshAt: number;
}

/** Renew a session token this long before it expires (at most half its lifetime). */
const REFRESH_MARGIN_MS = 60_000;
/** Largest `limit` readMailbox takes; the relay answers at most MAILBOX_LIMITS.maxPage items a page. */
const MAX_MAILBOX_LIMIT = 10_000;

const challengeShape = wireValidator(ChallengeResponseSchema);
const sessionShape = wireValidator(SessionResponseSchema);
const submitShape = wireValidator(SubmitResponseSchema);
const emptyShape = wireValidator(EmptyResponseSchema);
const mailboxShape = wireValidator(MailboxResponseSchema);
const ackShape = wireValidator(AckResponseSchema);

export function assertSeq(seq: unknown): asserts seq is number {
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)
    throw new RangeError('mailbox seqs are positive integers');
}

/** Below this, a measured offset from the relay's clock is within the measurement's own error. */
const CLOCK_RESOLUTION_MS = 2_000;

/**
 * The typed client of a relay's node API (docs/relay-api.md) for one
 * authority. Every answer is validated before it is returned; anything
 * malformed or inconsistent with the request is a RelayClientError
 * (BAD_RESPONSE), never a partly trusted value. Call `await ready()` from
 * @rogatory/protocol once before using it (login signs, submit hashes).
 */
export class RelayClient {
  readonly address: string;
  private identity: SigningKeyPair;
  private readonly expectedRelay: string | undefined;
  private readonly transport: Transport;
  private readonly retry: RetryPolicy;
  private readonly runtime: Runtime;
  private readonly timeoutMs: number;
  private readonly trust: EvidenceTrust | undefined;
  private session: Session | undefined;
  private pendingLogin: Promise<Session> | undefined;

  constructor(options: RelayClientOptions) {
    if (!isAddress(options.address)) throw new TypeError('address must be authority@network');
    if (options.relayId !== undefined && !isAddress(options.relayId))
      throw new TypeError('relayId must be an address');
    this.address = options.address;
    this.identity = options.identity;
    this.expectedRelay = options.relayId;
    this.runtime = { ...defaultRuntime, ...options.runtime };
    this.retry = checkRetryPolicy({ ...DEFAULT_RETRY_POLICY, ...options.retry });
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new RangeError('timeoutMs must be positive');
    if (!((options.minBytesPerSecond ?? 0) >= 0))
      throw new RangeError('minBytesPerSecond must not be negative');
    this.trust = options.trust;
    this.transport = new Transport({
      baseUrl: options.baseUrl,
      dispatcher: options.dispatcher,
      timeoutMs: this.timeoutMs,
      maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      minBytesPerSecond: options.minBytesPerSecond ?? DEFAULT_MIN_BYTES_PER_SECOND,
      runtime: this.runtime,
    });
  }

  /** The relay id named by the current session's challenge, once logged in. */
  get relayId(): string | undefined {
    return this.session?.relay ?? this.expectedRelay;
  }

  // ---------------------------------------------------------------- session

  /**
   * Open a session by challenge-response: ask a challenge for this address,
   * sign `{ type: 'session', relay, address, challenge, issuedAt }` with the
   * identity key under context `rogatory/v1/session-challenge`, and exchange
   * it for a bearer token. Other calls log in by themselves; this forces a
   * fresh session. A challenge refused as used or expired is retried once
   * with a new one.
   */
  async login(): Promise<SessionInfo> {
    const session = await this.sharedLogin(true);
    return { relay: session.relay, address: this.address, expiresAt: session.expiresAt };
  }

  /**
   * The relay's clock minus this machine's, as of the relay's last answer
   * (its `Date` header); undefined before any answer carried one. The
   * protocol tolerates 5 minutes (`ENVELOPE_LIMITS.maxClockSkewMs`): an
   * envelope dated further ahead of the relay's clock is refused.
   */
  relayClockOffset(): RelayClockOffset | undefined {
    return this.transport.relayClockOffset();
  }

  /**
   * The relay's time as this client best knows it: this machine's clock,
   * moved by the measured offset when that exceeds what the measurement can
   * tell (the Date header's whole second and the round trip).
   */
  private relayNow(): number {
    const now = this.runtime.now();
    const offset = this.transport.relayClockOffset()?.offsetMs;
    return offset !== undefined && Math.abs(offset) > CLOCK_RESOLUTION_MS
      ? Math.round(now + offset)
      : now;
  }

  private sharedLogin(force: boolean): Promise<Session> {
    if (!force && this.session && this.runtime.now() < this.session.refreshAt)
      return Promise.resolve(this.session);
    this.pendingLogin ??= this.loginWithOneRetry().finally(() => {
      this.pendingLogin = undefined;
    });
    return this.pendingLogin;
  }

  private async loginWithOneRetry(): Promise<Session> {
    try {
      return await this.loginOnce();
    } catch (err) {
      // A lost answer to POST /v1/session makes its retry meet a used challenge.
      if (!isRelayClientError(err, 'CHALLENGE_INVALID')) throw err;
      return await this.loginOnce();
    }
  }

  private async loginOnce(): Promise<Session> {
    const noAuth = (): Record<string, string> => ({});
    const challenge = await withRetry(this.retry, this.runtime, () =>
      attempt(
        this.transport,
        {
          method: 'POST',
          path: '/v1/session/challenge',
          route: 'POST /v1/session/challenge',
          replayable: true,
          body: () => jsonBody(canonicalBytes({ address: this.address })),
        },
        noAuth,
        async (res) =>
          challengeShape.parse(await res.json(), 'POST /v1/session/challenge', res.status),
      ),
    );
    if (this.expectedRelay !== undefined && challenge.relay !== this.expectedRelay) {
      clientFail('BAD_RESPONSE', 'POST /v1/session/challenge: the challenge names another relay', {
        status: 200,
      });
    }
    // Dated on the relay's clock as its answer gave it: the relay checks issuedAt against its
    // own clock, and the single-use, short-lived challenge is what makes the login fresh; a
    // machine whose clock is off still logs in (and learns by how much: relayClockOffset).
    const body = {
      type: 'session',
      relay: challenge.relay,
      address: this.address,
      challenge: challenge.challenge,
      issuedAt: this.relayNow(),
    };
    const signature = signBytes(CONTEXTS.sessionChallenge, body, this.identity);
    const bytes = canonicalBytes({ body, signature });
    const answer = await withRetry(this.retry, this.runtime, () =>
      attempt(
        this.transport,
        {
          method: 'POST',
          path: '/v1/session',
          route: 'POST /v1/session',
          replayable: true,
          body: () => jsonBody(bytes),
        },
        noAuth,
        async (res) => sessionShape.parse(await res.json(), 'POST /v1/session', res.status),
      ),
    );
    if (answer.address !== this.address)
      clientFail('BAD_RESPONSE', 'POST /v1/session: session for another address', { status: 200 });
    const now = this.runtime.now();
    // expiresAt is on the relay's clock: measure the lifetime on it too.
    const lifetime = answer.expiresAt - this.relayNow();
    if (lifetime <= 0)
      clientFail(
        'BAD_RESPONSE',
        'POST /v1/session: the token expires before it is issued (check clocks)',
        { status: 200 },
      );
    const session: Session = {
      token: answer.token,
      relay: challenge.relay,
      expiresAt: answer.expiresAt,
      refreshAt: now + lifetime - Math.min(REFRESH_MARGIN_MS, lifetime / 2),
    };
    this.session = session;
    return session;
  }

  private async token(): Promise<string> {
    return (await this.sharedLogin(false)).token;
  }

  /** Forget `token` if it is still the current one (another caller may have renewed it already). */
  private invalidate(token: string): void {
    if (this.session?.token === token) this.session = undefined;
  }

  /**
   * An authenticated call: transient failures retried with backoff when the
   * call is replayable; a 401 UNAUTHENTICATED (token expired or unknown to
   * the relay) renews the session and retries once.
   */
  private async call<T>(spec: CallSpec, read: (res: HttpResponse) => Promise<T>): Promise<T> {
    const withToken = (token: string): Promise<T> => {
      const once = (): Promise<T> =>
        attempt(this.transport, spec, () => ({ authorization: `Bearer ${token}` }), read);
      return spec.replayable ? withRetry(this.retry, this.runtime, once, spec.signal) : once();
    };
    const token = await this.token();
    try {
      return await withToken(token);
    } catch (err) {
      if (!isRelayClientError(err, 'UNAUTHENTICATED')) throw err;
      this.invalidate(token);
      if (!spec.replayable) throw err;
      return await withToken(await this.token());
    }
  }

  // ----------------------------------------------------------------- chunks

  /** The ids among `ids` the relay does not hold, in the given order (queried 10,000 at a time). */
  async missingChunks(ids: readonly string[], options?: CallOptions): Promise<string[]> {
    const route = 'POST /v1/chunks/missing';
    const missing: string[] = [];
    for (const batch of missingBatches(ids)) {
      const found = await this.call(
        {
          method: 'POST',
          path: '/v1/chunks/missing',
          route,
          replayable: true,
          body: () => jsonBody(canonicalBytes({ ids: batch })),
          ...signalOf(options),
        },
        (res) => readMissing(res, batch, route),
      );
      missing.push(...found);
    }
    return missing;
  }

  /**
   * Upload one chunk. The bytes are checked against `id` and `size` on the
   * way out (a mismatch aborts the request, and the relay stores nothing).
   * Bytes and factories are retried on transient failures; a plain stream
   * is sent once.
   */
  async putChunk(
    id: string,
    body: ChunkBody,
    size: number,
    options?: CallOptions,
  ): Promise<PutChunkResult> {
    assertChunkId(id);
    const route = 'PUT /v1/chunks/:id';
    return this.call(
      {
        method: 'PUT',
        path: `/v1/chunks/${id}`,
        route,
        replayable: isReplayable(body),
        body: () => chunkRequestBody(id, body, size),
        ...signalOf(options),
      },
      (res) => readPutChunkResult(res, id, size, route),
    );
  }

  /**
   * Stream a chunk. The bytes are hashed as they pass; the iteration ends
   * with CHUNK_HASH_MISMATCH if they do not hash to `id`, so treat what was
   * received as unverified until the loop completes.
   */
  async *getChunk(id: string, options?: CallOptions): AsyncGenerator<Uint8Array, void, undefined> {
    assertChunkId(id);
    const route = 'GET /v1/chunks/:id';
    const res = await this.call(
      { method: 'GET', path: `/v1/chunks/${id}`, route, replayable: true, ...signalOf(options) },
      (r) => Promise.resolve(r),
    );
    yield* verifiedChunk(res, id, route);
  }

  /** A whole chunk, verified against its id; a download cut short is retried. */
  async getChunkBytes(id: string, options?: CallOptions): Promise<Uint8Array> {
    assertChunkId(id);
    const route = 'GET /v1/chunks/:id';
    return this.call(
      { method: 'GET', path: `/v1/chunks/${id}`, route, replayable: true, ...signalOf(options) },
      (res) => collectBytes(verifiedChunk(res, id, route)),
    );
  }

  /** Upload the chunks the relay lacks (see `uploadChunks` in upload.ts): resumable, bounded concurrency, progress. */
  uploadChunks(
    chunks: AsyncIterable<UploadChunk> | Iterable<UploadChunk>,
    options?: UploadOptions,
  ): Promise<UploadProgress> {
    return uploadChunks(this, chunks, options);
  }

  // ------------------------------------------------------------- submission

  /**
   * Submit an envelope (its canonical bytes, `hops` empty). Resolves with
   * the relay's SubmissionAcceptance, checked to be about this very
   * envelope. A rejection throws RelayClientError with the relay's code,
   * the parsed SubmissionRejection as `evidence` and, for CHUNK_MISSING,
   * the missing chunk ids (each one of this envelope's). Transient failures
   * are retried: the relay answers a repeated submission with the original
   * acceptance.
   */
  async submit(envelope: Envelope, options?: CallOptions): Promise<Evidence> {
    let checked: Envelope;
    try {
      checked = parseEnvelope(envelope);
    } catch (cause) {
      if (!isProtocolError(cause)) throw cause;
      return clientFail('MALFORMED', `envelope is not valid (${cause.code})`, { cause });
    }
    if (checked.hops.length > 0) clientFail('MALFORMED', 'a submitted envelope has no hops');
    const bytes = encodeEnvelope(checked);
    const hash = envelopeHash(checked);
    const route = 'POST /v1/envelopes';
    const chunkIds = new Set([checked.body.dossier.id, ...checked.body.chunks.map((c) => c.id)]);
    const rejection: RejectionParser = (body, status) => {
      const missing = body.missing ?? body.error.missing;
      if (missing?.some((id) => !chunkIds.has(id)) === true) {
        throw new RelayClientError(
          'BAD_RESPONSE',
          `${route}: missing chunks that are not this envelope's`,
          { status },
        );
      }
      return {
        ...(missing === undefined ? {} : { missing }),
        ...(body.evidence === undefined
          ? {}
          : {
              evidence: expectEvidence(body.evidence, {
                envelope: checked,
                hash,
                kinds: ['submission-rejection'],
                what: route,
                status,
                trust: this.trust,
              }),
            }),
      };
    };
    return this.call(
      {
        method: 'POST',
        path: '/v1/envelopes',
        route,
        replayable: true,
        body: () => jsonBody(bytes),
        rejection,
        ...signalOf(options),
      },
      async (res) => {
        const answer = submitShape.parse(await res.json(), route, res.status);
        return expectEvidence(answer.evidence, {
          envelope: checked,
          hash,
          kinds: ['submission-acceptance'],
          what: route,
          status: res.status,
          trust: this.trust,
        });
      },
    );
  }

  /** Send a Delivery or Retrieval evidence this authority issued (202). */
  /**
   * Post this authority's Delivery or Retrieval evidence, with the envelope
   * it is about: the pair is self-certifying, so the relay routes it to the
   * sender without keeping state (docs/relay-api.md).
   */
  async postEvidence(evidence: Evidence, envelope: Envelope, options?: CallOptions): Promise<void> {
    let checked: Evidence;
    let about: Envelope;
    try {
      checked = parseEvidence(evidence, 'evidence to post');
      about = parseEnvelope(envelope);
    } catch (cause) {
      return clientFail('MALFORMED', 'the evidence or its envelope is not valid', { cause });
    }
    const route = 'POST /v1/evidences';
    const bytes = canonicalBytes({ evidence: checked, envelope: about });
    await this.call(
      {
        method: 'POST',
        path: '/v1/evidences',
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

  // ---------------------------------------------------------------- mailbox

  /**
   * Unacknowledged mailbox items with `seq > after`, oldest first, at most
   * `limit`. Every item is validated; a malformed one fails the whole read
   * with BAD_RESPONSE carrying its `seq`, so the caller can decide to ack
   * (drop) it and read on.
   */
  async readMailbox(after = 0, limit = 100, options?: CallOptions): Promise<MailboxItem[]> {
    return (await this.readMailboxPage(after, limit, options)).items;
  }

  /**
   * readMailbox, with the relay's mailbox epoch (undefined from a relay that
   * gives none): the items' seqs belong to it. A cursor kept from another
   * epoch means nothing here: read again from 0.
   */
  async readMailboxPage(
    after = 0,
    limit = 100,
    options?: CallOptions,
  ): Promise<{ readonly items: MailboxItem[]; readonly epoch?: string }> {
    if (!Number.isSafeInteger(after) || after < 0)
      throw new RangeError('after must be a non-negative integer');
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_MAILBOX_LIMIT)
      throw new RangeError(`limit must be 1..${MAX_MAILBOX_LIMIT}`);
    const route = 'GET /v1/mailbox';
    return this.call(
      {
        method: 'GET',
        // A page is at most maxPage items whatever is asked: ask for no more (the relay refuses a 5-digit limit).
        path: `/v1/mailbox?after=${after}&limit=${Math.min(limit, MAILBOX_LIMITS.maxPage)}`,
        route,
        replayable: true,
        ...signalOf(options),
      },
      async (res) => {
        const answer = mailboxShape.parse(await res.json(), route, res.status);
        if (answer.items.length > limit)
          clientFail('BAD_RESPONSE', `${route}: more items than asked for`, { status: res.status });
        let last = after;
        const items = answer.items.map((value) => {
          const item = parseMailboxItem(value, res.status);
          if (item.seq <= last)
            clientFail('BAD_RESPONSE', `${route}: items out of order or not after the cursor`, {
              status: res.status,
              seq: item.seq,
            });
          last = item.seq;
          return item;
        });
        return answer.epoch === undefined ? { items } : { items, epoch: answer.epoch };
      },
    );
  }

  /**
   * Acknowledge mailbox items (the relay may then drop them); resolves with how many the relay removed.
   * With `epoch` (the one the seqs were read under), a relay whose epoch is another refuses
   * with MAILBOX_RESET and acks nothing.
   */
  async ack(
    seqs: readonly number[],
    options?: CallOptions & { readonly epoch?: string },
  ): Promise<number> {
    seqs.forEach(assertSeq);
    if (seqs.length > MAILBOX_LIMITS.maxAckSeqs)
      throw new RangeError(`at most ${MAILBOX_LIMITS.maxAckSeqs} seqs per ack`);
    if (seqs.length === 0) return 0;
    const route = 'POST /v1/mailbox/ack';
    const bytes = canonicalBytes(
      options?.epoch === undefined
        ? { seqs: [...seqs] }
        : { seqs: [...seqs], epoch: options.epoch },
    );
    return this.call(
      {
        method: 'POST',
        path: '/v1/mailbox/ack',
        route,
        replayable: true,
        body: () => jsonBody(bytes),
        ...signalOf(options),
      },
      async (res) => {
        const answer = ackShape.parse(await res.json(), route, res.status);
        if (answer.acked > seqs.length)
          clientFail('BAD_RESPONSE', `${route}: acked more items than sent`, {
            status: res.status,
          });
        return answer.acked;
      },
    );
  }

  /**
   * Subscribe to the mailbox over WebSocket (see MailboxSubscription).
   * Connecting starts at once; the subscription reconnects until closed.
   */
  openMailbox(options: OpenMailboxOptions): MailboxSubscription {
    const source: MailboxSessionSource = {
      token: () => this.token(),
      invalidate: (token) => {
        this.invalidate(token);
      },
      socketUrl: (token) => {
        const url = this.transport.url(`/v1/mailbox/ws?token=${encodeURIComponent(token)}`);
        url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
        return url;
      },
      runtime: this.runtime,
      timeoutMs: this.timeoutMs,
    };
    const subscription = new MailboxSubscription(source, options);
    subscription.start();
    return subscription;
  }

  /**
   * Sign later session challenges with another identity key of the same
   * address (after an identity rotation took effect). The session held
   * stays until it expires: the relay checked the key when it was opened.
   */
  useIdentity(identity: SigningKeyPair): void {
    this.identity = identity;
  }
}
