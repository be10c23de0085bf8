export {
  MAX_BATCH,
  MAX_ENTRIES_READ,
  TransparencyLog,
  type LogCheckpoint,
  type TransparencyLogOptions,
} from './log.js';
export {
  TLOG_ERROR_CODES,
  TransparencyLogError,
  isTransparencyLogError,
  type TransparencyLogErrorCode,
} from './errors.js';
