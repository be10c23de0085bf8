import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  RELAY_ERRORS,
  RelayCallError,
  documentedErrorRows,
  errorTableRows,
  isRelayErrorCode,
  statusOf,
  withErrorTable,
} from '../src/index.js';

const doc = await readFile(new URL('../../../docs/relay-api.md', import.meta.url), 'utf8');

describe('the error catalogue', () => {
  it('is the table docs/relay-api.md shows: every code, its status and meaning, nothing else', () => {
    expect(documentedErrorRows(doc)).toEqual(errorTableRows());
    expect(documentedErrorRows(doc).map((row) => row[1])).toContain('`QUOTA_EXCEEDED`');
    // Exactly as generated (`pnpm --filter @rogatory/relay-api docs:generate`).
    expect(withErrorTable(doc)).toBe(doc);
  });

  it('gives every code one 4xx or 5xx status and a meaning', () => {
    for (const [code, { status, meaning }] of Object.entries(RELAY_ERRORS)) {
      expect(code).toMatch(/^[A-Z_]{1,64}$/);
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
      expect(meaning.length, code).toBeGreaterThan(10);
    }
    expect(statusOf('CHUNK_MISSING')).toBe(422);
    expect(isRelayErrorCode('INTERNAL')).toBe(true);
    expect(isRelayErrorCode('toString')).toBe(false);
    expect(isRelayErrorCode('NETWORK')).toBe(false);
  });

  it('finds a table that has drifted from the catalogue', () => {
    const drifted = doc.replace('| 409    | `REPLAY`', '| 400    | `REPLAY`');
    expect(drifted).not.toBe(doc);
    expect(documentedErrorRows(drifted)).not.toEqual(errorTableRows());
    expect(withErrorTable(drifted)).toBe(doc);
    const dropped = doc.replace(/^\| 507 .*\n/m, '');
    expect(documentedErrorRows(dropped)).not.toEqual(errorTableRows());
  });

  it('relay-call errors take their status from the table', () => {
    expect(new RelayCallError('UNAUTHENTICATED', 'x').status).toBe(401);
    expect(new RelayCallError('SIGNATURE_INVALID', 'x').status).toBe(403);
  });
});
