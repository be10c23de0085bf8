import { isProtocolError, type ErrorCode } from '../../src/errors.js';

/** The ProtocolError code `fn` throws, or undefined if it returns; anything else is rethrown. */
export function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (isProtocolError(err)) return err.code;
    throw err;
  }
}
