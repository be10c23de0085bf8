import { renderContent } from '@rogatory/protocol';
import type { Command } from 'commander';
import { NODE_ERRORS, nodeFail } from '../errors.js';
import { readJsonFile } from '../files/file-errors.js';
import type { AttachmentInput } from '../drafting/attachment-encryption.js';
import type { DossierFilter } from '../reading/lists.js';
import type { DossierSummary } from '../reading/summaries.js';
import { CLOCK_AHEAD_ADVICE, emit, formatTime, table } from './io.js';
import { progressBars } from './progress.js';
import { asUser, globals, type CliRun } from './session.js';

function readContent(path: string): Promise<unknown> {
  return readJsonFile(path, 'the content file', 'INPUT_INVALID', { comments: true });
}

/** `path` or `path:type/subtype`. */
function attachmentsOf(values: readonly string[]): AttachmentInput[] {
  return values.map((value) => {
    const m = /^(.*):([a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*)$/.exec(value);
    return m ? { path: m[1]!, mediaType: m[2]! } : { path: value };
  });
}

function date(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    nodeFail('INPUT_INVALID', `${what} must be a date (YYYY-MM-DD or ISO 8601)`);
  return ms;
}

export function summaryTable(rows: readonly DossierSummary[]): string {
  if (rows.length === 0) return 'no dossiers';
  return table(
    [
      'ID',
      'DIR',
      'KIND',
      'TYPE',
      'STATUS',
      'CASE',
      'COUNTERPART',
      'HANDLING',
      'DEADLINE',
      'UPDATED',
    ],
    rows.map((d) => [
      d.id,
      d.direction,
      d.kind,
      d.redacted ? '(restricted)' : (d.type ?? '-'),
      d.status,
      d.redacted ? '(restricted)' : (d.caseReference ?? '-'),
      d.redacted ? '-' : (d.counterparts ?? []).join(','),
      d.handlingCode ?? '-',
      d.deadline ?? '-',
      formatTime(d.updatedAt),
    ]),
  );
}

export function registerDossiers(program: Command, run: CliRun): void {
  const { io } = run;

  program
    .command('compose')
    .description(
      'draft a request or an answer from a JSON content file, with attachments (encrypted now; plaintext never stored)',
    )
    .requiredOption('--content <file>', 'dossier content (docs/protocol.md §10)')
    .option('--to <addresses...>', 'further recipients', [])
    .option('--attach <paths...>', 'attachment files, each `path` or `path:media/type`', [])
    .option(
      '--case <caseId>',
      'put the request into this case (by default a request joins the one case with its case reference, if there is one)',
    )
    .option('--new-case', 'open a new case even if the case reference names an existing one')
    .action(
      async (
        opts: {
          content: string;
          to: string[];
          attach: string[];
          case?: string;
          newCase?: boolean;
        },
        cmd: Command,
      ) => {
        const g = globals(cmd, io);
        const content = await readContent(opts.content);
        const bars = progressBars(io, g.json);
        const { id, warnings } = await asUser(io, g, async (node, actor) => {
          const draftId = await node.compose(actor, {
            content,
            recipients: opts.to,
            attachments: attachmentsOf(opts.attach),
            ...(opts.case ? { caseId: opts.case } : {}),
            ...(opts.newCase === true ? { newCase: true } : {}),
            ...(bars.listener ? { onProgress: bars.listener } : {}),
          });
          return { id: draftId, warnings: node.warnings(actor, draftId) };
        }).finally(() => bars.stop());
        emit(io, g.json, { id, status: 'draft', warnings }, () =>
          [
            ...warnings.map((w) => `WARNING ${w.code}: ${w.message}`),
            `draft ${id} created; submit it for approval with: rogatory send ${id}`,
          ].join('\n'),
        );
      },
    );

  program
    .command('edit <id>')
    .description(
      'replace the content of a draft from a file (the editor becomes a co-drafter: four eyes then needs a third person)',
    )
    .requiredOption('--content <file>', 'the new dossier content (comments allowed)')
    .option('--attach <paths...>', 'further attachment files, each `path` or `path:media/type`', [])
    .option(
      '--replace-attachments',
      'drop the attachments the draft has (then give them all with --attach)',
    )
    .action(
      async (
        id: string,
        opts: { content: string; attach: string[]; replaceAttachments?: boolean },
        cmd: Command,
      ) => {
        const g = globals(cmd, io);
        const content = await readContent(opts.content);
        const bars = progressBars(io, g.json);
        const warnings = await asUser(io, g, async (node, actor) => {
          await node.updateDraft(actor, id, {
            content,
            attachments: attachmentsOf(opts.attach),
            keepAttachments: opts.replaceAttachments !== true,
            ...(bars.listener ? { onProgress: bars.listener } : {}),
          });
          return node.warnings(actor, id);
        }).finally(() => bars.stop());
        emit(io, g.json, { id, status: 'draft', warnings }, () =>
          [
            ...warnings.map((w) => `WARNING ${w.code}: ${w.message}`),
            `draft ${id} updated; submit it for approval with: rogatory send ${id}`,
          ].join('\n'),
        );
      },
    );

  program
    .command('reply <requestId>')
    .description('draft an answer to a request (inReplyTo, from and to are filled in)')
    .requiredOption(
      '--content <file>',
      'answer content: answerType, language and the type-specific part',
    )
    .option('--attach <paths...>', 'attachment files', [])
    .action(
      async (requestId: string, opts: { content: string; attach: string[] }, cmd: Command) => {
        const g = globals(cmd, io);
        const content = await readContent(opts.content);
        const bars = progressBars(io, g.json);
        const id = await asUser(io, g, (node, actor) =>
          node.reply(actor, requestId, {
            content,
            attachments: attachmentsOf(opts.attach),
            ...(bars.listener ? { onProgress: bars.listener } : {}),
          }),
        ).finally(() => bars.stop());
        emit(
          io,
          g.json,
          { id, status: 'draft' },
          () => `draft answer ${id} created; submit it for approval with: rogatory send ${id}`,
        );
      },
    );

  program
    .command('send <id>')
    .description('submit a draft for approval (four eyes: another approver signs it off)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      await asUser(io, g, (node, actor) => node.submitForApproval(actor, id));
      emit(io, g.json, { id, status: 'awaiting-approval' }, () => `dossier ${id} awaits approval`);
    });

  program
    .command('approve <id>')
    .description(
      'approve (approvers other than the drafter): sign, seal and send now, or queue when the relay is unreachable',
    )
    .option('--no-send', 'only queue it; `rogatory sync` sends it')
    .action(async (id: string, opts: { send: boolean }, cmd: Command) => {
      const g = globals(cmd, io);
      const bars = progressBars(io, g.json);
      const result = await asUser(io, g, async (node, actor) => {
        const warnings = node.warnings(actor, id);
        const envelopeId = await node.approve(actor, id);
        if (!opts.send) return { id, envelopeId, status: 'approved', queued: true, warnings };
        const report = await node.flushOutbox(bars.listener ? { onProgress: bars.listener } : {});
        const status = node.show(actor, id).status;
        const refused = report.rejected.includes(id) || report.failedIds.includes(id);
        return {
          id,
          envelopeId,
          status,
          queued: !refused && !report.sent.includes(id),
          refused,
          errors: report.errors.filter((e) => e.dossierId === id).map((e) => e.code),
          warnings,
        };
      }).finally(() => bars.stop());
      emit(io, g.json, result, () =>
        [
          ...result.warnings.map((w) => `WARNING ${w.code}: ${w.message}`),
          'refused' in result && result.refused
            ? `dossier ${id} approved but REFUSED by the relay (${result.errors.join(', ') || 'no code'}); it will not be sent: see rogatory show ${id}`
            : result.queued && 'errors' in result && result.errors.includes('CLOCK_AHEAD')
              ? `dossier ${id} approved and queued (envelope ${result.envelopeId}): the relay refused it as created in its future (CLOCK_AHEAD): ${CLOCK_AHEAD_ADVICE}`
              : result.queued
                ? `dossier ${id} approved and queued (envelope ${result.envelopeId}); it is sent when the relay is reachable`
                : `dossier ${id} approved and sent (envelope ${result.envelopeId}), status ${result.status}`,
        ].join('\n'),
      );
      // A permanent refusal is not success: exit like the relay's refusal does elsewhere.
      if ('refused' in result && result.refused) run.code = NODE_ERRORS.RELAY_REJECTED.exit;
    });

  program
    .command('return <id>')
    .description('send a dossier awaiting approval back to drafting (approvers)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      await asUser(io, g, (node, actor) => node.returnToDraft(actor, id));
      emit(io, g.json, { id, status: 'draft' }, () => `dossier ${id} returned to drafting`);
    });

  program
    .command('inbox')
    .description('list received dossiers (or all with --all), filtered on metadata')
    .option('--all', 'sent and received dossiers')
    .option('--case-ref <text>', 'case reference contains')
    .option('--counterpart <address>', 'sender or recipient')
    .option('--type <type>', 'request or answer type')
    .option('--status <status>', 'status')
    .option('--since <date>', 'created at or after')
    .option('--until <date>', 'created before')
    .option('--overdue', 'only dossiers past their deadline and not finished')
    .action(
      async (
        opts: {
          all?: boolean;
          caseRef?: string;
          counterpart?: string;
          type?: string;
          status?: string;
          since?: string;
          until?: string;
          overdue?: boolean;
        },
        cmd: Command,
      ) => {
        const g = globals(cmd, io);
        const since = date(opts.since, '--since');
        const until = date(opts.until, '--until');
        const filter: DossierFilter = {
          ...(opts.all === true ? {} : { direction: 'in' as const }),
          ...(opts.caseRef === undefined ? {} : { caseReference: opts.caseRef }),
          ...(opts.counterpart === undefined ? {} : { counterpart: opts.counterpart }),
          ...(opts.type === undefined ? {} : { type: opts.type }),
          ...(opts.status === undefined ? {} : { status: opts.status }),
          ...(since === undefined ? {} : { since }),
          ...(until === undefined ? {} : { until }),
        };
        const rows = await asUser(io, g, (node, actor) =>
          opts.overdue === true
            ? node.overdue(actor).filter((d) => opts.all === true || d.direction === 'in')
            : node.list(actor, filter),
        );
        emit(io, g.json, rows, () => summaryTable(rows));
      },
    );

  program
    .command('show <id>')
    .description('metadata, delivery progress, evidences and approvals of a dossier (no content)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const d = await asUser(io, g, (node, actor) => node.show(actor, id));
      emit(io, g.json, d, () =>
        [
          summaryTable([d]),
          ...revokedLine(d.signerRevoked),
          `sender      ${d.sender ?? '-'}`,
          `recipients  ${(d.recipients ?? []).join(', ')}`,
          ...(d.progress
            ? [
                `progress    ${Object.entries(d.progress)
                  .map(([r, s]) => `${r}: ${s}`)
                  .join(', ')}`,
              ]
            : []),
          ...(d.draftedBy ? [`drafted by  ${d.draftedBy}`] : []),
          ...d.approvals.map((a) => `${a.decision.padEnd(11)} ${a.username} ${formatTime(a.at)}`),
          'evidences:',
          ...d.evidences.map(
            (e) =>
              `  ${formatTime(e.issuedAt)} ${e.kind} by ${e.issuer}${e.recipient ? ` for ${e.recipient}` : ''}${e.reason ? ` (${e.reason.code}${e.reason.detail ? `/${e.reason.detail}` : ''})` : ''}`,
          ),
        ].join('\n'),
      );
    });

  program
    .command('open <id>')
    .description(
      'show the content, readable (--json: the raw content), audited; the first opening of a received dossier sends a Retrieval evidence; --out decrypts the attachments',
    )
    .option('--out <dir>', 'decrypt the attachments into this directory')
    .action(async (id: string, opts: { out?: string }, cmd: Command) => {
      const g = globals(cmd, io);
      const bars = progressBars(io, g.json);
      const result = await asUser(io, g, async (node, actor) => {
        const view = node.open(actor, id);
        const saved =
          opts.out === undefined
            ? []
            : await node.saveAttachments(
                actor,
                id,
                opts.out,
                bars.listener ? { onProgress: bars.listener } : {},
              );
        return { ...view, saved };
      }).finally(() => bars.stop());
      emit(io, g.json, result, () =>
        [
          summaryTable([result.summary]),
          ...revokedLine(result.summary.signerRevoked),
          ...(result.signed
            ? [
                `signed by ${result.signed.sender} (key ${result.signed.signedBy}) at ${formatTime(result.signed.createdAt)}`,
              ]
            : ['(draft: not signed yet)']),
          'attachments:',
          ...result.attachments.map(
            (a) => `  [${a.index}] ${a.name} ${a.mediaType} ${a.size} bytes sha256 ${a.sha256}`,
          ),
          ...result.saved.map((s) => `saved ${s.path}`),
          '',
          renderContent(result.content),
        ].join('\n'),
      );
    });

  program
    .command('export <id>')
    .description(
      'export a self-contained bundle that `rogatory verify` checks offline. A full bundle CONTAINS THE DECRYPTED DOSSIER AND ATTACHMENTS and its content key (it counts as an opening); --sealed writes one with no plaintext and no key, which proves the signatures and evidences only',
    )
    .requiredOption('--out <dir>', 'bundle directory (absent or empty)')
    .option(
      '--sealed',
      'no dossier, attachments or content key: for a registry that must verify but not read',
    )
    .action(async (id: string, opts: { out: string; sealed?: boolean }, cmd: Command) => {
      const g = globals(cmd, io);
      const result = await asUser(io, g, (node, actor) =>
        node.exportBundle(actor, id, opts.out, { sealed: opts.sealed === true }),
      );
      emit(io, g.json, result, () =>
        [
          result.kind === 'full'
            ? `full bundle written to ${result.dir}: it contains the decrypted dossier and attachments; keep it as you would the dossier`
            : `sealed bundle written to ${result.dir}: no plaintext and no key; it proves signatures and evidences, not content`,
          ...result.files.map((f) => `  ${f}`),
        ].join('\n'),
      );
    });
}

/** The mark of a received dossier whose signing key was revoked since. */
function revokedLine(
  revoked: { kid: string; revokedAt: number; reason: string } | undefined,
): string[] {
  return revoked
    ? [
        `WARNING     signed by a since-revoked key: ${revoked.kid} revoked from ${formatTime(revoked.revokedAt)} (${revoked.reason})`,
      ]
    : [];
}
