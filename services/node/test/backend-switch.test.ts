/**
 * Issue 13 item 7: a relay whose backend changes (embedded → Redis) must not
 * make a node miss items. A relay process on the embedded backend, a node
 * (the receiver) that has stored and acked four dossiers (cursor 4) while two
 * more wait, then the relay is stopped and:
 *   A. restarted on Redis after `rogatory-relay migrate-backend`: the seqs
 *      and the mailbox epoch are carried over, the node gets the waiting
 *      items and then new ones, none missing, none twice, no reset;
 *   B. restarted on a fresh Redis without migration while the sender
 *      resubmits and new dossiers arrive: the new seqs (1…4) are below the
 *      node's cursor (4), so the old behaviour reads nothing; the node sees
 *      the new epoch, reads again from 0 and stores every new item, the
 *      resubmitted one recognised as a duplicate (no second dossier, audit
 *      entry or Delivery evidence).
 * (Here, in services/node, because the relay package does not depend on the node.)
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RelayClient } from '@rogatory/client';
import { ready } from '@rogatory/protocol';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { nodeClient, sealAndUpload, type Prepared } from '@rogatory/relay/testing/helpers';
import {
  RELAY_BIN,
  RelayProcess,
  writeRelayFiles,
  type RelayFiles,
} from '@rogatory/relay/testing/process';
import { freePort, startRedis, type RedisServer } from '@rogatory/test-services';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Actor, SyncEvent } from '../src/index.js';
import { eventually, makeNode, tempDir, type NodeFixture } from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const GH = 'gh-ago@wacap';

let redis: RedisServer;

beforeAll(async () => {
  await ready();
  redis = await startRedis();
}, 60_000);

afterAll(async () => {
  await redis.stop();
});

interface Scene {
  readonly world: TestWorld;
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly embedded: RelayFiles;
  relay: RelayProcess | undefined;
  readonly gh: NodeFixture;
  readonly reader: Actor;
  sender: RelayClient;
  /** The four dossiers stored and acked, then the two waiting when the relay stopped. */
  readonly delivered: Prepared[];
  readonly waiting: Prepared[];
}

let scene: Scene | undefined;
let tmp: { path: string; remove: () => Promise<void> };

async function submitNew(s: Scene): Promise<Prepared> {
  const prepared = await sealAndUpload(s.world, s.sender, { from: SN, to: [GH] });
  await s.sender.submit(prepared.envelope);
  return prepared;
}

/** Submit an envelope again, re-uploading its objects (a relay whose store is new lacks them). */
async function resubmit(s: Scene, prepared: Prepared): Promise<void> {
  const dossier = prepared.envelope.body.dossier.id;
  await s.sender.putChunk(dossier, prepared.sealed, prepared.sealed.length);
  for (const c of prepared.chunks) await s.sender.putChunk(c.id, c.bytes, c.bytes.length);
  await s.sender.submit(prepared.envelope);
}

async function redisFiles(s: Scene, name: string, prefix: string): Promise<RelayFiles> {
  const dir = join(s.dir, name);
  await mkdir(dir, { recursive: true });
  return writeRelayFiles({
    dir,
    world: s.world,
    network: 'wacap',
    port: s.port,
    backend: { kind: 'redis', url: redis.url, prefix },
  });
}

/** `rogatory-relay migrate-backend --json`: its exit code and JSON answer. */
async function migrate(
  from: RelayFiles,
  to: RelayFiles,
): Promise<{ code: number | null; answer: Record<string, unknown> }> {
  const child = spawn(
    process.execPath,
    [RELAY_BIN, 'migrate-backend', '--from', from.configFile, '--to', to.configFile, '--json'],
    { env: { ...process.env, ...to.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, answer: JSON.parse(out) as Record<string, unknown> };
}

function auditCount(s: Scene, action: string): number {
  return s.gh.node.auditEntries(s.gh.admin, { action, limit: 10_000 }).length;
}

function inboxEnvelopes(s: Scene): string[] {
  return s.gh.node
    .inbox(s.reader)
    .map((d) => d.envelopeId ?? '')
    .sort();
}

function ids(prepared: readonly Prepared[]): string[] {
  return prepared.map((p) => p.envelope.body.id).sort();
}

beforeEach(async () => {
  tmp = await tempDir('rogatory-backend-switch-');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const world = buildTestWorld({ now: Date.now(), relayUrl: () => url });
  const embeddedDir = join(tmp.path, 'relay-embedded');
  await mkdir(embeddedDir, { recursive: true });
  const embedded = await writeRelayFiles({
    dir: embeddedDir,
    world,
    network: 'wacap',
    port,
    backend: { kind: 'embedded' },
  });
  const relay = await RelayProcess.start(embedded, url);
  const gh = await makeNode({ world, address: GH, dir: join(tmp.path, 'gh'), relayUrl: url });
  const reader = gh.user('reader', 'officer', ['restricted']);
  const s: Scene = {
    world,
    url,
    port,
    dir: tmp.path,
    embedded,
    relay,
    gh,
    reader,
    sender: nodeClient(world, url, SN, 2),
    delivered: [],
    waiting: [],
  };
  scene = s;
  for (let i = 0; i < 4; i++) s.delivered.push(await submitNew(s));
  const first = await gh.node.syncOnce();
  expect(first.items.map((i) => i.outcome.kind)).toEqual([
    'received',
    'received',
    'received',
    'received',
  ]);
  expect(gh.node.status().mailboxCursor).toBe(4);
  for (let i = 0; i < 2; i++) s.waiting.push(await submitNew(s));
  await relay.stop();
  s.relay = undefined;
}, 180_000);

afterEach(async () => {
  const s = scene;
  scene = undefined;
  await s?.relay?.kill();
  await s?.gh.node.close();
  await tmp.remove();
});

describe('relay backend switch: embedded → Redis', () => {
  it('A: after migrate-backend the node gets the waiting items, then new ones, none missing or twice', async () => {
    const s = scene!;
    const target = await redisFiles(s, 'relay-redis', `switch-a-${Date.now()}`);
    const migrated = await migrate(s.embedded, target);
    expect(migrated.code).toBe(0);
    const counts = migrated.answer['counts'] as Record<string, number>;
    expect(counts['envelopes']).toBe(6);
    // The receiver's two waiting envelopes, and the Delivery evidences waiting for the sender.
    expect(counts['mailboxItems']).toBeGreaterThanOrEqual(2);
    expect(counts['expiryTimers']).toBe(2);
    expect(migrated.answer['chunksShared']).toBe(false);
    expect(migrated.answer['chunksCopied']).toBeGreaterThan(0);

    // A second run finds the target in use and writes nothing.
    const again = await migrate(s.embedded, target);
    expect(again.code).toBe(1);
    expect(again.answer).toMatchObject({ error: { code: 'TARGET_NOT_EMPTY' } });

    s.relay = await RelayProcess.start(target, s.url);
    // While a relay answers on the source port, nothing is migrated.
    const running = await migrate(s.embedded, await redisFiles(s, 'relay-redis-2', 'unused'));
    expect(running.answer).toMatchObject({ error: { code: 'RELAY_RUNNING' } });
    expect(running.code).toBe(1);

    s.sender = nodeClient(s.world, s.url, SN, 2);
    const resumed = await s.gh.node.syncOnce();
    expect(resumed.items.map((i) => [i.seq, i.outcome.kind])).toEqual([
      [5, 'received'],
      [6, 'received'],
    ]);
    const fresh = await submitNew(s);
    const later = await s.gh.node.syncOnce();
    expect(later.items.map((i) => [i.seq, i.outcome.kind])).toEqual([[7, 'received']]);

    expect(inboxEnvelopes(s)).toEqual(ids([...s.delivered, ...s.waiting, fresh]));
    expect(auditCount(s, 'dossier.receive')).toBe(7);
    expect(auditCount(s, 'mailbox.reset')).toBe(0);
    expect(s.gh.node.status().mailboxCursor).toBe(7);
  }, 180_000);

  it('B: on a fresh Redis without migration the node detects the new epoch, reads again from 0 and misses nothing', async () => {
    const s = scene!;
    const fresh = await redisFiles(s, 'relay-fresh', `switch-b-${Date.now()}`);
    s.relay = await RelayProcess.start(fresh, s.url);
    s.sender = nodeClient(s.world, s.url, SN, 2);
    const evidencesBefore = auditCount(s, 'evidence.sent');

    // The sender resubmits one dossier the node stored and the two it never got; one more is new.
    await resubmit(s, s.delivered[0]!);
    for (const p of s.waiting) await resubmit(s, p);
    const brandNew = await submitNew(s);

    // The old behaviour: from the stored cursor (4) the new mailbox (seqs 1…4) looks empty.
    const raw = nodeClient(s.world, s.url, GH);
    const fromCursor = await raw.readMailboxPage(4, 100);
    expect(fromCursor.items).toEqual([]);
    const all = await raw.readMailboxPage(0, 100);
    expect(all.items.map((i) => i.seq)).toEqual([1, 2, 3, 4]);

    const report = await s.gh.node.syncOnce();
    expect(report.items.map((i) => [i.seq, i.outcome.kind])).toEqual([
      [1, 'duplicate'],
      [2, 'received'],
      [3, 'received'],
      [4, 'received'],
    ]);
    expect(inboxEnvelopes(s)).toEqual(ids([...s.delivered, ...s.waiting, brandNew]));
    expect(auditCount(s, 'dossier.receive')).toBe(7);
    expect(auditCount(s, 'mailbox.reset')).toBe(1);
    // One Delivery evidence per new dossier; none again for the duplicate.
    expect(auditCount(s, 'evidence.sent') - evidencesBefore).toBe(3);
    expect(s.gh.node.status().mailboxCursor).toBe(4);
    expect((await raw.readMailbox(0, 100)).length).toBe(0);

    // Nothing more comes, and a later sync does not reset again.
    const quiet = await s.gh.node.syncOnce();
    expect(quiet.items).toEqual([]);
    expect(auditCount(s, 'mailbox.reset')).toBe(1);
  }, 180_000);

  it('C: a live subscription (WebSocket) carries on across the switch to a fresh Redis: reset detected, every new item stored', async () => {
    const s = scene!;
    const events: SyncEvent[] = [];
    // Subscribed while the relay is down: it keeps reconnecting, with the cursor 4 of the old epoch.
    // The new relay also has another session secret: the old token is refused and dropped.
    s.gh.node.startSync((e) => events.push(e));
    try {
      const fresh = await redisFiles(s, 'relay-live', `switch-c-${Date.now()}`);
      s.relay = await RelayProcess.start(fresh, s.url);
      s.sender = nodeClient(s.world, s.url, SN, 2);
      for (const p of s.waiting) await resubmit(s, p);
      const brandNew = await submitNew(s);
      const expected = ids([...s.delivered, ...s.waiting, brandNew]);
      await eventually(
        'the three new dossiers stored',
        () => (inboxEnvelopes(s).join() === expected.join() ? true : undefined),
        1200,
      );
      expect(events.filter((e) => e.type === 'mailbox-reset')).toHaveLength(1);
      expect(auditCount(s, 'mailbox.reset')).toBe(1);
      expect(auditCount(s, 'dossier.receive')).toBe(7);
      // Every item of the new mailbox acked: none left for a later sync, the cursor of the new epoch saved.
      await eventually(
        'the acks confirmed',
        async () =>
          (await nodeClient(s.world, s.url, GH).readMailbox(0, 100)).length === 0
            ? true
            : undefined,
        1200,
      );
      await eventually(
        'the cursor of the new epoch',
        () => (s.gh.node.status().mailboxCursor === 3 ? true : undefined),
        1200,
      );
    } finally {
      await s.gh.node.stopSync();
    }
  }, 180_000);
});
