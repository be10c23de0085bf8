import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { openEmbeddedBackend } from '../backend/embedded.js';
import { openRedisBackend } from '../backend/redis.js';
import type { QueueReport, RelayBackend } from '../backend/types.js';
import { loadRelayConfig, type RelayConfig } from '../config.js';
import { RelaySetupError, fsReason, setupFail } from '../setup-errors.js';
import { formatDuration, formatTime, table } from './output.js';

/** Open the backend a configuration names, without workers, for reading; nothing is created. */
export async function openBackendForReading(
  config: RelayConfig,
  file: string,
): Promise<RelayBackend> {
  const { backend } = config;
  if (backend.kind === 'embedded') {
    const db = join(backend.dataDir ?? '', 'relay.db');
    try {
      await access(db);
    } catch (err) {
      return setupFail(
        'FILE_UNREADABLE',
        'backend.dataDir',
        `${db}: ${fsReason(err)} (has a relay run with this data folder?)`,
        { file },
      );
    }
    // WAL: reading beside the running relay is safe; it keeps writing.
    try {
      return await openEmbeddedBackend({ file: db });
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      return setupFail(
        'BACKEND_UNREACHABLE',
        'backend.dataDir',
        `${db}: cannot be opened${typeof code === 'string' ? ` (${code})` : ''}`,
        { file, cause: err },
      );
    }
  }
  const redis = backend.redis!;
  try {
    return await openRedisBackend({
      ...(redis.url === undefined ? {} : { url: redis.url }),
      ...(redis.sentinel === undefined ? {} : { sentinel: redis.sentinel }),
      prefix: redis.prefix,
    });
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    return setupFail(
      'BACKEND_UNREACHABLE',
      redis.sentinel === undefined ? 'backend.redis.url' : 'backend.redis.sentinel',
      `Redis cannot be reached${typeof code === 'string' ? ` (${code})` : ''}`,
      { file, cause: err },
    );
  }
}

/** The `--json` shape of `rogatory-relay queue`: the backend's report, with ages (ms) at `at`. */
export function queueJson(relayId: string, kind: string, report: QueueReport) {
  const age = (t: number | null): number | null => (t === null ? null : Math.max(0, report.at - t));
  return {
    relayId,
    backend: kind,
    at: report.at,
    mailboxes: report.mailboxes.map((m) => ({ ...m, oldestAgeMs: age(m.oldestAcceptedAt) })),
    forwards: report.forwards.map((f) => ({ ...f, oldestAgeMs: age(f.oldestAcceptedAt) })),
    nonDeliveries: {
      ...report.nonDeliveries,
      oldestOverdueMs: age(report.nonDeliveries.oldestDeliverBy),
    },
  };
}

export function queueText(relayId: string, kind: string, report: QueueReport): string {
  const at = report.at;
  const age = (t: number | null): string => (t === null ? '-' : formatDuration(at - t));
  const lines = [`queue of ${relayId} (${kind} backend) at ${formatTime(at)}`, ''];
  if (report.mailboxes.length === 0) lines.push('Mailboxes: no waiting items');
  else
    lines.push(
      `Mailboxes with waiting items: ${String(report.mailboxes.length)}`,
      table(
        ['ADDRESS', 'ITEMS', 'ENVELOPES', 'EVIDENCES', 'OLDEST'],
        report.mailboxes.map((m) => [
          m.address,
          String(m.items),
          String(m.envelopes),
          String(m.evidences),
          age(m.oldestAcceptedAt),
        ]),
      ),
    );
  lines.push('');
  if (report.forwards.length === 0) lines.push('Forward backlog: none');
  else
    lines.push(
      `Forward backlog: ${String(report.forwards.length)} peer network(s)`,
      table(
        ['NETWORK', 'TASKS', 'ENVELOPES', 'EVIDENCES', 'OLDEST', 'NEXT ATTEMPT', 'ATTEMPTS'],
        report.forwards.map((f) => [
          f.network,
          String(f.tasks),
          String(f.envelopes),
          String(f.evidences),
          age(f.oldestAcceptedAt),
          f.nextAttemptAt === null
            ? 'running'
            : f.nextAttemptAt <= at
              ? 'now'
              : `in ${formatDuration(f.nextAttemptAt - at)}`,
          String(f.maxAttempts),
        ]),
      ),
    );
  lines.push('');
  const nd = report.nonDeliveries;
  if (nd.count === 0) lines.push('Non-deliveries due: none');
  else {
    lines.push(
      `Non-deliveries due: ${String(nd.count)} (expired, not yet reported to the sender)`,
      table(
        ['ADDRESS', 'ENVELOPE', 'DELIVER BY', 'OVERDUE'],
        nd.items.map((i) => [i.address, i.envelopeId, formatTime(i.deliverBy), age(i.deliverBy)]),
      ),
    );
    if (nd.items.length < nd.count)
      lines.push(
        `... and ${String(nd.count - nd.items.length)} more (--json lists the first ${String(nd.items.length)})`,
      );
  }
  return lines.join('\n');
}

export async function queueCommand(opts: { config: string; json?: boolean }): Promise<number> {
  const config = await loadRelayConfig(opts.config);
  const backend = await openBackendForReading(config, opts.config);
  let report: QueueReport;
  try {
    report = await backend.queueReport();
  } catch (err) {
    if (err instanceof RelaySetupError) throw err;
    const code = (err as { code?: unknown } | null)?.code;
    return setupFail(
      'BACKEND_UNREACHABLE',
      config.backend.kind === 'redis' ? 'backend.redis' : 'backend.dataDir',
      `the ${config.backend.kind} backend could not be read${typeof code === 'string' ? ` (${code})` : ''}`,
      { file: opts.config, cause: err },
    );
  } finally {
    await backend.close();
  }
  process.stdout.write(
    opts.json === true
      ? `${JSON.stringify(queueJson(config.relay.id, config.backend.kind, report), null, 2)}\n`
      : `${queueText(config.relay.id, config.backend.kind, report)}\n`,
  );
  return 0;
}
