import {
  isProtocolError,
  reasonFor,
  type ErrorCode,
  type Evidence,
  type ReasonCode,
} from '@rogatory/protocol';
import { isStorageError } from '@rogatory/storage';
import type { FastifyError } from 'fastify';
import { isRelayErrorCode, statusOf, type RelayErrorCode } from '@rogatory/relay-api';

export interface RelayErrorOptions {
  readonly cause?: unknown;
  /** Signed rejection evidences to return with the error. */
  readonly evidences?: readonly Evidence[] | undefined;
  readonly missing?: readonly string[] | undefined;
  readonly retryAfterMs?: number | undefined;
  /** The precise protocol error code behind a rejection. */
  readonly detail?: ErrorCode | null | undefined;
}

/** A refusal the relay answers: a code of the relay API's one table (RELAY_ERRORS), with its status. */
export class RelayError extends Error {
  override readonly name = 'RelayError';
  readonly code: RelayErrorCode;
  readonly status: number;
  readonly evidences: readonly Evidence[];
  readonly missing: readonly string[] | undefined;
  readonly retryAfterMs: number | undefined;
  readonly detail: ErrorCode | null;

  constructor(code: RelayErrorCode, message: string, options: RelayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = statusOf(code);
    this.evidences = options.evidences ?? [];
    this.missing = options.missing;
    this.retryAfterMs = options.retryAfterMs;
    this.detail = options.detail ?? null;
  }
}

export function isRelayError(err: unknown, code?: RelayErrorCode): err is RelayError {
  return err instanceof RelayError && (code === undefined || err.code === code);
}

/**
 * Map a protocol error to the relay code and the precise cause it is
 * reported with; the evidence reason codes and the relay codes share names.
 */
export function relayCodeFor(err: unknown): {
  code: RelayErrorCode & ReasonCode;
  detail: ErrorCode | null;
} {
  if (!isProtocolError(err)) return { code: 'INTERNAL', detail: null };
  const reason = reasonFor(err);
  const code = isRelayErrorCode(reason.code) ? reason.code : 'MALFORMED';
  return { code, detail: err.code };
}

/** Map a storage error to a relay error (client mistakes 4xx, outages 503). */
export function fromStorageError(err: unknown): RelayError {
  if (!isStorageError(err)) return new RelayError('INTERNAL', 'internal error', { cause: err });
  switch (err.code) {
    case 'BLOB_ID_INVALID':
      return new RelayError('CHUNK_ID_INVALID', 'chunk id must be 64 lowercase hex characters');
    case 'BLOB_HASH_MISMATCH':
      return new RelayError('CHUNK_HASH_MISMATCH', 'chunk bytes do not hash to its id');
    case 'BLOB_TOO_LARGE':
    case 'BLOB_SIZE_MISMATCH':
      return new RelayError('LIMIT_EXCEEDED', 'chunk too large or of the wrong size');
    case 'BLOB_NOT_FOUND':
      return new RelayError('NOT_FOUND', 'no such chunk');
    case 'BLOB_SOURCE_FAILED':
      return new RelayError('MALFORMED', 'upload aborted');
    case 'STORAGE_FULL':
      return new RelayError('STORAGE_FULL', 'relay storage is full', { cause: err });
    default:
      return new RelayError('UNAVAILABLE', 'storage unavailable', { cause: err });
  }
}

/** Fastify's own error codes for bad requests, and what they become. */
const FASTIFY_CODES: Record<string, RelayErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'LIMIT_EXCEEDED',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'MALFORMED',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED',
  FST_ERR_CTP_EMPTY_TYPE: 'MALFORMED',
  FST_ERR_VALIDATION: 'MALFORMED',
};

/** Whatever a handler threw, as the relay error a client gets (anything unforeseen: INTERNAL). */
export function toRelayError(err: unknown): RelayError {
  if (isRelayError(err)) return err;
  if (isProtocolError(err)) {
    const { code, detail } = relayCodeFor(err);
    return new RelayError(code, 'request refused', { cause: err, detail });
  }
  const code = (err as FastifyError | undefined)?.code;
  if (code === 'BACKEND_UNAVAILABLE')
    return new RelayError('UNAVAILABLE', 'the store could not confirm the write; retry', {
      cause: err,
      retryAfterMs: 1000,
    });
  if (code !== undefined && code in FASTIFY_CODES)
    return new RelayError(FASTIFY_CODES[code]!, 'bad request', { cause: err });
  const status = (err as FastifyError | undefined)?.statusCode;
  if (status !== undefined && status >= 400 && status < 500)
    return new RelayError('MALFORMED', 'bad request', { cause: err });
  return new RelayError('INTERNAL', 'internal error', { cause: err });
}

/**
 * The body a refusal is answered with (docs/relay-api.md): `{ error: { code,
 * message, detail? }, missing?, evidence | evidences? }`. `singleEvidence`:
 * node submissions carry their one SubmissionRejection as `evidence`.
 */
export function errorBodyOf(
  error: RelayError,
  options: { singleEvidence?: boolean } = {},
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    error: {
      code: error.code,
      message: error.message,
      ...(error.detail ? { detail: error.detail } : {}),
    },
  };
  if (error.missing) body['missing'] = error.missing;
  if (error.evidences.length === 1 && options.singleEvidence === true)
    body['evidence'] = error.evidences[0];
  else if (error.evidences.length > 0) body['evidences'] = error.evidences;
  return body;
}
