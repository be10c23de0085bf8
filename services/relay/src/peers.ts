import { RelayPeerClient, isRelayClientError } from '@rogatory/client';
import type { Envelope, Evidence, SigningKeyPair, TrustStore } from '@rogatory/protocol';
import type { BlobSource } from '@rogatory/storage';
import { PeerBatcher } from './peer-batcher.js';

/**
 * Batch calls in flight to one peer. Items that become ready while these
 * are busy wait and go together in the next: the busier the link, the
 * larger the batches.
 */
const BATCHES_IN_FLIGHT = 4;

/** What the forwarder needs from a peer relay. */
export interface PeerClient {
  missingChunks(ids: readonly string[]): Promise<string[]>;
  putChunk(id: string, body: BlobSource, size: number): Promise<unknown>;
  /**
   * `inline`: small objects of the envelope sent along (within INLINE_CHUNK_LIMITS of @rogatory/client).
   * Hand-overs and evidences asked for close together travel in one batch call; each settles on its own.
   */
  forwardEnvelope(envelope: Envelope, recipients: readonly string[], inline?: readonly { id: string; bytes: Uint8Array }[]): Promise<Evidence[]>;
  forwardEvidences(items: readonly { evidence: Evidence; envelope: Envelope }[]): Promise<void>;
}

export interface FailureClass {
  /** Worth retrying later: network trouble, timeouts, 5xx, 429, 401 (clock or key propagation). */
  readonly transient: boolean;
  readonly code: string;
  /** Signed rejections the peer returned, if any. */
  readonly evidences: readonly Evidence[];
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
    },
  ) {}

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
    const peer: PeerClient = {
      missingChunks: (ids) => client.missingChunks(ids),
      putChunk: (id, body, size) => client.putChunk(id, body, size),
      forwardEnvelope: (envelope, recipients, inline) => batcher.handOver(envelope, { recipients, ...(inline === undefined ? {} : { inline }) }),
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
    const transient = status === 0 || status >= 500 || status === 429 || status === 401 || status === 408 || err.code === 'CHUNK_MISSING';
    return { transient, code: err.code, evidences: err.evidences ?? [] };
  }
}
