import { networkOf, type TrustStore } from '@rogatory/protocol';
import { RelayError } from './errors.js';

export interface RecipientPlan {
  /** Recipients that are members of this relay's network: their mailboxes here get the envelope. */
  readonly local: string[];
  /** Next-hop network → recipients reached through it. */
  readonly forwards: Map<string, string[]>;
}

/**
 * Where envelopes go from this relay, from its own network's manifest: its
 * own members locally; a peer network directly or through the transit
 * network its manifest names (one level: the transit must be a direct peer).
 */
export class Router {
  constructor(
    private readonly trust: TrustStore,
    readonly network: string,
  ) {}

  /** The network to hand an envelope for `network` to, or undefined if unreachable. */
  nextHop(network: string): string | undefined {
    const peers = this.trust.manifest(this.network)?.body.peers ?? [];
    const peer = peers.find((p) => p.network === network);
    if (!peer) return undefined;
    if (peer.via === null) return network;
    const via = peers.find((p) => p.network === peer.via && p.via === null);
    return via?.network;
  }

  /**
   * Split recipients into local deliveries and forwards. A recipient of a
   * network whose manifest this relay holds must be a member of it.
   * `avoid` lists networks the envelope already passed (loop prevention).
   */
  plan(recipients: readonly string[], avoid: ReadonlySet<string> = new Set()): RecipientPlan {
    const local: string[] = [];
    const forwards = new Map<string, string[]>();
    for (const recipient of recipients) {
      const network = networkOf(recipient);
      const manifest = this.trust.manifest(network);
      // Authorities and points of contact receive dossiers (a PoC is written to like an authority).
      if (
        manifest &&
        !manifest.body.authorities.some((a) => a.address === recipient) &&
        !manifest.body.pocs.some((p) => p.address === recipient)
      ) {
        throw new RelayError(
          'RECIPIENT_UNKNOWN',
          `recipient ${recipient} is not a member of ${network}`,
        );
      }
      if (network === this.network) {
        if (!manifest)
          throw new RelayError('RECIPIENT_UNKNOWN', `recipient ${recipient} is unknown`);
        local.push(recipient);
        continue;
      }
      const hop = this.nextHop(network);
      if (hop === undefined || avoid.has(hop))
        throw new RelayError('RECIPIENT_UNREACHABLE', `no route to network ${network}`);
      const list = forwards.get(hop) ?? [];
      list.push(recipient);
      forwards.set(hop, list);
    }
    return { local, forwards };
  }
}
