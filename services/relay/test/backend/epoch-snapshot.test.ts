/**
 * The mailbox epoch of both backends, and the whole-state export/import
 * that `rogatory-relay migrate-backend` runs: embedded → Redis → embedded
 * keeps every mailbox item and seq, the counters, the dedup records, the
 * forwards, the expiry timers, the upload records and the epoch.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, type RedisServer } from '@rogatory/test-services';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openEmbeddedBackend } from '../../src/backend/embedded.js';
import { isBackendError } from '../../src/backend/errors.js';
import { openRedisBackend } from '../../src/backend/redis.js';
import type { BackendSnapshot, RelayBackend, StoredEnvelope } from '../../src/backend/types.js';

const DAY = 86_400_000;
const ALICE = 'alice@net';
const BOB = 'bob@net';
const SENDER = 'sender@net';

let redis: RedisServer;
let dir: string;
const opened: RelayBackend[] = [];
const prefixes: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rogatory-epoch-'));
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((backend) => backend.close()));
  const admin = new Redis(redis.url);
  for (const prefix of prefixes.splice(0)) {
    const keys = await admin.keys(`{${prefix}}:*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  await admin.quit();
  await rm(dir, { recursive: true, force: true });
});

async function embedded(name = 'relay.db'): Promise<RelayBackend> {
  const backend = await openEmbeddedBackend({ file: join(dir, name), pollIntervalMs: 10 });
  opened.push(backend);
  return backend;
}

async function onRedis(prefix = `epoch-${randomUUID()}`): Promise<RelayBackend> {
  if (!prefixes.includes(prefix)) prefixes.push(prefix);
  const backend = await openRedisBackend({ url: redis.url, prefix });
  opened.push(backend);
  return backend;
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function envelope(id: string, recipients: string[]): StoredEnvelope {
  const payload = bytes(`{"id":"${id}"}`);
  return {
    id,
    hash: createHash('sha256').update(payload).digest('hex'),
    bytes: payload,
    sender: SENDER,
    recipients,
    expiresAt: Date.now() + 7 * DAY,
    acceptedAt: Date.now(),
    chunkIds: [createHash('sha256').update(id).digest('hex')],
    acceptance: bytes('[]'),
  };
}

/** Some of everything: delivered and acked items, waiting items, an evidence tombstone, forwards, uploads. */
async function populate(backend: RelayBackend): Promise<void> {
  for (let i = 1; i <= 4; i++) {
    const stored = envelope(`env-${i}`, [ALICE]);
    await backend.noteUpload(stored.chunkIds[0]!, Date.now(), { identity: SENDER, size: 100 + i });
    expect(
      await backend.accept({
        envelope: stored,
        deliveries: [{ address: ALICE, deliverBy: Date.now() + DAY }],
        forwards: i === 4 ? [{ network: 'far', recipients: ['carol@far'] }] : [],
        retainUntil: Date.now() + 30 * DAY,
        uploader: SENDER,
      }),
    ).toEqual({ status: 'accepted' });
  }
  expect(await backend.pushEvidence(BOB, 'env-1', 'delivery:env-1', bytes('{"e":1}'))).toBe(true);
  expect(await backend.pushEvidence(BOB, 'env-2', 'delivery:env-2', bytes('{"e":2}'))).toBe(true);
  // Alice acked her first two; Bob his first evidence (a tombstone keeps its dedup key).
  expect(await backend.ack(ALICE, [1, 2])).toBe(2);
  expect(await backend.ack(BOB, [1])).toBe(1);
  await backend.enqueueForward({
    kind: 'evidence',
    id: 'evidence-task-1',
    envelopeId: 'env-3',
    network: 'far',
    payload: bytes('{"e":3}'),
    deadline: Date.now() + DAY,
  });
  await backend.claimOnce('token-1', 60_000);
}

/** A snapshot in an order both backends agree on (Redis keeps no attempts or retry times for tasks). */
function normalized(snapshot: BackendSnapshot): unknown {
  return {
    ...snapshot,
    tasks: snapshot.tasks.map(({ attempt: _a, nextAt: _n, ...task }) => task),
    items: snapshot.items.map(({ dueAt: _d, ...item }) => item),
  };
}

describe('mailbox epoch', () => {
  it('embedded: a random id made with the file, the same after reopening, another for another file', async () => {
    const first = await embedded();
    const epoch = await first.mailboxEpoch();
    expect(epoch).toMatch(/^[0-9a-f]{32}$/);
    expect(await first.mailboxEpoch()).toBe(epoch);
    await first.close();
    expect(await (await embedded()).mailboxEpoch()).toBe(epoch);
    expect(await (await embedded('other.db')).mailboxEpoch()).not.toBe(epoch);
  });

  it('redis: set once per prefix, kept by every instance, new when the store is lost', async () => {
    const prefix = `epoch-${randomUUID()}`;
    const first = await onRedis(prefix);
    const epoch = await first.mailboxEpoch();
    expect(epoch.length).toBeGreaterThan(8);
    const second = await onRedis(prefix);
    expect(await second.mailboxEpoch()).toBe(epoch);
    expect(await (await onRedis()).mailboxEpoch()).not.toBe(epoch);
    // The data is lost (a flushed Redis): seqs start again at 1, under a new epoch.
    await first.pushEvidence(ALICE, 'env-x', 'k1', bytes('{}'));
    const admin = new Redis(redis.url);
    await admin.del(...(await admin.keys(`{${prefix}}:*`)));
    await admin.quit();
    const renewed = await first.mailboxEpoch();
    expect(renewed).not.toBe(epoch);
    await first.pushEvidence(ALICE, 'env-y', 'k2', bytes('{}'));
    expect((await second.readMailbox(ALICE, 0, 10)).map((item) => item.seq)).toEqual([1]);
    expect(await second.mailboxEpoch()).toBe(renewed);
    // new-epoch after a restore: another epoch for every instance, the items kept.
    const fresh = await first.renewMailboxEpoch();
    expect(fresh).not.toBe(renewed);
    expect(await second.mailboxEpoch()).toBe(fresh);
    expect((await second.readMailbox(ALICE, 0, 10)).map((item) => item.seq)).toEqual([1]);
  });

  it('embedded: renewMailboxEpoch gives the file another epoch, kept after reopening', async () => {
    const first = await embedded('renew.db');
    const epoch = await first.mailboxEpoch();
    const fresh = await first.renewMailboxEpoch();
    expect(fresh).toMatch(/^[0-9a-f]{32}$/);
    expect(fresh).not.toBe(epoch);
    await first.close();
    expect(await (await embedded('renew.db')).mailboxEpoch()).toBe(fresh);
  });
});

describe('exportState / importState', () => {
  it('embedded → redis → embedded keeps items, seqs, dedup records, forwards, uploads and the epoch', async () => {
    const source = await embedded();
    await populate(source);
    const snapshot = await source.exportState();
    expect(snapshot.items.filter((item) => item.state === 'pending')).toHaveLength(3);
    expect(snapshot.mailboxSeqs).toEqual([
      { address: ALICE, lastSeq: 4 },
      { address: BOB, lastSeq: 2 },
    ]);

    const target = await onRedis();
    await target.importState(snapshot);
    expect(await target.mailboxEpoch()).toBe(snapshot.epoch);
    expect(await target.stats()).toEqual(await source.stats());
    expect(await target.readMailbox(ALICE, 0, 10)).toEqual(await source.readMailbox(ALICE, 0, 10));
    expect(await target.readMailbox(BOB, 0, 10)).toEqual(await source.readMailbox(BOB, 0, 10));
    expect(await target.usage()).toEqual(await source.usage());
    expect(normalized(await target.exportState())).toEqual(normalized(snapshot));

    // Numbering goes on above the copied seqs; dedup records and envelope records still refuse repeats.
    expect(await target.pushEvidence(BOB, 'env-1', 'delivery:env-1', bytes('{"e":1}'))).toBe(false);
    expect(await target.pushEvidence(BOB, 'env-2', 'delivery:env-2', bytes('{"e":2}'))).toBe(false);
    expect(await target.pushEvidence(BOB, 'env-3', 'delivery:env-3', bytes('{"e":3}'))).toBe(true);
    expect((await target.readMailbox(BOB, 0, 10)).map((item) => item.seq)).toEqual([2, 3]);
    const again = await target.accept({
      envelope: envelope('env-1', [ALICE]),
      deliveries: [{ address: ALICE, deliverBy: Date.now() + DAY }],
      forwards: [],
      retainUntil: Date.now() + 30 * DAY,
    });
    expect(again.status).toBe('duplicate');
    await target.accept({
      envelope: envelope('env-5', [ALICE]),
      deliveries: [{ address: ALICE, deliverBy: Date.now() + DAY }],
      forwards: [],
      retainUntil: Date.now() + 30 * DAY,
    });
    expect((await target.readMailbox(ALICE, 0, 10)).map((item) => item.seq)).toEqual([3, 4, 5]);
    // Acks on the copy finish the envelope as on the source.
    expect(await target.ack(ALICE, [3])).toBe(1);

    // And back to a fresh embedded file.
    const back = await embedded('back.db');
    const second = await target.exportState();
    await back.importState(second);
    expect(await back.mailboxEpoch()).toBe(snapshot.epoch);
    expect(normalized(await back.exportState())).toEqual(normalized(second));
    expect(await back.stats()).toEqual(await target.stats());
    expect(await back.usage()).toEqual(await target.usage());
  });

  it('the copied forward runs on the target, and an expiry timer fires there', async () => {
    const source = await embedded();
    const stored = envelope('env-expiring', [ALICE]);
    await source.accept({
      envelope: stored,
      deliveries: [{ address: ALICE, deliverBy: Date.now() - 1 }],
      forwards: [{ network: 'far', recipients: ['carol@far'] }],
      retainUntil: Date.now() + DAY,
    });
    const target = await onRedis();
    await target.importState(await source.exportState());
    const forwarded: string[] = [];
    const expired: string[] = [];
    await target.startWorkers(
      {
        forward: (task) => {
          forwarded.push(task.id);
          return Promise.resolve({ status: 'done' });
        },
        giveUp: () => Promise.resolve(),
        expired: (item) => {
          expired.push(`${item.address} ${item.envelopeId}`);
          return Promise.resolve();
        },
      },
      { concurrency: 2, backoff: { baseMs: 10, maxMs: 100, jitter: 0 } },
    );
    await expect
      .poll(() => [forwarded, expired], { timeout: 10_000 })
      .toEqual([['envelope/env-expiring/far'], [`${ALICE} env-expiring`]]);
    await target.stopWorkers();
    expect(await target.stats()).toEqual({ mailboxItems: 0, forwardPending: 0, envelopes: 1 });
  });

  it('refuses a target that holds state, writing nothing', async () => {
    const source = await embedded();
    await populate(source);
    const snapshot = await source.exportState();
    for (const target of [await onRedis(), await embedded('used.db')]) {
      await target.pushEvidence(ALICE, 'env-z', 'k', bytes('{}'));
      const before = await target.exportState();
      const refused = await target.importState(snapshot).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isBackendError(refused)).toBe(true);
      expect((refused as { code?: string }).code).toBe('BACKEND_NOT_EMPTY');
      expect(await target.exportState()).toEqual(before);
    }
  });

  it('refuses a malformed snapshot before touching the store', async () => {
    const target = await embedded();
    const epoch = await target.mailboxEpoch();
    const bad = {
      epoch: 'x',
      mailboxSeqs: [{ address: ALICE, lastSeq: 0 }],
      envelopes: [],
      items: [],
      tasks: [],
      uploads: [],
      claims: [],
    };
    await expect(target.importState(bad)).rejects.toMatchObject({ code: 'BACKEND_INPUT_INVALID' });
    expect(await target.mailboxEpoch()).toBe(epoch);
  });
});
