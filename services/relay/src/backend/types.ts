/**
 * The relay's state, behind one interface the relay owns. Two
 * implementations pass the same conformance suite: the embedded default (one
 * SQLite file, no external service) and production (Redis, with BullMQ for
 * the forwarding queue, retries and delayed expiry timers). Chunk bytes are
 * not here: they live in a BlobStore from @rogatory/storage.
 *
 * Every byte payload is an opaque canonical protocol object (envelope or
 * evidence); the backend never parses them.
 *
 * Both are handed out inside one checked wrapper (checked.ts): it checks
 * every argument and owns the lifecycle. Its errors, each with a stable
 * code and meaning, are catalogued in errors.ts (BACKEND_ERRORS).
 */

/** An envelope this relay accepted, as stored. */
export interface StoredEnvelope {
  readonly id: string;
  /** Hex SHA-256 of the canonical signed envelope (hops excluded): evidences bind to it. */
  readonly hash: string;
  /** Canonical envelope bytes, hops included as this relay received and extended them. */
  readonly bytes: Uint8Array;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly expiresAt: number;
  readonly acceptedAt: number;
  /** The sealed dossier id followed by every attachment chunk id. */
  readonly chunkIds: readonly string[];
  /**
   * What this relay answered when it accepted the envelope (canonical JSON
   * array of evidences): returned again, byte for byte, to a retried submission.
   */
  readonly acceptance: Uint8Array;
}

export interface AcceptInput {
  readonly envelope: StoredEnvelope;
  /** Local recipients whose mailbox gets the envelope; `deliverBy` fires the expiry timer. */
  readonly deliveries: readonly { readonly address: string; readonly deliverBy: number }[];
  /** Next-hop networks to forward to, each with the recipients reached through it. */
  readonly forwards: readonly {
    readonly network: string;
    readonly recipients: readonly string[];
  }[];
  /** Keep the dedup record (and refuse replays) until this time, even after delivery. */
  readonly retainUntil: number;
  /**
   * Who handed the chunks over (the submitting node, or `relay:<id>` for a
   * peer relay). When given, every chunk the envelope lists must have an
   * upload record of this identity (see `noteUpload`), or nothing is stored
   * (`unowned`). On acceptance the records' bytes stop counting as pending
   * and the envelope's (the records' sizes) count as referenced for the
   * identity until the envelope is done; the records, hence ownership, stay
   * until the grace period after their last upload.
   */
  readonly uploader?: string;
}

export type AcceptResult =
  | { readonly status: 'accepted' }
  /** Same id and same hash: a retry. `acceptance` is the stored answer. */
  | { readonly status: 'duplicate'; readonly acceptance: Uint8Array }
  /** Same id, different hash: a replay or an id collision. Nothing stored. */
  | { readonly status: 'conflict' }
  /** `uploader` holds no upload record of these chunks (each once). Nothing stored. */
  | { readonly status: 'unowned'; readonly chunkIds: readonly string[] };

export type MailboxItemKind = 'envelope' | 'evidence';

export interface MailboxItem {
  /** Strictly increasing per mailbox, never reused. */
  readonly seq: number;
  readonly kind: MailboxItemKind;
  readonly envelopeId: string;
  /** Canonical envelope bytes (kind envelope) or canonical evidence bytes (kind evidence). */
  readonly payload: Uint8Array;
  /** Kind envelope: when this relay accepted the envelope (its `acceptedAt`, the time of its hop). */
  readonly acceptedAt?: number;
}

/** Work for the forwarding queue: an envelope (with its chunks) or evidences to pass to another network's relay. */
export type ForwardTask =
  | {
      readonly kind: 'envelope';
      readonly id: string;
      readonly envelopeId: string;
      readonly network: string;
      readonly recipients: readonly string[];
      readonly deadline: number;
    }
  | {
      readonly kind: 'evidence';
      readonly id: string;
      readonly envelopeId: string;
      readonly network: string;
      /** Canonical evidence bytes. */
      readonly payload: Uint8Array;
      readonly deadline: number;
    };

export type ForwardTaskInput = Omit<Extract<ForwardTask, { kind: 'evidence' }>, 'id'> & {
  readonly id?: string;
};

/**
 * What the forward handler decided. `retry` asks the backend to try again
 * later with exponential backoff and jitter; once `deadline` passes, the
 * backend calls `onGiveUp` instead of retrying.
 */
export type ForwardOutcome =
  { readonly status: 'done' } | { readonly status: 'retry'; readonly error: string };

export interface WorkerHandlers {
  /** Deliver one forwarding task; throwing counts as `retry`. */
  forward(task: ForwardTask, attempt: number): Promise<ForwardOutcome>;
  /** A forwarding task reached its deadline without success. */
  giveUp(task: ForwardTask): Promise<void>;
  /**
   * A mailbox envelope item reached `deliverBy` without an ack. It has been
   * removed; the relay issues a NonDelivery evidence to the sender.
   */
  expired(item: { readonly address: string; readonly envelopeId: string }): Promise<void>;
}

export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
  /** 0..1: the delay is multiplied by a random factor in [1 - jitter, 1]. */
  readonly jitter: number;
}

export interface BackendStats {
  readonly mailboxItems: number;
  readonly forwardPending: number;
  readonly envelopes: number;
}

/** Bytes held for one identity (a node address, or `relay:<id>` for a peer relay). */
export interface ChunkUsage {
  /** Uploaded (or renewed) and not referenced since by an accepted envelope of this uploader. */
  readonly pendingBytes: number;
  /** Referenced by envelopes this identity handed over that are not done yet (delivered, expired or forwarded everywhere). */
  readonly referencedBytes: number;
}

export interface RelayBackend {
  readonly kind: 'embedded' | 'redis';
  /** Reachability check for /readyz; throws when the store is unavailable. */
  ping(): Promise<void>;
  /**
   * Stops the workers (their handlers may still call the backend), then
   * refuses new calls (BACKEND_CLOSED), waits for those in flight and
   * releases the store. Idempotent: every call gets the same promise.
   */
  close(): Promise<void>;

  /**
   * Atomically: refuse or recognise a duplicate by envelope id, otherwise
   * store the envelope, put it in every local recipient's mailbox (each
   * with an expiry timer at `deliverBy`) and queue every forward. When this
   * resolves with `accepted`, nothing is lost if the process dies next.
   */
  accept(input: AcceptInput): Promise<AcceptResult>;
  getEnvelope(id: string): Promise<StoredEnvelope | undefined>;

  /** True when `address` is the sender or a recipient of a live envelope that lists `chunkId`. */
  chunkVisibleTo(chunkId: string, address: string): Promise<boolean>;

  /** Append an evidence to a mailbox. `key` deduplicates (false when already present). */
  pushEvidence(
    address: string,
    envelopeId: string,
    key: string,
    payload: Uint8Array,
  ): Promise<boolean>;
  /** Unacked items with seq > after, oldest first, at most `limit`. */
  readMailbox(address: string, after: number, limit: number): Promise<MailboxItem[]>;
  /** Remove acked items of this mailbox; unknown seqs are ignored. Returns how many were removed. */
  ack(address: string, seqs: readonly number[]): Promise<number>;

  /** Queue evidences (or other work) for another network; idempotent by `id`. */
  enqueueForward(task: ForwardTaskInput): Promise<void>;
  /**
   * Start the forwarding and expiry workers of this instance: at most
   * `concurrency` forwards (and as many expiries) at once. A second start
   * while they run is refused (WORKERS_RUNNING); a start during a stop
   * waits for the stop.
   */
  startWorkers(
    handlers: WorkerHandlers,
    options: { concurrency: number; backoff: BackoffPolicy },
  ): Promise<void>;
  /** Stop taking new work and wait for in-flight work to finish. */
  stopWorkers(): Promise<void>;

  /** Called (on every instance) after an item is added to a mailbox by any instance. */
  subscribe(listener: (address: string) => void): Promise<() => Promise<void>>;

  /** True the first time `key` is claimed within `ttlMs`, false afterwards (single-use tokens). */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;

  /**
   * Record that `owner.identity` uploaded the chunk (`owner.size` bytes, as
   * stored) at `at`: its upload record, which makes the identity the chunk's
   * owner until the grace period after its last upload passes. The record's
   * size counts as pending for the identity (once, however often it is
   * uploaded) until an envelope of the identity references it; a repeated
   * upload renews `at` (never backwards) and makes it pending again.
   * Abandoned uploads are collected after the grace period.
   */
  noteUpload(
    chunkId: string,
    at: number,
    owner: { readonly identity: string; readonly size: number },
  ): Promise<void>;
  /**
   * The ids among `chunkIds` that `identity` holds an upload record of
   * (each once), renewing those records to `at` as a repeated upload would.
   * Nothing is said about the others: whether another identity uploaded
   * them is not the caller's business.
   */
  ownedChunks(identity: string, chunkIds: readonly string[], at: number): Promise<string[]>;
  /** What `identity` holds now, and whether it has an upload record of `chunkId` (a re-upload charges nothing). */
  uploadUsage(identity: string, chunkId: string): Promise<ChunkUsage & { readonly owned: boolean }>;
  /** Every identity that held bytes since the store was created, with what it holds now (metrics). */
  usage(): Promise<ReadonlyMap<string, ChunkUsage>>;
  /** True when some stored envelope (done or not) still lists the chunk, or it was uploaded less than `graceMs` ago. */
  chunkReferenced(chunkId: string, now: number, graceMs: number): Promise<boolean>;

  /**
   * Garbage collection. An envelope is *done* once every local recipient
   * acked it or its expiry fired, and every forward completed or was given
   * up. Its chunks are released `chunkRetentionMs` after it became done; its
   * record (used to refuse replays) is deleted once `retainUntil` passed too.
   * Uploads no envelope references are released after `uploadGraceMs`.
   * Returns the chunk ids the caller must now delete from the blob store:
   * never one that a live envelope still lists.
   */
  collectGarbage(
    now: number,
    options: { readonly chunkRetentionMs: number; readonly uploadGraceMs: number },
  ): Promise<{ readonly envelopes: number; readonly orphanChunks: readonly string[] }>;
  stats(): Promise<BackendStats>;

  /**
   * What waits in the store now (`rogatory-relay queue`): mailboxes with
   * unacked items, the forward backlog per next-hop network, and the
   * envelope items past their deliverBy whose NonDelivery is not reported
   * yet. Read only; the whole store is read, for an operator, not a hot path.
   */
  queueReport(): Promise<QueueReport>;

  /**
   * The mailbox epoch: a random id made once with the store (embedded: a row
   * of the file; Redis: a key of the prefix, set if absent). Mailbox seqs
   * are only comparable within one epoch: a node whose stored cursor belongs
   * to another epoch reads its mailbox again from 0. `importState` carries
   * the source's epoch over, so a migrated relay keeps it.
   */
  mailboxEpoch(): Promise<string>;
  /**
   * Give the store a new random mailbox epoch and return it (`rogatory-relay
   * new-epoch`, after restoring a backup that rewinds mailbox seqs): nodes
   * see the change and read their mailbox again from 0.
   */
  renewMailboxEpoch(): Promise<string>;
  /**
   * Everything the store holds (for `rogatory-relay migrate-backend`, with
   * the relay stopped): held in memory, as the stores are bounded by their
   * mailboxes and forward queues. Running tasks and expiries are exported as
   * due again (their leases died with the relay).
   */
  exportState(): Promise<BackendSnapshot>;
  /**
   * Load a snapshot into this store, which must be empty (no envelope,
   * mailbox counter, item, task or upload record): otherwise BACKEND_NOT_EMPTY
   * and nothing is written. Sets the mailbox epoch to the snapshot's.
   */
  importState(snapshot: BackendSnapshot): Promise<void>;
}

/** A stored envelope with its life-cycle fields, as exported. */
export interface SnapshotEnvelope extends StoredEnvelope {
  readonly retainUntil: number;
  readonly uploader?: string;
  /** Bytes charged to `uploader` while the envelope is not done. */
  readonly heldBytes: number;
  readonly doneAt?: number;
  /** Chunks released (no longer held by the envelope); the record stays to refuse replays. */
  readonly releasedAt?: number;
}

export interface SnapshotItem {
  readonly address: string;
  readonly seq: number;
  readonly kind: MailboxItemKind;
  readonly envelopeId: string;
  /** Evidence bytes (pending evidence items); envelope items read the envelope's bytes. */
  readonly payload?: Uint8Array;
  /** `mailboxDedupKey(kind, key)`. */
  readonly dedupKey: string;
  /** Envelope items: the expiry timer. */
  readonly deliverBy?: number;
  /** pending: readable; expiring: taken out by an expiry not confirmed; acked: an evidence tombstone keeping its dedup key. */
  readonly state: 'pending' | 'expiring' | 'acked';
  /** When the expiry sweep takes it next (pending and expiring envelope items). */
  readonly dueAt?: number;
  readonly attempt: number;
}

export interface SnapshotTask {
  readonly id: string;
  readonly kind: 'envelope' | 'evidence';
  readonly envelopeId: string;
  readonly network: string;
  readonly recipients?: readonly string[];
  readonly payload?: Uint8Array;
  readonly deadline: number;
  readonly attempt: number;
  /** done / gave_up: tombstones kept while the envelope record lives. */
  readonly state: 'pending' | 'done' | 'gave_up';
  readonly nextAt?: number;
}

export interface SnapshotUpload {
  readonly chunkId: string;
  /** '' for records written before uploaders were recorded. */
  readonly owner: string;
  readonly size: number;
  readonly at: number;
  readonly referenced: boolean;
}

/** The whole state of a relay backend (chunk bytes excluded: they live in the blob store). */
export interface BackendSnapshot {
  readonly epoch: string;
  /** Last seq handed out per mailbox, so numbering goes on above it. */
  readonly mailboxSeqs: readonly { readonly address: string; readonly lastSeq: number }[];
  readonly envelopes: readonly SnapshotEnvelope[];
  readonly items: readonly SnapshotItem[];
  readonly tasks: readonly SnapshotTask[];
  readonly uploads: readonly SnapshotUpload[];
  readonly claims: readonly { readonly key: string; readonly expiresAt: number }[];
}

/**
 * Ages are those of the envelopes concerned (their `acceptedAt` on this
 * relay): an evidence item carries no time of its own, so an evidence
 * counts with its envelope's acceptance, or not at all once that record is gone.
 */
export interface QueueReport {
  /** The backend clock when the report was read. */
  readonly at: number;
  /** By address; only mailboxes with unacked items. */
  readonly mailboxes: readonly MailboxBacklog[];
  /** By network; only networks with unfinished forward tasks. */
  readonly forwards: readonly ForwardBacklog[];
  readonly nonDeliveries: NonDeliveryBacklog;
}

export interface MailboxBacklog {
  readonly address: string;
  /** Unacked items (envelopes + evidences). */
  readonly items: number;
  readonly envelopes: number;
  readonly evidences: number;
  /** Earliest acceptedAt of the envelopes the items concern; null when none is known. */
  readonly oldestAcceptedAt: number | null;
}

export interface ForwardBacklog {
  readonly network: string;
  /** Unfinished forward tasks (envelopes + evidences). */
  readonly tasks: number;
  readonly envelopes: number;
  readonly evidences: number;
  readonly oldestAcceptedAt: number | null;
  /** Earliest time a task of this network is tried next (`at` or earlier: due now); null when every task is running. */
  readonly nextAttemptAt: number | null;
  /** Most attempts made by one task so far. */
  readonly maxAttempts: number;
}

export interface NonDeliveryBacklog {
  /** Envelope items past their deliverBy whose expiry (NonDelivery to the sender) has not been reported. */
  readonly count: number;
  readonly oldestDeliverBy: number | null;
  /** The first `NON_DELIVERY_LIST_MAX` of them, oldest deliverBy first. */
  readonly items: readonly {
    readonly address: string;
    readonly envelopeId: string;
    readonly deliverBy: number;
  }[];
}

/** How many due non-deliveries a queue report lists one by one. */
export const NON_DELIVERY_LIST_MAX = 100;
