import { describe, expect, it } from 'vitest';
import { backoffDelay } from '@rogatory/client';
import { assertBackoffPolicy, retryDelay } from '../../src/backend/shared.js';

describe('retryDelay', () => {
  const policy = { baseMs: 100, maxMs: 1_000, jitter: 0 };

  it('doubles from baseMs per failure and stops at maxMs', () => {
    const delays = [1, 2, 3, 4, 5, 6].map((failures) => retryDelay(policy, failures));
    expect(delays).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(retryDelay(policy, 5_000)).toBe(1_000);
    // Before any failure counts as the first.
    expect(retryDelay(policy, 0)).toBe(100);
  });

  it('scales by a random factor within [1 - jitter, 1]', () => {
    const jittered = { ...policy, jitter: 0.5 };
    expect(retryDelay(jittered, 3, () => 0)).toBe(400);
    expect(retryDelay(jittered, 3, () => 0.999_999)).toBe(200);
    for (let index = 0; index < 200; index++) {
      const delay = retryDelay(jittered, 4);
      expect(delay).toBeGreaterThanOrEqual(400);
      expect(delay).toBeLessThanOrEqual(800);
    }
  });

  it("is the client's backoff, counting failures from 1", () => {
    const jittered = { retries: 0, baseMs: 100, maxMs: 1_000, jitter: 0.5 };
    for (const random of [0, 0.25, 0.5, 0.75]) {
      for (const failures of [1, 2, 3, 4, 5, 9]) {
        expect(retryDelay(jittered, failures, () => random)).toBe(
          backoffDelay(jittered, failures - 1, () => random),
        );
      }
    }
  });

  it('never returns less than a millisecond', () => {
    expect(retryDelay({ baseMs: 1, maxMs: 1, jitter: 1 }, 1, () => 0.999_999)).toBe(1);
  });

  it('rejects policies that cannot work', () => {
    expect(() => {
      assertBackoffPolicy({ baseMs: 0, maxMs: 10, jitter: 0 });
    }).toThrow(RangeError);
    expect(() => {
      assertBackoffPolicy({ baseMs: 10, maxMs: 5, jitter: 0 });
    }).toThrow(RangeError);
    expect(() => {
      assertBackoffPolicy({ baseMs: 10, maxMs: 50, jitter: 1.5 });
    }).toThrow(RangeError);
    expect(() => {
      assertBackoffPolicy({ baseMs: 10, maxMs: 50, jitter: 0.2 });
    }).not.toThrow();
  });
});
