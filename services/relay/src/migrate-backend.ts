/**
 * `rogatory-relay migrate-backend --from <old-config> --to <new-config>`:
 * copies a stopped relay's whole state from one backend to another
 * (embedded ↔ Redis), so that its mailboxes keep their seqs and epoch and
 * nodes miss nothing: every mailbox item (seq preserved, counters carried
 * over so numbering goes on above them), the stored envelopes, the dedup
 * records that refuse replays, the forward tasks, the expiry timers, the
 * upload records, and the chunk bytes when the two configurations keep them
 * in different places. A target that holds relay state is refused; after the
 * copy the target is read back and its counts compared with the source's.
 *
 * Exit codes as the node CLI's: 0 copied and verified; 1 refused (a
 * configuration, the same store twice, a relay still answering on the source
 * port, a non-empty target), nothing written; 2 copied but the counts differ;
 * 70 an unexpected failure. Messages name files, fields and counts, never
 * stored content.
 */
import { connect } from 'node:net';
import { resolve } from 'node:path';
import type { BlobStore } from '@rogatory/storage';
import type { Command } from 'commander';
import { isBackendError } from './backend/errors.js';
import type { BackendSnapshot, RelayBackend } from './backend/types.js';
import { loadRelayConfig, type RelayConfig } from './config.js';
import { RELAY_EXIT } from './setup-errors.js';
import { openStores } from './server.js';

export const MIGRATE_ERRORS = {
  CONFIG_INVALID: {
    exit: RELAY_EXIT.config,
    meaning: 'a configuration file cannot be read or is invalid',
  },
  SAME_STORE: { exit: RELAY_EXIT.usage, meaning: 'both configurations name the same relay store' },
  RELAY_RUNNING: {
    exit: RELAY_EXIT.usage,
    meaning: "a relay answers on the source configuration's port: stop it first",
  },
  TARGET_NOT_EMPTY: {
    exit: RELAY_EXIT.usage,
    meaning: 'the target store holds relay state already; nothing was written',
  },
  VERIFY_FAILED: {
    exit: RELAY_EXIT.verify,
    meaning: "the target's counts differ from the source's after the copy",
  },
  INTERNAL: { exit: RELAY_EXIT.internal, meaning: 'unexpected failure' },
} as const;
export type MigrateErrorCode = keyof typeof MIGRATE_ERRORS;

export class MigrateError extends Error {
  override readonly name = 'MigrateError';
  constructor(
    readonly code: MigrateErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** What was copied, counted on both sides. */
export interface MigrationCounts {
  readonly mailboxes: number;
  readonly mailboxItems: number;
  readonly evidenceTombstones: number;
  readonly envelopes: number;
  readonly forwardsPending: number;
  readonly forwardTombstones: number;
  readonly expiryTimers: number;
  readonly uploads: number;
  readonly claims: number;
}

export interface MigrationReport {
  readonly from: RelayConfig['backend']['kind'];
  readonly to: RelayConfig['backend']['kind'];
  readonly epoch: string;
  readonly counts: MigrationCounts;
  /** Chunk blobs copied (0 when both configurations share one chunk store). */
  readonly chunksCopied: number;
  readonly chunksShared: boolean;
}

export function countSnapshot(snapshot: BackendSnapshot): MigrationCounts {
  const live = snapshot.items.filter((item) => item.state !== 'acked');
  return {
    mailboxes: snapshot.mailboxSeqs.length,
    mailboxItems: live.filter((item) => item.state === 'pending').length,
    evidenceTombstones: snapshot.items.length - live.length,
    envelopes: snapshot.envelopes.length,
    forwardsPending: snapshot.tasks.filter((task) => task.state === 'pending').length,
    forwardTombstones: snapshot.tasks.filter((task) => task.state !== 'pending').length,
    expiryTimers: live.filter((item) => item.kind === 'envelope').length,
    uploads: snapshot.uploads.length,
    claims: snapshot.claims.length,
  };
}

/** Where a configuration keeps its relay state, and its chunks, as comparable names. */
function storeName(config: RelayConfig): string {
  const b = config.backend;
  if (b.kind === 'embedded') return `embedded:${resolve(b.dataDir ?? '')}`;
  const where =
    b.redis?.url ?? (b.redis?.sentinel ? `sentinel:${b.redis.sentinel.name}` : 'redis:?');
  return `redis:${where}|${b.redis?.prefix ?? ''}`;
}

function chunkStoreName(config: RelayConfig): string {
  const { s3, dataDir } = config.backend;
  if (s3) return `s3:${s3.endPoint}:${s3.port}/${s3.bucket}/${s3.prefix ?? ''}`;
  return `fs:${resolve(dataDir ?? '', 'chunks')}`;
}

/** True when something accepts TCP connections on host:port (a relay still running). */
function answers(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host, port });
    const finish = (value: boolean): void => {
      socket.destroy();
      done(value);
    };
    socket.setTimeout(1_000, () => {
      finish(false);
    });
    socket.once('connect', () => {
      finish(true);
    });
    socket.once('error', () => {
      finish(false);
    });
  });
}

async function loadConfig(file: string, flag: string): Promise<RelayConfig> {
  try {
    return await loadRelayConfig(file);
  } catch (err) {
    throw new MigrateError(
      'CONFIG_INVALID',
      `${flag} ${file}: ${err instanceof Error ? err.message : 'cannot be read'}`,
    );
  }
}

async function copyChunks(from: BlobStore, to: BlobStore): Promise<number> {
  let copied = 0;
  for await (const id of from.list()) {
    if (await to.has(id)) continue;
    const size = await from.size(id);
    await to.put(id, from.get(id), { maxSize: size, expectedSize: size });
    copied++;
  }
  return copied;
}

/** The copy itself; both relays stopped. */
export async function migrateBackend(options: {
  readonly fromFile: string;
  readonly toFile: string;
  readonly env?: NodeJS.ProcessEnv;
}): Promise<MigrationReport> {
  const fromConfig = await loadConfig(options.fromFile, '--from');
  const toConfig = await loadConfig(options.toFile, '--to');
  if (storeName(fromConfig) === storeName(toConfig))
    throw new MigrateError(
      'SAME_STORE',
      `--from and --to name the same relay store (${fromConfig.backend.kind})`,
    );
  const host = fromConfig.relay.host ?? '127.0.0.1';
  if (await answers(host === '0.0.0.0' ? '127.0.0.1' : host, fromConfig.relay.port))
    throw new MigrateError(
      'RELAY_RUNNING',
      `something answers on ${host}:${String(fromConfig.relay.port)} (--from relay.port): stop the relay before migrating`,
    );
  const env = options.env ?? process.env;
  const source = await openStores(fromConfig, env);
  let target: { backend: RelayBackend; blobs: BlobStore } | undefined;
  try {
    target = await openStores(toConfig, env);
    const snapshot = await source.backend.exportState();
    const counts = countSnapshot(snapshot);
    try {
      await target.backend.importState(snapshot);
    } catch (err) {
      if (isBackendError(err, 'BACKEND_NOT_EMPTY'))
        throw new MigrateError(
          'TARGET_NOT_EMPTY',
          `the --to store (${toConfig.backend.kind}) holds relay state already: give an empty one`,
        );
      throw err;
    }
    const chunksShared = chunkStoreName(fromConfig) === chunkStoreName(toConfig);
    const chunksCopied = chunksShared ? 0 : await copyChunks(source.blobs, target.blobs);

    const copied = await target.backend.exportState();
    const after = countSnapshot(copied);
    const [sourceStats, targetStats] = await Promise.all([
      source.backend.stats(),
      target.backend.stats(),
    ]);
    const differing = (Object.keys(counts) as (keyof MigrationCounts)[]).filter(
      (key) => counts[key] !== after[key],
    );
    if (
      differing.length > 0 ||
      copied.epoch !== snapshot.epoch ||
      JSON.stringify(sourceStats) !== JSON.stringify(targetStats)
    )
      throw new MigrateError(
        'VERIFY_FAILED',
        `after the copy the target differs: ${
          differing.map((key) => `${key} ${counts[key]} → ${after[key]}`).join(', ') ||
          (copied.epoch !== snapshot.epoch ? 'mailbox epoch' : 'backend statistics')
        }`,
      );
    return {
      from: fromConfig.backend.kind,
      to: toConfig.backend.kind,
      epoch: snapshot.epoch,
      counts,
      chunksCopied,
      chunksShared,
    };
  } finally {
    await Promise.allSettled([
      source.backend.close(),
      source.blobs.close(),
      target?.backend.close(),
      target?.blobs.close(),
    ]);
  }
}

/**
 * Give a stopped relay's store a new mailbox epoch (after restoring a backup
 * of it: the restored mailbox counters are behind the numbers nodes have
 * already seen). Nodes see the new epoch, read their mailbox again from 0 and
 * recognise what they stored before, so nothing the store holds is missed.
 */
export async function renewEpoch(options: {
  readonly file: string;
  readonly env?: NodeJS.ProcessEnv;
}): Promise<{ readonly previous: string; readonly epoch: string }> {
  const config = await loadConfig(options.file, '--config');
  const host = config.relay.host ?? '127.0.0.1';
  if (await answers(host === '0.0.0.0' ? '127.0.0.1' : host, config.relay.port))
    throw new MigrateError(
      'RELAY_RUNNING',
      `something answers on ${host}:${String(config.relay.port)} (relay.port): stop the relay first`,
    );
  const stores = await openStores(config, options.env ?? process.env);
  try {
    const previous = await stores.backend.mailboxEpoch();
    const epoch = await stores.backend.renewMailboxEpoch();
    return { previous, epoch };
  } finally {
    await Promise.allSettled([stores.backend.close(), stores.blobs.close()]);
  }
}

function renderReport(report: MigrationReport): string {
  const c = report.counts;
  return [
    `copied the ${report.from} relay store into the ${report.to} one (mailbox epoch ${report.epoch} kept), verified:`,
    `  mailboxes            ${c.mailboxes}`,
    `  mailbox items        ${c.mailboxItems} waiting (${c.expiryTimers} with expiry timers)`,
    `  evidence dedup keys  ${c.evidenceTombstones} of acked items`,
    `  envelopes            ${c.envelopes}`,
    `  forwards             ${c.forwardsPending} pending, ${c.forwardTombstones} finished`,
    `  upload records       ${c.uploads}`,
    `  single-use claims    ${c.claims}`,
    `  chunks               ${report.chunksShared ? 'shared store, nothing to copy' : `${report.chunksCopied} copied`}`,
  ].join('\n');
}

/** Registers the command on the relay CLI (one line in cli.ts). */
export function registerMigrateBackend(program: Command): void {
  program
    .command('migrate-backend')
    .description(
      'copy a stopped relay’s whole state (mailboxes with their seqs and epoch, envelopes, dedup records, forwards, expiry timers, upload records, chunks) from the backend of one configuration to that of another (embedded ↔ redis); the target must be empty',
    )
    .requiredOption('--from <file>', 'configuration of the relay as it ran (its store is read)')
    .requiredOption('--to <file>', 'configuration it will run with (its store must be empty)')
    .option('--json', 'print the report (or the error) as JSON')
    .action(async (opts: { from: string; to: string; json?: boolean }) => {
      const json = opts.json === true;
      try {
        const report = await migrateBackend({ fromFile: opts.from, toFile: opts.to });
        process.stdout.write(
          json ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report)}\n`,
        );
        process.exitCode = 0;
      } catch (err) {
        const error =
          err instanceof MigrateError
            ? err
            : new MigrateError('INTERNAL', 'migration failed unexpectedly');
        if (json)
          process.stdout.write(
            `${JSON.stringify({ error: { code: error.code, message: error.message } }, null, 2)}\n`,
          );
        else process.stderr.write(`rogatory-relay: ${error.message}\n`);
        process.exitCode = MIGRATE_ERRORS[error.code].exit;
      }
    });

  program
    .command('new-epoch')
    .description(
      'give a stopped relay’s store a new mailbox epoch, after restoring it from a backup: nodes then read their mailboxes again from 0 and miss nothing the restored store holds',
    )
    .requiredOption('-c, --config <file>', 'configuration file (YAML or JSON)')
    .option('--json', 'print { previous, epoch } (or the error) as JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      const json = opts.json === true;
      try {
        const result = await renewEpoch({ file: opts.config });
        process.stdout.write(
          json
            ? `${JSON.stringify(result)}\n`
            : `mailbox epoch ${result.previous} replaced by ${result.epoch}\n`,
        );
        process.exitCode = 0;
      } catch (err) {
        const error =
          err instanceof MigrateError ? err : new MigrateError('INTERNAL', 'new-epoch failed');
        if (json)
          process.stdout.write(
            `${JSON.stringify({ error: { code: error.code, message: error.message } })}\n`,
          );
        else process.stderr.write(`rogatory-relay: ${error.message}\n`);
        process.exitCode = MIGRATE_ERRORS[error.code].exit;
      }
    });
}
