import type { Dispatcher } from 'undici';
import { RelayClientError } from './errors.js';
import { defaultRuntime } from './retry.js';
import { DEFAULT_MIN_BYTES_PER_SECOND, DEFAULT_TIMEOUT_MS, Transport } from './transport.js';

/** Most publications a relay returns in one answer (D2); more is a malformed answer. */
export const MAX_PUBLICATIONS_PER_PAGE = 100;
/** A publication is at most 16 MiB; a page of them is bounded well below the client's default. */
const MAX_PAGE_BYTES = 64 * 1024 * 1024;
const NETWORK_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface FetchPublicationsOptions {
  /** The relay's base URL (any relay serving the network's chain: the node's own, or one of the network's). */
  readonly baseUrl: string;
  readonly network: string;
  /** The log size already held: only publications whose checkpoint is larger are returned. */
  readonly after: number;
  readonly dispatcher?: Dispatcher;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * One page of a network's publication chain from a relay
 * (`GET /v1/trust/publications/:network?after=`), without a session: the
 * publications are root-signed and self-authenticating. The answer is
 * returned as the relay sent it, unverified: the caller checks every
 * publication (`verifyPublication`) against what it holds. BAD_RESPONSE
 * when the answer is not `{ publications: [...] }` of at most 100 items;
 * the relay's own codes (NOT_FOUND for a network it does not serve) as
 * RelayClientErrors; NETWORK/TIMEOUT when it cannot be reached.
 */
export async function fetchTrustPublications(
  options: FetchPublicationsOptions,
): Promise<unknown[]> {
  if (!NETWORK_RE.test(options.network)) throw new TypeError('network is not a network id');
  if (!Number.isSafeInteger(options.after) || options.after < 0)
    throw new TypeError('after must be a log size');
  const transport = new Transport({
    baseUrl: options.baseUrl,
    dispatcher: options.dispatcher,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxResponseBytes: MAX_PAGE_BYTES,
    minBytesPerSecond: DEFAULT_MIN_BYTES_PER_SECOND,
    runtime: defaultRuntime,
  });
  const route = 'GET /v1/trust/publications/:network';
  const res = await transport.send({
    method: 'GET',
    path: `/v1/trust/publications/${options.network}?after=${options.after}`,
    route,
    signal: options.signal,
  });
  const body = await res.json(MAX_PAGE_BYTES);
  const list =
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as { publications?: unknown }).publications
      : undefined;
  if (!Array.isArray(list) || list.length > MAX_PUBLICATIONS_PER_PAGE)
    throw new RelayClientError('BAD_RESPONSE', `${route}: not a list of at most 100 publications`, {
      status: res.status,
    });
  return list as unknown[];
}
