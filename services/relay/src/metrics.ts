import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RelayBackend } from './backend/types.js';

/** The relay's Prometheus metrics, in a registry of its own (several relays can share a process in tests). */
export class RelayMetrics {
  readonly registry = new Registry();
  readonly envelopesIn = new Counter({
    name: 'rogatory_relay_envelopes_in_total',
    help: 'Envelopes received, by source (node | peer) and outcome (accepted | duplicate | rejected reason code)',
    labelNames: ['source', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly envelopesOut = new Counter({
    name: 'rogatory_relay_envelopes_out_total',
    help: 'Envelopes handed on, by kind (mailbox | forward) and outcome',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly evidences = new Counter({
    name: 'rogatory_relay_evidences_total',
    help: 'Evidences issued or routed, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({
    name: 'rogatory_relay_bytes_in_total',
    help: 'Chunk bytes received',
    registers: [this.registry],
  });
  readonly bytesOut = new Counter({
    name: 'rogatory_relay_bytes_out_total',
    help: 'Chunk bytes served or forwarded',
    registers: [this.registry],
  });
  readonly deliveryLatency = new Histogram({
    name: 'rogatory_relay_delivery_latency_seconds',
    help: 'From acceptance to the recipient node acknowledging (local deliveries)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600, 86400],
    registers: [this.registry],
  });
  readonly peerUp = new Gauge({
    name: 'rogatory_relay_peer_up',
    help: '1 when the last call to the peer network relay succeeded, 0 when it failed',
    labelNames: ['network'] as const,
    registers: [this.registry],
  });
  readonly webSockets = new Gauge({
    name: 'rogatory_relay_websockets',
    help: 'Open mailbox WebSockets',
    registers: [this.registry],
  });
  readonly clientErrors = new Counter({
    name: 'rogatory_relay_client_errors_total',
    help: 'Client misbehaviour answered without a route: oversize or invalid WebSocket frames, unparsable or slow requests, connections past the per-address limit; by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly rejectedRequests = new Counter({
    name: 'rogatory_relay_rejected_requests_total',
    help: 'Requests answered with an error, by code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly quotaRefusals = new Counter({
    name: 'rogatory_relay_quota_refusals_total',
    help: 'Chunk uploads refused because the uploader reached its storage quota, by kind of uploader (node | peer)',
    labelNames: ['uploader'] as const,
    registers: [this.registry],
  });

  readonly trustEdition = new Gauge({
    name: 'rogatory_relay_trust_edition',
    help: 'Manifest edition (version) the relay applies, per network (own and peers)',
    labelNames: ['network'] as const,
    registers: [this.registry],
  });

  readonly trustLogSize = new Gauge({
    name: 'rogatory_relay_trust_log_size',
    help: 'Size of the key transparency log the relay holds a publication chain up to, per network',
    labelNames: ['network'] as const,
    registers: [this.registry],
  });

  readonly witnessCosignatures = new Counter({
    name: 'rogatory_relay_witness_cosignatures_total',
    help: 'add-checkpoint requests answered by the witness: outcome given (code OK) or refused, by code',
    labelNames: ['outcome', 'code'] as const,
    registers: [this.registry],
  });

  /** Seconds since the last successful fetch of each peer network's chain (set by the trust service). */
  trustFetchAge: () => ReadonlyMap<string, number> = () => new Map();

  constructor(backend: RelayBackend) {
    collectDefaultMetrics({ register: this.registry, prefix: 'rogatory_relay_' });
    const registry = this.registry;
    new Gauge({
      name: 'rogatory_relay_queue_depth',
      help: 'Items waiting: mailbox items, pending forwards, stored envelopes',
      labelNames: ['queue'] as const,
      registers: [registry],
      async collect() {
        const stats = await backend.stats();
        this.set({ queue: 'mailbox' }, stats.mailboxItems);
        this.set({ queue: 'forward' }, stats.forwardPending);
        this.set({ queue: 'envelopes' }, stats.envelopes);
      },
    });
    const fetchAge = (): ReadonlyMap<string, number> => this.trustFetchAge();
    new Gauge({
      name: 'rogatory_relay_trust_last_fetch_age_seconds',
      help: "Seconds since the relay last fetched a peer network's publication chain successfully",
      labelNames: ['network'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [network, age] of fetchAge()) this.set({ network }, age);
      },
    });
    // One series per identity and state: identities are the members and peer relays of trusted manifests, a bounded set.
    new Gauge({
      name: 'rogatory_relay_chunk_bytes_held',
      help: 'Chunk bytes held for each uploader (node address, or relay:<id> for a peer relay): pending (uploaded, not yet referenced) and referenced (by envelopes not yet delivered everywhere)',
      labelNames: ['identity', 'state'] as const,
      registers: [registry],
      async collect() {
        const usage = await backend.usage();
        this.reset();
        for (const [identity, held] of usage) {
          this.set({ identity, state: 'pending' }, held.pendingBytes);
          this.set({ identity, state: 'referenced' }, held.referencedBytes);
        }
      },
    });
  }
}
