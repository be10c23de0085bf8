import { createHash } from 'node:crypto';
import {
  CONTEXTS,
  ENVELOPE_LIMITS,
  isAddress,
  isProtocolError,
  signBytes,
  verifySignature,
  type SigningKeyPair,
} from '@rogatory/protocol';
import { RelayCallError } from './errors.js';

/**
 * Relay-to-relay call authentication (docs/relay-api.md, "Relay to relay").
 *
 * The caller signs, with its relay key and context `rogatory/v1/relay-call`
 * (signBytes: UTF-8(context) || 0x00 || canonical JSON), the body
 *
 *   { "type": "relay-call", "from": <caller relay id>, "to": <callee relay id>,
 *     "method": <uppercase HTTP method>, "path": <request target>,
 *     "bodySha256": <64 lowercase hex>, "timestamp": <ms since epoch> }
 *
 * and sends headers `Rogatory-Relay: from`, `Rogatory-Kid: key id`,
 * `Rogatory-Timestamp: timestamp` (decimal) and `Rogatory-Signature: the
 * base64url signature value`. `to` is not sent: the callee fills in its own
 * id, so a call signed for one relay is refused by every other.
 *
 * `path` is the request target exactly as sent: the URL path (including any
 * prefix of the relay's base URL) followed by `?query` when there is one.
 *
 * `bodySha256` is the lowercase hex SHA-256 of the exact request body bytes
 * (of the empty string when there is no body), with one exception:
 *
 *   For `PUT <prefix>/v1/relay/chunks/<id>` the bodySha256 is `<id>` itself,
 *   whether or not the body is streamed. A chunk id is the SHA-256 of the
 *   chunk bytes, so signing the id binds the body without buffering it; the
 *   callee verifies the signature with bodySha256 = the id from the path
 *   before reading the body, then MUST reject the upload
 *   (CHUNK_HASH_MISMATCH, storing nothing) if the bytes do not hash to it.
 *
 * The signature does not stop a replay within the timestamp window; every
 * relay-to-relay route is idempotent (dedup by chunk id and envelope id),
 * so a replayed call changes nothing.
 */

export const RELAY_CALL_HEADERS = {
  relay: 'rogatory-relay',
  kid: 'rogatory-kid',
  timestamp: 'rogatory-timestamp',
  signature: 'rogatory-signature',
} as const;

/** SHA-256 of zero bytes: the bodySha256 of a call without a body. */
export const EMPTY_BODY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Default accepted difference between the caller's timestamp and the callee's clock. */
export const DEFAULT_RELAY_CALL_MAX_SKEW_MS = ENVELOPE_LIMITS.maxClockSkewMs;

const CHUNK_PUT_PATH = /\/v1\/relay\/chunks\/([0-9a-f]{64})$/;
const HEX256 = /^[0-9a-f]{64}$/;
const METHOD = /^[A-Z]{1,16}$/;
const KID = /^[A-Za-z0-9_-]{22}$/;
const SIGNATURE = /^[A-Za-z0-9_-]{86}$/;
const TIMESTAMP = /^(0|[1-9][0-9]{0,15})$/;

export interface RelayCallBody {
  readonly type: 'relay-call';
  readonly from: string;
  readonly to: string;
  readonly method: string;
  readonly path: string;
  readonly bodySha256: string;
  readonly timestamp: number;
}

export interface RelayCallParams {
  readonly from: string;
  readonly to: string;
  readonly method: string;
  readonly path: string;
  readonly bodySha256: string;
  readonly timestamp: number;
}

function isRequestTarget(path: string): boolean {
  // The request target as sent: absolute path, optional query, no fragment, no spaces or controls.
  return path.startsWith('/') && path.length <= 8192 && !/[\s#\p{Cc}]/u.test(path);
}

/** The signed object of a relay call. Throws TypeError on malformed input (a caller bug). */
export function relayCallBody(params: RelayCallParams): RelayCallBody {
  const { from, to, method, path, bodySha256, timestamp } = params;
  if (!isAddress(from) || !isAddress(to)) throw new TypeError('relay ids must be addresses');
  if (!METHOD.test(method)) throw new TypeError('method must be an uppercase HTTP method');
  if (!isRequestTarget(path))
    throw new TypeError('path must be the request target (path and query)');
  if (!HEX256.test(bodySha256))
    throw new TypeError('bodySha256 must be 64 lowercase hex characters');
  if (!Number.isSafeInteger(timestamp) || timestamp < 0)
    throw new TypeError('timestamp must be ms since the epoch');
  return { type: 'relay-call', from, to, method, path, bodySha256, timestamp };
}

/**
 * The bodySha256 to sign or verify for a request: the chunk id for
 * `PUT .../v1/relay/chunks/<id>` (the body is not needed), otherwise the
 * SHA-256 of `body` (of nothing when absent).
 */
export function relayCallBodySha256(options: {
  method: string;
  path: string;
  body?: Uint8Array | undefined;
}): string {
  const chunk = options.method.toUpperCase() === 'PUT' ? CHUNK_PUT_PATH.exec(options.path) : null;
  if (chunk) return chunk[1]!;
  return options.body === undefined || options.body.length === 0
    ? EMPTY_BODY_SHA256
    : createHash('sha256').update(options.body).digest('hex');
}

/** The four signed headers of a relay call (lowercase names). */
export function relayCallHeaders(
  options: RelayCallParams & { key: SigningKeyPair },
): Record<string, string> {
  const body = relayCallBody(options);
  const signature = signBytes(CONTEXTS.relayCall, body, options.key);
  return {
    [RELAY_CALL_HEADERS.relay]: body.from,
    [RELAY_CALL_HEADERS.kid]: signature.kid,
    [RELAY_CALL_HEADERS.timestamp]: String(body.timestamp),
    [RELAY_CALL_HEADERS.signature]: signature.value,
  };
}

/** Request headers as Node (`IncomingHttpHeaders`, lowercase keys) or fetch (`Headers`) hold them. */
export type RelayCallHeaderSource =
  Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface VerifyRelayCallOptions {
  readonly headers: RelayCallHeaderSource;
  /** The callee's own relay id. */
  readonly to: string;
  readonly method: string;
  /** The request target as received (path and query). */
  readonly path: string;
  /** From relayCallBodySha256 over the received body (or the chunk id for a chunk PUT). */
  readonly bodySha256: string;
  readonly now: number;
  /** Default DEFAULT_RELAY_CALL_MAX_SKEW_MS. */
  readonly maxSkewMs?: number;
  /**
   * The Ed25519 public key (32 bytes) of `relay`'s key `kid`, valid at
   * `timestamp`, from the callee's trust store (own or peer manifest, role
   * relay); throw when there is none.
   */
  readonly resolveKey: (caller: { relay: string; kid: string; timestamp: number }) => Uint8Array;
}

export interface VerifiedRelayCall {
  readonly from: string;
  readonly kid: string;
  readonly timestamp: number;
}

function header(headers: RelayCallHeaderSource, name: string): string | undefined {
  if (headers instanceof Headers) {
    const value = headers.get(name);
    // Headers joins repeated fields with ", ": a repeated signed header is refused.
    return value === null || value.includes(',') ? undefined : value;
  }
  let found: string | undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    if (found !== undefined || typeof value !== 'string') return undefined;
    found = value;
  }
  return found;
}

function unauthenticated(message: string, cause?: unknown): RelayCallError {
  return new RelayCallError(
    'UNAUTHENTICATED',
    `relay call: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * Verify a relay call as the callee. Returns the caller's relay id, key id
 * and timestamp; throws RelayCallError carrying the status and code to
 * answer: UNAUTHENTICATED (401) for missing or malformed headers, a
 * timestamp outside the window or a key `resolveKey` does not know;
 * SIGNATURE_INVALID (403) when the signature does not verify.
 */
export function verifyRelayCall(options: VerifyRelayCallOptions): VerifiedRelayCall {
  const from = header(options.headers, RELAY_CALL_HEADERS.relay);
  const kid = header(options.headers, RELAY_CALL_HEADERS.kid);
  const timestampText = header(options.headers, RELAY_CALL_HEADERS.timestamp);
  const value = header(options.headers, RELAY_CALL_HEADERS.signature);
  if (
    from === undefined ||
    kid === undefined ||
    timestampText === undefined ||
    value === undefined
  ) {
    throw unauthenticated('missing or repeated signature headers');
  }
  if (
    !isAddress(from) ||
    !KID.test(kid) ||
    !TIMESTAMP.test(timestampText) ||
    !SIGNATURE.test(value)
  ) {
    throw unauthenticated('malformed signature headers');
  }
  const timestamp = Number(timestampText);
  const maxSkewMs = options.maxSkewMs ?? DEFAULT_RELAY_CALL_MAX_SKEW_MS;
  if (!Number.isSafeInteger(timestamp) || Math.abs(options.now - timestamp) > maxSkewMs) {
    throw unauthenticated('timestamp outside the accepted window');
  }
  let body: RelayCallBody;
  try {
    body = relayCallBody({
      from,
      to: options.to,
      method: options.method.toUpperCase(),
      path: options.path,
      bodySha256: options.bodySha256,
      timestamp,
    });
  } catch (cause) {
    throw unauthenticated('request does not form a valid signed call', cause);
  }
  let publicKey: Uint8Array;
  try {
    publicKey = options.resolveKey({ relay: from, kid, timestamp });
  } catch (cause) {
    throw unauthenticated(`no usable key ${kid} for ${from}`, cause);
  }
  try {
    verifySignature(CONTEXTS.relayCall, body, { kid, value }, publicKey);
  } catch (cause) {
    if (!isProtocolError(cause)) throw cause;
    throw new RelayCallError(
      'SIGNATURE_INVALID',
      `relay call: signature by key ${kid} does not verify`,
      { cause },
    );
  }
  return { from, kid, timestamp };
}
