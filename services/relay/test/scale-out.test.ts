import { RelayClient, type MailboxItem } from '@rogatory/client';
import { utf8 } from '@rogatory/protocol';
import { encryptTestAttachment, sealTestDossier } from '@rogatory/protocol/testing';
import { startRedis, startS3, type RedisServer, type S3Server } from '@rogatory/test-services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startTestRelays,
  type TestNetworkOfRelays,
  type TestRelay,
} from '../src/testing/harness.js';

let redis: RedisServer;
let s3: S3Server;
let net: TestNetworkOfRelays;
let instanceB: TestRelay;

async function waitFor<T>(what: string, fn: () => T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  redis = await startRedis();
  s3 = await startS3();
  net = await startTestRelays({
    backend: {
      kind: 'redis',
      url: redis.url,
      s3: {
        endPoint: s3.endPoint,
        port: s3.port,
        accessKey: s3.accessKey,
        secretKey: s3.secretKey,
      },
    },
    networks: ['wacap'],
  });
  instanceB = await net.startInstance('wacap');
}, 60_000);

afterAll(async () => {
  await net.stop();
  await s3.stop();
  await redis.stop();
});

describe('scale-out: two relay instances sharing one Redis and one S3 store', () => {
  it('pushes to a node connected to instance A what was submitted through instance B, exactly once', async () => {
    const world = net.world;
    const instanceA = net.relays['wacap']!;
    expect(instanceA.url).not.toBe(instanceB.url);
    const recipient = new RelayClient({
      baseUrl: instanceA.url,
      address: 'ng-agf@wacap',
      identity: world.authority('ng-agf@wacap').identity,
    });
    const sender = new RelayClient({
      baseUrl: instanceB.url,
      address: 'sn-moj@wacap',
      identity: world.authority('sn-moj@wacap').identity,
    });

    const received: MailboxItem[] = [];
    const sub = recipient.openMailbox({ after: 0, onItem: (item) => void received.push(item) });
    try {
      await waitFor('subscription', () => (sub.connected ? true : undefined));
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const attachments = [
          await encryptTestAttachment(utf8(`warrant ${i}`), { name: 'warrant.pdf' }),
          await encryptTestAttachment(utf8(`records ${i}`), {
            name: 'records.csv',
            mediaType: 'text/csv',
          }),
        ];
        const sealed = sealTestDossier(world, {
          from: 'sn-moj@wacap',
          to: ['ng-agf@wacap'],
          attachments: attachments.map((a) => a.manifest),
          createdAt: Date.now(),
        });
        await sender.uploadChunks([
          { id: sealed.envelope.body.dossier.id, bytes: sealed.sealed },
          ...attachments.flatMap((a) => a.chunks),
        ]);
        await sender.submit(sealed.envelope);
        ids.push(sealed.envelope.body.id);
      }
      await waitFor('all five envelopes on instance A', () =>
        received.filter((i) => i.kind === 'envelope').length >= 5 ? true : undefined,
      );
      const got = received.flatMap((i) => (i.kind === 'envelope' ? [i.envelope.body.id] : []));
      expect(got.sort()).toEqual([...ids].sort());
      // Chunks uploaded through B are served by A.
      const first = received.find((i) => i.kind === 'envelope');
      expect(
        first?.kind === 'envelope' &&
          (await recipient.getChunkBytes(first.envelope.body.dossier.id)).length,
      ).toBeGreaterThan(0);
      await sub.ack(received.map((i) => i.seq));
    } finally {
      void sub.close();
    }
    // Acked through A: instance B sees an empty mailbox too.
    const viaB = new RelayClient({
      baseUrl: instanceB.url,
      address: 'ng-agf@wacap',
      identity: world.authority('ng-agf@wacap').identity,
    });
    expect(await viaB.readMailbox(0, 100)).toEqual([]);
  });
});

describe('scale-out: an instance started elsewhere (another process) on the stores of the first', () => {
  let first: TestNetworkOfRelays;
  let second: TestNetworkOfRelays;
  let secondStopped = false;

  beforeAll(async () => {
    const now = Date.now();
    first = await startTestRelays({
      backend: { kind: 'redis', url: redis.url },
      networks: ['wacap'],
      now,
    });
    // As bench/relay-process.ts does in a second process: the same world, the first's namespace and chunk directory.
    second = await startTestRelays({
      backend: { kind: 'redis', url: redis.url },
      networks: ['wacap'],
      now,
      shared: { namespace: first.namespace, dir: first.dir },
    });
  }, 60_000);

  afterAll(async () => {
    if (!secondStopped) await second.stop();
    await first.stop();
  });

  it('delivers through the first what was uploaded and submitted through the second, and keeps the shared directory when the second stops', async () => {
    const world = first.world;
    const a = first.relays['wacap']!;
    const b = second.relays['wacap']!;
    expect(second.namespace).toBe(first.namespace);
    const recipient = new RelayClient({
      baseUrl: a.url,
      address: 'gh-ago@wacap',
      identity: world.authority('gh-ago@wacap').identity,
    });
    const sender = new RelayClient({
      baseUrl: b.url,
      address: 'sn-moj@wacap',
      identity: second.world.authority('sn-moj@wacap').identity,
    });
    const received: MailboxItem[] = [];
    const attachment = await encryptTestAttachment(utf8('bank records'), {
      name: 'records.csv',
      mediaType: 'text/csv',
    });
    const sealed = sealTestDossier(second.world, {
      from: 'sn-moj@wacap',
      to: ['gh-ago@wacap'],
      attachments: [attachment.manifest],
      createdAt: Date.now(),
    });
    const sub = recipient.openMailbox({ after: 0, onItem: (item) => void received.push(item) });
    try {
      await waitFor('subscription', () => (sub.connected ? true : undefined));
      await sender.uploadChunks([
        { id: sealed.envelope.body.dossier.id, bytes: sealed.sealed },
        ...attachment.chunks,
      ]);
      await sender.submit(sealed.envelope);
      const item = await waitFor('the envelope on the first instance', () =>
        received.find((i) => i.kind === 'envelope'),
      );
      expect(item.envelope.body.id).toBe(sealed.envelope.body.id);
      expect(await recipient.getChunkBytes(sealed.envelope.body.dossier.id)).toEqual(sealed.sealed);
      await sub.ack([item.seq]);
    } finally {
      void sub.close();
    }
    secondStopped = true;
    await second.stop();
    // The chunks uploaded through the second are still there: it did not own the directory.
    expect(await a.blobs.has(sealed.envelope.body.dossier.id)).toBe(true);
    expect(await a.blobs.has(attachment.chunks[0]!.id)).toBe(true);
  });

  it('refuses to share the stores of the embedded backend (one SQLite file is one instance)', async () => {
    await expect(
      startTestRelays({
        backend: { kind: 'embedded' },
        networks: ['wacap'],
        shared: { namespace: first.namespace, dir: first.dir },
      }),
    ).rejects.toThrow(/Redis backend/);
  });
});
