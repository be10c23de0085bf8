import { RelayPeerClient, isRelayClientError } from '@rogatory/client';
import type { Envelope, Evidence, SigningKeyPair, TrustStore } from '@rogatory/protocol';
import { INLINE_CHUNK_LIMITS } from '@rogatory/relay-api';
import type { BlobSource } from '@rogatory/storage';
import type { RelayMetrics } from './metrics.js';
import { PeerBatcher } from './peer-batcher.js';

/**
 * Batch calls in flight to one peer. Items that become ready while these
 * are busy wait and go together in the next: the busier the link, the
 * larger the batches.
 */
const BATCHES_IN_FLIGHT = 4;
/** Chunk uploads in flight per forwarded envelope. */
const UPLOAD_CONCURRENCY = 4;

/** Where the forwarder reads the chunks of an envelope it hands over. */
export interface ChunkSource {
  /** A small object's bytes, to send inline. */
  bytes(id: string): Promise<Uint8Array>;
  /** A chunk's bytes, streamed to an upload. */
  stream(id: string): BlobSource;
}

/** What the forwarder needs from a peer relay. */
export interface PeerClient {
  /**
   * Hand an envelope over for `recipients`, with its chunks: small objects
   * inside the hand-over (within INLINE_CHUNK_LIMITS), the others uploaded
   * first if the peer lacks them. Hand-overs and evidences asked for close
   * together travel in one batch call; each settles on its own. Resolves
   * with the peer's relay evidences.
   */
  handOver(
    envelope: Envelope,
    recipients: readonly string[],
    chunks: ChunkSource,
  ): Promise<Evidence[]>;
  forwardEvidences(items: readonly { evidence: Evidence; envelope: Envelope }[]): Promise<void>;
}

export interface FailureClass {
  /** Worth retrying later: network trouble, timeouts, 5xx, 429, 401 (clock or key propagation). */
  readonly transient: boolean;
  readonly code: string;
  /** Signed rejections the peer returned, if any. */
  readonly evidences: readonly Evidence[];
}

/**
 * Which objects of an envelope travel inline: the first ones (dossier
 * first) that fit INLINE_CHUNK_LIMITS; the others are uploaded. Saves a
 * presence query and an upload call per small object on every hop.
 */
export function packInline(envelope: Envelope): {
  inline: string[];
  uploaded: string[];
  sizes: ReadonlyMap<string, number>;
} {
  const sizes = new Map([
    [envelope.body.dossier.id, envelope.body.dossier.size],
    ...envelope.body.chunks.map((c) => [c.id, c.size] as const),
  ]);
  const inline: string[] = [];
  const uploaded: string[] = [];
  let inlineBytes = 0;
  for (const [id, size] of sizes) {
    if (
      size <= INLINE_CHUNK_LIMITS.maxChunkBytes &&
      inline.length < INLINE_CHUNK_LIMITS.maxCount &&
      inlineBytes + size <= INLINE_CHUNK_LIMITS.maxTotalBytes
    ) {
      inline.push(id);
      inlineBytes += size;
    } else {
      uploaded.push(id);
    }
  }
  return { inline, uploaded, sizes };
}

/** Clients of peer relays, one per next-hop network, from the manifests (or an override URL). */
export class PeerDirectory {
  private readonly clients = new Map<string, PeerClient>();

  constructor(
    private readonly options: {
      relayId: string;
      key: SigningKeyPair;
      trust: TrustStore;
      peerUrls: Readonly<Record<string, string>>;
      timeoutMs: number;
      metrics: RelayMetrics;
    },
  ) {}

  /** Drop the cached client of a network (its manifest changed: relay URL or key may differ). */
  forget(network: string): void {
    this.clients.delete(network);
  }

  client(network: string): PeerClient | undefined {
    const cached = this.clients.get(network);
    if (cached) return cached;
    const entry = this.options.trust.relays(network)[0];
    if (!entry) return undefined;
    const client = new RelayPeerClient({
      baseUrl: this.options.peerUrls[network] ?? entry.url,
      from: this.options.relayId,
      to: entry.id,
      key: this.options.key,
      timeoutMs: this.options.timeoutMs,
    });
    const batcher = new PeerBatcher(client, BATCHES_IN_FLIGHT);
    const { metrics } = this.options;
    const peer: PeerClient = {
      handOver: async (envelope, recipients, chunks) => {
        const { inline, uploaded, sizes } = packInline(envelope);
        const objects = await Promise.all(
          inline.map(async (id) => ({ id, bytes: await chunks.bytes(id) })),
        );
        // A few uploads in flight: one slow request does not hold the link idle.
        const todo =
          uploaded.length === 0
            ? []
            : (await client.missingChunks(uploaded)).filter((id) => sizes.has(id));
        const upload = async (): Promise<void> => {
          for (let id = todo.shift(); id !== undefined; id = todo.shift()) {
            const size = sizes.get(id)!;
            await client.putChunk(id, chunks.stream(id), size);
            metrics.bytesOut.inc(size);
          }
        };
        await Promise.all(
          Array.from({ length: Math.min(UPLOAD_CONCURRENCY, todo.length) }, upload),
        );
        return batcher.handOver(envelope, { recipients, inline: objects });
      },
      forwardEvidences: async (items) => {
        await Promise.all(items.map((item) => batcher.evidence(item)));
      },
    };
    this.clients.set(network, peer);
    return peer;
  }

  classify(err: unknown): FailureClass {
    if (!isRelayClientError(err)) return { transient: true, code: 'INTERNAL', evidences: [] };
    const status = err.status;
    const transient =
      status === 0 ||
      status >= 500 ||
      status === 429 ||
      status === 401 ||
      status === 408 ||
      err.code === 'CHUNK_MISSING';
    return { transient, code: err.code, evidences: err.evidences ?? [] };
  }
}
