/**
 * Crash test: the relay PROCESS (the real CLI) is killed with SIGKILL in
 * the middle of a load of 2,000 envelopes, then restarted on the same data.
 * Every envelope whose SubmissionAcceptance reached its sender must be
 * delivered exactly once to each of its recipients; nothing may be
 * delivered that was not submitted, and nothing may stay behind.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRelayClientError, type RelayClient } from '@rogatory/client';
import {
  canonicalBytes,
  envelopeHash,
  ready,
  toHex,
  verifyEvidence,
  type Envelope,
  type Evidence,
} from '@rogatory/protocol';
import {
  DEFAULT_WORLD,
  buildTestWorld,
  sealTestDossier,
  type TestWorld,
} from '@rogatory/protocol/testing';
import {
  freePort,
  startRedis,
  startS3,
  type RedisServer,
  type S3Server,
} from '@rogatory/test-services';
import { afterAll, describe, expect, it } from 'vitest';
import { openEmbeddedBackend } from '../src/backend/embedded.js';
import { openRedisBackend } from '../src/backend/redis.js';
import type { BackendStats } from '../src/backend/types.js';
import { inPool, nodeClient, smallAttachment } from '../src/testing/relay-helpers.js';
import {
  RelayProcess,
  writeRelayFiles,
  type ProcessBackend,
} from '../src/testing/relay-process.js';

const TOTAL = 2000;
/** SIGKILL once this many acceptances came back (40 %). */
const KILL_AFTER = 800;
const IN_FLIGHT = 16;

const redisInstalled =
  spawnSync(process.env['REDIS_SERVER'] ?? 'redis-server', ['--version']).status === 0;

/** The default world with more authorities in wacap: more mailboxes, more senders. */
const SPECS = DEFAULT_WORLD.map((spec) =>
  spec.network === 'wacap'
    ? {
        ...spec,
        authorities: [
          ...spec.authorities,
          { local: 'ci-mj', name: "Ministry of Justice of Côte d'Ivoire (test)", country: 'CI' },
          { local: 'ml-mj', name: 'Ministry of Justice of Mali (test)', country: 'ML' },
        ],
      }
    : spec,
);
const AUTHORITIES = ['sn-moj@wacap', 'ng-agf@wacap', 'gh-ago@wacap', 'ci-mj@wacap', 'ml-mj@wacap'];

interface Planned {
  readonly envelope: Envelope;
  readonly sealed: Uint8Array;
}

interface CrashReport {
  readonly acceptedBeforeKill: number;
  readonly failedInFlight: number;
  readonly resubmittedInFlight: number;
  /** Failed in flight, not re-submitted, yet delivered: committed just before the kill, acceptance lost with the connection. */
  readonly committedWithoutAnswer: number;
  readonly acceptedAfterRestart: number;
  readonly retriesAnsweredIdentically: number;
  readonly delivered: number;
  readonly duplicates: number;
}

/** Plan the load: who sends what to whom, sealed, deterministic in shape. */
async function planLoad(
  world: TestWorld,
): Promise<{ planned: Planned[]; attachment: Awaited<ReturnType<typeof smallAttachment>> }> {
  const attachment = await smallAttachment();
  const planned: Planned[] = [];
  const now = Date.now();
  for (let i = 0; i < TOTAL; i++) {
    const from = AUTHORITIES[i % AUTHORITIES.length]!;
    const others = AUTHORITIES.filter((a) => a !== from);
    const to =
      i % 3 === 0
        ? [others[i % others.length]!, others[(i + 1) % others.length]!]
        : [others[(i * 7) % others.length]!];
    const r = sealTestDossier(world, {
      from,
      to,
      attachments: [attachment.manifest],
      createdAt: now,
    });
    planned.push({ envelope: r.envelope, sealed: r.sealed });
  }
  return { planned, attachment };
}

/** Read and ack every mailbox until all are empty; counts per (recipient, envelope id). */
async function drain(
  clients: ReadonlyMap<string, RelayClient>,
  planned: ReadonlyMap<string, Planned>,
): Promise<{ counts: Map<string, number>; foreign: string[] }> {
  const counts = new Map<string, number>();
  const foreign: string[] = [];
  for (const [address, client] of clients) {
    for (let round = 0; round < 100; round++) {
      const items = await client.readMailbox(0, 1000);
      if (items.length === 0) break;
      for (const item of items) {
        if (item.kind !== 'envelope') continue;
        const id = item.envelope.body.id;
        const original = planned.get(id);
        if (
          !original ||
          envelopeHash(original.envelope) !== envelopeHash(item.envelope) ||
          !original.envelope.body.recipients.includes(address)
        )
          foreign.push(`${address}:${id}`);
        counts.set(`${address} ${id}`, (counts.get(`${address} ${id}`) ?? 0) + 1);
      }
      await client.ack(items.map((i) => i.seq));
    }
    expect(await client.readMailbox(0, 10), `mailbox of ${address} after draining`).toEqual([]);
  }
  return { counts, foreign };
}

async function runCrash(options: {
  dir: string;
  backend: ProcessBackend;
  processes: RelayProcess[];
  stats: () => Promise<BackendStats>;
}): Promise<CrashReport> {
  await ready();
  const port = await freePort();
  const url = `http://127.0.0.1:${String(port)}`;
  const world = buildTestWorld({
    now: Date.now(),
    specs: SPECS,
    relayUrl: (n) => (n === 'wacap' ? url : 'http://127.0.0.1:9'),
  });
  const trust = world.trustFor('wacap');
  const files = await writeRelayFiles({
    dir: options.dir,
    world,
    network: 'wacap',
    port,
    backend: options.backend,
  });
  const first = await RelayProcess.start(files, url);
  options.processes.push(first);

  // Clients: without retries for the load (an acceptance is known exactly), with a few for everything else.
  const strict = new Map(AUTHORITIES.map((a) => [a, nodeClient(world, url, a, 0)] as const));
  const patient = new Map(AUTHORITIES.map((a) => [a, nodeClient(world, url, a, 3)] as const));

  const { planned, attachment } = await planLoad(world);
  const byId = new Map(planned.map((p) => [p.envelope.body.id, p] as const));
  // Every sender uploads the attachment it lists: a chunk is referenced only by whoever uploaded it.
  for (const sender of patient.values())
    for (const c of attachment.chunks) await sender.putChunk(c.id, c.bytes, c.bytes.length);
  await inPool(planned, IN_FLIGHT, async (p) => {
    await patient
      .get(p.envelope.body.sender)!
      .putChunk(p.envelope.body.dossier.id, p.sealed, p.sealed.length);
  });

  // The load, killed with SIGKILL once KILL_AFTER acceptances came back.
  const accepted = new Map<string, Evidence>();
  const failedInFlight: string[] = [];
  const unexpected: string[] = [];
  let killed = false;
  // Other workers set `killed` while this one awaits: read it through a call, not a narrowed variable.
  const wasKilled = (): boolean => killed;
  let next = 0;
  await inPool(
    Array.from({ length: IN_FLIGHT }, (_, i) => i),
    IN_FLIGHT,
    async () => {
      while (!wasKilled() && next < planned.length) {
        const p = planned[next++]!;
        try {
          accepted.set(
            p.envelope.body.id,
            await strict.get(p.envelope.body.sender)!.submit(p.envelope),
          );
          if (!wasKilled() && accepted.size >= KILL_AFTER) {
            killed = true;
            first.killNow();
          }
        } catch (err) {
          if (
            wasKilled() &&
            isRelayClientError(err) &&
            (err.code === 'NETWORK' || err.code === 'TIMEOUT')
          )
            failedInFlight.push(p.envelope.body.id);
          else
            unexpected.push(
              `${p.envelope.body.id}: ${isRelayClientError(err) ? err.code : String(err)}`,
            );
        }
      }
    },
  );
  expect(unexpected).toEqual([]);
  expect(killed).toBe(true);
  expect((await first.exited).signal).toBe('SIGKILL');
  const acceptedBeforeKill = accepted.size;
  const attempted = next;

  // Restart on the same configuration and data.
  const second = await RelayProcess.start(files, url);
  options.processes.push(second);

  // A retry of an envelope accepted before the crash gets the very same acceptance.
  const before = [...accepted].filter((_, i) => i % 16 === 0);
  await inPool(before, 8, async ([id, acceptance]) => {
    const again = await patient
      .get(byId.get(id)!.envelope.body.sender)!
      .submit(byId.get(id)!.envelope);
    expect(toHex(canonicalBytes(again)), `retry of ${id}`).toBe(toHex(canonicalBytes(acceptance)));
  });

  // Half of the submissions cut off by the kill are sent again: accepted (or recognised) now.
  const resubmitted = failedInFlight.filter((_, i) => i % 2 === 0);
  const unknown = new Set(failedInFlight.filter((_, i) => i % 2 === 1));
  const rest = [...resubmitted.map((id) => byId.get(id)!), ...planned.slice(attempted)];
  let acceptedAfterRestart = 0;
  await inPool(rest, IN_FLIGHT, async (p) => {
    accepted.set(p.envelope.body.id, await patient.get(p.envelope.body.sender)!.submit(p.envelope));
    acceptedAfterRestart++;
  });
  for (const [id, evidence] of accepted) {
    const b = verifyEvidence(byId.get(id)!.envelope, evidence, trust).body;
    expect(b.kind === 'submission-acceptance' && b.issuer === 'relay@wacap', id).toBe(true);
  }

  // Chunks acknowledged before the crash are all there: every later submission needed them, and a sample reads back intact.
  const sample = [...accepted.keys()].filter((_, i) => i % 100 === 0);
  for (const id of sample) {
    const p = byId.get(id)!;
    expect(
      await patient.get(p.envelope.body.recipients[0]!)!.getChunkBytes(p.envelope.body.dossier.id),
    ).toEqual(p.sealed);
  }

  // Every mailbox, read and acked until empty.
  const { counts, foreign } = await drain(patient, byId);
  expect(foreign).toEqual([]);
  const problems: string[] = [];
  let delivered = 0;
  let duplicates = 0;
  for (const [id] of accepted) {
    for (const r of byId.get(id)!.envelope.body.recipients) {
      const n = counts.get(`${r} ${id}`) ?? 0;
      delivered += Math.min(n, 1);
      if (n !== 1) problems.push(`${id} delivered ${String(n)} time(s) to ${r}`);
      if (n > 1) duplicates += n - 1;
    }
  }
  let committedWithoutAnswer = 0;
  for (const key of counts.keys()) {
    const id = key.split(' ')[1]!;
    if (accepted.has(id)) continue;
    if (!unknown.has(id))
      problems.push(`${key}: delivered but never accepted nor cut off in flight`);
  }
  for (const id of unknown) {
    // Accepted atomically or not at all: every recipient once, or none.
    const seen = byId.get(id)!.envelope.body.recipients.map((r) => counts.get(`${r} ${id}`) ?? 0);
    if (seen.some((n) => n > 1) || (seen.some((n) => n === 1) && seen.some((n) => n === 0)))
      problems.push(`${id} (cut off) delivered ${seen.join('/')}`);
    if (seen.every((n) => n === 1)) committedWithoutAnswer++;
  }
  expect(problems).toEqual([]);

  // Nothing left in the store's mailboxes once the relay has stopped.
  await second.stop();
  const stats = await options.stats();
  expect(stats.mailboxItems).toBe(0);
  expect(stats.envelopes).toBe(accepted.size + committedWithoutAnswer);

  return {
    acceptedBeforeKill,
    failedInFlight: failedInFlight.length,
    resubmittedInFlight: resubmitted.length,
    committedWithoutAnswer,
    acceptedAfterRestart,
    retriesAnsweredIdentically: before.length,
    delivered,
    duplicates,
  };
}

function report(name: string, r: CrashReport): void {
  console.log(
    `${name}: accepted before SIGKILL ${String(r.acceptedBeforeKill)}, cut off in flight ${String(r.failedInFlight)} (re-sent ${String(r.resubmittedInFlight)}, ` +
      `committed without an answer ${String(r.committedWithoutAnswer)}), accepted after restart ${String(r.acceptedAfterRestart)}, ` +
      `retries answered identically ${String(r.retriesAnsweredIdentically)}, deliveries ${String(r.delivered)}, duplicates ${String(r.duplicates)}`,
  );
}

describe('relay process killed mid-load, embedded backend (SQLite file + chunk directory)', () => {
  const processes: RelayProcess[] = [];
  let dir: string | undefined;
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('delivers every accepted envelope exactly once after a restart', async () => {
    dir = await mkdtemp(join(tmpdir(), 'rogatory-crash-'));
    const file = join(dir, 'data', 'relay.db');
    const r = await runCrash({
      dir,
      backend: { kind: 'embedded' },
      processes,
      stats: async () => {
        const backend = await openEmbeddedBackend({ file });
        try {
          return await backend.stats();
        } finally {
          await backend.close();
        }
      },
    });
    report('embedded', r);
    expect(r.acceptedBeforeKill).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(r.duplicates).toBe(0);
  }, 240_000);
});

describe.runIf(redisInstalled)(
  'relay process killed mid-load, Redis backend (redis-server + s3rver chunks)',
  () => {
    const processes: RelayProcess[] = [];
    let dir: string | undefined;
    let redis: RedisServer | undefined;
    let s3: S3Server | undefined;
    afterAll(async () => {
      await Promise.all(processes.map((p) => p.kill()));
      await redis?.stop();
      await s3?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('delivers every accepted envelope exactly once after a restart', async () => {
      dir = await mkdtemp(join(tmpdir(), 'rogatory-crash-'));
      redis = await startRedis();
      s3 = await startS3();
      const prefix = `test-${randomBytes(6).toString('hex')}`;
      const url = redis.url;
      const r = await runCrash({
        dir,
        backend: {
          kind: 'redis',
          url,
          prefix,
          s3: {
            endPoint: s3.endPoint,
            port: s3.port,
            bucket: `crash-${randomBytes(4).toString('hex')}`,
            accessKey: s3.accessKey,
            secretKey: s3.secretKey,
          },
        },
        processes,
        stats: async () => {
          const backend = await openRedisBackend({ url, prefix });
          try {
            return await backend.stats();
          } finally {
            await backend.close();
          }
        },
      });
      report('redis', r);
      expect(r.acceptedBeforeKill).toBeGreaterThanOrEqual(KILL_AFTER);
      expect(r.duplicates).toBe(0);
    }, 240_000);
  },
);
