import { readFile } from 'node:fs/promises';
import { RELAY_ERRORS } from '@rogatory/relay-api';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_ERROR_CODES,
  RELAY_CLIENT_ERROR_CODES,
  RELAY_ERROR_CODES,
  RelayClientError,
  backoffDelay,
  isRelayClientError,
  isTransientError,
  parseRetryAfter,
  type RelayClientErrorCode,
} from '../src/index.js';

describe('error catalogue', () => {
  it('has every relay code of the relay API catalogue but INTERNAL, and the README documents every code', async () => {
    expect(Object.keys(RELAY_ERROR_CODES).sort()).toEqual(
      Object.keys(RELAY_ERRORS)
        .filter((code) => code !== 'INTERNAL')
        .sort(),
    );
    expect(RELAY_ERROR_CODES.REPLAY).toBe(RELAY_ERRORS.REPLAY.meaning);

    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    for (const code of Object.keys(RELAY_CLIENT_ERROR_CODES))
      expect(readme).toContain(`\`${code}\``);
    for (const code of Object.keys(CLIENT_ERROR_CODES))
      expect(RELAY_CLIENT_ERROR_CODES[code as RelayClientErrorCode].length).toBeGreaterThan(10);
  });

  it('isRelayClientError narrows by class and code', () => {
    const err = new RelayClientError('CHUNK_MISSING', 'POST /v1/envelopes failed with status 422', {
      status: 422,
      missing: ['a'.repeat(64)],
    });
    expect(isRelayClientError(err)).toBe(true);
    expect(isRelayClientError(err, 'CHUNK_MISSING')).toBe(true);
    expect(isRelayClientError(err, 'REPLAY')).toBe(false);
    expect(isRelayClientError(Object.assign(new Error('x'), { code: 'CHUNK_MISSING' }))).toBe(
      false,
    );
    expect(err.message).toBe('CHUNK_MISSING: POST /v1/envelopes failed with status 422');
  });

  it('serialises without its cause', () => {
    const cause = new Error('Bearer secret-token');
    const err = new RelayClientError('NETWORK', 'POST /v1/chunks/missing: connection failed', {
      cause,
    });
    expect(err.cause).toBe(cause);
    expect(JSON.stringify(err)).not.toContain('secret-token');
    expect(JSON.parse(JSON.stringify(err))).toEqual({
      code: 'NETWORK',
      message: err.message,
      status: 0,
    });
  });

  it('counts network, timeout, 503, a full relay storage and 429 as transient, nothing else', () => {
    const transient: RelayClientErrorCode[] = [
      'NETWORK',
      'TIMEOUT',
      'UNAVAILABLE',
      'STORAGE_FULL',
      'RATE_LIMITED',
    ];
    for (const code of Object.keys(RELAY_CLIENT_ERROR_CODES) as RelayClientErrorCode[]) {
      expect(isTransientError(new RelayClientError(code, 'x')), code).toBe(
        transient.includes(code),
      );
    }
    expect(isTransientError(new Error('x'))).toBe(false);
  });
});

describe('backoff', () => {
  it('doubles up to the cap, jitter only shortens', () => {
    const policy = { retries: 5, baseMs: 100, maxMs: 1000, jitter: 0.5 };
    expect([0, 1, 2, 3, 4].map((n) => backoffDelay(policy, n, () => 0))).toEqual([
      100, 200, 400, 800, 1000,
    ]);
    expect(backoffDelay(policy, 2, () => 0.999)).toBeGreaterThanOrEqual(200);
    expect(backoffDelay(policy, 2, () => 0.999)).toBeLessThan(400);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(new Date(now + 5000).toUTCString(), now)).toBe(5000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
