/**
 * The production relay backend: state in Redis (AOF on), the forwarding
 * queue and the expiry timers in BullMQ. Several relay instances share one
 * Redis and one prefix; each sees the others' mailbox additions through
 * pub/sub.
 *
 * Crash safety uses an outbox. Every state change is one Lua script, and
 * the scripts that create work also record it: pending forwards in the
 * `pending` set, expiry timers in the `timers` zset. BullMQ jobs are added
 * only afterwards, under deterministic job ids, so adding one twice is a
 * no-op. A crash between the script and `queue.add` loses nothing:
 * `startWorkers` (and then a periodic pass) re-adds a job for every pending
 * forward and every timer coming due (expiry jobs exist only for timers due
 * within two reconcile intervals: see EXPIRY_HORIZON_INTERVALS). Jobs are removed when they complete or fail, so a job
 * id can be used again; the scripts, not job state, say whether work is
 * left, and a job for finished work does nothing.
 *
 * First attempts skip the queue: the instance that commits a forward task
 * (an accepted envelope, an evidence to pass on) attempts it at once in
 * process, under a lease it took in the same script (`lease`, renewed while
 * the attempt runs). Only a failed attempt becomes a BullMQ job (delayed by
 * the backoff); reconciliation skips leased tasks, and picks up the task of
 * an instance that died mid-attempt once its lease ran out. A BullMQ job
 * costs Redis about five scripts; most forwards succeed at once, so this
 * halves Redis's work per hop.
 *
 * Handlers run once per task while processes live (BullMQ locks a job to
 * one worker). Across a crash they run at least once: a process that dies
 * after a handler succeeded but before the outcome was written leaves the
 * job to run again, which peers absorb by deduplicating on envelope id.
 * "Accepted" is as durable as Redis makes a write: with the default
 * `appendfsync everysec`, a Redis power cut can lose the last second.
 */
import { createHash, randomUUID } from 'node:crypto';
import { DelayedError, Queue, Worker, type Job, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import * as lua from './redis-scripts.js';
import {
  asBuffer,
  assertBackoffPolicy,
  assertConcurrency,
  assertNonEmpty,
  assertNonNegativeInteger,
  assertPositiveInteger,
  assertTime,
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
  BackendStats,
  BackoffPolicy,
  ChunkUsage,
  ForwardTask,
  ForwardTaskInput,
  MailboxItem,
  RelayBackend,
  StoredEnvelope,
  WorkerHandlers,
} from './types.js';

export interface RedisBackendOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  readonly url: string;
  /**
   * Namespace of this relay's keys, shared by its instances. Also the Redis
   * Cluster hash tag: every key is `{prefix}:...`, so one relay's keys (and
   * its BullMQ queues) live in one slot and multi-key scripts stay legal.
   */
  readonly prefix: string;
  /** Milliseconds since the epoch; decides due-ness, deadlines, windows. Real delays still come from BullMQ. */
  readonly clock?: () => number;
  /**
   * How often running workers re-add jobs for outbox entries that lost theirs,
   * and add the expiry jobs of timers due within two intervals (default 60 s).
   */
  readonly reconcileIntervalMs?: number;
  /** Receives errors of background work and connections. Never given payloads by the backend itself. */
  readonly onError?: (error: unknown) => void;
  /**
   * How long an in-process first attempt holds its task before a reconcile
   * pass may queue a job for it (default 60 s; renewed every third of it
   * while the attempt runs). After a crash, the tasks it held are picked up
   * within this plus one reconcile interval.
   */
  readonly leaseMs?: number;
}

const FORWARD_QUEUE = 'forward';
const EXPIRY_QUEUE = 'expiry';
const DEFAULT_RECONCILE_INTERVAL_MS = 60_000;
const DEFAULT_LEASE_MS = 60_000;
/** In-process first attempts at once, per worker slot; beyond it new tasks wait for jobs. */
const IN_PROCESS_PER_SLOT = 2;
/**
 * Expiry jobs exist only for timers due within this many reconcile
 * intervals: a mailbox item usually lives days and is acked within
 * seconds, so adding (and on ack removing) a delayed job for each would cost
 * two BullMQ scripts per delivery for nothing. A reconcile pass adds the jobs
 * of timers coming due; with two intervals ahead, every timer gets its job at
 * least one interval before it fires.
 */
const EXPIRY_HORIZON_INTERVALS = 2;
const GC_BATCH = 256;
const SCAN_COUNT = 500;
/** Retries are bounded by each task's deadline, not by a count; BullMQ needs a finite number. */
const UNBOUNDED_ATTEMPTS = 2 ** 31 - 1;
const BACKOFF_TYPE = 'rogatory';
/** Fail a command after this many reconnect attempts, so /readyz and submissions answer instead of hanging. */
const COMMAND_RETRIES = 2;

interface ForwardJobData {
  readonly taskId: string;
  /** Attempts made before the job existed (the in-process first attempt). */
  readonly priorAttempts?: number;
}

interface ExpiryJobData {
  readonly address: string;
  readonly seq: number;
}

/** Opens a backend on `prefix` in the Redis at `url`; rejects if Redis cannot be reached. */
export async function openRedisBackend(options: RedisBackendOptions): Promise<RelayBackend> {
  assertNonEmpty(options.url, 'url');
  assertNonEmpty(options.prefix, 'prefix');
  if (/[{}]/.test(options.prefix))
    throw new TypeError('prefix must not contain { or }: it becomes the hash tag');
  const reconcileIntervalMs = options.reconcileIntervalMs ?? DEFAULT_RECONCILE_INTERVAL_MS;
  assertPositiveInteger(reconcileIntervalMs, 'reconcileIntervalMs');
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  assertPositiveInteger(leaseMs, 'leaseMs');
  const onError = options.onError ?? ignoreError;

  const client = new Redis(options.url, {
    lazyConnect: true,
    maxRetriesPerRequest: COMMAND_RETRIES,
  });
  // BullMQ blocks on its connections and must wait out reconnects rather than fail (its documented requirement).
  const bullClient = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: null });
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
  return new RedisRelayBackend({
    client,
    bullClient,
    prefix: options.prefix,
    clock: options.clock ?? Date.now,
    reconcileIntervalMs,
    leaseMs,
    onError,
  });
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/** One Lua script, run by hash with a fallback to its source once Redis forgot it (restart, SCRIPT FLUSH). */
export class LuaScript {
  readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Redis, key: string, args: readonly (string | Buffer)[]): Promise<unknown> {
    try {
      return await client.callBuffer('EVALSHA', [this.sha, 1, key, ...args]);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return await this.runSource(client, key, args);
    }
  }

  runSource(client: Redis, key: string, args: readonly (string | Buffer)[]): Promise<unknown> {
    return client.callBuffer('EVAL', [this.source, 1, key, ...args]);
  }
}

interface QueuedScript {
  readonly script: LuaScript;
  readonly key: string;
  readonly args: readonly (string | Buffer)[];
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Scripts called in the same turn of the event loop go to Redis in one pipeline: one socket
 * write for all of them instead of one each (under load, the writes were a
 * tenth of a relay's CPU). Each script is still atomic on its own and
 * answers its own caller; a pipeline is not a transaction, so one failing
 * fails only its caller.
 */
export class ScriptBatcher {
  private queue: QueuedScript[] = [];

  constructor(private readonly client: Redis) {}

  run(script: LuaScript, key: string, args: readonly (string | Buffer)[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      // setImmediate, not nextTick: every request and message handled in this turn of the event loop joins.
      if (this.queue.length === 0) setImmediate(() => this.flush());
      this.queue.push({ script, key, args, resolve, reject });
    });
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 1) {
      const only = batch[0]!;
      only.script.run(this.client, only.key, only.args).then(only.resolve, only.reject);
      return;
    }
    const pipeline = this.client.pipeline();
    for (const item of batch)
      pipeline.callBuffer('EVALSHA', [item.script.sha, 1, item.key, ...item.args]);
    pipeline.exec().then(
      (results) => {
        batch.forEach((item, index) => {
          const [error, value] = results?.[index] ?? [
            new Error('redis backend: no pipeline reply'),
            null,
          ];
          if (error === null) item.resolve(value);
          else if (isNoScript(error))
            item.script.runSource(this.client, item.key, item.args).then(item.resolve, item.reject);
          else item.reject(error);
        });
      },
      (error: unknown) => {
        for (const item of batch) item.reject(error);
      },
    );
  }
}

const SCRIPTS = {
  accept: new LuaScript(lua.ACCEPT),
  pushEvidence: new LuaScript(lua.PUSH_EVIDENCE),
  readMailbox: new LuaScript(lua.READ_MAILBOX),
  ack: new LuaScript(lua.ACK),
  enqueueForward: new LuaScript(lua.ENQUEUE_FORWARD),
  finishForward: new LuaScript(lua.FINISH_FORWARD),
  expiryBegin: new LuaScript(lua.EXPIRY_BEGIN),
  expiryFinish: new LuaScript(lua.EXPIRY_FINISH),
  chunkVisible: new LuaScript(lua.CHUNK_VISIBLE),
  chunkReferenced: new LuaScript(lua.CHUNK_REFERENCED),
  claimOnce: new LuaScript(lua.CLAIM_ONCE),
  collectGarbage: new LuaScript(lua.COLLECT_GARBAGE),
  noteUpload: new LuaScript(lua.NOTE_UPLOAD),
  ownedChunks: new LuaScript(lua.OWNED_CHUNKS),
  uploadUsage: new LuaScript(lua.UPLOAD_USAGE),
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

function expiryJobId(address: string, seq: number): string {
  return `x-${sha256Hex(`${seq}:${address}`)}`;
}

/** Inverse of the scripts' timerMember: `<seq>:<address>`; seq is all digits, so the first ':' splits. */
function parseTimerMember(member: string): { address: string; seq: number } | undefined {
  const colon = member.indexOf(':');
  const seq = Number(member.slice(0, colon));
  if (colon < 1 || !Number.isSafeInteger(seq)) return undefined;
  return { address: member.slice(colon + 1), seq };
}

// ---------------------------------------------------------------------------

interface Workers {
  readonly forward: Worker<ForwardJobData>;
  readonly expiry: Worker<ExpiryJobData>;
  readonly reconcileTimer: NodeJS.Timeout;
  readonly renewTimer: NodeJS.Timeout;
  readonly handlers: WorkerHandlers;
  readonly backoff: BackoffPolicy;
  /** In-process first attempts allowed at once. */
  readonly inProcessLimit: number;
  reconciling: Promise<void> | undefined;
}

class RedisRelayBackend implements RelayBackend {
  readonly kind = 'redis' as const;

  private readonly client: Redis;
  private readonly scripts: ScriptBatcher;
  private readonly bullClient: Redis;
  private readonly clock: () => number;
  private readonly reconcileIntervalMs: number;
  private readonly leaseMs: number;
  /** In-process first attempts running now, by task id. */
  private readonly attempts = new Map<string, Promise<void>>();
  private readonly expiryHorizonMs: number;
  private readonly onError: (error: unknown) => void;
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
  private stopping: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: {
    readonly client: Redis;
    readonly bullClient: Redis;
    readonly prefix: string;
    readonly clock: () => number;
    readonly reconcileIntervalMs: number;
    readonly leaseMs: number;
    readonly onError: (error: unknown) => void;
  }) {
    this.client = options.client;
    this.scripts = new ScriptBatcher(options.client);
    this.bullClient = options.bullClient;
    this.clock = options.clock;
    this.reconcileIntervalMs = options.reconcileIntervalMs;
    this.leaseMs = options.leaseMs;
    this.expiryHorizonMs = EXPIRY_HORIZON_INTERVALS * options.reconcileIntervalMs;
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
    return this.scripts.run(script, this.routingKey, [this.base, ...args]);
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

  private async addForwardJobs(taskIds: readonly string[]): Promise<void> {
    if (taskIds.length === 0) return;
    await this.forwardQueue.addBulk(
      taskIds.map((taskId) => ({
        name: FORWARD_QUEUE,
        data: { taskId },
        opts: this.jobOptions(forwardJobId(taskId), 0),
      })),
    );
  }

  private async addExpiryJobs(
    timers: readonly { address: string; seq: number; deliverBy: number }[],
  ): Promise<void> {
    if (timers.length === 0) return;
    const now = this.clock();
    await this.expiryQueue.addBulk(
      timers.map(({ address, seq, deliverBy }) => ({
        name: EXPIRY_QUEUE,
        data: { address, seq },
        opts: this.jobOptions(expiryJobId(address, seq), deliverBy - now),
      })),
    );
  }

  /**
   * Adds jobs for work whose state is already durable. A failure here is
   * reported, not thrown: the outbox still lists the work, and the next
   * reconciliation adds the job.
   */
  private async addJobsAfterCommit(add: () => Promise<void>): Promise<void> {
    try {
      await add();
    } catch (error) {
      this.onError(error);
    }
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.stopWorkers();
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
    const inProcess = this.mayAttemptInProcess(plan.forwards.length);
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
      inProcess ? String(this.clock() + this.leaseMs) : '',
    ];
    const reply = asArray(await this.run(SCRIPTS.accept, args));
    const status = asText(reply[0]);
    if (status === 'conflict') return { status: 'conflict' };
    if (status === 'duplicate') return { status: 'duplicate', acceptance: asBinary(reply[1]) };
    if (status === 'unowned') return { status: 'unowned', chunkIds: reply.slice(1).map(asText) };
    const seqs = reply.slice(1).map(asInteger);
    const horizon = this.clock() + this.expiryHorizonMs;
    await this.addJobsAfterCommit(async () => {
      // Later timers get their jobs from a reconcile pass (see EXPIRY_HORIZON_INTERVALS).
      await this.addExpiryJobs(
        plan.deliveries
          .map((delivery, index) => ({
            address: delivery.address,
            seq: seqs[index]!,
            deliverBy: delivery.deliverBy,
          }))
          .filter((timer) => timer.deliverBy <= horizon),
      );
      if (!inProcess) await this.addForwardJobs(plan.forwards.map((forward) => forward.taskId));
    });
    if (inProcess) {
      for (const forward of plan.forwards) {
        this.attemptInProcess({
          kind: 'envelope',
          id: forward.taskId,
          envelopeId: envelope.id,
          network: forward.network,
          recipients: forward.recipients,
          deadline: envelope.expiresAt,
        });
      }
    }
    return { status: 'accepted' };
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
    assertNonEmpty(address, 'address');
    assertNonEmpty(envelopeId, 'envelopeId');
    assertNonEmpty(key, 'key');
    const reply = await this.run(SCRIPTS.pushEvidence, [
      address,
      envelopeId,
      mailboxDedupKey('evidence', key),
      asBuffer(payload),
    ]);
    return asInteger(reply) === 1;
  }

  async readMailbox(address: string, after: number, limit: number): Promise<MailboxItem[]> {
    assertTime(after, 'after');
    assertNonNegativeInteger(limit, 'limit');
    if (limit === 0) return [];
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
    const valid = [...new Set(seqs)].filter((seq) => Number.isSafeInteger(seq) && seq > 0);
    if (valid.length === 0) return 0;
    const reply = asArray(
      await this.run(SCRIPTS.ack, [address, String(this.clock()), ...valid.map(String)]),
    );
    // The expiry jobs of acked envelopes would find nothing to do; removing them only saves memory,
    // so a failure (a job that is running right now is locked) is of no consequence. Only timers
    // due within the horizon can have a job.
    const horizon = this.clock() + this.expiryHorizonMs;
    for (let index = 1; index + 1 < reply.length; index += 2) {
      if (asInteger(reply[index + 1]) > horizon) continue;
      const seq = asInteger(reply[index]);
      this.expiryQueue.remove(expiryJobId(address, seq)).catch(() => undefined);
    }
    return asInteger(reply[0]);
  }

  async enqueueForward(task: ForwardTaskInput): Promise<void> {
    if ((task.kind as string) !== 'evidence')
      throw new TypeError('enqueueForward takes evidence tasks');
    assertNonEmpty(task.envelopeId, 'envelopeId');
    assertNonEmpty(task.network, 'network');
    assertTime(task.deadline, 'deadline');
    const id = task.id ?? randomUUID();
    assertNonEmpty(id, 'id');
    const inProcess = this.mayAttemptInProcess(1);
    const reply = asInteger(
      await this.run(SCRIPTS.enqueueForward, [
        id,
        task.envelopeId,
        task.network,
        asBuffer(task.payload),
        String(task.deadline),
        inProcess ? String(this.clock() + this.leaseMs) : '',
      ]),
    );
    // 2: pending already, under a lease or a job of its own (reconciliation sees to the rest).
    if (reply !== 1) return;
    if (inProcess) {
      this.attemptInProcess({
        kind: 'evidence',
        id,
        envelopeId: task.envelopeId,
        network: task.network,
        payload: task.payload,
        deadline: task.deadline,
      });
    } else {
      await this.addJobsAfterCommit(() => this.addForwardJobs([id]));
    }
  }

  /** True when this instance runs workers and has room for `count` more in-process attempts. */
  private mayAttemptInProcess(count: number): boolean {
    const workers = this.workers;
    return (
      count > 0 && workers !== undefined && this.attempts.size + count <= workers.inProcessLimit
    );
  }

  /**
   * The first attempt of a task this instance just committed under a lease:
   * done or given up, it is finished; failed, it becomes a BullMQ job
   * delayed by the first backoff. Should this fail too (Redis gone), the
   * task stays pending and a reconcile pass queues it once the lease ran out.
   */
  private attemptInProcess(task: ForwardTask): void {
    const workers = this.workers;
    if (workers === undefined) return;
    const attempt = (async () => {
      // After the caller's continuation of this commit (it may keep what the handler then needs in memory),
      // and together with the other tasks committed in this turn (the forwarder batches per peer).
      await new Promise((resolve) => setImmediate(resolve));
      const { result } = await runForwardAttempt({
        handlers: workers.handlers,
        task,
        attempt: 1,
        clock: this.clock,
      });
      if (result === 'retry') {
        await this.forwardQueue.add(
          FORWARD_QUEUE,
          { taskId: task.id, priorAttempts: 1 },
          this.jobOptions(forwardJobId(task.id), retryDelay(workers.backoff, 1)),
        );
        return;
      }
      await this.run(SCRIPTS.finishForward, [
        task.id,
        String(this.clock()),
        result === 'done' ? 'done' : 'gave_up',
      ]);
    })()
      .catch(this.onError)
      .finally(() => this.attempts.delete(task.id));
    this.attempts.set(task.id, attempt);
  }

  /** Push the leases of the attempts in flight forward, so no reconcile pass queues them meanwhile. */
  private renewLeases(): void {
    if (this.attempts.size === 0) return;
    const until = this.clock() + this.leaseMs;
    // XX: a task finished meanwhile (lease removed) is not given one again.
    const members = [...this.attempts.keys()].flatMap((id) => [until, id]);
    this.client.zadd(`${this.base}lease`, 'XX', ...members).catch(this.onError);
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
      attempt: (job.data.priorAttempts ?? 0) + job.attemptsMade + 1,
      clock: this.clock,
    });
    // Thrown, BullMQ schedules the next attempt through the backoff strategy.
    if (result === 'retry') throw new Error(error ?? 'retry');
    await this.run(SCRIPTS.finishForward, [
      task.id,
      String(this.clock()),
      result === 'done' ? 'done' : 'gave_up',
    ]);
  }

  private async processExpiry(
    handlers: WorkerHandlers,
    job: Job<ExpiryJobData>,
    token?: string,
  ): Promise<void> {
    const { address, seq } = job.data;
    const reply = asArray(
      await this.run(SCRIPTS.expiryBegin, [address, String(seq), String(this.clock())]),
    );
    const outcome = asInteger(reply[0]);
    if (outcome === 0) return;
    if (outcome === 2) {
      // Fired before deliverBy by this relay's clock (clock skew between instances, or an injected clock).
      const wait = Math.max(1, asInteger(reply[1]) - this.clock());
      await job.moveToDelayed(Date.now() + wait, token);
      throw new DelayedError();
    }
    await handlers.expired({ address, envelopeId: asText(reply[1]) });
    await this.run(SCRIPTS.expiryFinish, [address, String(seq), String(this.clock())]);
  }

  async startWorkers(
    handlers: WorkerHandlers,
    options: { concurrency: number; backoff: BackoffPolicy },
  ): Promise<void> {
    assertConcurrency(options.concurrency);
    assertBackoffPolicy(options.backoff);
    if (this.closing !== undefined) throw new Error('backend is closed');
    // Let a stop in progress finish first, so old and new workers never exceed the concurrency together.
    await this.stopping;
    if (this.workers !== undefined) throw new Error('workers already started');
    const backoff = options.backoff;
    const common = {
      connection: this.bullClient,
      prefix: this.bullPrefix,
      concurrency: options.concurrency,
      settings: {
        backoffStrategy: (
          attemptsMade: number,
          _type?: string,
          _error?: Error,
          job?: { data: unknown },
        ) =>
          retryDelay(
            backoff,
            attemptsMade + ((job?.data as ForwardJobData | undefined)?.priorAttempts ?? 0),
          ),
      },
    };
    const forward = new Worker<ForwardJobData>(
      FORWARD_QUEUE,
      (job) => this.processForward(handlers, job),
      common,
    );
    const expiry = new Worker<ExpiryJobData>(
      EXPIRY_QUEUE,
      (job, token) => this.processExpiry(handlers, job, token),
      common,
    );
    forward.on('error', this.onError);
    expiry.on('error', this.onError);
    const reconcileTimer = setInterval(() => {
      this.reconcileInBackground();
    }, this.reconcileIntervalMs);
    reconcileTimer.unref();
    const renewTimer = setInterval(
      () => {
        this.renewLeases();
      },
      Math.max(1, Math.floor(this.leaseMs / 3)),
    );
    renewTimer.unref();
    const workers: Workers = {
      forward,
      expiry,
      reconcileTimer,
      renewTimer,
      handlers,
      backoff,
      inProcessLimit: options.concurrency * IN_PROCESS_PER_SLOT,
      reconciling: undefined,
    };
    this.workers = workers;
    try {
      await Promise.all([forward.waitUntilReady(), expiry.waitUntilReady()]);
      await this.reconcile();
    } catch (error) {
      await this.stopWorkers();
      throw error;
    }
  }

  private reconcileInBackground(): void {
    const workers = this.workers;
    if (workers === undefined || workers.reconciling !== undefined) return;
    workers.reconciling = this.reconcile()
      .catch(this.onError)
      .finally(() => {
        workers.reconciling = undefined;
      });
  }

  /** The tasks among `taskIds` no instance holds a live lease on. */
  private async unleased(taskIds: readonly string[]): Promise<string[]> {
    if (taskIds.length === 0) return [];
    const scores = await this.client.zmscore(`${this.base}lease`, ...taskIds);
    const now = this.clock();
    return taskIds.filter((_, index) => {
      const until = scores[index];
      return until === null || until === undefined || Number(until) <= now;
    });
  }

  /**
   * Re-adds a job for every pending forward no instance holds a lease on,
   * and for every timer due within the horizon; entries whose job exists
   * are no-ops (same job id).
   */
  private async reconcile(): Promise<void> {
    let cursor = '0';
    do {
      const [next, taskIds] = await this.client.sscan(
        `${this.base}pending`,
        cursor,
        'COUNT',
        SCAN_COUNT,
      );
      cursor = next;
      await this.addForwardJobs(await this.unleased(taskIds));
    } while (cursor !== '0');
    // Timers coming due within the horizon, earliest first, a page at a time.
    const horizon = this.clock() + this.expiryHorizonMs;
    for (let offset = 0; ; offset += SCAN_COUNT) {
      const flat = await this.client.zrangebyscore(
        `${this.base}timers`,
        '-inf',
        horizon,
        'WITHSCORES',
        'LIMIT',
        offset,
        SCAN_COUNT,
      );
      const timers: { address: string; seq: number; deliverBy: number }[] = [];
      for (let index = 0; index + 1 < flat.length; index += 2) {
        const member = parseTimerMember(flat[index]!);
        if (member !== undefined) timers.push({ ...member, deliverBy: Number(flat[index + 1]) });
      }
      await this.addExpiryJobs(timers);
      if (flat.length < 2 * SCAN_COUNT) break;
    }
  }

  async stopWorkers(): Promise<void> {
    const workers = this.workers;
    if (workers === undefined) {
      // A stop already under way: callers still wait for in-flight work.
      await this.stopping;
      return;
    }
    this.workers = undefined;
    clearInterval(workers.reconcileTimer);
    // close() lets in-flight jobs finish and takes no new ones; in-process attempts finish too.
    const stopping = Promise.all([
      workers.forward.close(),
      workers.expiry.close(),
      workers.reconciling,
      Promise.all(this.attempts.values()),
    ]).then(() => {
      clearInterval(workers.renewTimer);
    });
    this.stopping = stopping;
    try {
      await stopping;
    } finally {
      if (this.stopping === stopping) this.stopping = undefined;
    }
  }

  async subscribe(listener: (address: string) => void): Promise<() => Promise<void>> {
    if (this.closing !== undefined) throw new Error('backend is closed');
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
    assertPositiveInteger(ttlMs, 'ttlMs');
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
    assertTime(at, 'at');
    assertNonEmpty(owner.identity, 'owner.identity');
    assertNonNegativeInteger(owner.size, 'owner.size');
    await this.run(SCRIPTS.noteUpload, [chunkId, owner.identity, String(owner.size), String(at)]);
  }

  async ownedChunks(identity: string, chunkIds: readonly string[], at: number): Promise<string[]> {
    assertNonEmpty(identity, 'identity');
    assertTime(at, 'at');
    const distinct = [...new Set(chunkIds)];
    if (distinct.length === 0) return [];
    const reply = asArray(await this.run(SCRIPTS.ownedChunks, [identity, String(at), ...distinct]));
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
    assertTime(now, 'now');
    assertNonNegativeInteger(options.chunkRetentionMs, 'chunkRetentionMs');
    assertNonNegativeInteger(options.uploadGraceMs, 'uploadGraceMs');
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
      this.client.scard(`${this.base}pending`),
      this.client.scard(`${this.base}envs`),
    ]);
    return { mailboxItems: Number(mailboxItems ?? 0), forwardPending, envelopes };
  }
}
