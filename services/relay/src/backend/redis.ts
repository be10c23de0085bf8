/**
 * The production relay backend: state in Redis (AOF on), forwards and the
 * expiry sweep as BullMQ jobs. Several relay instances share one Redis and
 * one prefix; each sees the others' mailbox additions through pub/sub.
 *
 * Who owns what. Lua scripts own the relay's state: the mailbox, the
 * accept transaction, an envelope's open work and its garbage collection
 * (redis-scripts.ts). BullMQ owns scheduling: when a forward runs, retries
 * with backoff (a custom strategy calling the one `backoffDelay`), the
 * lock a worker holds on a running job (renewed while it runs) and the
 * recovery of the jobs of a worker that died (stalled jobs go back to
 * wait). A forward job carries only a deterministic id and the key of its
 * state; a job for finished work finds nothing to do.
 *
 * Expiry is one repeating BullMQ job (a job scheduler, every
 * `expirySweepMs`), not a job per delivery: the accept script puts each
 * mailbox item in the `due` sorted set at its deliverBy and the ack script
 * takes it out, so neither accepting nor acking a local delivery touches
 * BullMQ (a delayed job added and removed per delivery was most of
 * Redis's work per envelope: docs/performance.md). The sweep takes the due
 * items in one script, pushing each one's score to the end of a lease
 * (renewed while expired() runs) so that no concurrent sweep takes it, and
 * to a backoff delay when expired() fails; an item expires at most
 * `expirySweepMs` after its deliverBy.
 *
 * A script cannot add a BullMQ job, so accepting a forward is two steps,
 * and the script leaves a durable marker (`unqueued`) for every forward
 * job the committed work needs:
 *   1. the script commits the envelope, its mailbox items and forward
 *      tasks, and their markers;
 *   2. the jobs are added (one `add` each, ids derived from the task or item,
 *      so adding twice is a no-op while the job exists);
 *   3. the markers are removed.
 * Crash windows:
 *   - before 1 completes: nothing was accepted and no acceptance was
 *     answered; the sender retries.
 *   - between 1 and 2 (or 2 failed): the work is stored, its jobs are not.
 *     The markers outlive the process; `startWorkers` re-adds their jobs
 *     (every instance, at every start), and an instance whose add failed
 *     retries it itself with backoff while it lives. Until then the
 *     forward waits; nothing is lost.
 *   - between 2 and 3: the markers stay, and a later start adds the jobs
 *     again: a no-op while they exist, and a job for a task or item that is
 *     finished meanwhile does nothing (its state says so), so nothing runs
 *     twice.
 *   - during a job: BullMQ's lock runs out (`leaseMs`) and another worker
 *     runs the job again; during an expiry, the item's lease in `due` runs
 *     out (`leaseMs`) and a later sweep reports it again. A handler that succeeded just before the crash
 *     runs again: at least once across a crash, once while processes live;
 *     peers deduplicate by envelope id.
 * "Accepted" is as durable as Redis makes a write: with the default
 * `appendfsync everysec`, a Redis power cut can lose the last second.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Job, Queue, Worker, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { checkedBackend } from './checked.js';
import { BackendRangeError, BackendTypeError, BackendUnavailableError } from './errors.js';
import { SchemaVersionError } from './embedded-schema.js';
import * as lua from './redis-scripts.js';
import { exportRedis, importRedis } from './redis-snapshot.js';
import {
  asBuffer,
  assertNonEmpty,
  assertPositiveInteger,
  retryDelay,
  ignoreError,
  mailboxDedupKey,
  normalizeAccept,
  runForwardAttempt,
  safeNotify,
  toBytes,
} from './shared.js';
import type {
  AcceptInput,
  AcceptResult,
  BackendSnapshot,
  BackendStats,
  BackoffPolicy,
  ChunkUsage,
  ForwardTask,
  ForwardTaskInput,
  ForwardBacklog,
  MailboxBacklog,
  MailboxItem,
  QueueReport,
  RelayBackend,
  StoredEnvelope,
  WorkerHandlers,
} from './types.js';
import { NON_DELIVERY_LIST_MAX } from './types.js';

export interface RedisBackendOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). Give this or `sentinel`. */
  readonly url?: string;
  /**
   * Redis behind Sentinel: the sentinels to ask and the name of the
   * monitored primary. ioredis follows a failover (it asks the sentinels for
   * the new primary and reconnects); BullMQ runs on the same connections.
   */
  readonly sentinel?: {
    readonly sentinels: readonly { readonly host: string; readonly port: number }[];
    readonly name: string;
    /** The data nodes' password (not the sentinels'), if they require one. */
    readonly password?: string;
  };
  /**
   * At least this many replicas must hold an accepted envelope or a stored
   * evidence before the relay answers (Redis WAIT after the write), and
   * with 1 or more, every replica online at the primary must: the Sentinels
   * may promote any replica, so a write held by one replica only is lost
   * when they promote another (and that one resyncs the first). 0
   * (default): no wait.
   */
  readonly replicasToAck?: number;
  /** How long WAIT may take (default 2000 ms); fewer replicas in time: the submission fails UNAVAILABLE and is retried. */
  readonly replicaAckTimeoutMs?: number;
  /**
   * Namespace of this relay's keys, shared by its instances. Also the Redis
   * Cluster hash tag: every key is `{prefix}:...`, so one relay's keys (and
   * its BullMQ queues) live in one slot and multi-key scripts stay legal.
   */
  readonly prefix: string;
  /** Milliseconds since the epoch; decides due-ness, deadlines, windows. Real delays still come from BullMQ. */
  readonly clock?: () => number;
  /** Receives errors of background work and connections. Never given payloads by the backend itself. */
  readonly onError?: (error: unknown) => void;
  /**
   * BullMQ's lock on a running job (default 60 s; renewed every half of it
   * while the job runs) and the interval of its stalled-job check. The
   * jobs of an instance that died run again elsewhere within twice this.
   */
  readonly leaseMs?: number;
  /** How often the expiry sweep runs (default 1 s): an item expires at most this long after its deliverBy. */
  readonly expirySweepMs?: number;
}

const FORWARD_QUEUE = 'forward';
/** Forwards of a network promoted at once when its relay answers again (the rest at the next success). */
const WAKE_BATCH = 500;
const EXPIRY_QUEUE = 'expiry';
const DEFAULT_LEASE_MS = 60_000;
const DEFAULT_EXPIRY_SWEEP_MS = 1_000;
/** The job scheduler (and job name) of the expiry sweep; every instance upserts the same one. */
const SWEEP = 'sweep';
const GC_BATCH = 256;
const SCAN_COUNT = 500;
/** Retries are bounded by each task's deadline, not by a count; BullMQ needs a finite number. */
const UNBOUNDED_ATTEMPTS = 2 ** 31 - 1;
/** A job whose worker died is always recovered: BullMQ would fail it after this many stalls. */
const UNBOUNDED_STALLS = 2 ** 31 - 1;
const BACKOFF_TYPE = 'rogatory';
/** Fail a command after this many reconnect attempts, so /readyz and submissions answer instead of hanging. */
const COMMAND_RETRIES = 2;
const REPLICA_COUNT_MS = 1_000;

/** The replicas in sync with a primary (state=online), from its `INFO replication`; 0 for a replica's own INFO. */
export function onlineReplicasIn(info: string): number {
  return info.split(/\r?\n/).filter((line) => /^slave\d+:.*\bstate=online\b/.test(line)).length;
}
/** Retries of a failed job add while no workers run (with workers, their backoff policy applies). */
const RECOVERY_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 60_000, jitter: 0.5 };

interface ForwardJobData {
  readonly taskId: string;
}

/** The sweep's data is empty; `address`/`seq`: a per-delivery expiry job an earlier relay queued. */
interface ExpiryJobData {
  readonly address?: string;
  readonly seq?: number;
}

/** A job committed work needs, named as its `unqueued` marker names it. */
interface JobNeed {
  readonly taskId: string;
}

/** Opens a backend on `prefix` in the Redis at `url`; rejects if Redis cannot be reached. */
export async function openRedisBackend(options: RedisBackendOptions): Promise<RelayBackend> {
  if ((options.url === undefined) === (options.sentinel === undefined))
    throw new BackendTypeError('give either url or sentinel');
  if (options.url !== undefined) assertNonEmpty(options.url, 'url');
  if (options.sentinel !== undefined) {
    if (options.sentinel.sentinels.length === 0)
      throw new BackendTypeError('sentinel.sentinels must list at least one sentinel');
    assertNonEmpty(options.sentinel.name, 'sentinel.name');
  }
  const replicasToAck = options.replicasToAck ?? 0;
  if (!Number.isInteger(replicasToAck) || replicasToAck < 0 || replicasToAck > 16)
    throw new BackendRangeError('replicasToAck must be an integer from 0 to 16');
  const replicaAckTimeoutMs = options.replicaAckTimeoutMs ?? 2_000;
  assertPositiveInteger(replicaAckTimeoutMs, 'replicaAckTimeoutMs');
  assertNonEmpty(options.prefix, 'prefix');
  if (/[{}]/.test(options.prefix))
    throw new BackendTypeError('prefix must not contain { or }: it becomes the hash tag');
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  assertPositiveInteger(leaseMs, 'leaseMs');
  const expirySweepMs = options.expirySweepMs ?? DEFAULT_EXPIRY_SWEEP_MS;
  assertPositiveInteger(expirySweepMs, 'expirySweepMs');
  const onError = options.onError ?? ignoreError;

  const target = (extra: {
    lazyConnect: boolean;
    maxRetriesPerRequest: number | null;
    enableAutoPipelining?: boolean;
  }): Redis =>
    options.sentinel === undefined
      ? new Redis(options.url ?? '', extra)
      : new Redis({
          sentinels: options.sentinel.sentinels.map((x) => ({ host: x.host, port: x.port })),
          name: options.sentinel.name,
          ...(options.sentinel.password === undefined
            ? {}
            : { password: options.sentinel.password }),
          ...extra,
        });
  const client = target({ ...COMMAND_CLIENT_OPTIONS });
  // BullMQ blocks on its connections and must wait out reconnects rather than fail (its documented requirement).
  const bullClient = target({ lazyConnect: true, maxRetriesPerRequest: null });
  // Without a listener ioredis prints connection errors itself; route them to onError instead.
  client.on('error', onError);
  bullClient.on('error', onError);
  try {
    await Promise.all([client.connect(), bullClient.connect()]);
  } catch (error) {
    client.disconnect();
    bullClient.disconnect();
    throw error;
  }
  try {
    await upgradeRedisLayout(client, options.prefix);
  } catch (error) {
    client.disconnect();
    bullClient.disconnect();
    throw error;
  }
  const backend = new RedisRelayBackend({
    client,
    bullClient,
    prefix: options.prefix,
    clock: options.clock ?? Date.now,
    leaseMs,
    expirySweepMs,
    onError,
    replicasToAck,
    replicaAckTimeoutMs,
  });
  try {
    await backend.watchReplicas();
  } catch (error) {
    await backend.close();
    throw error;
  }
  return checkedBackend(backend);
}

/**
 * Version of the relay's key layout under its prefix, kept in `{prefix}:schema`.
 * 1: the layout before the key existed (upload notes held bare chunk ids);
 * 2: upload notes name their uploader, bytes are charged per identity. Layout 1
 * data is read as it is (a bare upload note belongs to nobody), so going
 * from 1 to 2 rewrites nothing but the version.
 */
export const REDIS_LAYOUT_VERSION = 2;

/** Atomically: refuse a newer layout, otherwise record this one. Answers the version found (0: none). */
const LAYOUT_SCRIPT = `
local found = tonumber(redis.call('GET', KEYS[1]) or '0')
if found == nil then return -1 end
if found <= tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return found
`;

/**
 * Records the layout version at open, creating it on a fresh prefix and
 * moving an older one forward; refuses (SchemaVersionError, nothing
 * written) a prefix a newer relay wrote or whose version is not a number.
 */
async function upgradeRedisLayout(client: Redis, prefix: string): Promise<void> {
  const found = Number(
    await client.eval(LAYOUT_SCRIPT, 1, `{${prefix}}:schema`, String(REDIS_LAYOUT_VERSION)),
  );
  if (found < 0)
    throw new SchemaVersionError(
      'relay Redis layout version is not a number: refusing to use it',
      'SCHEMA_VERSION_INVALID',
    );
  if (found > REDIS_LAYOUT_VERSION)
    throw new SchemaVersionError(
      `relay Redis layout version ${String(found)} is newer than this relay supports (${String(REDIS_LAYOUT_VERSION)})`,
    );
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * The command connection. Auto-pipelining: the commands (scripts above
 * all) issued in one turn of the event loop go to Redis in one pipeline,
 * one socket write for all of them instead of one each (under load, the
 * writes were a tenth of a relay's CPU). Each still answers its own caller,
 * and one failing fails only its caller: a pipeline is not a transaction.
 */
export const COMMAND_CLIENT_OPTIONS = {
  lazyConnect: true,
  maxRetriesPerRequest: COMMAND_RETRIES,
  enableAutoPipelining: true,
} as const;

/** One Lua script, run by hash with a fallback to its source once Redis forgot it (restart, SCRIPT FLUSH). */
export class LuaScript {
  readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Redis, key: string, args: readonly (string | Buffer)[]): Promise<unknown> {
    const commands = client as unknown as ScriptCommands;
    try {
      return await commands.evalshaBuffer(this.sha, 1, key, ...args);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return await commands.evalBuffer(this.source, 1, key, ...args);
    }
  }
}

/**
 * ioredis defines a Buffer-replying variant of every command (its typings
 * omit these two). Not callBuffer: ioredis 6 drops the command name of an
 * auto-pipelined callBuffer.
 */
interface ScriptCommands {
  evalshaBuffer(sha: string, keys: number, ...args: (string | Buffer)[]): Promise<unknown>;
  evalBuffer(source: string, keys: number, ...args: (string | Buffer)[]): Promise<unknown>;
}

const SCRIPTS = {
  accept: new LuaScript(lua.ACCEPT),
  pushEvidence: new LuaScript(lua.PUSH_EVIDENCE),
  readMailbox: new LuaScript(lua.READ_MAILBOX),
  ack: new LuaScript(lua.ACK),
  enqueueForward: new LuaScript(lua.ENQUEUE_FORWARD),
  adoptLegacyOutbox: new LuaScript(lua.ADOPT_LEGACY_OUTBOX),
  finishForward: new LuaScript(lua.FINISH_FORWARD),
  expiryClaim: new LuaScript(lua.EXPIRY_CLAIM),
  expiryFinish: new LuaScript(lua.EXPIRY_FINISH),
  expiryReschedule: new LuaScript(lua.EXPIRY_RESCHEDULE),
  chunkVisible: new LuaScript(lua.CHUNK_VISIBLE),
  chunkReferenced: new LuaScript(lua.CHUNK_REFERENCED),
  claimOnce: new LuaScript(lua.CLAIM_ONCE),
  collectGarbage: new LuaScript(lua.COLLECT_GARBAGE),
  noteUpload: new LuaScript(lua.NOTE_UPLOAD),
  ownedChunks: new LuaScript(lua.OWNED_CHUNKS),
  uploadUsage: new LuaScript(lua.UPLOAD_USAGE),
  mailboxEpoch: new LuaScript(lua.MAILBOX_EPOCH),
};

// ---------------------------------------------------------------------------
// Reply decoding: scripts answer with arrays of Buffers and integers.

function asArray(reply: unknown): unknown[] {
  if (!Array.isArray(reply)) throw new Error('redis backend: unexpected script reply');
  return reply;
}

function asText(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'string') return value;
  throw new Error('redis backend: expected a string reply');
}

function asInteger(value: unknown): number {
  if (typeof value === 'number') return value;
  const parsed = Number(asText(value));
  if (!Number.isSafeInteger(parsed)) throw new Error('redis backend: expected an integer reply');
  return parsed;
}

function asBinary(value: unknown): Uint8Array {
  if (Buffer.isBuffer(value)) return toBytes(value);
  throw new Error('redis backend: expected a binary reply');
}

function parseStrings(json: string): string[] {
  const value: unknown = JSON.parse(json);
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) {
    throw new Error('redis backend: corrupt string list');
  }
  return value;
}

function field(hash: Record<string, Buffer>, name: string): Buffer {
  const value = hash[name];
  if (value === undefined) throw new Error(`redis backend: stored record lacks ${name}`);
  return value;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** BullMQ job ids may not contain ':' nor look like integers; a digest of the task id is neither. */
function forwardJobId(taskId: string): string {
  return `f-${sha256Hex(taskId)}`;
}

function markerOf(need: JobNeed): string {
  return `f:${need.taskId}`;
}

/** A mailbox item's member of the `due` set (seq is all digits, so the first ':' splits). */
function dueMember(address: string, seq: number | string): string {
  return `${seq}:${address}`;
}

// ---------------------------------------------------------------------------

interface Workers {
  readonly forward: Worker<ForwardJobData>;
  readonly expiry: Worker<ExpiryJobData>;
  readonly backoff: BackoffPolicy;
}

class RedisRelayBackend implements RelayBackend {
  readonly kind = 'redis' as const;

  private readonly client: Redis;
  private readonly bullClient: Redis;
  private readonly clock: () => number;
  private readonly leaseMs: number;
  private readonly expirySweepMs: number;
  private readonly onError: (error: unknown) => void;
  private readonly replicasToAck: number;
  private readonly replicaAckTimeoutMs: number;
  /** Replicas online at the primary when last counted (INFO replication): every second and after each reconnect. */
  private onlineReplicas = 0;
  /** Connections of `client` closed so far: a WAIT is worth something only on the connection that wrote. */
  private connectionsClosed = 0;
  private replicaCount: NodeJS.Timeout | undefined;
  /** `{prefix}:`: the hash tag keeps every key of this relay in one cluster slot. */
  private readonly base: string;
  private readonly routingKey: string;
  private readonly channel: string;
  private readonly bullPrefix: string;
  private readonly forwardQueue: Queue<ForwardJobData>;
  private readonly expiryQueue: Queue<ExpiryJobData>;
  private readonly listeners = new Set<(address: string) => void>();
  private subscriber: Promise<Redis> | undefined;
  private workers: Workers | undefined;
  private closing: Promise<void> | undefined;
  /** The in-process retry of a failed job add, while one is due, and the failed tries before it. */
  private recoveryTimer: NodeJS.Timeout | undefined;
  private recoveryFailures = 0;
  private recovering: Promise<void> | undefined;

  constructor(options: {
    readonly client: Redis;
    readonly bullClient: Redis;
    readonly prefix: string;
    readonly clock: () => number;
    readonly leaseMs: number;
    readonly expirySweepMs: number;
    readonly onError: (error: unknown) => void;
    readonly replicasToAck: number;
    readonly replicaAckTimeoutMs: number;
  }) {
    this.replicasToAck = options.replicasToAck;
    this.replicaAckTimeoutMs = options.replicaAckTimeoutMs;
    this.client = options.client;
    this.client.on('close', () => {
      this.connectionsClosed += 1;
    });
    this.bullClient = options.bullClient;
    this.clock = options.clock;
    this.leaseMs = options.leaseMs;
    this.expirySweepMs = options.expirySweepMs;
    this.onError = options.onError;
    this.base = `{${options.prefix}}:`;
    this.routingKey = `${this.base}ns`;
    this.channel = `${this.base}mailbox`;
    this.bullPrefix = `{${options.prefix}}:bull`;
    this.forwardQueue = new Queue<ForwardJobData>(FORWARD_QUEUE, {
      connection: this.bullClient,
      prefix: this.bullPrefix,
    });
    this.expiryQueue = new Queue<ExpiryJobData>(EXPIRY_QUEUE, {
      connection: this.bullClient,
      prefix: this.bullPrefix,
    });
    this.forwardQueue.on('error', this.onError);
    this.expiryQueue.on('error', this.onError);
  }

  private run(script: LuaScript, args: readonly (string | Buffer)[]): Promise<unknown> {
    return script.run(this.client, this.routingKey, [this.base, ...args]);
  }

  /** Options shared by every job: retry until the task itself says stop, keep nothing once finished. */
  private jobOptions(jobId: string, delay: number): JobsOptions {
    return {
      jobId,
      delay: Math.max(0, Math.round(delay)),
      attempts: UNBOUNDED_ATTEMPTS,
      backoff: { type: BACKOFF_TYPE },
      removeOnComplete: true,
      removeOnFail: true,
      // Stack traces could quote handler internals; job records keep only the short reason.
      stackTraceLimit: 0,
    };
  }

  /**
   * Adds the jobs of committed work; adding a job that exists is a no-op
   * (same job id). One `add` each, side by side: BullMQ's addBulk builds an
   * ioredis pipeline, and a pipeline copies every script BullMQ defined on
   * its connection, which cost a quarter of a millisecond per accepted
   * envelope (docs/performance.md, session 11). Callers pass at most a
   * scan's worth (SCAN_COUNT) at once.
   */
  private async queueJobs(needs: readonly JobNeed[]): Promise<void> {
    await Promise.all(
      needs.map((need) =>
        this.forwardQueue.add(
          FORWARD_QUEUE,
          { taskId: need.taskId },
          this.jobOptions(forwardJobId(need.taskId), 0),
        ),
      ),
    );
  }

  /**
   * Steps 2 and 3 after a script committed work with its markers. A failed
   * add is reported, not thrown (the work is durable): the markers stay, and
   * this instance retries adding every marker's job with backoff.
   */
  private async addJobs(needs: readonly JobNeed[]): Promise<void> {
    if (needs.length === 0) return;
    try {
      await this.queueJobs(needs);
    } catch (error) {
      this.onError(error);
      this.scheduleRecovery();
      return;
    }
    // Not awaited: a marker left behind costs one no-op add at the next start.
    this.client.srem(`${this.base}unqueued`, ...needs.map(markerOf)).catch(this.onError);
  }

  private scheduleRecovery(): void {
    if (this.recoveryTimer !== undefined || this.closing !== undefined) return;
    this.recoveryFailures += 1;
    this.recoveryTimer = setTimeout(
      () => {
        this.recoveryTimer = undefined;
        this.recoverJobs().then(
          () => {
            this.recoveryFailures = 0;
          },
          (error: unknown) => {
            this.onError(error);
            this.scheduleRecovery();
          },
        );
      },
      retryDelay(this.workers?.backoff ?? RECOVERY_BACKOFF, this.recoveryFailures),
    );
    this.recoveryTimer.unref();
  }

  /**
   * Adds the job of every `unqueued` marker (see the crash windows above):
   * what a crash between a script and its job add, or a failed add, left.
   * Markers of mailbox items that are gone are dropped without a job.
   */
  private recoverJobs(): Promise<void> {
    this.recovering ??= (async () => {
      try {
        await this.run(SCRIPTS.adoptLegacyOutbox, []);
        let cursor = '0';
        do {
          const [next, markers] = await this.client.sscan(
            `${this.base}unqueued`,
            cursor,
            'COUNT',
            SCAN_COUNT,
          );
          cursor = next;
          await this.recoverMarkers(markers);
        } while (cursor !== '0');
      } finally {
        this.recovering = undefined;
      }
    })();
    return this.recovering;
  }

  private async recoverMarkers(markers: readonly string[]): Promise<void> {
    const needs: JobNeed[] = [];
    const stale: string[] = [];
    for (const marker of markers) {
      if (marker.startsWith('f:')) needs.push({ taskId: marker.slice(2) });
      else stale.push(marker);
    }
    await this.queueJobs(needs);
    const done = [...stale, ...needs.map(markerOf)];
    if (done.length > 0) await this.client.srem(`${this.base}unqueued`, ...done);
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  /**
   * Keeps `onlineReplicas` current while the backend is open: counted now,
   * every second, and whenever the command connection is ready again (after
   * a failover it talks to another primary, with other replicas).
   */
  async watchReplicas(): Promise<void> {
    if (this.replicasToAck === 0) return;
    await this.countOnlineReplicas();
    const recount = (): void => {
      this.countOnlineReplicas().catch(this.onError);
    };
    this.client.on('ready', recount);
    this.replicaCount = setInterval(recount, REPLICA_COUNT_MS);
    this.replicaCount.unref();
  }

  private async countOnlineReplicas(): Promise<number> {
    this.onlineReplicas = onlineReplicasIn(await this.client.info('replication'));
    return this.onlineReplicas;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.replicaCount);
      await this.stopWorkers();
      clearTimeout(this.recoveryTimer);
      this.recoveryTimer = undefined;
      await this.recovering?.catch(() => undefined);
      this.listeners.clear();
      const subscriber = this.subscriber;
      this.subscriber = undefined;
      await Promise.allSettled([
        subscriber?.then((connection) => connection.quit()),
        this.forwardQueue.close(),
        this.expiryQueue.close(),
      ]);
      await Promise.allSettled([this.bullClient.quit(), this.client.quit()]);
    })();
    return this.closing;
  }

  async accept(input: AcceptInput): Promise<AcceptResult> {
    const plan = normalizeAccept(input);
    const { envelope } = input;
    const parties = [...new Set([envelope.sender, ...envelope.recipients])];
    const args: (string | Buffer)[] = [
      envelope.id,
      envelope.hash,
      asBuffer(envelope.bytes),
      envelope.sender,
      JSON.stringify(envelope.recipients),
      JSON.stringify(envelope.chunkIds),
      String(envelope.expiresAt),
      String(envelope.acceptedAt),
      String(input.retainUntil),
      asBuffer(envelope.acceptance),
      String(this.clock()),
      input.uploader ?? '',
      String(envelope.chunkIds.length),
      ...envelope.chunkIds,
      String(parties.length),
      ...parties,
      String(plan.deliveries.length),
      ...plan.deliveries.flatMap((delivery) => [delivery.address, String(delivery.deliverBy)]),
      String(plan.forwards.length),
      ...plan.forwards.flatMap((forward) => [
        forward.taskId,
        forward.network,
        JSON.stringify(forward.recipients),
      ]),
    ];
    const since = this.connectionsClosed;
    const reply = asArray(await this.run(SCRIPTS.accept, args));
    const status = asText(reply[0]);
    if (status === 'conflict') return { status: 'conflict' };
    if (status === 'duplicate') {
      // A retry after a failed WAIT: acknowledge only once the replicas hold it.
      await this.awaitReplicas(since);
      return { status: 'duplicate', acceptance: asBinary(reply[1]) };
    }
    if (status === 'unowned') return { status: 'unowned', chunkIds: reply.slice(1).map(asText) };
    await this.addJobs(plan.forwards.map((forward): JobNeed => ({ taskId: forward.taskId })));
    await this.awaitReplicas(since);
    return { status: 'accepted' };
  }

  /**
   * WAIT until every online replica, and at least `replicasToAck`, have
   * every write of this connection so far (an accept, an evidence pushed or
   * queued for a peer); fewer in time: BackendUnavailableError, and the
   * sender retries (an accept is idempotent by envelope id, an evidence by
   * its dedup key or task id). Fewer than counted may mean that a replica
   * left since the last count (a failover, a replica dropped by the
   * primary): counted again before refusing. `since`: the count of closed
   * connections before the write. A WAIT answered on a later connection
   * (ioredis reconnected, after a failover to another primary, and sent or
   * re-sent it there) counts replicas of nothing this connection wrote, so
   * it confirms nothing: refused.
   */
  private async awaitReplicas(since: number): Promise<void> {
    if (this.replicasToAck === 0) return;
    const wanted = Math.max(this.replicasToAck, this.onlineReplicas);
    const acked = await this.client.wait(wanted, this.replicaAckTimeoutMs);
    if (this.connectionsClosed !== since)
      throw new BackendUnavailableError(
        'the connection to Redis was lost before the replicas confirmed the write',
      );
    if (acked >= wanted) return;
    const now = Math.max(this.replicasToAck, await this.countOnlineReplicas());
    if (acked < now)
      throw new BackendUnavailableError(
        `only ${String(acked)} of ${String(now)} replicas confirmed the write in time`,
      );
  }

  async getEnvelope(id: string): Promise<StoredEnvelope | undefined> {
    const hash = await this.client.hgetallBuffer(`${this.base}env:${id}`);
    if (Object.keys(hash).length === 0) return undefined;
    return {
      id,
      hash: field(hash, 'hash').toString('utf8'),
      bytes: toBytes(field(hash, 'bytes')),
      sender: field(hash, 'sender').toString('utf8'),
      recipients: parseStrings(field(hash, 'recipients').toString('utf8')),
      expiresAt: asInteger(field(hash, 'expiresAt')),
      acceptedAt: asInteger(field(hash, 'acceptedAt')),
      chunkIds: parseStrings(field(hash, 'chunkIds').toString('utf8')),
      acceptance: toBytes(field(hash, 'acceptance')),
    };
  }

  async chunkVisibleTo(chunkId: string, address: string): Promise<boolean> {
    return asInteger(await this.run(SCRIPTS.chunkVisible, [chunkId, address])) === 1;
  }

  async pushEvidence(
    address: string,
    envelopeId: string,
    key: string,
    payload: Uint8Array,
  ): Promise<boolean> {
    const since = this.connectionsClosed;
    const reply = await this.run(SCRIPTS.pushEvidence, [
      address,
      envelopeId,
      mailboxDedupKey('evidence', key),
      asBuffer(payload),
    ]);
    // An evidence is acknowledged to whoever handed it in (a node, a peer relay): on the replicas first.
    await this.awaitReplicas(since);
    return asInteger(reply) === 1;
  }

  async readMailbox(address: string, after: number, limit: number): Promise<MailboxItem[]> {
    const reply = asArray(
      await this.run(SCRIPTS.readMailbox, [address, String(after), String(limit)]),
    );
    const items: MailboxItem[] = [];
    for (let index = 0; index + 4 < reply.length; index += 5) {
      const kind = asText(reply[index + 1]);
      if (kind !== 'envelope' && kind !== 'evidence')
        throw new Error('redis backend: corrupt mailbox item');
      const acceptedAt = asText(reply[index + 4]);
      items.push({
        seq: asInteger(reply[index]),
        kind,
        envelopeId: asText(reply[index + 2]),
        payload: asBinary(reply[index + 3]),
        ...(acceptedAt === '' ? {} : { acceptedAt: asInteger(acceptedAt) }),
      });
    }
    return items;
  }

  async ack(address: string, seqs: readonly number[]): Promise<number> {
    return asInteger(
      await this.run(SCRIPTS.ack, [address, String(this.clock()), ...seqs.map(String)]),
    );
  }

  async enqueueForward(task: ForwardTaskInput): Promise<void> {
    const id = task.id ?? randomUUID();
    const since = this.connectionsClosed;
    const reply = asInteger(
      await this.run(SCRIPTS.enqueueForward, [
        id,
        task.envelopeId,
        task.network,
        asBuffer(task.payload),
        String(task.deadline),
      ]),
    );
    // 2: pending already, with its job or its marker; 0: finished.
    if (reply === 1) await this.addJobs([{ taskId: id }]);
    await this.awaitReplicas(since);
  }

  private async loadTask(taskId: string): Promise<ForwardTask | undefined> {
    const hash = await this.client.hgetallBuffer(`${this.base}task:${taskId}`);
    if (hash['state']?.toString('utf8') !== 'pending') return undefined;
    const kind = field(hash, 'kind').toString('utf8');
    const common = {
      id: taskId,
      envelopeId: field(hash, 'env').toString('utf8'),
      network: field(hash, 'network').toString('utf8'),
      deadline: asInteger(field(hash, 'deadline')),
    };
    if (kind === 'envelope') {
      return {
        kind,
        ...common,
        recipients: parseStrings(field(hash, 'recipients').toString('utf8')),
      };
    }
    if (kind === 'evidence') return { kind, ...common, payload: toBytes(field(hash, 'payload')) };
    throw new Error('redis backend: corrupt forward task');
  }

  private async processForward(handlers: WorkerHandlers, job: Job<ForwardJobData>): Promise<void> {
    const task = await this.loadTask(job.data.taskId);
    // Finished (or forgotten) already: a re-added job for done work does nothing.
    if (task === undefined) return;
    const { result, error } = await runForwardAttempt({
      handlers,
      task,
      attempt: job.attemptsMade + 1,
      clock: this.clock,
    });
    const backlog = `${this.base}backlog:${task.network}`;
    if (result === 'retry') {
      // Noted by deadline, so a later success towards this network promotes it (FINISH_FORWARD, promoteWoken).
      await this.client.zadd(backlog, task.deadline, task.id);
      // Thrown, BullMQ schedules the next attempt through the backoff strategy.
      throw new Error(error ?? 'retry');
    }
    const woken = await this.run(SCRIPTS.finishForward, [
      task.id,
      String(this.clock()),
      result === 'done' ? 'done' : 'gave_up',
      task.network,
      String(result === 'done' ? WAKE_BATCH : 0),
    ]);
    await this.promoteWoken(backlog, woken);
  }

  /**
   * The network's relay answered again: the forwards waiting on their own
   * backoff towards it, popped from its backlog by FINISH_FORWARD (closest
   * deadline first, so ZPOPMIN hands each task to one instance), are
   * promoted now; BullMQ takes promoted jobs in that order. A job not
   * delayed yet (its failed attempt is still being recorded) goes back to
   * the backlog for the next success.
   */
  private async promoteWoken(backlog: string, woken: unknown): Promise<void> {
    if (!Array.isArray(woken)) throw new Error('redis backend: corrupt backlog reply');
    for (let index = 0; index + 1 < woken.length; index += 2) {
      const taskId = asText(woken[index]);
      const job = await Job.fromId(this.forwardQueue, forwardJobId(taskId));
      if (job === undefined) continue;
      try {
        await job.promote();
      } catch {
        if ((await job.getState()) === 'active')
          await this.client.zadd(backlog, asText(woken[index + 1]), taskId);
      }
    }
  }

  /**
   * One run of the expiry sweep: takes the due items (a batch of
   * `concurrency` at a time) and reports each one with expired().
   */
  private async sweepExpiries(handlers: WorkerHandlers, concurrency: number): Promise<void> {
    for (;;) {
      const now = this.clock();
      const reply = asArray(
        await this.run(SCRIPTS.expiryClaim, [
          String(now),
          String(now + this.leaseMs),
          String(concurrency),
        ]),
      );
      const claimed: { address: string; seq: string; envelopeId: string; attempt: number }[] = [];
      for (let index = 0; index + 3 < reply.length; index += 4) {
        claimed.push({
          address: asText(reply[index]),
          seq: asText(reply[index + 1]),
          envelopeId: asText(reply[index + 2]),
          attempt: asInteger(reply[index + 3]),
        });
      }
      if (claimed.length === 0) return;
      const members = new Set(claimed.map((item) => dueMember(item.address, item.seq)));
      // Their lease in `due`, renewed while expired() runs: another sweep takes them only once it ran out.
      const renewal = setInterval(
        () => {
          if (members.size === 0) return;
          this.run(SCRIPTS.expiryReschedule, [
            String(this.clock() + this.leaseMs),
            ...members,
          ]).catch(this.onError);
        },
        Math.max(1, Math.floor(this.leaseMs / 3)),
      );
      renewal.unref();
      try {
        await Promise.all(
          claimed.map(async (item) => {
            const member = dueMember(item.address, item.seq);
            try {
              await handlers.expired({ address: item.address, envelopeId: item.envelopeId });
              members.delete(member);
              await this.run(SCRIPTS.expiryFinish, [item.address, item.seq, String(this.clock())]);
            } catch (error) {
              // expired() failed (or the outcome could not be written): again after the backoff.
              members.delete(member);
              this.onError(error);
              const retryAt = this.clock() + retryDelay(this.workers!.backoff, item.attempt);
              await this.run(SCRIPTS.expiryReschedule, [String(retryAt), member]).catch(
                this.onError,
              );
            }
          }),
        );
      } finally {
        clearInterval(renewal);
      }
      if (claimed.length < concurrency) return;
    }
  }

  /** A per-delivery expiry job an earlier relay queued: its item goes into `due` at its deliverBy. */
  private async adoptExpiryJob(data: ExpiryJobData): Promise<void> {
    if (data.address === undefined || data.seq === undefined) return;
    const deliverBy = await this.client.hget(
      `${this.base}item:${data.address}:${data.seq}`,
      'deliverBy',
    );
    if (deliverBy !== null)
      await this.client.zadd(`${this.base}due`, 'NX', deliverBy, dueMember(data.address, data.seq));
  }

  async startWorkers(
    handlers: WorkerHandlers,
    options: { concurrency: number; backoff: BackoffPolicy },
  ): Promise<void> {
    const backoff = options.backoff;
    const common = {
      connection: this.bullClient,
      prefix: this.bullPrefix,
      concurrency: options.concurrency,
      lockDuration: this.leaseMs,
      stalledInterval: this.leaseMs,
      maxStalledCount: UNBOUNDED_STALLS,
      settings: {
        backoffStrategy: (attemptsMade: number) => retryDelay(backoff, attemptsMade),
      },
    };
    const forward = new Worker<ForwardJobData>(
      FORWARD_QUEUE,
      (job) => this.processForward(handlers, job),
      common,
    );
    // One sweep at a time per instance; the sweep runs `concurrency` expiries at once.
    const expiry = new Worker<ExpiryJobData>(
      EXPIRY_QUEUE,
      (job) =>
        job.name === SWEEP
          ? this.sweepExpiries(handlers, options.concurrency)
          : this.adoptExpiryJob(job.data),
      { ...common, concurrency: 1 },
    );
    forward.on('error', this.onError);
    expiry.on('error', this.onError);
    this.workers = { forward, expiry, backoff };
    try {
      await Promise.all([forward.waitUntilReady(), expiry.waitUntilReady()]);
      // Idempotent: every instance upserts the same scheduler; one job per interval, run by one of them.
      await this.expiryQueue.upsertJobScheduler(
        SWEEP,
        { every: this.expirySweepMs },
        {
          name: SWEEP,
          data: {},
          opts: { removeOnComplete: true, removeOnFail: true, stackTraceLimit: 0 },
        },
      );
      await this.recoverJobs();
    } catch (error) {
      await this.stopWorkers();
      throw error;
    }
  }

  async stopWorkers(): Promise<void> {
    const workers = this.workers;
    if (workers === undefined) return;
    this.workers = undefined;
    // close() lets in-flight jobs finish and takes no new ones.
    await Promise.all([workers.forward.close(), workers.expiry.close()]);
  }

  async subscribe(listener: (address: string) => void): Promise<() => Promise<void>> {
    this.subscriber ??= this.openSubscriber();
    const subscriber = this.subscriber;
    try {
      await subscriber;
    } catch (error) {
      if (this.subscriber === subscriber) this.subscriber = undefined;
      throw error;
    }
    // One entry per subscription, so the same function subscribed twice is unsubscribed once at a time.
    const entry = (address: string): void => {
      listener(address);
    };
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
      return Promise.resolve();
    };
  }

  /** A dedicated connection: once subscribed, a Redis connection can do nothing else. */
  private async openSubscriber(): Promise<Redis> {
    const connection = this.client.duplicate();
    connection.on('error', this.onError);
    connection.on('message', (channel: string, address: string) => {
      if (channel !== this.channel) return;
      for (const listener of this.listeners) safeNotify(listener, address, this.onError);
    });
    try {
      await connection.subscribe(this.channel);
    } catch (error) {
      connection.disconnect();
      throw error;
    }
    return connection;
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    const now = this.clock();
    const reply = await this.run(SCRIPTS.claimOnce, [
      key,
      String(now),
      String(now + ttlMs),
      String(ttlMs),
    ]);
    return asInteger(reply) === 1;
  }

  async noteUpload(
    chunkId: string,
    at: number,
    owner: { readonly identity: string; readonly size: number },
  ): Promise<void> {
    await this.run(SCRIPTS.noteUpload, [chunkId, owner.identity, String(owner.size), String(at)]);
  }

  async ownedChunks(identity: string, chunkIds: readonly string[], at: number): Promise<string[]> {
    if (chunkIds.length === 0) return [];
    const reply = asArray(await this.run(SCRIPTS.ownedChunks, [identity, String(at), ...chunkIds]));
    return reply.map(asText);
  }

  async uploadUsage(
    identity: string,
    chunkId: string,
  ): Promise<ChunkUsage & { readonly owned: boolean }> {
    const [pending, referenced, owned] = asArray(
      await this.run(SCRIPTS.uploadUsage, [identity, chunkId]),
    ).map(asInteger);
    return { pendingBytes: pending ?? 0, referencedBytes: referenced ?? 0, owned: owned === 1 };
  }

  async usage(): Promise<ReadonlyMap<string, ChunkUsage>> {
    const fields = await this.client.hgetall(`${this.base}usage`);
    const usage = new Map<string, { pendingBytes: number; referencedBytes: number }>();
    for (const [field, value] of Object.entries(fields)) {
      const identity = field.slice(2);
      const entry = usage.get(identity) ?? { pendingBytes: 0, referencedBytes: 0 };
      if (field.startsWith('p:')) entry.pendingBytes = Number(value);
      else if (field.startsWith('r:')) entry.referencedBytes = Number(value);
      else continue;
      usage.set(identity, entry);
    }
    return usage;
  }

  async chunkReferenced(chunkId: string, now: number, graceMs: number): Promise<boolean> {
    return (
      asInteger(await this.run(SCRIPTS.chunkReferenced, [chunkId, String(now - graceMs)])) === 1
    );
  }

  async collectGarbage(
    now: number,
    options: { readonly chunkRetentionMs: number; readonly uploadGraceMs: number },
  ): Promise<{ readonly envelopes: number; readonly orphanChunks: readonly string[] }> {
    const orphans = new Set<string>();
    let envelopes = 0;
    for (;;) {
      const reply = asArray(
        await this.run(SCRIPTS.collectGarbage, [
          String(now),
          String(now - options.chunkRetentionMs),
          String(now - options.uploadGraceMs),
          String(GC_BATCH),
        ]),
      );
      const [released, uploads, deleted] = reply.slice(0, 3).map(asInteger);
      envelopes += deleted ?? 0;
      for (const chunkId of reply.slice(3)) orphans.add(asText(chunkId));
      if (released !== GC_BATCH && uploads !== GC_BATCH && deleted !== GC_BATCH) break;
    }
    return { envelopes, orphanChunks: [...orphans] };
  }

  async stats(): Promise<BackendStats> {
    const [mailboxItems, forwardPending, envelopes] = await Promise.all([
      this.client.get(`${this.base}mbcount`),
      this.client.get(`${this.base}forwarding`),
      this.client.scard(`${this.base}envs`),
    ]);
    return {
      mailboxItems: Number(mailboxItems ?? 0),
      forwardPending: Number(forwardPending ?? 0),
      envelopes,
    };
  }

  /** Every key of this namespace matching `pattern` (after the base), by SCAN. */
  private async scanKeys(pattern: string): Promise<string[]> {
    const match = `${this.base.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}${pattern}`;
    const keys = new Set<string>();
    let cursor = '0';
    do {
      const [next, batch] = await this.client.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
      cursor = next;
      for (const key of batch) keys.add(key);
    } while (cursor !== '0');
    return [...keys];
  }

  /** acceptedAt of each stored envelope among `ids` (absent: record gone). */
  private async acceptedTimes(ids: Iterable<string>): Promise<Map<string, number>> {
    const list = [...new Set(ids)];
    const times = await Promise.all(
      list.map((id) => this.client.hget(`${this.base}env:${id}`, 'acceptedAt')),
    );
    const out = new Map<string, number>();
    list.forEach((id, index) => {
      const value = times[index];
      if (value !== null && value !== undefined) out.set(id, Number(value));
    });
    return out;
  }

  async queueReport(): Promise<QueueReport> {
    const now = this.clock();
    const minOf = (values: readonly number[]): number | null =>
      values.length === 0 ? null : Math.min(...values);

    // Mailboxes: every unacked item of every `mb:<address>`.
    const mbKeys = await this.scanKeys('mb:*');
    const boxes = await Promise.all(
      mbKeys.map(async (key) => {
        const address = key.slice(`${this.base}mb:`.length);
        const seqs = await this.client.zrange(key, '0', '-1');
        const items = await Promise.all(
          seqs.map((seq) => this.client.hmget(`${this.base}item:${address}:${seq}`, 'kind', 'env')),
        );
        return { address, seqs, items };
      }),
    );
    const pendingMembers = new Set<string>();
    const envIds: string[] = [];
    for (const box of boxes) {
      for (const [index, [kind, env]] of box.items.entries()) {
        if (env) envIds.push(env);
        if (kind === 'envelope') pendingMembers.add(dueMember(box.address, box.seqs[index]!));
      }
    }

    // Forward tasks: every `task:<id>` still pending, with its BullMQ job's attempts and delay.
    const taskKeys = await this.scanKeys('task:*');
    const tasks = (
      await Promise.all(
        taskKeys.map(async (key) => {
          const taskId = key.slice(`${this.base}task:`.length);
          const [kind, env, network, state] = await this.client.hmget(
            key,
            'kind',
            'env',
            'network',
            'state',
          );
          if (state !== 'pending' || !network) return undefined;
          const jobId = forwardJobId(taskId);
          const [attempts, delayedScore, activeAt] = await Promise.all([
            this.client.hget(`${this.bullPrefix}:${FORWARD_QUEUE}:${jobId}`, 'atm'),
            this.client.zscore(`${this.bullPrefix}:${FORWARD_QUEUE}:delayed`, jobId),
            this.client.lpos(`${this.bullPrefix}:${FORWARD_QUEUE}:active`, jobId),
          ]);
          // Running now: no next attempt to announce (as the embedded backend's running tasks).
          if (activeAt !== null)
            return {
              kind,
              env,
              network,
              attempts: attempts === null ? 0 : Number(attempts),
              nextAt: undefined,
            };
          return {
            kind,
            env,
            network,
            attempts: attempts === null ? 0 : Number(attempts),
            // BullMQ's delayed score is the due time times 0x1000 plus a counter; not delayed: due now.
            nextAt: delayedScore === null ? now : Math.floor(Number(delayedScore) / 0x1000),
          };
        }),
      )
    ).filter((task) => task !== undefined);
    for (const task of tasks) if (task.env) envIds.push(task.env);

    // Non-deliveries: `due` members past their time still in a mailbox, and those an expiry took out (`expiring`).
    const due = await this.client.zrange(`${this.base}due`, '0', '-1', 'WITHSCORES');
    const overdue: { address: string; envelopeId: string; deliverBy: number }[] = [];
    const taken: { address: string; seq: string }[] = [];
    for (let i = 0; i < due.length; i += 2) {
      const member = due[i]!;
      const score = Number(due[i + 1]);
      const split = member.indexOf(':');
      const seq = member.slice(0, split);
      const address = member.slice(split + 1);
      if (!pendingMembers.has(member)) taken.push({ address, seq });
      else if (score <= now) taken.push({ address, seq });
    }
    const takenItems = await Promise.all(
      taken.map(({ address, seq }) =>
        this.client.hmget(`${this.base}item:${address}:${seq}`, 'env', 'deliverBy', 'state'),
      ),
    );
    taken.forEach(({ address, seq }, index) => {
      const [env, deliverBy, state] = takenItems[index]!;
      if (!env || deliverBy === null || deliverBy === undefined) return;
      // A member still in its mailbox counts once its deliverBy passed; one taken out is being expired.
      const inMailbox = pendingMembers.has(dueMember(address, seq));
      if (inMailbox || state === 'expiring')
        overdue.push({ address, envelopeId: env, deliverBy: Number(deliverBy) });
    });
    overdue.sort((a, b) => a.deliverBy - b.deliverBy || a.address.localeCompare(b.address));

    const accepted = await this.acceptedTimes(envIds);
    const acceptedOf = (ids: readonly (string | null | undefined)[]): number[] =>
      ids.flatMap((id) => {
        const at = id ? accepted.get(id) : undefined;
        return at === undefined ? [] : [at];
      });

    const mailboxes: MailboxBacklog[] = boxes
      .filter((box) => box.seqs.length > 0)
      .map((box) => ({
        address: box.address,
        items: box.seqs.length,
        envelopes: box.items.filter(([kind]) => kind === 'envelope').length,
        evidences: box.items.filter(([kind]) => kind === 'evidence').length,
        oldestAcceptedAt: minOf(acceptedOf(box.items.map(([, env]) => env))),
      }))
      .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));

    const byNetwork = new Map<string, typeof tasks>();
    for (const task of tasks) {
      const list = byNetwork.get(task.network) ?? [];
      list.push(task);
      byNetwork.set(task.network, list);
    }
    const forwards: ForwardBacklog[] = [...byNetwork.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([network, list]) => ({
        network,
        tasks: list.length,
        envelopes: list.filter((t) => t.kind === 'envelope').length,
        evidences: list.filter((t) => t.kind === 'evidence').length,
        oldestAcceptedAt: minOf(acceptedOf(list.map((t) => t.env))),
        nextAttemptAt: minOf(list.flatMap((t) => (t.nextAt === undefined ? [] : [t.nextAt]))),
        maxAttempts: Math.max(0, ...list.map((t) => t.attempts)),
      }));

    return {
      at: now,
      mailboxes,
      forwards,
      nonDeliveries: {
        count: overdue.length,
        oldestDeliverBy: overdue[0]?.deliverBy ?? null,
        items: overdue.slice(0, NON_DELIVERY_LIST_MAX),
      },
    };
  }

  async mailboxEpoch(): Promise<string> {
    return asText(await this.run(SCRIPTS.mailboxEpoch, [randomUUID()]));
  }

  async renewMailboxEpoch(): Promise<string> {
    const epoch = randomUUID();
    const since = this.connectionsClosed;
    await this.client.set(`${this.base}epoch`, epoch);
    await this.awaitReplicas(since);
    return epoch;
  }

  async exportState(): Promise<BackendSnapshot> {
    return exportRedis(this.client, this.base, await this.mailboxEpoch());
  }

  importState(snapshot: BackendSnapshot): Promise<void> {
    return importRedis(this.client, this.base, snapshot, this.clock());
  }
}
