/**
 * The one wrapper both backends are handed out in (`openEmbeddedBackend`,
 * `openRedisBackend`): it checks every argument before a backend sees it,
 * and owns the lifecycle, so the two implementations hold only their
 * storage logic and cannot differ on either.
 *
 * Lifecycle: open → (startWorkers ⇄ stopWorkers)* → close.
 * - A second `startWorkers` while workers run is refused (WORKERS_RUNNING);
 *   one called while a stop is under way waits for the stop first, so old
 *   and new workers never exceed the concurrency together.
 * - `close` stops the workers (their handlers may still use the backend),
 *   then refuses new calls (BACKEND_CLOSED), waits for the calls in flight
 *   and releases the store. It is idempotent: every call gets the same
 *   promise.
 * Malformed arguments are refused with BACKEND_INPUT_INVALID (a TypeError
 * or RangeError subclass) before anything is stored.
 */
import { BackendError, BackendTypeError } from './errors.js';
import {
  assertAcceptInput,
  assertBackoffPolicy,
  assertBytes,
  assertConcurrency,
  assertNonEmpty,
  assertNonNegativeInteger,
  assertPositiveInteger,
  assertString,
  assertStrings,
  assertTime,
} from './shared.js';
import type {
  AcceptInput,
  AcceptResult,
  BackendSnapshot,
  BackendStats,
  BackoffPolicy,
  ChunkUsage,
  ForwardTaskInput,
  MailboxItem,
  QueueReport,
  RelayBackend,
  StoredEnvelope,
  WorkerHandlers,
} from './types.js';

export function checkedBackend(inner: RelayBackend): RelayBackend {
  return new CheckedBackend(inner);
}

class CheckedBackend implements RelayBackend {
  readonly kind: RelayBackend['kind'];
  /** Calls in flight, and what `close` waits on once it refuses new ones. */
  private inFlight = 0;
  private drained: (() => void) | undefined;
  /** Made once, not per call (a closure per call showed in profiles). */
  private readonly settle = (): void => {
    this.inFlight -= 1;
    if (this.inFlight === 0) this.drained?.();
  };
  private refusing = false;
  private closing: Promise<void> | undefined;
  private workersRunning = false;
  private stopping: Promise<void> | undefined;

  constructor(private readonly inner: RelayBackend) {
    this.kind = inner.kind;
  }

  /** Checks, then runs `operation` on the inner backend, tracked so that close waits for it. */
  private call<T>(check: () => void, operation: () => Promise<T>): Promise<T> {
    if (this.refusing) return Promise.reject(new BackendError('BACKEND_CLOSED'));
    let running: Promise<T>;
    try {
      check();
      running = operation();
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error('backend call failed'));
    }
    this.inFlight += 1;
    running.then(this.settle, this.settle);
    return running;
  }

  private isClosing(): boolean {
    return this.closing !== undefined;
  }

  ping(): Promise<void> {
    return this.call(
      () => undefined,
      () => this.inner.ping(),
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.stopWorkers();
      this.refusing = true;
      if (this.inFlight > 0)
        await new Promise<void>((resolve) => {
          this.drained = resolve;
        });
      await this.inner.close();
    })();
    return this.closing;
  }

  accept(input: AcceptInput): Promise<AcceptResult> {
    return this.call(
      () => {
        assertAcceptInput(input);
      },
      () => this.inner.accept(input),
    );
  }

  getEnvelope(id: string): Promise<StoredEnvelope | undefined> {
    return this.call(
      () => {
        assertString(id, 'id');
      },
      () => this.inner.getEnvelope(id),
    );
  }

  chunkVisibleTo(chunkId: string, address: string): Promise<boolean> {
    return this.call(
      () => {
        assertString(chunkId, 'chunkId');
        assertString(address, 'address');
      },
      () => this.inner.chunkVisibleTo(chunkId, address),
    );
  }

  pushEvidence(
    address: string,
    envelopeId: string,
    key: string,
    payload: Uint8Array,
  ): Promise<boolean> {
    return this.call(
      () => {
        assertNonEmpty(address, 'address');
        assertNonEmpty(envelopeId, 'envelopeId');
        assertNonEmpty(key, 'key');
        assertBytes(payload, 'payload');
      },
      () => this.inner.pushEvidence(address, envelopeId, key, payload),
    );
  }

  readMailbox(address: string, after: number, limit: number): Promise<MailboxItem[]> {
    return this.call(
      () => {
        assertString(address, 'address');
        assertTime(after, 'after');
        assertNonNegativeInteger(limit, 'limit');
      },
      () => (limit === 0 ? Promise.resolve([]) : this.inner.readMailbox(address, after, limit)),
    );
  }

  ack(address: string, seqs: readonly number[]): Promise<number> {
    return this.call(
      () => {
        assertString(address, 'address');
        if (!Array.isArray(seqs)) throw new BackendTypeError('seqs must be an array');
      },
      // Seqs that cannot name an item (not integers, not positive) are unknown, hence ignored.
      () => {
        const known = [...new Set(seqs)].filter((seq) => Number.isSafeInteger(seq) && seq > 0);
        return known.length === 0 ? Promise.resolve(0) : this.inner.ack(address, known);
      },
    );
  }

  enqueueForward(task: ForwardTaskInput): Promise<void> {
    return this.call(
      () => {
        if ((task.kind as string) !== 'evidence')
          throw new BackendTypeError('enqueueForward takes evidence tasks');
        if (task.id !== undefined) assertNonEmpty(task.id, 'id');
        assertNonEmpty(task.envelopeId, 'envelopeId');
        assertNonEmpty(task.network, 'network');
        assertBytes(task.payload, 'payload');
        assertTime(task.deadline, 'deadline');
      },
      () => this.inner.enqueueForward(task),
    );
  }

  async startWorkers(
    handlers: WorkerHandlers,
    options: { concurrency: number; backoff: BackoffPolicy },
  ): Promise<void> {
    assertConcurrency(options.concurrency);
    assertBackoffPolicy(options.backoff);
    if (this.isClosing()) throw new BackendError('BACKEND_CLOSED');
    await this.stopping;
    if (this.workersRunning) throw new BackendError('WORKERS_RUNNING');
    // A close may have begun while a stop was awaited.
    if (this.isClosing()) throw new BackendError('BACKEND_CLOSED');
    this.workersRunning = true;
    try {
      await this.inner.startWorkers(handlers, options);
    } catch (error) {
      this.workersRunning = false;
      throw error;
    }
  }

  async stopWorkers(): Promise<void> {
    if (!this.workersRunning) {
      // A stop already under way: callers still wait for in-flight work.
      await this.stopping;
      return;
    }
    this.workersRunning = false;
    const stopping = this.inner.stopWorkers();
    this.stopping = stopping;
    try {
      await stopping;
    } finally {
      if (this.stopping === stopping) this.stopping = undefined;
    }
  }

  subscribe(listener: (address: string) => void): Promise<() => Promise<void>> {
    return this.call(
      () => {
        if (typeof listener !== 'function')
          throw new BackendTypeError('listener must be a function');
      },
      () => this.inner.subscribe(listener),
    );
  }

  claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return this.call(
      () => {
        assertNonEmpty(key, 'key');
        assertPositiveInteger(ttlMs, 'ttlMs');
      },
      () => this.inner.claimOnce(key, ttlMs),
    );
  }

  noteUpload(
    chunkId: string,
    at: number,
    owner: { readonly identity: string; readonly size: number },
  ): Promise<void> {
    return this.call(
      () => {
        assertNonEmpty(chunkId, 'chunkId');
        assertTime(at, 'at');
        assertNonEmpty(owner.identity, 'owner.identity');
        assertNonNegativeInteger(owner.size, 'owner.size');
      },
      () => this.inner.noteUpload(chunkId, at, owner),
    );
  }

  ownedChunks(identity: string, chunkIds: readonly string[], at: number): Promise<string[]> {
    return this.call(
      () => {
        assertNonEmpty(identity, 'identity');
        for (const chunkId of chunkIds) assertString(chunkId, 'chunkIds[]');
        assertTime(at, 'at');
      },
      () => this.inner.ownedChunks(identity, [...new Set(chunkIds)], at),
    );
  }

  uploadUsage(
    identity: string,
    chunkId: string,
  ): Promise<ChunkUsage & { readonly owned: boolean }> {
    return this.call(
      () => {
        assertString(identity, 'identity');
        assertString(chunkId, 'chunkId');
      },
      () => this.inner.uploadUsage(identity, chunkId),
    );
  }

  usage(): Promise<ReadonlyMap<string, ChunkUsage>> {
    return this.call(
      () => undefined,
      () => this.inner.usage(),
    );
  }

  chunkReferenced(chunkId: string, now: number, graceMs: number): Promise<boolean> {
    return this.call(
      () => {
        assertString(chunkId, 'chunkId');
        assertTime(now, 'now');
        assertNonNegativeInteger(graceMs, 'graceMs');
      },
      () => this.inner.chunkReferenced(chunkId, now, graceMs),
    );
  }

  collectGarbage(
    now: number,
    options: { readonly chunkRetentionMs: number; readonly uploadGraceMs: number },
  ): Promise<{ readonly envelopes: number; readonly orphanChunks: readonly string[] }> {
    return this.call(
      () => {
        assertTime(now, 'now');
        assertNonNegativeInteger(options.chunkRetentionMs, 'chunkRetentionMs');
        assertNonNegativeInteger(options.uploadGraceMs, 'uploadGraceMs');
      },
      () => this.inner.collectGarbage(now, options),
    );
  }

  stats(): Promise<BackendStats> {
    return this.call(
      () => undefined,
      () => this.inner.stats(),
    );
  }

  queueReport(): Promise<QueueReport> {
    return this.call(
      () => undefined,
      () => this.inner.queueReport(),
    );
  }

  mailboxEpoch(): Promise<string> {
    return this.call(
      () => undefined,
      () => this.inner.mailboxEpoch(),
    );
  }

  renewMailboxEpoch(): Promise<string> {
    return this.call(
      () => undefined,
      () => this.inner.renewMailboxEpoch(),
    );
  }

  exportState(): Promise<BackendSnapshot> {
    return this.call(
      () => undefined,
      () => this.inner.exportState(),
    );
  }

  importState(snapshot: BackendSnapshot): Promise<void> {
    return this.call(
      () => {
        assertSnapshot(snapshot);
      },
      () => this.inner.importState(snapshot),
    );
  }
}

function assertOneOf(value: string, allowed: readonly string[], name: string): void {
  if (!allowed.includes(value))
    throw new BackendTypeError(`${name} must be one of ${allowed.join(', ')}`);
}

/** The shape checks of a snapshot to import; messages name the field, never a value. */
function assertSnapshot(snapshot: BackendSnapshot): void {
  assertNonEmpty(snapshot.epoch, 'snapshot.epoch');
  for (const seq of snapshot.mailboxSeqs) {
    assertNonEmpty(seq.address, 'mailboxSeqs.address');
    assertPositiveInteger(seq.lastSeq, 'mailboxSeqs.lastSeq');
  }
  for (const envelope of snapshot.envelopes) {
    assertAcceptInput({
      envelope,
      deliveries: [],
      forwards: [],
      retainUntil: envelope.retainUntil,
      ...(envelope.uploader === undefined ? {} : { uploader: envelope.uploader }),
    });
    assertNonNegativeInteger(envelope.heldBytes, 'envelopes.heldBytes');
    if (envelope.doneAt !== undefined) assertTime(envelope.doneAt, 'envelopes.doneAt');
    if (envelope.releasedAt !== undefined) assertTime(envelope.releasedAt, 'envelopes.releasedAt');
  }
  for (const item of snapshot.items) {
    assertNonEmpty(item.address, 'items.address');
    assertPositiveInteger(item.seq, 'items.seq');
    assertNonEmpty(item.envelopeId, 'items.envelopeId');
    assertNonEmpty(item.dedupKey, 'items.dedupKey');
    assertOneOf(item.kind, ['envelope', 'evidence'], 'items.kind');
    assertOneOf(item.state, ['pending', 'expiring', 'acked'], 'items.state');
    if (item.payload !== undefined) assertBytes(item.payload, 'items.payload');
    if (item.kind === 'evidence' && item.state === 'pending' && item.payload === undefined)
      throw new BackendTypeError('items.payload is required for a pending evidence item');
    if (item.deliverBy !== undefined) assertTime(item.deliverBy, 'items.deliverBy');
    if (item.dueAt !== undefined) assertTime(item.dueAt, 'items.dueAt');
    assertNonNegativeInteger(item.attempt, 'items.attempt');
  }
  for (const task of snapshot.tasks) {
    assertNonEmpty(task.id, 'tasks.id');
    assertNonEmpty(task.envelopeId, 'tasks.envelopeId');
    assertNonEmpty(task.network, 'tasks.network');
    assertOneOf(task.kind, ['envelope', 'evidence'], 'tasks.kind');
    assertOneOf(task.state, ['pending', 'done', 'gave_up'], 'tasks.state');
    if (task.recipients !== undefined) assertStrings(task.recipients, 'tasks.recipients');
    if (task.payload !== undefined) assertBytes(task.payload, 'tasks.payload');
    assertTime(task.deadline, 'tasks.deadline');
    assertNonNegativeInteger(task.attempt, 'tasks.attempt');
    if (task.nextAt !== undefined) assertTime(task.nextAt, 'tasks.nextAt');
  }
  for (const upload of snapshot.uploads) {
    assertNonEmpty(upload.chunkId, 'uploads.chunkId');
    assertString(upload.owner, 'uploads.owner');
    assertNonNegativeInteger(upload.size, 'uploads.size');
    assertTime(upload.at, 'uploads.at');
  }
  for (const claim of snapshot.claims) {
    assertNonEmpty(claim.key, 'claims.key');
    assertTime(claim.expiresAt, 'claims.expiresAt');
  }
}
