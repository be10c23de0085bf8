/**
 * Redis high availability (issue 14): the relay's Redis backend behind
 * Sentinel (a primary, two replicas, three sentinels, all Debian's
 * redis-server) with `replicasToAck: 1`. The primary is killed while
 * envelopes are being accepted; the sentinels promote a replica and point
 * the other at it (so WAIT 1 can succeed again), the
 * backend follows, and every envelope the backend acknowledged is on the
 * new primary: an acknowledged submission is not lost in a failover.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, startRedis, type RedisServer } from '@rogatory/test-services';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onlineReplicasIn, openRedisBackend } from '../../src/backend/redis.js';
import type { AcceptInput, RelayBackend } from '../../src/backend/types.js';

const NAME = 'rogatory-primary';

function envelope(n: number): AcceptInput {
  const id = `sentinel-env-${String(n).padStart(6, '0')}`;
  const now = Date.now();
  return {
    envelope: {
      id,
      hash: createHash('sha256').update(id).digest('hex'),
      bytes: randomBytes(64),
      sender: 'sn-moj@wacap',
      recipients: ['kz-gpo@casc'],
      expiresAt: now + 3600_000,
      acceptedAt: now,
      chunkIds: [createHash('sha256').update(`${id}/dossier`).digest('hex')],
      acceptance: new Uint8Array([91, 93]),
    },
    deliveries: [{ address: 'kz-gpo@casc', deliverBy: now + 3600_000 }],
    forwards: [],
    retainUntil: now + 3600_000,
  };
}

async function waitUntil(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('onlineReplicasIn', () => {
  it("counts the replicas in sync in a primary's INFO replication, none in a replica's", () => {
    const primaryInfo = [
      '# Replication',
      'role:master',
      'connected_slaves:3',
      'slave0:ip=127.0.0.1,port=6380,state=online,offset=1234,lag=0',
      'slave1:ip=127.0.0.1,port=6381,state=wait_bgsave,offset=0,lag=0',
      'slave2:ip=127.0.0.1,port=6382,state=online,offset=1200,lag=1',
      'master_repl_offset:1234',
    ].join('\r\n');
    expect(onlineReplicasIn(primaryInfo)).toBe(2);
    expect(onlineReplicasIn('# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n')).toBe(0);
  });
});

describe('Redis backend behind Sentinel: failover under load', () => {
  let primary: RedisServer;
  let replica: RedisServer;
  let replica2: RedisServer;
  const sentinels: { port: number; child: ChildProcess }[] = [];
  let dir: string;
  let backend: RelayBackend | undefined;

  beforeAll(async () => {
    primary = await startRedis();
    replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    replica2 = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    dir = await mkdtemp(join(tmpdir(), 'rogatory-sentinel-'));
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${String(i)}.conf`);
      await writeFile(
        conf,
        [
          `port ${String(port)}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${NAME} 127.0.0.1 ${String(primary.port)} 2`,
          `sentinel down-after-milliseconds ${NAME} 1000`,
          `sentinel failover-timeout ${NAME} 10000`,
          `sentinel parallel-syncs ${NAME} 1`,
          '',
        ].join('\n'),
      );
      const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
      sentinels.push({ port, child });
    }
    for (const s of sentinels)
      await waitUntil('a sentinel', 20_000, async () => {
        const c = new Redis({
          port: s.port,
          host: '127.0.0.1',
          lazyConnect: true,
          maxRetriesPerRequest: 0,
        });
        try {
          await c.connect();
          const info = (await c.call('SENTINEL', 'get-master-addr-by-name', NAME)) as
            string[] | null;
          return Array.isArray(info) && info[1] === String(primary.port);
        } finally {
          c.disconnect();
        }
      });
    for (const r of [replica, replica2])
      await waitUntil('the replicas in sync', 20_000, async () => {
        const c = new Redis(r.url, { maxRetriesPerRequest: 0 });
        try {
          return (await c.info('replication')).includes('master_link_status:up');
        } finally {
          c.disconnect();
        }
      });
  }, 60_000);

  afterAll(async () => {
    await backend?.close();
    for (const s of sentinels) s.child.kill('SIGKILL');
    await replica.stop();
    await replica2.stop();
    await primary.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses an ambiguous configuration', async () => {
    await expect(
      openRedisBackend({
        url: primary.url,
        sentinel: { sentinels: [{ host: '127.0.0.1', port: sentinels[0]!.port }], name: NAME },
        prefix: 'x',
      }),
    ).rejects.toThrow(/either url or sentinel/);
    await expect(openRedisBackend({ prefix: 'x' })).rejects.toThrow(/either url or sentinel/);
  });

  /**
   * A backend straight on the primary (two replicas online, replicasToAck 1), and `replica2`:
   * `stop()` makes that replica answer nothing (SIGSTOP; its connections stay open), like a
   * replica that is connected but behind, until `resume()`.
   */
  async function withLaggingReplica(
    prefix: string,
    replicaAckTimeoutMs: number,
    body: (backend: RelayBackend, replica2: { stop(): void; resume(): void }) => Promise<void>,
  ): Promise<void> {
    const probe = new Redis(replica2.url, { maxRetriesPerRequest: 0 });
    const pid = Number(/process_id:(\d+)/.exec(await probe.info('server'))?.[1]);
    probe.disconnect();
    expect(pid).toBeGreaterThan(0);
    // A replica's link is up a moment before its primary counts it online (its first ACK).
    const watcher = new Redis(primary.url, { maxRetriesPerRequest: 0 });
    await waitUntil(
      'both replicas online at the primary',
      20_000,
      async () => onlineReplicasIn(await watcher.info('replication')) === 2,
    ).finally(() => watcher.disconnect());
    const lagging = {
      stop: (): void => {
        process.kill(pid, 'SIGSTOP');
      },
      resume: (): void => {
        process.kill(pid, 'SIGCONT');
      },
    };
    const direct = await openRedisBackend({
      url: primary.url,
      prefix,
      replicasToAck: 1,
      replicaAckTimeoutMs,
    });
    try {
      await body(direct, lagging);
    } finally {
      lagging.resume();
      await direct.close();
    }
  }

  it('acknowledges a write only once every online replica holds it, not replicasToAck alone', async () => {
    // Were one replica enough, a write held by the replica that lags would be acknowledged, and
    // lost when the Sentinels promote the other one.
    await withLaggingReplica('sentinel-wait', 500, async (waiting, lagging) => {
      expect((await waiting.accept(envelope(900_000))).status).toBe('accepted');
      lagging.stop();
      const input = envelope(900_001);
      await expect(waiting.accept(input)).rejects.toThrow(/only 1 of 2 replicas confirmed/);
      lagging.resume();
      // The sender's retry: the envelope was stored, and now both replicas hold it.
      expect((await waiting.accept(input)).status).toBe('duplicate');
    });
  }, 30_000);

  it('does not take a WAIT answered on a new connection for a confirmation of the write', async () => {
    // ioredis re-sends a WAIT cut off with its connection; on the new connection (to a new
    // primary, after a failover) it counts replicas of nothing written there, and answers at once.
    const admin = new Redis(primary.url, { maxRetriesPerRequest: 0 });
    try {
      await withLaggingReplica('sentinel-reconnect', 1500, async (waiting, lagging) => {
        lagging.stop();
        const input = envelope(900_100);
        const answer = waiting.accept(input);
        await sleep(300); // the accept is in its WAIT: replica2 answers nothing
        await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
        await expect(answer).rejects.toThrow(/connection to Redis was lost/);
        lagging.resume();
        expect((await waiting.accept(input)).status).toBe('duplicate');
      });
    } finally {
      admin.disconnect();
    }
  }, 30_000);

  it('keeps every acknowledged envelope through a failover of the primary', async () => {
    const errors: unknown[] = [];
    backend = await openRedisBackend({
      sentinel: {
        sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
        name: NAME,
      },
      prefix: 'sentinel-test',
      replicasToAck: 1,
      replicaAckTimeoutMs: 2000,
      onError: (e) => errors.push(e),
    });
    const acknowledged: string[] = [];
    let refused = 0;
    let lastError = '';
    let n = 0;
    const submit = async (): Promise<void> => {
      const input = envelope(n++);
      try {
        const r = await backend!.accept(input);
        if (r.status === 'accepted' || r.status === 'duplicate')
          acknowledged.push(input.envelope.id);
      } catch (error) {
        refused += 1; // a client would retry; the point is what was acknowledged
        lastError = error instanceof Error ? error.message : String(error);
      }
    };
    for (let i = 0; i < 50; i++) await submit();
    expect(acknowledged).toHaveLength(50);

    // Kill the primary (no save, as a crash), keep submitting while the sentinels fail over.
    const admin = new Redis(primary.url, { maxRetriesPerRequest: 0 });
    await admin.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
    admin.disconnect();
    const until = Date.now() + 30_000;
    let promoted = false;
    while (Date.now() < until && !promoted) {
      await submit();
      for (const r of [replica, replica2]) {
        const c = new Redis(r.url, { maxRetriesPerRequest: 0 });
        if ((await c.info('replication').catch(() => '')).includes('role:master')) promoted = true;
        c.disconnect();
      }
      await sleep(50);
    }
    expect(promoted).toBe(true);
    // The backend follows the new primary: submissions are acknowledged again.
    const before = acknowledged.length;
    await waitUntil('submissions acknowledged after the failover', 45_000, async () => {
      await submit();
      return acknowledged.length >= before + 20;
    }).catch((e: unknown) => {
      throw new Error(`${String(e)}; last refusal: ${lastError}`);
    });

    // Every acknowledged envelope is on the new primary.
    for (const id of acknowledged) {
      const stored = await backend.getEnvelope(id);
      expect(stored?.id, id).toBe(id);
    }
    expect(acknowledged.length + refused).toBe(n);
  }, 120_000);
});
