import type { ContentIssue } from '@rogatory/protocol';
import { NODE_ERRORS, NodeError, type NodeErrorCode } from '../errors.js';

/**
 * The REST API's one error table: every code a client can receive, with its
 * HTTP status. The node's catalogue (errors.ts) maps one to one; the few
 * codes below it exist only at the HTTP boundary. The README's "REST API"
 * section documents each code (a test checks it).
 */
export const API_ERRORS = {
  INPUT_INVALID: { status: 400, meaning: NODE_ERRORS.INPUT_INVALID.meaning },
  PATH_REFUSED: { status: 403, meaning: NODE_ERRORS.PATH_REFUSED.meaning },
  CONFIG_INVALID: { status: 500, meaning: NODE_ERRORS.CONFIG_INVALID.meaning },
  NODE_EXISTS: { status: 409, meaning: NODE_ERRORS.NODE_EXISTS.meaning },
  NODE_NOT_FOUND: { status: 500, meaning: NODE_ERRORS.NODE_NOT_FOUND.meaning },
  USER_EXISTS: { status: 409, meaning: NODE_ERRORS.USER_EXISTS.meaning },
  VERIFICATION_FAILED: { status: 422, meaning: NODE_ERRORS.VERIFICATION_FAILED.meaning },
  AUDIT_TAMPERED: { status: 500, meaning: NODE_ERRORS.AUDIT_TAMPERED.meaning },
  LOCAL_DATA_TAMPERED: { status: 500, meaning: NODE_ERRORS.LOCAL_DATA_TAMPERED.meaning },
  DOWNLOAD_FAILED: { status: 502, meaning: NODE_ERRORS.DOWNLOAD_FAILED.meaning },
  AUTHENTICATION_FAILED: { status: 401, meaning: NODE_ERRORS.AUTHENTICATION_FAILED.meaning },
  NOT_AUTHORISED: { status: 403, meaning: NODE_ERRORS.NOT_AUTHORISED.meaning },
  FOUR_EYES_VIOLATION: { status: 403, meaning: NODE_ERRORS.FOUR_EYES_VIOLATION.meaning },
  CLEARANCE_REQUIRED: { status: 403, meaning: NODE_ERRORS.CLEARANCE_REQUIRED.meaning },
  RELAY_UNREACHABLE: { status: 503, meaning: NODE_ERRORS.RELAY_UNREACHABLE.meaning },
  PASSPHRASE_INVALID: { status: 500, meaning: NODE_ERRORS.PASSPHRASE_INVALID.meaning },
  NOT_FOUND: { status: 404, meaning: NODE_ERRORS.NOT_FOUND.meaning },
  INVALID_STATE: { status: 409, meaning: NODE_ERRORS.INVALID_STATE.meaning },
  CONTENT_INVALID: { status: 422, meaning: NODE_ERRORS.CONTENT_INVALID.meaning },
  RECIPIENT_UNKNOWN: { status: 422, meaning: NODE_ERRORS.RECIPIENT_UNKNOWN.meaning },
  RECIPIENT_REVOKED: { status: 422, meaning: NODE_ERRORS.RECIPIENT_REVOKED.meaning },
  STORAGE_FULL: { status: 507, meaning: NODE_ERRORS.STORAGE_FULL.meaning },
  STORAGE_FAILED: { status: 500, meaning: NODE_ERRORS.STORAGE_FAILED.meaning },
  RELAY_REJECTED: { status: 502, meaning: NODE_ERRORS.RELAY_REJECTED.meaning },
  INTERNAL: { status: 500, meaning: NODE_ERRORS.INTERNAL.meaning },
  // HTTP boundary only.
  UNAUTHENTICATED: {
    status: 401,
    meaning: 'No session token, or the session expired or was logged out: log in again.',
  },
  RATE_LIMITED: {
    status: 429,
    meaning:
      'Too many failed logins for this username from this address, or from this address, or too many requests with an invalid token from this address; retry after `Retry-After` seconds.',
  },
  PAYLOAD_TOO_LARGE: { status: 413, meaning: 'The request body is larger than the API accepts.' },
  ROUTE_NOT_FOUND: { status: 404, meaning: 'No such route.' },
} as const satisfies Record<NodeErrorCode, { status: number; meaning: string }> &
  Record<string, { status: number; meaning: string }>;

export type ApiErrorCode = keyof typeof API_ERRORS;
export const API_ERROR_CODES = Object.keys(API_ERRORS) as ApiErrorCode[];

/** An error at the HTTP boundary (node errors are converted by `toApiError`). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly code: ApiErrorCode;
  readonly issues: readonly ContentIssue[];
  readonly detail: string | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: ApiErrorCode,
    message: string,
    options: {
      cause?: unknown;
      issues?: readonly ContentIssue[];
      detail?: string;
      retryAfterSeconds?: number;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.issues = options.issues ?? [];
    this.detail = options.detail;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  get status(): number {
    return API_ERRORS[this.code].status;
  }

  /** The response body: code, a fixed message, lower-level code and content issues (field pointers, never values). */
  body(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.detail === undefined ? {} : { detail: this.detail }),
        ...(this.issues.length === 0 ? {} : { issues: this.issues.map((i) => ({ ...i })) }),
      },
    };
  }
}

export interface ErrorBody {
  error: {
    code: ApiErrorCode;
    message: string;
    detail?: string;
    issues?: { path: string; message: string }[];
  };
}

/** Fastify's own errors for malformed requests, and the API code they become. */
const FASTIFY_CODES: Readonly<Record<string, ApiErrorCode>> = {
  FST_ERR_VALIDATION: 'INPUT_INVALID',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'INPUT_INVALID',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INPUT_INVALID',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INPUT_INVALID',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INPUT_INVALID',
  FST_ERR_CTP_EMPTY_TYPE: 'INPUT_INVALID',
  FST_ERR_BAD_URL: 'INPUT_INVALID',
};

interface ValidationItem {
  readonly instancePath?: string;
  readonly message?: string;
  readonly params?: Record<string, unknown>;
}

/** Ajv's findings as issues: a pointer (`/body/username`) and the rule, never the offending value. */
function validationIssues(err: {
  validation?: readonly ValidationItem[];
  validationContext?: string;
}): ContentIssue[] {
  return (err.validation ?? []).map((v) => {
    const missing = v.params?.['missingProperty'];
    const extra = v.params?.['additionalProperty'];
    const field =
      typeof missing === 'string' ? `/${missing}` : typeof extra === 'string' ? `/${extra}` : '';
    return {
      path: `/${err.validationContext ?? 'request'}${v.instancePath ?? ''}${field}`,
      message: v.message ?? 'is invalid',
    };
  });
}

/** Strip the `CODE: ` prefix NodeError puts before its (fixed, data-free) message. */
function nodeMessage(err: NodeError): string {
  const prefix = `${err.code}: `;
  return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}

/**
 * Map anything a route or Fastify threw to an ApiError. Unknown errors
 * become INTERNAL with a fixed message: their text may hold data.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof NodeError) {
    // INTERNAL wraps an unexpected cause: say nothing about it.
    const message = err.code === 'INTERNAL' ? 'internal error' : nodeMessage(err);
    return new ApiError(err.code, message, {
      cause: err,
      issues: err.issues,
      ...(err.detail === undefined ? {} : { detail: err.detail }),
    });
  }
  const fastifyCode = (err as { code?: unknown } | null)?.code;
  if (typeof fastifyCode === 'string' && fastifyCode in FASTIFY_CODES) {
    const code = FASTIFY_CODES[fastifyCode]!;
    const issues = validationIssues(err as { validation?: ValidationItem[] });
    return new ApiError(
      code,
      code === 'PAYLOAD_TOO_LARGE' ? 'request body too large' : 'malformed request',
      {
        cause: err,
        issues,
      },
    );
  }
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500)
    return new ApiError('INPUT_INVALID', 'malformed request', { cause: err });
  return new ApiError('INTERNAL', 'internal error', { cause: err });
}
