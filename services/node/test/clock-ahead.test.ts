/**
 * clockAheadUntil: when a relay's signed rejection is its "created in the
 * future" and its Date shows this machine ahead, the time from which the
 * relay accepts the envelope; never for another reason, and never past the
 * envelope's own expiry (a relay's Date cannot park a submission for longer).
 */
import type { Envelope, Evidence } from '@rogatory/protocol';
import { describe, expect, it } from 'vitest';
import { clockAheadUntil } from '../src/sending/outbox.js';

const MIN = 60_000;
const now = Date.UTC(2026, 11, 6, 5, 0, 0);
const envelope = (createdAt: number, lifetimeMs: number): Envelope =>
  ({ body: { createdAt, expiresAt: createdAt + lifetimeMs } }) as unknown as Envelope;
const rejection = (code: string, detail: string | null): Evidence =>
  ({ body: { kind: 'submission-rejection', reason: { code, detail } } }) as unknown as Evidence;
const relayBehind = (ms: number) => ({ offsetMs: -ms, measuredAt: now });

describe('clockAheadUntil', () => {
  it('10 minutes ahead: accepted about 5 minutes after creation on this machine', () => {
    const at = clockAheadUntil(
      envelope(now, 24 * 60 * MIN),
      rejection('MALFORMED', 'SCHEMA_INVALID'),
      relayBehind(10 * MIN),
    );
    expect(at).toBe(now + 5 * MIN + 5_000);
  });

  it('not for another refusal, an unknown relay clock, or a clock within the tolerance', () => {
    const env = envelope(now, 24 * 60 * MIN);
    expect(
      clockAheadUntil(env, rejection('MALFORMED', 'SIGNATURE_INVALID'), relayBehind(10 * MIN)),
    ).toBeUndefined();
    expect(
      clockAheadUntil(env, rejection('SENDER_REVOKED', null), relayBehind(10 * MIN)),
    ).toBeUndefined();
    expect(
      clockAheadUntil(env, rejection('MALFORMED', 'SCHEMA_INVALID'), undefined),
    ).toBeUndefined();
    expect(
      clockAheadUntil(env, rejection('MALFORMED', 'SCHEMA_INVALID'), relayBehind(2 * MIN)),
    ).toBeUndefined();
  });

  it('never past the expiry the envelope carries (a relay Date claiming a year behind)', () => {
    expect(
      clockAheadUntil(
        envelope(now, 24 * 60 * MIN),
        rejection('MALFORMED', 'SCHEMA_INVALID'),
        relayBehind(365 * 24 * 60 * MIN),
      ),
    ).toBeUndefined();
  });
});
