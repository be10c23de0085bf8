import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { NodeStatus } from '../authority-node.js';
import { ApiError } from './errors.js';

/** A metrics token shorter than this is refused at start: it is a password Prometheus sends. */
export const METRICS_TOKEN_MIN_LENGTH = 32;

type Sample = readonly [labels: Readonly<Record<string, string>>, value: number];

interface Family {
  readonly name: string;
  readonly type: 'gauge' | 'counter';
  readonly help: string;
  readonly samples: readonly Sample[];
}

const escapeLabel = (value: string): string =>
  value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function sampleLine(name: string, [labels, value]: Sample): string {
  const entries = Object.entries(labels);
  const labelText =
    entries.length === 0
      ? ''
      : `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
  return `${name}${labelText} ${String(value)}`;
}

/**
 * The node's metrics in the Prometheus text format (version 0.0.4), from
 * its status: counts and states only, never an address of a dossier party,
 * a case reference or content. The counters are totals the node keeps in
 * its database, so they survive restarts.
 */
export function nodeMetricsText(status: NodeStatus): string {
  const families: Family[] = [
    {
      name: 'rogatory_node_listed_in_manifest',
      type: 'gauge',
      help: "1 when the own network's trusted manifest lists this node's identity key",
      samples: [[{}, status.listedInManifest ? 1 : 0]],
    },
    {
      name: 'rogatory_node_dossiers',
      type: 'gauge',
      help: 'Dossiers held, by status',
      samples: Object.entries(status.dossiers).map(([s, n]) => [{ status: s }, n]),
    },
    {
      name: 'rogatory_node_outbox_pending',
      type: 'gauge',
      help: 'Submissions and evidences waiting to reach the relay',
      samples: [[{}, status.outbox.pending]],
    },
    {
      name: 'rogatory_node_outbox_failed',
      type: 'gauge',
      help: 'Outbox items that failed for good (see the audit log)',
      samples: [[{}, status.outbox.failed]],
    },
    {
      name: 'rogatory_node_relay_incidents_total',
      type: 'counter',
      help: 'What the relay served that the node refused (forged, re-addressed, replayed, corrupt, oversized)',
      samples: [[{}, status.relayIncidents.total]],
    },
    {
      name: 'rogatory_node_trust_edition',
      type: 'gauge',
      help: 'Manifest edition in force, by network (-1: none yet)',
      samples: status.trust.networks.map((n) => [{ network: n.network }, n.edition ?? -1]),
    },
    {
      name: 'rogatory_node_trust_log_size',
      type: 'gauge',
      help: "Size of the network's transparency log the node holds, by network",
      samples: status.trust.networks.map((n) => [{ network: n.network }, n.logSize]),
    },
    {
      name: 'rogatory_node_trust_fork_alarm',
      type: 'gauge',
      help: '1 while a fork alarm (two inconsistent checkpoints of the log) is open, by network',
      samples: status.trust.networks.map((n) => [{ network: n.network }, n.forkAlarm ? 1 : 0]),
    },
    {
      name: 'rogatory_node_trust_forks_total',
      type: 'counter',
      help: 'Fork alarms ever raised',
      samples: [[{}, status.trust.forksTotal]],
    },
  ];
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const sample of f.samples) lines.push(sampleLine(f.name, sample));
  }
  return `${lines.join('\n')}\n`;
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * GET /metrics for Prometheus, behind its own bearer token (a scraper
 * cannot log in as a user). Without a token the route does not exist.
 */
export function metricsRoute(
  app: FastifyInstance,
  options: { readonly token: string; readonly status: () => NodeStatus },
): void {
  if (options.token.length < METRICS_TOKEN_MIN_LENGTH)
    throw new Error(`the metrics token must have at least ${METRICS_TOKEN_MIN_LENGTH} characters`);
  const expected = digest(`Bearer ${options.token}`);
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    const given = request.headers.authorization;
    // Compared as digests: constant time whatever the length of what was sent.
    if (given === undefined || !timingSafeEqual(digest(given), expected))
      throw new ApiError('UNAUTHENTICATED', 'a valid metrics token is required');
    return reply
      .header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
      .send(nodeMetricsText(options.status()));
  });
}
