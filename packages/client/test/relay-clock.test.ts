/**
 * The relay's clock as the client reads it (HTTP Date header of each
 * answer), and logins from a machine whose clock is off: the session body is
 * dated on the relay's clock, which is what the relay checks it against.
 * The fake relay refuses an issuedAt more than 5 minutes from its own clock,
 * as docs/relay-api.md says.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { relayTimeOf } from '../src/transport.js';
import type { FakeRelay } from './fake-relay.js';
import { clientFor, startRelay } from './helpers.js';

const SKEW = 10 * 60_000;
let relay: FakeRelay;

beforeEach(async () => {
  relay = await startRelay();
});
afterEach(async () => {
  await relay.close();
});

describe('relayTimeOf', () => {
  it('reads an IMF-fixdate as the middle of the second it names', () => {
    expect(relayTimeOf('Sun, 06 Dec 2026 03:00:00 GMT')).toBe(Date.UTC(2026, 11, 6, 3, 0, 0) + 500);
    expect(relayTimeOf(['Sun, 06 Dec 2026 03:00:01 GMT'])).toBe(
      Date.UTC(2026, 11, 6, 3, 0, 1) + 500,
    );
  });

  it('ignores an absent, unreadable or oversized header', () => {
    expect(relayTimeOf(undefined)).toBeUndefined();
    expect(relayTimeOf('yesterday-ish')).toBeUndefined();
    expect(relayTimeOf(`Sun, 06 Dec 2026 03:00:00 GMT${' '.repeat(64)}`)).toBeUndefined();
  });
});

describe('a machine whose clock is off', () => {
  for (const [label, skew] of [
    ['10 minutes ahead of', SKEW],
    ['10 minutes behind', -SKEW],
  ] as const) {
    it(`logs in with its clock ${label} the relay's, and knows by how much`, async () => {
      const client = clientFor(relay, { runtime: { now: () => Date.now() + skew } });
      expect(client.relayClockOffset()).toBeUndefined();
      await client.login();
      const offset = client.relayClockOffset();
      // The relay's clock minus ours: -skew, within the Date header's second and the round trip.
      expect(offset).toBeDefined();
      expect(Math.abs(offset!.offsetMs + skew)).toBeLessThan(2_000);
      const issuedAt = Number(relay.logins[0]!.body['issuedAt']);
      expect(Math.abs(issuedAt - Date.now())).toBeLessThan(2_000);
      // The session works for a call.
      expect(await client.readMailbox(0, 10)).toEqual([]);
    });
  }

  it('without a Date header from the relay, it dates the login on its own clock (and is refused when that is off)', async () => {
    relay.stripDate = true;
    const client = clientFor(relay, {
      runtime: { now: () => Date.now() + SKEW },
      retry: { retries: 0, baseMs: 1, maxMs: 1, jitter: 0 },
    });
    await expect(client.login()).rejects.toMatchObject({ code: 'CHALLENGE_INVALID' });
    expect(client.relayClockOffset()).toBeUndefined();
  });
});
