import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, type RedisServer } from '@rogatory/test-services';
import Database from 'better-sqlite3';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SCHEMA_MIGRATIONS, SchemaVersionError } from '../../src/backend/embedded-schema.js';
import { openEmbeddedBackend } from '../../src/backend/embedded.js';
import { COMMAND_CLIENT_OPTIONS, LuaScript, openRedisBackend } from '../../src/backend/redis.js';
import type { AcceptInput, RelayBackend, WorkerHandlers } from '../../src/backend/types.js';
import {
  createTestClock,
  runBackendConformance,
  type BackendHarness,
  type TestClock,
} from './conformance.js';

async function embeddedHarness(): Promise<BackendHarness & { readonly file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'rogatory-relay-backend-'));
  const file = join(dir, 'relay.db');
  const clock = createTestClock();
  const opened: RelayBackend[] = [];
  return {
    clock,
    file,
    open: async () => {
      const backend = await openEmbeddedBackend({ file, clock: clock.now, pollIntervalMs: 10 });
      opened.push(backend);
      return backend;
    },
    dispose: async () => {
      await Promise.all(opened.map((backend) => backend.close()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

runBackendConformance('embedded', embeddedHarness);

let redis: RedisServer | undefined;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

/** Deletes every key of a namespace, BullMQ's included (they share the `{prefix}` hash tag). */
async function deleteNamespace(url: string, prefix: string): Promise<void> {
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
}

function redisHarness(): Promise<
  BackendHarness & { readonly prefix: string; readonly url: string }
> {
  if (redis === undefined) return Promise.reject(new Error('redis-server was not started'));
  const url = redis.url;
  const prefix = `test-${randomUUID()}`;
  const clock: TestClock = createTestClock();
  const opened: RelayBackend[] = [];
  return Promise.resolve({
    clock,
    prefix,
    url,
    open: async () => {
      const backend = await openRedisBackend({ url, prefix, clock: clock.now });
      opened.push(backend);
      return backend;
    },
    dispose: async () => {
      await Promise.all(opened.map((backend) => backend.close()));
      await deleteNamespace(url, prefix);
    },
  });
}

runBackendConformance('redis', redisHarness);

describe('embedded backend', () => {
  it('works on a private in-memory database', async () => {
    const backend = await openEmbeddedBackend({ file: ':memory:' });
    try {
      expect(
        await backend.pushEvidence('sn-moj@wacap', 'env-1', 'k', new Uint8Array([0, 1, 255])),
      ).toBe(true);
      const items = await backend.readMailbox('sn-moj@wacap', 0, 10);
      expect(items.map((item) => [...item.payload])).toEqual([[0, 1, 255]]);
    } finally {
      await backend.close();
    }
    // Another in-memory backend is another store.
    const other = await openEmbeddedBackend({ file: ':memory:' });
    try {
      expect(await other.readMailbox('sn-moj@wacap', 0, 10)).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('writes in WAL mode and records its schema version', async () => {
    const harness = await embeddedHarness();
    try {
      await harness.open();
      const db = new Database(harness.file, { readonly: true });
      try {
        expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
        expect(db.prepare('SELECT version FROM schema_version').all()).toEqual([
          { version: SCHEMA_MIGRATIONS.length },
        ]);
      } finally {
        db.close();
      }
      // Reopening an up-to-date file changes nothing.
      await harness.open();
    } finally {
      await harness.dispose();
    }
  });

  it('upgrades a version 1 file: its upload notes keep their chunks for the grace period and belong to nobody', async () => {
    const harness = await embeddedHarness();
    try {
      const chunkId = 'a'.repeat(64);
      const at = harness.clock.now();
      const db = new Database(harness.file);
      db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT');
      db.exec(SCHEMA_MIGRATIONS[0]!);
      db.prepare('INSERT INTO schema_version (version) VALUES (1)').run();
      db.prepare('INSERT INTO uploads (chunk_id, at) VALUES (?, ?)').run(chunkId, at);
      db.close();

      const backend = await harness.open();
      expect(await backend.chunkReferenced(chunkId, at, 60_000)).toBe(true);
      expect(await backend.ownedChunks('ng-moj@wacap', [chunkId], at)).toEqual([]);
      expect([...(await backend.usage()).keys()]).toEqual([]);
      const options = { chunkRetentionMs: 0, uploadGraceMs: 60_000 };
      expect((await backend.collectGarbage(at + 60_000, options)).orphanChunks).toEqual([chunkId]);
    } finally {
      await harness.dispose();
    }
  });

  it('upgrades a version 2 file by dropping the rate counters nothing used', async () => {
    const harness = await embeddedHarness();
    try {
      const db = new Database(harness.file);
      db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT');
      db.exec(SCHEMA_MIGRATIONS[0]!);
      db.exec(SCHEMA_MIGRATIONS[1]!);
      db.prepare('INSERT INTO schema_version (version) VALUES (2)').run();
      db.prepare(
        'INSERT INTO rate_counters (key, window_start, window_end, count) VALUES (?, 0, 1, 1)',
      ).run('node:x');
      db.close();

      await harness.open();
      const after = new Database(harness.file, { readonly: true });
      try {
        const tables = after
          .prepare<[], { name: string }>(
            "SELECT name FROM sqlite_master WHERE name LIKE 'rate_counters%'",
          )
          .all();
        expect(tables).toEqual([]);
        expect(after.prepare('SELECT version FROM schema_version').all()).toEqual([
          { version: SCHEMA_MIGRATIONS.length },
        ]);
      } finally {
        after.close();
      }
    } finally {
      await harness.dispose();
    }
  });

  it('refuses a file written by a newer relay', async () => {
    const harness = await embeddedHarness();
    try {
      await (await harness.open()).close();
      const db = new Database(harness.file);
      db.prepare('UPDATE schema_version SET version = 99').run();
      db.close();
      await expect(harness.open()).rejects.toThrow(SchemaVersionError);
    } finally {
      await harness.dispose();
    }
  });
});

describe('redis backend', () => {
  it('keeps upload notes written before uploaders were recorded for their grace period, owned by nobody', async () => {
    const harness = await redisHarness();
    const admin = new Redis(harness.url);
    try {
      const backend = await harness.open();
      const chunkId = 'b'.repeat(64);
      const at = harness.clock.now();
      // What an older relay wrote: the bare chunk id.
      await admin.zadd(`{${harness.prefix}}:uploads`, at, chunkId);

      expect(await backend.chunkReferenced(chunkId, at, 60_000)).toBe(true);
      expect(await backend.ownedChunks('ng-moj@wacap', [chunkId], at)).toEqual([]);
      const options = { chunkRetentionMs: 0, uploadGraceMs: 60_000 };
      expect((await backend.collectGarbage(at + 59_999, options)).orphanChunks).toEqual([]);
      expect((await backend.collectGarbage(at + 60_000, options)).orphanChunks).toEqual([chunkId]);
      expect([...(await backend.usage()).keys()]).toEqual([]);
    } finally {
      admin.disconnect();
      await harness.dispose();
    }
  });

  it('adds the jobs of an accept whose job add never happened (a crash after the script) when workers start', async () => {
    const harness = await redisHarness();
    const admin = new Redis(harness.url);
    // What a process that died between the accept script and its job add leaves: state and markers, no jobs.
    const jobAdd = vi
      .spyOn(Queue.prototype, 'add')
      .mockRejectedValue(new Error('process died before the job add'));
    try {
      const backend = await harness.open();
      const now = harness.clock.now();
      const bytes = new Uint8Array([1, 2, 3]);
      await backend.accept({
        envelope: {
          id: 'env-outbox',
          hash: 'f'.repeat(64),
          bytes,
          sender: 'ng-moj@wacap',
          recipients: ['sn-moj@wacap', 'kz-gp@casc'],
          expiresAt: now + 86_400_000,
          acceptedAt: now,
          chunkIds: [],
          acceptance: new Uint8Array([9]),
        },
        deliveries: [{ address: 'sn-moj@wacap', deliverBy: now + 50 }],
        forwards: [{ network: 'casc', recipients: ['kz-gp@casc'] }],
        retainUntil: now + 86_400_000,
      });
      await backend.enqueueForward({
        kind: 'evidence',
        id: 'evidence-outbox',
        envelopeId: 'env-outbox',
        network: 'casc',
        payload: new Uint8Array([7]),
        deadline: now + 86_400_000,
      });
      await backend.close();
      jobAdd.mockRestore();
      // Markers for the two forwards; the delivery's expiry is in the `due` set, written by the script itself.
      expect(await admin.scard(`{${harness.prefix}}:unqueued`)).toBe(2);
      expect(await admin.keys(`{${harness.prefix}}:bull:*:f-*`)).toEqual([]);
      expect(await admin.zcard(`{${harness.prefix}}:due`)).toBe(1);

      const reopened = await harness.open();
      const forwarded: string[] = [];
      const expired: string[] = [];
      await reopened.startWorkers(
        {
          forward: (task) => {
            forwarded.push(task.id);
            return Promise.resolve({ status: 'done' });
          },
          giveUp: () => Promise.resolve(),
          expired: (item) => {
            expired.push(item.envelopeId);
            return Promise.resolve();
          },
        },
        { concurrency: 2, backoff: { baseMs: 5, maxMs: 40, jitter: 0.5 } },
      );
      harness.clock.advance(60_000);
      const giveUpAt = Date.now() + 20_000;
      while ((forwarded.length < 2 || expired.length < 1) && Date.now() < giveUpAt) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await reopened.stopWorkers();
      expect([...forwarded].sort()).toEqual(['envelope/env-outbox/casc', 'evidence-outbox']);
      expect(expired).toEqual(['env-outbox']);
      expect(await admin.scard(`{${harness.prefix}}:unqueued`)).toBe(0);
      expect(await reopened.stats()).toEqual({ mailboxItems: 0, forwardPending: 0, envelopes: 1 });
    } finally {
      jobAdd.mockRestore();
      await admin.quit();
      await harness.dispose();
    }
  });

  it('retries a failed job add in process, without a restart', async () => {
    const harness = await redisHarness();
    const jobAdd = vi.spyOn(Queue.prototype, 'add');
    try {
      const backend = await harness.open();
      const forwarded: number[] = [];
      await backend.startWorkers(
        {
          forward: (_task, attempt) => {
            forwarded.push(attempt);
            return Promise.resolve({ status: 'done' });
          },
          giveUp: () => Promise.resolve(),
          expired: () => Promise.resolve(),
        },
        { concurrency: 1, backoff: { baseMs: 5, maxMs: 40, jitter: 0.5 } },
      );
      // Redis refuses the first add (a failover, say); the script had committed.
      jobAdd.mockRejectedValueOnce(new Error('connection lost'));
      await backend.enqueueForward({
        kind: 'evidence',
        id: 'evidence-blip',
        envelopeId: 'env-blip',
        network: 'casc',
        payload: new Uint8Array([7]),
        deadline: harness.clock.now() + 86_400_000,
      });
      const giveUpAt = Date.now() + 20_000;
      while ((await backend.stats()).forwardPending > 0 && Date.now() < giveUpAt)
        await new Promise((resolve) => setTimeout(resolve, 5));
      await backend.stopWorkers();
      expect(forwarded).toEqual([1]);
      expect(jobAdd.mock.calls.length).toBeGreaterThanOrEqual(2);
    } finally {
      jobAdd.mockRestore();
      await harness.dispose();
    }
  });

  it('runs nothing twice when a marker outlived the job it stood for (a crash before the marker was dropped)', async () => {
    const harness = await redisHarness();
    const admin = new Redis(harness.url);
    try {
      const backend = await harness.open();
      const now = harness.clock.now();
      const forwarded: string[] = [];
      const handlers: WorkerHandlers = {
        forward: (task) => {
          forwarded.push(task.id);
          return Promise.resolve({ status: 'done' });
        },
        giveUp: () => Promise.resolve(),
        expired: () => Promise.resolve(),
      };
      await backend.startWorkers(handlers, {
        concurrency: 1,
        backoff: { baseMs: 5, maxMs: 40, jitter: 0.5 },
      });
      await backend.accept({
        envelope: {
          id: 'env-twice',
          hash: 'd'.repeat(64),
          bytes: new Uint8Array([1]),
          sender: 'ng-moj@wacap',
          recipients: ['kz-gp@casc'],
          expiresAt: now + 86_400_000,
          acceptedAt: now,
          chunkIds: [],
          acceptance: new Uint8Array([2]),
        },
        deliveries: [],
        forwards: [{ network: 'casc', recipients: ['kz-gp@casc'] }],
        retainUntil: now + 86_400_000,
      });
      const giveUpAt = Date.now() + 20_000;
      while ((await backend.stats()).forwardPending > 0 && Date.now() < giveUpAt)
        await new Promise((resolve) => setTimeout(resolve, 5));
      await backend.stopWorkers();
      expect(forwarded).toEqual(['envelope/env-twice/casc']);
      // The job ran and was removed; its marker is back, as if the process died before dropping it.
      await admin.sadd(`{${harness.prefix}}:unqueued`, 'f:envelope/env-twice/casc');

      const restarted = await harness.open();
      await restarted.startWorkers(handlers, {
        concurrency: 1,
        backoff: { baseMs: 5, maxMs: 40, jitter: 0.5 },
      });
      // The re-added job runs (and is removed) before the queue is empty again.
      const forwardQueue = new Queue('forward', {
        connection: { url: harness.url },
        prefix: `{${harness.prefix}}:bull`,
      });
      try {
        while (
          ((await admin.scard(`{${harness.prefix}}:unqueued`)) > 0 ||
            (await forwardQueue.getJobCountByTypes('wait', 'active', 'delayed', 'prioritized')) >
              0) &&
          Date.now() < giveUpAt
        )
          await new Promise((resolve) => setTimeout(resolve, 5));
        expect(await admin.scard(`{${harness.prefix}}:unqueued`)).toBe(0);
      } finally {
        await forwardQueue.close();
      }
      await restarted.stopWorkers();
      expect(forwarded).toEqual(['envelope/env-twice/casc']);
      expect((await restarted.stats()).forwardPending).toBe(0);
    } finally {
      await admin.quit();
      await harness.dispose();
    }
  });

  it('adopts the outbox a relay from before left (pending set, timers, leases) and runs its work', async () => {
    const harness = await redisHarness();
    const admin = new Redis(harness.url);
    const jobAdd = vi.spyOn(Queue.prototype, 'add').mockResolvedValue(undefined as never);
    const K = `{${harness.prefix}}:`;
    try {
      const backend = await harness.open();
      const now = harness.clock.now();
      await backend.accept({
        envelope: {
          id: 'env-legacy',
          hash: 'c'.repeat(64),
          bytes: new Uint8Array([1]),
          sender: 'ng-moj@wacap',
          recipients: ['sn-moj@wacap', 'kz-gp@casc'],
          expiresAt: now + 86_400_000,
          acceptedAt: now,
          chunkIds: [],
          acceptance: new Uint8Array([2]),
        },
        deliveries: [{ address: 'sn-moj@wacap', deliverBy: now + 50 }],
        forwards: [{ network: 'casc', recipients: ['kz-gp@casc'] }],
        retainUntil: now + 86_400_000,
      });
      await backend.close();
      jobAdd.mockRestore();
      const [seq] = (await (await harness.open()).readMailbox('sn-moj@wacap', 0, 10)).map(
        (i) => i.seq,
      );
      // Rewrite what this relay wrote into what the previous one wrote: its outbox, no markers, no counter.
      await admin.del(`${K}unqueued`, `${K}forwarding`);
      await admin.sadd(`${K}pending`, 'envelope/env-legacy/casc');
      await admin.zadd(`${K}timers`, now + 50, `${seq}:sn-moj@wacap`);
      await admin.zadd(`${K}lease`, now - 1, 'envelope/env-legacy/casc');

      const upgraded = await harness.open();
      const forwarded: string[] = [];
      const expired: string[] = [];
      await upgraded.startWorkers(
        {
          forward: (task) => {
            forwarded.push(task.id);
            return Promise.resolve({ status: 'done' });
          },
          giveUp: () => Promise.resolve(),
          expired: (item) => {
            expired.push(item.envelopeId);
            return Promise.resolve();
          },
        },
        { concurrency: 1, backoff: { baseMs: 5, maxMs: 40, jitter: 0.5 } },
      );
      harness.clock.advance(60_000);
      const giveUpAt = Date.now() + 20_000;
      while ((forwarded.length < 1 || expired.length < 1) && Date.now() < giveUpAt)
        await new Promise((resolve) => setTimeout(resolve, 5));
      while ((await upgraded.stats()).forwardPending > 0 && Date.now() < giveUpAt)
        await new Promise((resolve) => setTimeout(resolve, 5));
      await upgraded.stopWorkers();
      expect(forwarded).toEqual(['envelope/env-legacy/casc']);
      expect(expired).toEqual(['env-legacy']);
      expect(await upgraded.stats()).toEqual({ mailboxItems: 0, forwardPending: 0, envelopes: 1 });
      expect(await admin.exists(`${K}pending`, `${K}timers`, `${K}lease`, `${K}unqueued`)).toBe(0);
    } finally {
      jobAdd.mockRestore();
      await admin.quit();
      await harness.dispose();
    }
  });

  it("never expires an item before its deliverBy by the sweeping instance's clock", async () => {
    const harness = await redisHarness();
    const admin = new Redis(harness.url);
    try {
      const acceptor = await harness.open();
      const now = harness.clock.now();
      await acceptor.accept({
        envelope: {
          id: 'env-skew',
          hash: 'e'.repeat(64),
          bytes: new Uint8Array([1]),
          sender: 'ng-moj@wacap',
          recipients: ['sn-moj@wacap'],
          expiresAt: now + 86_400_000,
          acceptedAt: now,
          chunkIds: [],
          acceptance: new Uint8Array([2]),
        },
        deliveries: [{ address: 'sn-moj@wacap', deliverBy: now + 30 }],
        forwards: [],
        retainUntil: now + 86_400_000,
      });
      // A second instance whose clock runs an hour behind sweeps every 20 ms: by its clock the item
      // is not due, so it stays in the mailbox and in `due` with its deliverBy.
      let skewMs = -3_600_000;
      let clockReads = 0;
      const lagging = await openRedisBackend({
        url: harness.url,
        prefix: harness.prefix,
        clock: () => {
          clockReads++;
          return harness.clock.now() + skewMs;
        },
        expirySweepMs: 20,
      });
      const expired: string[] = [];
      try {
        await lagging.startWorkers(
          {
            forward: () => Promise.resolve({ status: 'done' }),
            giveUp: () => Promise.resolve(),
            expired: (item) => {
              expired.push(item.envelopeId);
              return Promise.resolve();
            },
          },
          { concurrency: 1, backoff: { baseMs: 5, maxMs: 40, jitter: 0.5 } },
        );
        harness.clock.advance(60_000);
        // Several sweeps run meanwhile (each reads the clock once it finds nothing due); none takes the item.
        const readsBefore = clockReads;
        const giveUpAt = Date.now() + 20_000;
        while (clockReads - readsBefore < 5 && Date.now() < giveUpAt)
          await new Promise((resolve) => setTimeout(resolve, 10));
        expect(clockReads - readsBefore).toBeGreaterThanOrEqual(5);
        expect(expired).toEqual([]);
        expect(await admin.zscore(`{${harness.prefix}}:due`, '1:sn-moj@wacap')).toBe(
          String(now + 30),
        );
        expect(
          (await lagging.readMailbox('sn-moj@wacap', 0, 10)).map((item) => item.envelopeId),
        ).toEqual(['env-skew']);

        // Clocks agree again: the next sweep expires it, once.
        skewMs = 0;
        while (expired.length === 0 && Date.now() < giveUpAt)
          await new Promise((resolve) => setTimeout(resolve, 5));
        expect(expired).toEqual(['env-skew']);
        expect(await lagging.readMailbox('sn-moj@wacap', 0, 10)).toEqual([]);
        expect(await admin.zcard(`{${harness.prefix}}:due`)).toBe(0);
      } finally {
        await lagging.close();
      }
    } finally {
      await admin.quit();
      await harness.dispose();
    }
  });

  it('sends the scripts of one tick in one pipeline on the command connection', async () => {
    const harness = await redisHarness();
    const client = new Redis(harness.url, COMMAND_CLIENT_OPTIONS);
    try {
      // Loaded, so that no NOSCRIPT fallback (a second round) muddles the count.
      await client.script('LOAD', 'return ARGV[1]');
      let pipelines = 0;
      const pipeline = client.pipeline.bind(client);
      client.pipeline = (...args: Parameters<typeof client.pipeline>) => {
        pipelines++;
        return pipeline(...args);
      };
      const echo = new LuaScript('return ARGV[1]');
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          echo.run(client, `{${harness.prefix}}:k`, [String(i)]),
        ),
      );
      expect(answers.map((a) => String(a))).toEqual(
        Array.from({ length: 10 }, (_, i) => String(i)),
      );
      expect(pipelines).toBe(1);
      const lone = await echo.run(client, `{${harness.prefix}}:k`, ['lone']);
      expect(Buffer.isBuffer(lone)).toBe(true);
      expect(String(lone)).toBe('lone');
    } finally {
      client.disconnect();
      await harness.dispose();
    }
  });

  it('runs scripts called in the same tick in one pipeline: each answers its caller, a failure stays its own, a flushed script cache is reloaded', async () => {
    const harness = await redisHarness();
    const admin = new Redis(harness.url);
    try {
      const backend = await harness.open();
      const addresses = Array.from({ length: 20 }, (_, i) => `n${i}@wacap`);
      const pushes = await Promise.all(
        addresses.map((a, i) => backend.pushEvidence(a, 'env-1', 'k', new Uint8Array([i]))),
      );
      expect(pushes.every((added) => added)).toBe(true);
      // A mailbox key of the wrong type: that read fails, the others of its batch do not.
      await admin.set(`{${harness.prefix}}:mb:broken@wacap`, 'x');
      const reads = await Promise.allSettled([
        ...addresses.map((a) => backend.readMailbox(a, 0, 10)),
        backend.readMailbox('broken@wacap', 0, 10),
      ]);
      expect(reads.at(-1)?.status).toBe('rejected');
      reads.slice(0, -1).forEach((read, i) => {
        expect(read.status).toBe('fulfilled');
        const items = (read as PromiseFulfilledResult<{ payload: Uint8Array }[]>).value;
        expect(items.map((item) => [...item.payload])).toEqual([[i]]);
      });
      await admin.script('FLUSH');
      const again = await Promise.all(
        addresses.map((a) => backend.pushEvidence(a, 'env-1', 'k2', new Uint8Array([1]))),
      );
      expect(again.every((added) => added)).toBe(true);
      expect(
        await Promise.all(
          addresses.map((a) => backend.pushEvidence(a, 'env-1', 'k2', new Uint8Array([1]))),
        ),
      ).toEqual(addresses.map(() => false));
    } finally {
      await admin.quit();
      await harness.dispose();
    }
  });

  it('puts every delivery in the due set at its deliverBy, with no BullMQ job per delivery; an ack takes it out', async () => {
    const harness = await redisHarness();
    const admin = new Redis(harness.url);
    const expiryQueue = new Queue('expiry', {
      connection: { url: harness.url },
      prefix: `{${harness.prefix}}:bull`,
    });
    const backend = await harness.open();
    const due = `{${harness.prefix}}:due`;
    try {
      const now = harness.clock.now();
      const accept = (id: string, deliverBy: number) =>
        backend.accept({
          envelope: {
            id,
            hash: id.padEnd(64, '0'),
            bytes: new Uint8Array([1]),
            sender: 'ng-moj@wacap',
            recipients: ['sn-moj@wacap'],
            expiresAt: now + 86_400_000,
            acceptedAt: now,
            chunkIds: [],
            acceptance: new Uint8Array([2]),
          },
          deliveries: [{ address: 'sn-moj@wacap', deliverBy }],
          forwards: [],
          retainUntil: now + 86_400_000,
        });
      await accept('a', now + 150);
      await accept('b', now + 3_600_000);
      await accept('c', now + 3_600_000);
      expect(await admin.zrange(due, '0', '-1', 'WITHSCORES')).toEqual([
        '1:sn-moj@wacap',
        String(now + 150),
        '2:sn-moj@wacap',
        String(now + 3_600_000),
        '3:sn-moj@wacap',
        String(now + 3_600_000),
      ]);
      expect(await expiryQueue.count()).toBe(0);
      // Acked before it came due: it leaves `due`, and never expires.
      const [, , seqC] = (await backend.readMailbox('sn-moj@wacap', 0, 10)).map((i) => i.seq);
      expect(await backend.ack('sn-moj@wacap', [seqC!])).toBe(1);
      expect(await admin.zrange(due, '0', '-1')).toEqual(['1:sn-moj@wacap', '2:sn-moj@wacap']);

      const expired: string[] = [];
      await backend.startWorkers(
        {
          forward: () => Promise.resolve({ status: 'done' }),
          giveUp: () => Promise.resolve(),
          expired: (item) => {
            expired.push(item.envelopeId);
            return Promise.resolve();
          },
        },
        { concurrency: 1, backoff: { baseMs: 5, maxMs: 40, jitter: 0.5 } },
      );
      harness.clock.advance(1_000);
      const giveUpAt = Date.now() + 20_000;
      while (expired.length < 1 && Date.now() < giveUpAt)
        await new Promise((resolve) => setTimeout(resolve, 10));
      await backend.stopWorkers();
      expect(expired).toEqual(['a']);
      expect((await backend.readMailbox('sn-moj@wacap', 0, 10)).map((i) => i.envelopeId)).toEqual([
        'b',
      ]);
      expect(await admin.zrange(due, '0', '-1')).toEqual(['2:sn-moj@wacap']);
    } finally {
      await backend.close();
      await expiryQueue.close();
      await admin.quit();
      await harness.dispose();
    }
  });

  it('keeps every key, BullMQ queues included, under the hash tag of its prefix', async () => {
    const harness = await redisHarness();
    try {
      const backend = await harness.open();
      await backend.pushEvidence('sn-moj@wacap', 'env-1', 'k', new Uint8Array([1]));
      await backend.enqueueForward({
        kind: 'evidence',
        envelopeId: 'env-1',
        network: 'casc',
        payload: new Uint8Array([1]),
        deadline: harness.clock.now() + 60_000,
      });
      await backend.claimOnce('challenge:x', 60_000);
      const admin = new Redis(harness.url);
      try {
        const keys = await admin.keys('*');
        const ours = keys.filter((key) => key.includes(harness.prefix));
        expect(ours.length).toBeGreaterThan(5);
        expect(ours.some((key) => key.startsWith(`{${harness.prefix}}:bull:forward:`))).toBe(true);
        expect(ours.every((key) => key.startsWith(`{${harness.prefix}}:`))).toBe(true);
      } finally {
        await admin.quit();
      }
    } finally {
      await harness.dispose();
    }
  });

  describe('jobs', () => {
    const BACKOFF = { baseMs: 5, maxMs: 40, jitter: 0.5 };
    const taskOf = (id: string): string => `envelope/${id}/casc`;

    function forwarding(id: string, now: number): AcceptInput {
      return {
        envelope: {
          id,
          hash: 'e'.repeat(64),
          bytes: new Uint8Array([1]),
          sender: 'ng-moj@wacap',
          recipients: ['kz-gp@casc'],
          expiresAt: now + 86_400_000,
          acceptedAt: now,
          chunkIds: [],
          acceptance: new Uint8Array([2]),
        },
        deliveries: [],
        forwards: [{ network: 'casc', recipients: ['kz-gp@casc'] }],
        retainUntil: now + 86_400_000,
      };
    }

    function markers(harness: { url: string; prefix: string }): Promise<number> {
      const admin = new Redis(harness.url);
      return admin.scard(`{${harness.prefix}}:unqueued`).finally(() => admin.disconnect());
    }

    function handlers(forward: WorkerHandlers['forward']): WorkerHandlers {
      return { forward, giveUp: () => Promise.resolve(), expired: () => Promise.resolve() };
    }

    async function until(
      what: string,
      check: () => boolean | Promise<boolean>,
      ms = 10_000,
    ): Promise<void> {
      const end = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }

    it('queues a committed forward as one job under its deterministic id; a retried accept adds none', async () => {
      const harness = await redisHarness();
      const forwardQueue = new Queue('forward', {
        connection: { url: harness.url },
        prefix: `{${harness.prefix}}:bull`,
      });
      try {
        const backend = await harness.open();
        const accepted = forwarding('env-job', harness.clock.now());
        expect(await backend.accept(accepted)).toEqual({ status: 'accepted' });
        expect((await backend.accept(accepted)).status).toBe('duplicate');
        await backend.enqueueForward({
          kind: 'evidence',
          id: 'evidence-job',
          envelopeId: 'env-job',
          network: 'casc',
          payload: new Uint8Array([1]),
          deadline: harness.clock.now() + 60_000,
        });
        const jobs = await forwardQueue.getJobs(['wait', 'delayed', 'prioritized', 'active']);
        expect(jobs.map((job) => (job.data as { taskId: string }).taskId).sort()).toEqual([
          'envelope/env-job/casc',
          'evidence-job',
        ]);
        expect(jobs.every((job) => /^f-[0-9a-f]{64}$/.test(job.id ?? ''))).toBe(true);
        await until('the markers to go', async () => (await markers(harness)) === 0);

        const seen: { id: string; attempt: number }[] = [];
        await backend.startWorkers(
          handlers((task, attempt) => {
            seen.push({ id: task.id, attempt });
            return Promise.resolve({ status: 'done' });
          }),
          { concurrency: 2, backoff: BACKOFF },
        );
        await until('the forwards', async () => (await backend.stats()).forwardPending === 0);
        await backend.stopWorkers();
        expect(seen.sort((a, b) => a.id.localeCompare(b.id))).toEqual([
          { id: taskOf('env-job'), attempt: 1 },
          { id: 'evidence-job', attempt: 1 },
        ]);
      } finally {
        await forwardQueue.close();
        await harness.dispose();
      }
    });

    it("retries a failed attempt after the backoff policy's delay (BullMQ's custom strategy)", async () => {
      const harness = await redisHarness();
      try {
        const backend = await harness.open();
        const attempts: { attempt: number; at: number }[] = [];
        await backend.startWorkers(
          handlers((_task, attempt) => {
            attempts.push({ attempt, at: Date.now() });
            return Promise.resolve(
              attempt < 3 ? { status: 'retry', error: 'peer down' } : { status: 'done' },
            );
          }),
          { concurrency: 2, backoff: { baseMs: 150, maxMs: 1_000, jitter: 0 } },
        );
        await backend.accept(forwarding('env-retry', harness.clock.now()));
        await until(
          'the third attempt',
          async () => attempts.length === 3 && (await backend.stats()).forwardPending === 0,
        );
        await backend.stopWorkers();
        expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
        // No jitter: 150 ms after the first failure, 300 ms after the second.
        expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(150);
        expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(300);
      } finally {
        await harness.dispose();
      }
    });

    it('renews the lock of a running job, so another instance never takes the task over meanwhile', async () => {
      const harness = await redisHarness();
      const opened: RelayBackend[] = [];
      const open = async () => {
        const backend = await openRedisBackend({
          url: harness.url,
          prefix: harness.prefix,
          clock: harness.clock.now,
          leaseMs: 300,
        });
        opened.push(backend);
        return backend;
      };
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      try {
        const a = await open();
        const b = await open();
        const byA: string[] = [];
        const byB: string[] = [];
        await a.startWorkers(
          handlers(async (task) => {
            byA.push(task.id);
            await gate;
            return { status: 'done' };
          }),
          { concurrency: 2, backoff: BACKOFF },
        );
        await a.accept(forwarding('env-long', harness.clock.now()));
        await until('the attempt on A', () => byA.length === 1);
        await b.startWorkers(
          handlers((task) => {
            byB.push(task.id);
            return Promise.resolve({ status: 'done' });
          }),
          { concurrency: 2, backoff: BACKOFF },
        );
        // Four lock lengths: without renewal, B's stalled-job check (every 300 ms) would have taken it.
        await new Promise((resolve) => setTimeout(resolve, 1200));
        expect(byB).toEqual([]);
        release();
        await until('the task done', async () => (await a.stats()).forwardPending === 0);
        expect(byA).toEqual([taskOf('env-long')]);
        expect(byB).toEqual([]);
      } finally {
        release();
        await Promise.all(opened.map((backend) => backend.close()));
        await harness.dispose();
      }
    });

    it('takes over the job of an instance that died mid-attempt once its lock ran out', async () => {
      const harness = await redisHarness();
      let b: RelayBackend | undefined;
      // A worker that takes the job and dies: it never renews its lock nor finishes the job.
      const lockMs = 400;
      const dying = new Worker('forward', null, {
        connection: { url: harness.url },
        prefix: `{${harness.prefix}}:bull`,
        lockDuration: lockMs,
        autorun: false,
      });
      try {
        const a = await harness.open();
        await a.accept(forwarding('env-orphan', harness.clock.now()));
        const taken = await dying.getNextJob('dead-token');
        expect((taken.data as { taskId: string }).taskId).toBe(taskOf('env-orphan'));
        const lockedUntil = Date.now() + lockMs;

        b = await openRedisBackend({
          url: harness.url,
          prefix: harness.prefix,
          clock: harness.clock.now,
          leaseMs: 200,
        });
        const runs: { attempt: number; at: number }[] = [];
        await b.startWorkers(
          handlers((_task, attempt) => {
            runs.push({ attempt, at: Date.now() });
            return Promise.resolve({ status: 'done' });
          }),
          { concurrency: 2, backoff: BACKOFF },
        );
        await until(
          'the takeover',
          async () => runs.length === 1 && (await b!.stats()).forwardPending === 0,
        );
        expect(runs[0]!.at).toBeGreaterThanOrEqual(lockedUntil);
        expect(runs.map((run) => run.attempt)).toEqual([1]);
      } finally {
        await dying.close(true);
        await b?.close();
        await harness.dispose();
      }
    });
  });

  it('rejects a prefix that would break the hash tag, and an unreachable server', async () => {
    await expect(openRedisBackend({ url: 'redis://127.0.0.1:1', prefix: 'a{b}' })).rejects.toThrow(
      TypeError,
    );
    await expect(
      openRedisBackend({ url: 'redis://127.0.0.1:1', prefix: `test-${randomUUID()}` }),
    ).rejects.toThrow();
  });
});
