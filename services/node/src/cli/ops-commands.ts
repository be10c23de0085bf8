import { resolve } from 'node:path';
import type { Command } from 'commander';
import { AUDIT_ACTIONS } from '../administration/audit-log.js';
import { backupNode, restoreNode } from '../administration/backup.js';
import { verifyBundle } from '../export/bundle.js';
import { NODE_ERRORS, nodeFail } from '../errors.js';
import type { SyncEvent } from '../authority-node.js';
import type { TrustFetchRow } from '../store/trust-table.js';
import type { TrustStatus, TrustSyncReport } from '../trust/trust-sync.js';
import { EXIT, emit, formatBytes, formatTime, table, type CliIO } from './io.js';
import { progressBars } from './progress.js';
import { asUser, globals, withNode, type CliRun } from './session.js';

function describe(event: SyncEvent): string {
  switch (event.type) {
    case 'connected':
      return 'connected to the relay';
    case 'disconnected':
      return `disconnected${event.willReconnect ? ', reconnecting' : ''}`;
    case 'item': {
      const o = event.outcome;
      if (o.kind === 'received')
        return `received dossier ${o.dossierId} (envelope ${o.envelopeId})`;
      if (o.kind === 'quarantined')
        return `QUARANTINED envelope ${o.envelopeId} as ${o.dossierId}: ${o.code}`;
      if (o.kind === 'evidence')
        return `evidence ${o.evidenceKind} for ${o.dossierId}, status ${o.status}`;
      if (o.kind === 'duplicate') return `already stored: envelope ${o.envelopeId}`;
      if (o.kind === 'refused')
        return `REFUSED item ${event.seq} (envelope ${o.envelopeId}) from the relay: ${o.code}`;
      return `ignored item ${event.seq}: ${o.reason}`;
    }
    case 'trust':
      return describeTrust(event.report);
    case 'outbox':
      return `outbox: ${event.report.sent.length} sent, ${event.report.rejected.length} rejected, ${event.report.evidencesPosted} evidences posted, ${event.report.deferred} deferred, ${event.report.failed} failed`;
    case 'mailbox-reset':
      return `the relay's mailbox was reset (epoch ${event.epoch}): reading it again from 0`;
    case 'error':
      return `error ${event.code}${event.detail ? ` (${event.detail})` : ''}${event.seq === undefined ? '' : ` on item ${event.seq}`}`;
  }
}

function describeTrust(report: TrustSyncReport): string {
  if (report.networks.length === 0) return 'trust: no network to follow';
  return `trust: ${report.networks
    .map(
      (n) =>
        `${n.network} ${n.outcome === 'fork' ? 'FORK ALARM' : n.outcome}${n.code === undefined ? '' : ` ${n.code}`} (size ${n.size}, edition ${n.edition ?? '-'}, second source ${n.secondSource})`,
    )
    .join('; ')}`;
}

function describeTrustStatus(status: TrustStatus): string {
  const fetch = (f: TrustFetchRow | null): string =>
    f === null ? 'never' : `${f.outcome} at ${formatTime(f.at)} (${f.url || '-'})`;
  return [
    `quorum ${status.quorum}, poll every ${status.pollSeconds} s, fork alarms open ${status.openAlarms}, forks detected ${status.forksTotal}`,
    ...status.networks.flatMap((n) => [
      `${n.network}: edition ${n.edition ?? '-'} (logged ${n.logEdition ?? '-'}), log size ${n.logSize}, cosigners ${n.cosigners.join(', ') || '-'}`,
      `  relay fetch   ${fetch(n.lastFetch.relay)}`,
      `  second source ${fetch(n.lastFetch.second)}`,
      ...n.alarms.map(
        (a) =>
          `  ALARM ${a.code} since ${formatTime(a.raisedAt)}: ${a.sourceA} and ${a.sourceB} disagree; new editions of ${n.network} are refused until cleared`,
      ),
    ]),
  ].join('\n');
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

export function registerOps(
  program: Command,
  run: CliRun,
  options: { untilSignal?: (io: CliIO) => Promise<void> } = {},
): void {
  const { io } = run;

  program
    .command('sync')
    .description(
      'receive (store, verify, ack, deliver evidences) and send what is queued; runs until SIGINT/SIGTERM, or once with --once',
    )
    .option('--once', 'pull the mailbox and flush the outbox once, then exit')
    .action(async (opts: { once?: boolean }, cmd: Command) => {
      const g = globals(cmd, io);
      const bars = progressBars(io, g.json);
      await withNode(io, g, async (node) => {
        if (opts.once === true) {
          const report = await node
            .syncOnce(bars.listener ? { onProgress: bars.listener } : {})
            .finally(() => bars.stop());
          emit(io, g.json, report, () =>
            [
              describeTrust(report.trust),
              ...report.items.map((i) =>
                describe({ type: 'item', seq: i.seq, outcome: i.outcome }),
              ),
              describe({ type: 'outbox', report: report.outbox }),
            ].join('\n'),
          );
          if (
            report.outbox.errors.some((e) =>
              ['NETWORK', 'TIMEOUT', 'UNAVAILABLE', 'RATE_LIMITED'].includes(e.code),
            )
          )
            run.code = NODE_ERRORS.RELAY_UNREACHABLE.exit;
          return;
        }
        node.startSync((event) => {
          io.out(
            g.json
              ? `${JSON.stringify({ at: Date.now(), ...event })}\n`
              : `${formatTime(Date.now())} ${describe(event)}\n`,
          );
        });
        await (options.untilSignal ?? waitForSignal)(io);
        await node.stopSync();
      });
    });

  program
    .command('verify <bundle>')
    .description(
      'verify an exported bundle offline: signatures, bindings, attachments, evidence chain, key chain (exit 2 when it fails)',
    )
    .option(
      '--expect-root-kid <kid>',
      'the key id of the root you trust; fails if the bundle pins another',
    )
    .action(async (bundle: string, opts: { expectRootKid?: string }, cmd: Command) => {
      const g = globals(cmd, io);
      const report = await verifyBundle(
        bundle,
        opts.expectRootKid === undefined ? {} : { expectedRootKid: opts.expectRootKid },
      );
      emit(io, g.json, report, () =>
        [
          report.scope,
          ...report.checks.map(
            (c) => `${c.ok ? 'ok    ' : 'FAILED'} ${c.check.padEnd(18)} ${c.detail}`,
          ),
          report.ok
            ? `VERIFIED${report.proves === 'chain-only' ? ' (SIGNATURES AND EVIDENCES ONLY, NOT CONTENT)' : ''}: envelope ${report.envelopeId ?? '?'} from ${report.sender ?? '?'}, against root ${report.pinnedRoot?.kid ?? '?'} of ${report.pinnedRoot?.network ?? '?'} (compare it with the root you trust)`
            : `VERIFICATION FAILED: ${report.code ?? '?'}`,
        ].join('\n'),
      );
      if (!report.ok) run.code = EXIT.verificationFailed;
    });

  const trust = program.command('trust').description('trust logs of the networks the node follows');
  trust
    .command('status')
    .description(
      'per network: edition, log size, cosigners, last fetches, fork alarms (exit 2 while an alarm is open)',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const status = await withNode(io, g, (node) => node.trustStatus());
      emit(io, g.json, status, () => describeTrustStatus(status));
      if (status.openAlarms > 0) run.code = EXIT.verificationFailed;
    });
  trust
    .command('sync')
    .description('poll the trust logs now and apply what verifies')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const report = await withNode(io, g, (node) => node.syncTrust());
      emit(io, g.json, report, () => describeTrust(report));
      if (report.networks.some((n) => n.outcome === 'fork')) run.code = EXIT.verificationFailed;
    });
  trust
    .command('clear-alarm <network>')
    .description("clear a network's fork alarm after investigation (admins; audited)")
    .action(async (network: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const cleared = await asUser(io, g, (node, actor) => node.clearTrustAlarm(actor, network));
      emit(io, g.json, { network, cleared }, () =>
        cleared === 0
          ? `no open alarm for ${network}`
          : `cleared ${cleared} alarm(s) of ${network}`,
      );
    });

  program
    .command('gc')
    .description(
      'collect blobs no dossier needs (left by an interrupted compose or download): those found unneeded by an earlier pass at least the grace ago are deleted (admins)',
    )
    .option('--grace-hours <n>', 'how long a blob must have been unneeded (1-720)', '24')
    .option('--dry-run', 'report only; delete and remember nothing')
    .action(async (opts: { graceHours: string; dryRun?: boolean }, cmd: Command) => {
      const g = globals(cmd, io);
      const hours = Number(opts.graceHours);
      if (!Number.isFinite(hours) || hours < 1 || hours > 720)
        nodeFail('INPUT_INVALID', '--grace-hours must be a number from 1 to 720');
      const report = await asUser(io, g, (node, actor) =>
        node.collectGarbage(actor, { graceMs: hours * 3600_000, dryRun: opts.dryRun === true }),
      );
      emit(io, g.json, report, () =>
        [
          `${report.stored} blobs stored, ${report.referenced} needed by dossiers`,
          `${report.deleted} deleted (${formatBytes(report.deletedBytes)})${report.dryRun ? ' (dry run: nothing deleted)' : ''}`,
          `${report.waiting} unneeded but seen so for less than ${String(hours)} h: a later pass deletes them`,
        ].join('\n'),
      );
    });

  program
    .command('backup')
    .description(
      'back the node up into a new folder while it may run: database snapshot, audit head, sealed keys, trust, blobs (all as encrypted as on the node; no passphrase needed)',
    )
    .requiredOption('--out <dir>', 'the backup folder (absent or empty)')
    .action(async (opts: { out: string }, cmd: Command) => {
      const g = globals(cmd, io);
      const report = await backupNode(g.dir, resolve(opts.out));
      emit(io, g.json, report, () =>
        [
          `backup of ${report.address} written to ${report.dir}: ${report.files} files, ${report.blobs} blobs (${formatBytes(report.blobBytes)}), audit head ${report.auditHeadSeq}`,
          ...(report.blobsInObjectStore
            ? [
                'the blobs live in the S3 store: back the bucket up by its own means (versioning, replication)',
              ]
            : []),
          'keep it like the node: it holds the sealed keys; the passphrase is needed to use it',
        ].join('\n'),
      );
    });

  program
    .command('restore')
    .description(
      'restore a backup into a new node folder (--dir), checking every file and blob first; then opens it (passphrase) and verifies the audit log and blobs',
    )
    .requiredOption('--from <dir>', 'the backup folder')
    .option('--no-check', 'do not open the restored node to verify it')
    .action(async (opts: { from: string; check: boolean }, cmd: Command) => {
      const g = globals(cmd, io);
      const report = await restoreNode(resolve(opts.from), g.dir);
      const check = opts.check
        ? await withNode(io, g, async (node) => node.integrity())
        : undefined;
      const ok = check === undefined || (check.audit.ok && check.missingBlobs.length === 0);
      emit(io, g.json, { ...report, check: check ?? null, ok }, () =>
        [
          `restored ${report.address} into ${report.dir}: ${report.files} files, ${report.blobs} blobs, audit head ${report.auditHeadSeq}`,
          ...(check === undefined
            ? ['not checked (--no-check)']
            : [
                check.audit.ok
                  ? `audit log intact: ${check.audit.entries} entries`
                  : `AUDIT LOG TAMPERED: ${check.audit.problems.map((p) => p.code).join(', ')}`,
                check.missingBlobs.length === 0
                  ? 'every blob the dossiers need is present'
                  : `MISSING ${check.missingBlobs.length} blobs the dossiers need`,
              ]),
          'start it (rogatory serve or sync): it syncs on from the cursor of the backup',
        ].join('\n'),
      );
      if (!ok) run.code = NODE_ERRORS.VERIFICATION_FAILED.exit;
    });

  const audit = program.command('audit').description('local audit log');
  audit
    .command('verify')
    .description('check the hash chain and heads of the audit log (admins; exit 2 when tampered)')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const report = await asUser(io, g, (node, actor) => node.verifyAudit(actor));
      emit(io, g.json, report, () =>
        report.ok
          ? `audit log intact: ${report.entries} entries, head ${report.head?.seq ?? 0} ${report.head?.hash ?? ''}`
          : [
              'AUDIT LOG TAMPERED:',
              ...report.problems.map(
                (p) => `  ${p.code}${p.seq === undefined ? '' : ` at entry ${p.seq}`}`,
              ),
            ].join('\n'),
      );
      if (!report.ok) run.code = NODE_ERRORS.AUDIT_TAMPERED.exit;
    });

  audit
    .command('list')
    .description('list audit entries, oldest first (admins)')
    .option(
      '--since <when>',
      'an ISO date or time (2026-12-01, 2026-12-01T08:00Z) or an age (90m, 24h, 7d)',
    )
    .option('--actor <username>', 'only what this user did (`system` for the node itself)')
    .option('--action <action>', `only this action (${AUDIT_ACTIONS.slice(0, 3).join(', ')}, ...)`)
    .option('--target <id>', 'only entries about this dossier, envelope or username')
    .option('--limit <n>', 'at most this many, the most recent (1-100000)', '200')
    .action(
      async (
        opts: { since?: string; actor?: string; action?: string; target?: string; limit: string },
        cmd: Command,
      ) => {
        const g = globals(cmd, io);
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 100_000)
          nodeFail('INPUT_INVALID', '--limit must be a whole number from 1 to 100000');
        if (
          opts.action !== undefined &&
          !(AUDIT_ACTIONS as readonly string[]).includes(opts.action)
        )
          nodeFail(
            'INPUT_INVALID',
            `--action ${opts.action} is not an audit action; one of ${AUDIT_ACTIONS.join(', ')}`,
          );
        const since = opts.since === undefined ? undefined : parseSince(opts.since, Date.now());
        const { entries, names } = await asUser(io, g, (node, actor) => {
          const found = node.auditEntries(actor, {
            limit,
            ...(since === undefined ? {} : { since }),
            ...(opts.actor === undefined ? {} : { actor: opts.actor }),
            ...(opts.action === undefined ? {} : { action: opts.action }),
            ...(opts.target === undefined ? {} : { target: opts.target }),
          });
          const byId = new Map(node.listUsers(actor).map((u) => [u.id, u.username]));
          return { entries: found, names: byId };
        });
        const shown = entries.map((e) => ({ ...e, actor: names.get(e.actor) ?? e.actor }));
        emit(io, g.json, shown, () =>
          shown.length === 0
            ? 'no audit entry matches'
            : table(
                ['SEQ', 'AT', 'ACTOR', 'ACTION', 'TARGET', 'DETAIL'],
                shown.map((e) => [
                  String(e.seq),
                  formatTime(e.at),
                  e.actor,
                  e.action,
                  e.target ?? '-',
                  e.detail ?? '-',
                ]),
              ),
        );
      },
    );

  audit
    .command('export')
    .description(
      'write the whole audit log with its chain hashes and head to a new file (JSON lines), for a reviewer to recompute away from the node (admins)',
    )
    .requiredOption('--out <file>', 'the file to create (never overwritten)')
    .action(async (opts: { out: string }, cmd: Command) => {
      const g = globals(cmd, io);
      const result = await asUser(io, g, (node, actor) =>
        node.exportAudit(actor, resolve(opts.out)),
      );
      emit(
        io,
        g.json,
        result,
        () =>
          `audit log exported to ${result.file}: ${result.entries} entries, head ${result.head?.seq ?? 0} ${result.head?.hash ?? ''}`,
      );
    });

  const quarantine = program.command('quarantine').description('dossiers that failed verification');
  quarantine
    .command('list')
    .description('list quarantined dossiers with their reason codes')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const rows = await asUser(io, g, (node, actor) => node.quarantine(actor));
      emit(io, g.json, rows, () =>
        rows.length === 0
          ? 'quarantine is empty'
          : table(
              ['ID', 'ENVELOPE', 'SENDER', 'CODE', 'RECEIVED', 'BYTES'],
              rows.map((q) => [
                q.id,
                q.envelopeId ?? '-',
                q.sender,
                q.code,
                formatTime(q.receivedAt),
                String(q.size),
              ]),
            ),
      );
    });
}

/** `--since`: an age (90m, 24h, 7d) before `now`, or an ISO date or time; INPUT_INVALID otherwise. */
export function parseSince(value: string, now: number): number {
  const age = /^(\d{1,6})([mhd])$/.exec(value);
  if (age) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 'm' | 'h' | 'd'];
    return now - Number(age[1]) * unit;
  }
  if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) {
    const at = Date.parse(value);
    if (Number.isFinite(at)) return at;
  }
  return nodeFail(
    'INPUT_INVALID',
    `--since ${JSON.stringify(value.slice(0, 40))} is neither an ISO date (2026-12-01, 2026-12-01T08:00Z) nor an age (90m, 24h, 7d)`,
  );
}
