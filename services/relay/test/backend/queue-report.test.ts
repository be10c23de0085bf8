/**
 * `queueReport()` (rogatory-relay queue) on both backends: the same
 * scenario, the same report.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedis, type RedisServer } from '@rogatory/test-services';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openEmbeddedBackend } from '../../src/backend/embedded.js';
import { openRedisBackend } from '../../src/backend/redis.js';
import type {
  AcceptInput,
  QueueReport,
  RelayBackend,
  StoredEnvelope,
  WorkerHandlers,
} from '../../src/backend/types.js';
import { createTestClock, type TestClock } from './conformance.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const SENDER = 'ng-moj@wacap';
const ALICE = 'sn-moj@wacap';
const BOB = 'gh-ago@wacap';
const REMOTE = 'kz-gp@casc';

interface Harness {
  readonly clock: TestClock;
  readonly backend: RelayBackend;
  dispose(): Promise<void>;
}

let redis: RedisServer | undefined;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

async function embedded(): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'rogatory-queue-report-'));
  const clock = createTestClock();
  const backend = await openEmbeddedBackend({
    file: join(dir, 'relay.db'),
    clock: clock.now,
    pollIntervalMs: 10,
  });
  return {
    clock,
    backend,
    dispose: async () => {
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function onRedis(): Promise<Harness> {
  if (!redis) throw new Error('redis-server was not started');
  const url = redis.url;
  const prefix = `queue-${randomUUID()}`;
  const clock = createTestClock();
  const backend = await openRedisBackend({ url, prefix, clock: clock.now, expirySweepMs: 20 });
  return {
    clock,
    backend,
    dispose: async () => {
      await backend.close();
      const admin = new Redis(url);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await admin.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 500);
          cursor = next;
          if (keys.length > 0) await admin.unlink(...keys);
        } while (cursor !== '0');
      } finally {
        await admin.quit();
      }
    },
  };
}

function envelope(
  clock: TestClock,
  recipients: readonly string[],
  acceptedAt: number,
): StoredEnvelope {
  const bytes = new Uint8Array(randomBytes(64));
  return {
    id: `env-${randomUUID()}`,
    hash: createHash('sha256').update(bytes).digest('hex'),
    bytes,
    sender: SENDER,
    recipients,
    expiresAt: clock.now() + 7 * DAY,
    acceptedAt,
    chunkIds: [createHash('sha256').update(randomBytes(8)).digest('hex')],
    acceptance: new Uint8Array(randomBytes(32)),
  };
}

async function waitFor(what: string, condition: () => Promise<boolean>): Promise<void> {
  const giveUpAt = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function gate(): { promise: Promise<void>; open(): void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe.each([
  ['embedded', embedded],
  ['redis', onRedis],
] as const)('queueReport on the %s backend', (_name, open) => {
  let h: Harness;

  beforeEach(async () => {
    h = await open();
  });

  afterEach(async () => {
    await h.dispose();
  });

  it('is empty on a fresh store', async () => {
    const report = await h.backend.queueReport();
    expect(report).toEqual({
      at: expect.any(Number) as number,
      mailboxes: [],
      forwards: [],
      nonDeliveries: { count: 0, oldestDeliverBy: null, items: [] },
    });
  });

  it('announces no next attempt for a forward that is running, and drops it once done', async () => {
    const { backend, clock } = h;
    const e = envelope(clock, [REMOTE], clock.now());
    expect(
      await backend.accept({
        envelope: e,
        deliveries: [],
        forwards: [{ network: 'casc', recipients: [REMOTE] }],
        retainUntil: clock.now() + DAY,
      }),
    ).toEqual({ status: 'accepted' });
    const held = gate();
    let called = false;
    await backend.startWorkers(
      {
        forward: async () => {
          called = true;
          await held.promise;
          return { status: 'done' };
        },
        giveUp: () => Promise.resolve(),
        expired: () => Promise.resolve(),
      },
      { concurrency: 1, backoff: { baseMs: 10, maxMs: 10, jitter: 0 } },
    );
    try {
      await waitFor('the forward running', () => Promise.resolve(called));
      const report = await backend.queueReport();
      expect(report.forwards).toEqual([
        {
          network: 'casc',
          tasks: 1,
          envelopes: 1,
          evidences: 0,
          oldestAcceptedAt: e.acceptedAt,
          nextAttemptAt: null,
          maxAttempts: expect.any(Number) as number,
        },
      ]);
      held.open();
      await waitFor(
        'the forward done',
        async () => (await backend.queueReport()).forwards.length === 0,
      );
    } finally {
      held.open();
      await backend.stopWorkers();
    }
  });

  it('reports waiting mailboxes, the forward backlog per network and the non-deliveries due', async () => {
    const { backend, clock } = h;
    const t0 = clock.now() - 5 * MINUTE;
    const first = envelope(clock, [ALICE, BOB, REMOTE], t0);
    const second = envelope(clock, [ALICE], t0 + 1000);
    const accept = (e: StoredEnvelope, input: Omit<AcceptInput, 'envelope'>) =>
      backend.accept({ envelope: e, ...input });
    expect(
      await accept(first, {
        deliveries: [
          { address: ALICE, deliverBy: clock.now() + HOUR },
          { address: BOB, deliverBy: clock.now() + HOUR },
        ],
        forwards: [{ network: 'casc', recipients: [REMOTE] }],
        retainUntil: clock.now() + DAY,
      }),
    ).toEqual({ status: 'accepted' });
    const secondDeliverBy = clock.now() + 10 * MINUTE;
    expect(
      await accept(second, {
        deliveries: [{ address: ALICE, deliverBy: secondDeliverBy }],
        forwards: [],
        retainUntil: clock.now() + DAY,
      }),
    ).toEqual({ status: 'accepted' });
    // An evidence for the sender (no time of its own: it counts with its envelope) and one to forward.
    expect(await backend.pushEvidence(SENDER, first.id, 'receipt-1', new Uint8Array([1]))).toBe(
      true,
    );
    await backend.enqueueForward({
      kind: 'evidence',
      envelopeId: first.id,
      network: 'glcjn',
      payload: new Uint8Array([2]),
      deadline: clock.now() + DAY,
    });

    let report: QueueReport = await backend.queueReport();
    expect(report.mailboxes).toEqual(
      [
        { address: BOB, items: 1, envelopes: 1, evidences: 0, oldestAcceptedAt: t0 },
        { address: SENDER, items: 1, envelopes: 0, evidences: 1, oldestAcceptedAt: t0 },
        { address: ALICE, items: 2, envelopes: 2, evidences: 0, oldestAcceptedAt: t0 },
      ].sort((a, b) => (a.address < b.address ? -1 : 1)),
    );
    expect(report.forwards.map((f) => ({ ...f, nextAttemptAt: null }))).toEqual([
      {
        network: 'casc',
        tasks: 1,
        envelopes: 1,
        evidences: 0,
        oldestAcceptedAt: t0,
        nextAttemptAt: null,
        maxAttempts: 0,
      },
      {
        network: 'glcjn',
        tasks: 1,
        envelopes: 0,
        evidences: 1,
        oldestAcceptedAt: t0,
        nextAttemptAt: null,
        maxAttempts: 0,
      },
    ]);
    // Not tried yet: due now.
    for (const f of report.forwards) expect(f.nextAttemptAt).toBeLessThanOrEqual(report.at);
    expect(report.nonDeliveries.count).toBe(0);

    // Acked items leave the report.
    const bobItems = await backend.readMailbox(BOB, 0, 10);
    expect(
      await backend.ack(
        BOB,
        bobItems.map((i) => i.seq),
      ),
    ).toBe(1);

    // A forward that failed waits for its next attempt (backoff of ten minutes); nothing expires yet.
    const handlers: WorkerHandlers = {
      forward: () => Promise.resolve({ status: 'retry', error: 'peer unavailable' }),
      giveUp: () => Promise.resolve(),
      expired: () => Promise.resolve(),
    };
    await backend.startWorkers(handlers, {
      concurrency: 2,
      backoff: { baseMs: 10 * MINUTE, maxMs: 10 * MINUTE, jitter: 0 },
    });
    await waitFor('both forwards tried once', async () =>
      (await backend.queueReport()).forwards.every((f) => f.maxAttempts >= 1),
    );
    await backend.stopWorkers();
    report = await backend.queueReport();
    expect(report.mailboxes.map((m) => m.address)).not.toContain(BOB);
    for (const f of report.forwards) {
      expect(f.tasks).toBe(1);
      expect(f.nextAttemptAt).toBeGreaterThan(report.at + 5 * MINUTE);
    }

    // Past the second envelope's deliverBy, its NonDelivery is due until the expiry reports it.
    clock.advance(20 * MINUTE);
    report = await backend.queueReport();
    expect(report.nonDeliveries).toEqual({
      count: 1,
      oldestDeliverBy: secondDeliverBy,
      items: [{ address: ALICE, envelopeId: second.id, deliverBy: secondDeliverBy }],
    });

    // Taken by the expiry worker but not yet reported (expired() is running): still due.
    const held = gate();
    let called = false;
    await backend.startWorkers(
      {
        ...handlers,
        expired: async () => {
          called = true;
          await held.promise;
        },
      },
      { concurrency: 2, backoff: { baseMs: 10 * MINUTE, maxMs: 10 * MINUTE, jitter: 0 } },
    );
    await waitFor('expired() called', () => Promise.resolve(called));
    report = await backend.queueReport();
    expect(report.nonDeliveries.count).toBe(1);
    expect(report.nonDeliveries.items[0]?.envelopeId).toBe(second.id);
    // Out of the mailbox already.
    expect(report.mailboxes.find((m) => m.address === ALICE)?.envelopes).toBe(1);

    held.open();
    await waitFor('the non-delivery reported', async () =>
      Promise.resolve((await backend.queueReport()).nonDeliveries.count === 0),
    );
    await backend.stopWorkers();
  });
});
