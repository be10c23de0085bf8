/**
 * The error catalogue of @rogatory/transparency-log (documented in this
 * package's README, "Errors"). Messages carry sizes and indexes only.
 */
export const TLOG_ERROR_CODES = [
  /** An index or tree size beyond the log, or not a non-negative integer. */
  'LOG_INDEX_OUT_OF_RANGE',
  /** An entry is not a LogEntry (protocol §18.1) of this log's network. */
  'LOG_ENTRY_INVALID',
  /** A batch is empty or larger than MAX_BATCH. */
  'LOG_BATCH_INVALID',
  /** `append(entries, { at })` found another size than `at`: another writer appended first. */
  'LOG_SIZE_CHANGED',
  /** The database file is not this network's log, or its tree is damaged. */
  'LOG_STORE_INVALID',
] as const;

export type TransparencyLogErrorCode = (typeof TLOG_ERROR_CODES)[number];

export class TransparencyLogError extends Error {
  override readonly name = 'TransparencyLogError';
  readonly code: TransparencyLogErrorCode;

  constructor(code: TransparencyLogErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.code = code;
  }
}

/** Type guard: `isTransparencyLogError(err, 'LOG_INDEX_OUT_OF_RANGE')`. */
export function isTransparencyLogError(
  err: unknown,
  code?: TransparencyLogErrorCode,
): err is TransparencyLogError {
  return err instanceof TransparencyLogError && (code === undefined || err.code === code);
}
