import { ENVELOPE_LIMITS, type SigningKeyPair, type TrustStore } from '@rogatory/protocol';
import type { BlobStore } from '@rogatory/storage';
import type { BackoffPolicy, RelayBackend } from './backend/types.js';
import type { ConnectionLimits } from './limits.js';

export interface RelayLimits {
  /** Largest envelope body (canonical JSON) a node may submit. */
  readonly maxEnvelopeBytes: number;
  /** Largest ciphertext chunk. */
  readonly maxChunkBytes: number;
  /** Largest total size (dossier + chunks) of one envelope. */
  readonly maxTotalBytes: number;
  readonly maxRecipients: number;
  /** Per node, per minute. */
  readonly submitPerMinute: number;
  /** Per node (or peer relay), per minute, every authenticated request. */
  readonly requestsPerMinute: number;
  /** Unauthenticated session requests per source address per minute. */
  readonly loginPerMinute: number;
  /** Requests (and mailbox WebSockets) with a missing or invalid bearer token, per source address per minute; past it, RATE_LIMITED. */
  readonly badTokensPerMinute: number;
  readonly maxIdsPerQuery: number;
  readonly maxWebSocketsPerNode: number;
  /**
   * Storage quotas, per uploading identity. Pending: chunk bytes uploaded
   * and not yet referenced by an accepted envelope of the uploader (so also
   * the largest envelope it can send). Held: pending bytes plus those of
   * its accepted envelopes not yet done (delivered, expired or forwarded
   * everywhere). An upload past either is refused with QUOTA_EXCEEDED.
   */
  readonly pendingBytesPerNode: number;
  readonly heldBytesPerNode: number;
  /** The same for a peer relay, which hands over the envelopes of a whole network. */
  readonly pendingBytesPerPeer: number;
  readonly heldBytesPerPeer: number;
  /** Requests to the trust routes (publications, chains, witness) per source address per minute. */
  readonly trustPerMinute: number;
}

const GiB = 1024 * 1024 * 1024;

export const DEFAULT_LIMITS: RelayLimits = {
  maxEnvelopeBytes: 4 * 1024 * 1024,
  maxChunkBytes: ENVELOPE_LIMITS.maxChunkBytes,
  maxTotalBytes: 64 * GiB,
  maxRecipients: ENVELOPE_LIMITS.maxRecipients,
  submitPerMinute: 6000,
  requestsPerMinute: 60_000,
  loginPerMinute: 600,
  badTokensPerMinute: 120,
  maxIdsPerQuery: 10_000,
  maxWebSocketsPerNode: 8,
  pendingBytesPerNode: 8 * GiB,
  heldBytesPerNode: 32 * GiB,
  // A peer may hand over the largest envelope the limits allow, and many at once.
  pendingBytesPerPeer: 64 * GiB,
  heldBytesPerPeer: 256 * GiB,
  trustPerMinute: 600,
};

export interface RelayRetention {
  /** Longest an envelope waits in a mailbox (capped by its own expiry) before NonDelivery. */
  readonly mailboxMs: number;
  /** How long chunks stay after an envelope is done (delivered or expired everywhere). */
  readonly chunkRetentionMs: number;
  /** How long an uploaded chunk no envelope references is kept (resumable uploads). */
  readonly uploadGraceMs: number;
  readonly gcIntervalMs: number;
}

export const DEFAULT_RETENTION: RelayRetention = {
  mailboxMs: 30 * 24 * 3600 * 1000,
  chunkRetentionMs: 3600 * 1000,
  uploadGraceMs: 24 * 3600 * 1000,
  gcIntervalMs: 60 * 1000,
};

export interface RelayForwarding {
  readonly concurrency: number;
  readonly backoff: BackoffPolicy;
  /** Deadline for evidences on their way back to a sender. */
  readonly evidenceDeadlineMs: number;
  readonly requestTimeoutMs: number;
}

export const DEFAULT_FORWARDING: RelayForwarding = {
  // Forwarding waits on peers (a few round trips per task), it hardly computes: with 8 in flight,
  // inter-network throughput was capped at 8 per round-trip time (bench:relay crossNetwork 34/s vs 91/s at 32).
  concurrency: 32,
  backoff: { baseMs: 500, maxMs: 5 * 60 * 1000, jitter: 0.5 },
  evidenceDeadlineMs: 30 * 24 * 3600 * 1000,
  requestTimeoutMs: 60_000,
};

/** Everything a relay app needs, already opened. `buildRelayApp` takes this; the CLI builds it from a config file. */
export interface RelayOptions {
  /** This relay's id, e.g. `relay@wacap`; it must be listed in its network's manifest. */
  readonly relayId: string;
  readonly key: SigningKeyPair;
  /** Pinned to the relay's own network root, holding its own and its peers' manifests. */
  readonly trust: TrustStore;
  readonly backend: RelayBackend;
  readonly blobs: BlobStore;
  /** Secret shared by every instance of this relay, for session tokens and challenges (32 bytes). */
  readonly sessionSecret: Uint8Array;
  readonly sessionTtlMs?: number;
  readonly limits?: Partial<RelayLimits>;
  readonly retention?: Partial<RelayRetention>;
  readonly forwarding?: Partial<RelayForwarding>;
  /** Connections per remote address and HTTP timeouts (defaults: DEFAULT_CONNECTION_LIMITS). */
  readonly connections?: Partial<ConnectionLimits>;
  /** Where to reach a network's relay when it is not the URL its manifest lists (tests, split horizon). */
  readonly peerUrls?: Readonly<Record<string, string>>;
  readonly clock?: () => number;
  /** pino logger options, or false for none; `stream` defaults to stdout. */
  readonly logger?: boolean | { level: string; stream?: { write(line: string): unknown } };
  /**
   * Folder of the relay's key transparency state (publications, witness
   * state), local to this instance: `<dataDir>/trust` from a configuration.
   * Absent: a fresh temporary folder (tests; the state does not survive).
   */
  readonly trustDir?: string;
  /** Period of the peer chain polling loop, ms (default 60 s; `trust.pollSeconds`). */
  readonly trustPollMs?: number;
  /** Start forwarding/expiry workers, the GC loop and peer chain polling (default true). */
  readonly workers?: boolean;
}
