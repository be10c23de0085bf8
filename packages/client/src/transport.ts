import { Readable } from 'node:stream';
import type { Static } from 'typebox';
import { Agent, type Dispatcher } from 'undici';
import type { Evidence } from '@rogatory/protocol';
import {
  RelayClientError,
  findRelayClientError,
  isRelayErrorCode,
  type RelayClientErrorCode,
} from './errors.js';
import { parseRetryAfter, type Runtime } from './retry.js';
import { ErrorBodySchema } from '@rogatory/relay-api';
import { wireValidator } from './wire.js';

/** Default idle timeout of an exchange: no answer or no body progress for this long. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Default largest JSON answer read into memory. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/**
 * Default slowest response body accepted, on average, once a body has been
 * arriving for longer than the idle timeout: 16 KiB/s (128 kbit/s), a 1 MiB
 * chunk in about a minute. A relay that trickles a byte now and then would
 * otherwise hold a download for ever without tripping the idle timeout.
 */
export const DEFAULT_MIN_BYTES_PER_SECOND = 16 * 1024;

export interface CallOptions {
  readonly signal?: AbortSignal;
}

export function signalOf(options: CallOptions | undefined): { signal?: AbortSignal } {
  return options?.signal === undefined ? {} : { signal: options.signal };
}

export type RequestBody =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array; readonly contentType: string }
  | {
      readonly kind: 'stream';
      readonly source: AsyncIterable<Uint8Array>;
      /** Sent as Content-Length; the runtime fails the request if the source yields another number of bytes. */
      readonly size: number;
      readonly contentType: string;
    };

export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT';
  /** Path and query, starting with `/`, appended to the base URL's path. */
  readonly path: string;
  /** The route for error messages (ids replaced by placeholders), e.g. `PUT /v1/chunks/:id`. */
  readonly route: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  readonly signal?: AbortSignal | undefined;
}

export type ErrorBody = Static<typeof ErrorBodySchema>;

/** Extra fields of a rejection, parsed by the caller that knows what they must be bound to. */
export type RejectionParser = (
  body: ErrorBody,
  status: number,
) => { evidence?: Evidence; evidences?: readonly Evidence[]; missing?: readonly string[] };

/** The part of a response's headers callers read. */
export interface ResponseHeaders {
  get(name: string): string | null;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: ResponseHeaders;
  /** The body as it arrives; each read is under the idle timeout. Consume it or `cancel()`. */
  body(): AsyncIterable<Uint8Array>;
  /** The whole body parsed as JSON, at most `maxBytes`; an empty body reads as `{}` when `allowEmpty`. */
  json(maxBytes?: number, allowEmpty?: boolean): Promise<unknown>;
  cancel(): Promise<void>;
}

export interface TransportOptions {
  readonly baseUrl: string | URL;
  /**
   * The undici Dispatcher every request goes through (undici's request API,
   * redirects not followed). Default: a keep-alive connection pool (Agent)
   * shared by the process. Give one to own the pool (its connections, its
   * limits), or in tests to inject resets, delays and errors into the same
   * path production uses.
   */
  readonly dispatcher?: Dispatcher | undefined;
  /** Idle timeout: no response, or no body progress, for this long aborts the exchange. */
  readonly timeoutMs: number;
  /** Largest JSON answer read into memory. */
  readonly maxResponseBytes: number;
  /** Slowest average body rate accepted after the first `timeoutMs` of a body (0: no floor). */
  readonly minBytesPerSecond?: number;
  readonly runtime: Runtime;
}

const errorBodyShape = wireValidator(ErrorBodySchema);
const MAX_ERROR_BODY_BYTES = 16 * 1024 * 1024;

/** Idle keep-alive connections are closed after this long (or sooner, when the server says so). */
const KEEP_ALIVE_TIMEOUT_MS = 10_000;

let sharedAgent: Agent | undefined;

/**
 * The connection pools of every Transport without a Dispatcher of its own,
 * one pool per origin. Idle sockets do not keep the process alive.
 */
function sharedDispatcher(): Dispatcher {
  sharedAgent ??= new Agent({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS });
  return sharedAgent;
}

/**
 * An idle timer and the caller's abort signal in one AbortController, so
 * the failure can be told apart afterwards: our timeout, the caller's abort,
 * or the network.
 */
class Deadline {
  readonly controller = new AbortController();
  timedOut = false;
  aborted = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly external: AbortSignal | undefined;
  private bodyWaitedMs = 0;
  private bodyBytes = 0;
  private readonly onExternalAbort = (): void => {
    this.aborted = true;
    this.controller.abort(new Error('aborted by caller'));
  };

  constructor(
    private readonly ms: number,
    external: AbortSignal | undefined,
    private readonly minBytesPerSecond = 0,
  ) {
    this.external = external;
    if (external?.aborted === true) this.onExternalAbort();
    else external?.addEventListener('abort', this.onExternalAbort, { once: true });
    this.touch();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  touch(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new Error('idle timeout'));
    }, this.ms);
  }

  /**
   * Count body bytes received after `waitedMs` spent waiting for them (the
   * relay's time, not the consumer's); throws TIMEOUT, and aborts the
   * exchange, when past the first `ms` of waiting the average rate is below
   * the floor.
   */
  progress(bytes: number, waitedMs: number, route: string, status: number): void {
    this.bodyBytes += bytes;
    this.bodyWaitedMs += waitedMs;
    const waited = this.bodyWaitedMs;
    if (
      this.minBytesPerSecond > 0 &&
      waited > this.ms &&
      (this.bodyBytes * 1000) / waited < this.minBytesPerSecond
    ) {
      this.timedOut = true;
      this.controller.abort(new Error('body too slow'));
      throw new RelayClientError(
        'TIMEOUT',
        `${route}: body slower than ${this.minBytesPerSecond} bytes/s`,
        { status },
      );
    }
  }

  done(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.external?.removeEventListener('abort', this.onExternalAbort);
  }

  failure(err: unknown, route: string, status = 0): RelayClientError {
    const own = findRelayClientError(err);
    if (own) return own;
    if (this.timedOut)
      return new RelayClientError('TIMEOUT', `${route}: no progress within ${this.ms} ms`, {
        status,
        cause: err,
      });
    if (this.aborted)
      return new RelayClientError('ABORTED', `${route}: aborted`, { status, cause: err });
    return new RelayClientError('NETWORK', `${route}: connection failed`, { status, cause: err });
  }
}

/**
 * How far the relay's clock is from this machine's: the relay's time minus
 * ours, read from the HTTP `Date` header of its last response (whole
 * seconds, so the middle of that second is taken: within about half a
 * second plus the round trip). `measuredAt` is this machine's time then.
 */
export interface RelayClockOffset {
  readonly offsetMs: number;
  readonly measuredAt: number;
}

/** `Date` header (IMF-fixdate, RFC 9110 §5.6.7) to the middle of the second it names; undefined when absent or unreadable. */
export function relayTimeOf(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.length > 64) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms + 500 : undefined;
}

/** HTTP exchanges with one relay: URL building, timeouts, bounded reads, error bodies. No retries, no auth. */
export class Transport {
  readonly baseUrl: URL;
  private readonly options: TransportOptions;
  private clock: RelayClockOffset | undefined;

  constructor(options: TransportOptions) {
    const base = new URL(options.baseUrl);
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new TypeError('baseUrl must be http(s)');
    if (base.search !== '' || base.hash !== '' || base.username !== '' || base.password !== '') {
      throw new TypeError('baseUrl must not carry a query, fragment or credentials');
    }
    this.baseUrl = base;
    this.options = options;
  }

  /** The absolute URL of `path` (path and query) under the base URL's path. */
  url(path: string): URL {
    const url = new URL(this.baseUrl);
    const q = path.indexOf('?');
    url.pathname = this.baseUrl.pathname.replace(/\/+$/, '') + (q < 0 ? path : path.slice(0, q));
    url.search = q < 0 ? '' : path.slice(q);
    return url;
  }

  /**
   * One exchange. Resolves with a 2xx response (body still to be read);
   * throws RelayClientError for anything else: the relay's error code for
   * 4xx/5xx, NETWORK, TIMEOUT, ABORTED, or BAD_RESPONSE for other statuses.
   */
  async send(request: HttpRequest, rejection?: RejectionParser): Promise<HttpResponse> {
    const deadline = new Deadline(
      this.options.timeoutMs,
      request.signal,
      this.options.minBytesPerSecond,
    );
    const response = await this.dispatch(request, deadline);
    const { status } = response;
    if (status >= 200 && status < 300) return response;
    if (status < 400) {
      await response.cancel();
      throw new RelayClientError('BAD_RESPONSE', `${request.route}: unexpected status ${status}`, {
        status,
      });
    }
    throw await this.rejectionOf(response, request.route, rejection);
  }

  /** One exchange through undici's request API; redirects are not followed (undici's default). */
  private async dispatch(request: HttpRequest, deadline: Deadline): Promise<HttpResponse> {
    const url = this.url(request.path);
    const headers: Record<string, string> = { accept: 'application/json', ...request.headers };
    const body = request.body;
    let payload: Uint8Array | Readable | undefined;
    if (body?.kind === 'bytes') {
      headers['content-type'] = body.contentType;
      payload = body.bytes;
    } else if (body?.kind === 'stream') {
      headers['content-type'] = body.contentType;
      headers['content-length'] = String(body.size);
      payload = Readable.from(touching(body.source, deadline), { objectMode: false });
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await (this.options.dispatcher ?? sharedDispatcher()).request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: request.method,
        headers,
        body: payload ?? null,
        signal: deadline.signal,
        // The Deadline is the one idle timeout.
        headersTimeout: 0,
        bodyTimeout: 0,
      } satisfies Dispatcher.RequestOptions);
    } catch (err) {
      deadline.done();
      throw deadline.failure(err, request.route);
    }
    deadline.touch();
    const relayTime = relayTimeOf(res.headers['date']);
    if (relayTime !== undefined) {
      const measuredAt = this.options.runtime.now();
      this.clock = { offsetMs: relayTime - measuredAt, measuredAt };
    }
    return wrapDispatcherResponse(res, deadline, request.route, this.options.maxResponseBytes);
  }

  /** The relay's clock against ours, from its last response that carried a `Date` header. */
  relayClockOffset(): RelayClockOffset | undefined {
    return this.clock;
  }

  private async rejectionOf(
    response: HttpResponse,
    route: string,
    rejection: RejectionParser | undefined,
  ): Promise<RelayClientError> {
    const { status } = response;
    const retryAfterMs =
      status === 429 || status === 503
        ? parseRetryAfter(response.headers.get('retry-after'), this.options.runtime.now())
        : undefined;
    const common = { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    let value: unknown;
    try {
      value = await response.json(MAX_ERROR_BODY_BYTES);
    } catch (err) {
      const failure = findRelayClientError(err);
      if (failure && failure.code !== 'BAD_RESPONSE') return failure;
      return new RelayClientError(
        fallbackCode(status),
        `${route}: status ${status} without a relay error body`,
        { ...common, cause: err },
      );
    }
    return rejectionFromBody(value, route, rejection, common);
  }
}

/**
 * The error a relay's rejection body stands for: its code when it is one of
 * the relay catalogue's, the fields `rejection` extracts (bound to what the
 * caller sent), and never the relay's own message text. Used for whole
 * responses and for the items of a batch answer alike.
 */
export function rejectionFromBody(
  value: unknown,
  route: string,
  rejection: RejectionParser | undefined,
  common: { readonly status: number; readonly retryAfterMs?: number },
): RelayClientError {
  const { status } = common;
  let parsed: ErrorBody;
  try {
    parsed = errorBodyShape.parse(value, `${route} error body`, status);
  } catch (err) {
    return new RelayClientError(
      fallbackCode(status),
      `${route}: status ${status} without a relay error body`,
      { ...common, cause: err },
    );
  }
  const relayCode = parsed.error.code;
  const code: RelayClientErrorCode = isRelayErrorCode(relayCode) ? relayCode : fallbackCode(status);
  let extra: ReturnType<RejectionParser> = {};
  if (rejection) {
    try {
      extra = rejection(parsed, status);
    } catch (err) {
      return (
        findRelayClientError(err) ??
        new RelayClientError('BAD_RESPONSE', `${route}: malformed rejection`, {
          status,
          cause: err,
        })
      );
    }
  }
  return new RelayClientError(code, `${route} failed with status ${status}`, {
    ...common,
    ...extra,
  });
}

/** Without a readable relay error body, only the status says something (a proxy's 502 page, say). */
function fallbackCode(status: number): RelayClientErrorCode {
  if (status === 429) return 'RATE_LIMITED';
  if (status >= 500) return 'UNAVAILABLE';
  return 'BAD_RESPONSE';
}

/** A source that restarts the idle timer at every chunk it yields. */
async function* touching(
  source: AsyncIterable<Uint8Array>,
  deadline: Deadline,
): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const part of source) {
    deadline.touch();
    yield part;
  }
}

const TEXT = new TextDecoder('utf-8', { fatal: true });

/** An HttpResponse around a body reader, with bounded JSON reads. */
function response(parts: {
  status: number;
  headers: ResponseHeaders;
  body: () => AsyncGenerator<Uint8Array, void, undefined>;
  cancel: () => Promise<void>;
  route: string;
  maxResponseBytes: number;
}): HttpResponse {
  const { status, headers, body, route } = parts;
  const tooLarge = (maxBytes: number) =>
    new RelayClientError('BAD_RESPONSE', `${route}: response larger than ${maxBytes} bytes`, {
      status,
    });
  return {
    status,
    headers,
    body,
    cancel: parts.cancel,
    async json(maxBytes = parts.maxResponseBytes, allowEmpty = false) {
      const declared = Number(headers.get('content-length') ?? Number.NaN);
      if (declared > maxBytes) {
        await parts.cancel();
        throw tooLarge(maxBytes);
      }
      const chunks: Uint8Array[] = [];
      let length = 0;
      for await (const part of body()) {
        length += part.length;
        if (length > maxBytes) throw tooLarge(maxBytes);
        chunks.push(part);
      }
      let bytes: Uint8Array;
      if (chunks.length === 1) bytes = chunks[0]!;
      else {
        bytes = new Uint8Array(length);
        let offset = 0;
        for (const part of chunks) {
          bytes.set(part, offset);
          offset += part.length;
        }
      }
      if (allowEmpty && length === 0) return {};
      try {
        return JSON.parse(TEXT.decode(bytes)) as unknown;
      } catch (cause) {
        throw new RelayClientError('BAD_RESPONSE', `${route}: response is not JSON`, {
          status,
          cause,
        });
      }
    },
  };
}

/** Largest unread body drained on cancel so that its connection can serve the next request. */
const DRAIN_LIMIT_BYTES = 64 * 1024;

function wrapDispatcherResponse(
  res: Dispatcher.ResponseData,
  deadline: Deadline,
  route: string,
  maxResponseBytes: number,
): HttpResponse {
  let taken = false;
  const readable = res.body;

  async function* body(): AsyncGenerator<Uint8Array, void, undefined> {
    if (taken) throw new Error('response body already read');
    taken = true;
    let finished = false;
    const iterator = readable[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    try {
      for (;;) {
        deadline.touch();
        const started = performance.now();
        let next: IteratorResult<Buffer>;
        try {
          next = await iterator.next();
        } catch (err) {
          finished = true;
          throw deadline.failure(err, route, res.statusCode);
        }
        if (next.done === true) {
          finished = true;
          return;
        }
        deadline.progress(
          next.value.byteLength,
          performance.now() - started,
          route,
          res.statusCode,
        );
        // Plain Uint8Array views (not Buffers): callers hash and keep them.
        yield new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      }
    } finally {
      deadline.done();
      if (!finished) readable.destroy();
    }
  }

  return response({
    status: res.statusCode,
    headers: {
      get(name) {
        const value = res.headers[name.toLowerCase()];
        if (value === undefined) return null;
        return Array.isArray(value) ? value.join(', ') : value;
      },
    },
    body,
    async cancel() {
      deadline.done();
      if (!taken) {
        taken = true;
        await readable.dump({ limit: DRAIN_LIMIT_BYTES }).catch(() => undefined);
      }
    },
    route,
    maxResponseBytes,
  });
}

/** One logical call: rebuilt for every attempt (a chunk factory opens its bytes again, a relay call is signed anew). */
export interface CallSpec {
  readonly method: HttpRequest['method'];
  readonly path: string;
  readonly route: string;
  readonly signal?: AbortSignal | undefined;
  readonly body?: () => RequestBody | Promise<RequestBody>;
  /** The call may be sent again after a failure (its body can be produced again; the relay dedups). */
  readonly replayable: boolean;
  readonly rejection?: RejectionParser;
}

/**
 * One attempt of a call: build the body, send it with `headers(body)`, and
 * read the answer with `read` inside the attempt (so a connection lost while
 * reading is retried like one lost while sending).
 */
export async function attempt<T>(
  transport: Transport,
  spec: CallSpec,
  headers: (body: RequestBody | undefined) => Record<string, string>,
  read: (res: HttpResponse) => Promise<T>,
): Promise<T> {
  const body = spec.body ? await spec.body() : undefined;
  const request: HttpRequest = {
    method: spec.method,
    path: spec.path,
    route: spec.route,
    headers: headers(body),
    signal: spec.signal,
    ...(body === undefined ? {} : { body }),
  };
  const res = await transport.send(request, spec.rejection);
  try {
    return await read(res);
  } catch (err) {
    await res.cancel();
    throw err;
  }
}

/** A canonical JSON request body. */
export function jsonBody(bytes: Uint8Array): RequestBody {
  return { kind: 'bytes', bytes, contentType: 'application/json' };
}
