import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { INTRODUCTION_DECLINE_REASONS, REQUEST_TYPES } from '@rogatory/protocol';
import { nodeFail, toNodeError } from '../errors.js';
import { writeFileAtomic } from '../files/atomic-write.js';
import type {
  IntroductionInboxEntry,
  IntroductionRequestView,
  RequestTypeName,
} from '../introductions/workflow.js';
import { emit, formatTime, table } from './io.js';
import { asUser, globals, type CliRun } from './session.js';

function requestType(value: string): RequestTypeName {
  if (!(REQUEST_TYPES as readonly string[]).includes(value))
    nodeFail('INPUT_INVALID', `--type must be one of ${REQUEST_TYPES.join(', ')}`);
  return value as RequestTypeName;
}

function list(value: string | undefined): string[] | undefined {
  return value
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function days(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) nodeFail('INPUT_INVALID', '--valid-days must be a whole number');
  return n;
}

function statusText(views: readonly IntroductionRequestView[]): string {
  if (views.length === 0) return 'no introduction requests';
  return [
    table(
      ['ID', 'POC', 'COUNTRY', 'TYPE', 'DOSSIER', 'OUTCOME', 'ANSWERED BY', 'CASE'],
      views.map((v) => [
        v.id,
        v.poc,
        v.country,
        v.requestType,
        v.dossierStatus,
        v.outcome,
        v.answeredBy ?? '-',
        v.caseReference ?? '-',
      ]),
    ),
    ...views.flatMap((v) => [
      ...v.introductions.map(
        (i) =>
          `${v.id}: ${i.subject} introduced by ${i.issuer} for ${i.competences.join(',')}, valid until ${formatTime(i.validUntil)}`,
      ),
      ...(v.outcome === 'declined'
        ? [
            `${v.id}: declined by ${v.answeredBy ?? '-'}: ${v.reason ?? '-'}${v.text ? ` (${v.text})` : ''}`,
          ]
        : []),
      ...(v.code ? [`${v.id}: the answer's introductions were refused: ${v.code}`] : []),
    ]),
  ].join('\n');
}

function inboxText(entries: readonly IntroductionInboxEntry[]): string {
  if (entries.length === 0) return 'no introduction requests';
  return table(
    ['ID', 'STATE', 'FROM', 'REQUESTER', 'COUNTRY', 'TYPE', 'LANGUAGES', 'ANSWER', 'RECEIVED'],
    entries.map((e) => [
      e.id,
      e.state,
      e.role === 'referee' ? `${e.from} (referral)` : e.from,
      e.requester,
      e.country,
      e.requestType,
      e.languages.join(','),
      e.answer
        ? `${e.answer.outcome}${e.answer.subject ? ` ${e.answer.subject}` : ''}${e.answer.to ? ` → ${e.answer.to}` : ''} (${e.answer.dossierId} ${e.answer.dossierStatus})`
        : '-',
      formatTime(e.receivedAt),
    ]),
  );
}

const APPROVAL_HINT = 'an approver sends it: rogatory approve';

export function registerIntroduce(program: Command, run: CliRun): void {
  const { io } = run;
  const introduce = program
    .command('introduce')
    .description(
      'the point-of-contact workflow: ask a PoC for a competent authority; on a PoC node, answer',
    );

  introduce
    .command('request')
    .description(
      'draft an introduction request to a point of contact (then submit and approve it like any dossier)',
    )
    .requiredOption('--to <poc>', 'the point of contact asked, e.g. poc-sn@wacap')
    .requiredOption('--country <cc>', 'the country whose competent authority is sought')
    .requiredOption('--type <requestType>', `one of ${REQUEST_TYPES.join(', ')}`)
    .requiredOption('--language <tags>', 'languages the request can be written in, e.g. en,fr')
    .option('--note <text>', 'what the PoC needs to know (no personal data)')
    .option('--case-ref <reference>', "the officer's case reference")
    .option('--submit', 'submit for approval at once')
    .action(
      async (
        opts: {
          to: string;
          country: string;
          type: string;
          language: string;
          note?: string;
          caseRef?: string;
          submit?: boolean;
        },
        cmd: Command,
      ) => {
        const g = globals(cmd, io);
        const languages = list(opts.language) ?? [];
        const type = requestType(opts.type);
        const id = await asUser(io, g, (node, actor) =>
          node.requestIntroduction(actor, {
            to: opts.to,
            country: opts.country,
            requestType: type,
            languages,
            ...(opts.note === undefined ? {} : { note: opts.note }),
            ...(opts.caseRef === undefined ? {} : { caseReference: opts.caseRef }),
            submit: opts.submit === true,
          }),
        );
        emit(
          io,
          g.json,
          { id, status: opts.submit === true ? 'awaiting-approval' : 'draft' },
          () =>
            opts.submit === true
              ? `introduction request ${id} awaiting approval (${APPROVAL_HINT} ${id})`
              : `introduction request ${id} drafted (rogatory submit ${id}, then ${APPROVAL_HINT} ${id})`,
        );
      },
    );

  introduce
    .command('status')
    .argument('[id]', 'one introduction request (its dossier id)')
    .description("the outcome of this node's introduction requests")
    .action(async (id: string | undefined, _opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const { requests, introduced } = await asUser(io, g, (node, actor) => ({
        requests: node.introductionStatus(actor, id),
        introduced: id === undefined ? node.introductionsOfSelf(actor) : [],
      }));
      emit(io, g.json, { requests, introducedTo: introduced }, () =>
        [
          statusText(requests),
          ...introduced.map(
            (s) =>
              `this node was introduced to ${s.requester} by ${s.poc} (${s.state}${s.code ? `: ${s.code}` : ''})`,
          ),
        ].join('\n'),
      );
    });

  introduce
    .command('list')
    .description('on a PoC node: requests and referrals received, with their state')
    .option('--state <state>', 'open, introduced, referred or declined')
    .action(async (opts: { state?: string }, cmd: Command) => {
      const g = globals(cmd, io);
      if (
        opts.state !== undefined &&
        !['open', 'introduced', 'referred', 'declined'].includes(opts.state)
      )
        nodeFail('INPUT_INVALID', '--state must be open, introduced, referred or declined');
      const all = await asUser(io, g, (node, actor) => node.introductionInbox(actor));
      const entries = opts.state === undefined ? all : all.filter((e) => e.state === opts.state);
      emit(io, g.json, { entries }, () => inboxText(entries));
    });

  introduce
    .command('issue')
    .argument('<id>', 'a request or referral (introduce list)')
    .description(
      'sign an Introduction with the PoC key; the answer to the requester (and a copy to the authority) awaits approval',
    )
    .requiredOption('--authority <address>', 'the authority introduced')
    .option('--competences <types>', 'request types vouched for (default: the type asked)')
    .option('--note <text>', 'a note in the introduction')
    .option('--valid-days <days>', 'how long it vouches (default 365)')
    .action(
      async (
        id: string,
        opts: { authority: string; competences?: string; note?: string; validDays?: string },
        cmd: Command,
      ) => {
        const g = globals(cmd, io);
        const competences = list(opts.competences)?.map(requestType);
        const validDays = days(opts.validDays);
        const result = await asUser(io, g, (node, actor) =>
          node.issueIntroduction(actor, id, {
            authority: opts.authority,
            ...(competences === undefined ? {} : { competences }),
            ...(opts.note === undefined ? {} : { note: opts.note }),
            ...(validDays === undefined ? {} : { validDays }),
          }),
        );
        emit(io, g.json, result, () =>
          [
            `introduction of ${result.introduction.body.subject} to ${result.introduction.body.audience} signed, valid until ${formatTime(result.introduction.body.validUntil)}`,
            `answer ${result.dossierId} awaiting approval (${APPROVAL_HINT} ${result.dossierId})`,
          ].join('\n'),
        );
      },
    );

  introduce
    .command('refer')
    .argument('<id>', 'a request (introduce list)')
    .description("refer a request to a peer network's point of contact (awaits approval)")
    .requiredOption('--to <poc>', "the peer network's point of contact, e.g. poc-kz@casc")
    .option('--remarks <text>', 'remarks for the peer PoC')
    .action(async (id: string, opts: { to: string; remarks?: string }, cmd: Command) => {
      const g = globals(cmd, io);
      const result = await asUser(io, g, (node, actor) =>
        node.referIntroduction(actor, id, {
          to: opts.to,
          ...(opts.remarks === undefined ? {} : { remarks: opts.remarks }),
        }),
      );
      emit(
        io,
        g.json,
        result,
        () =>
          `referral ${result.dossierId} to ${opts.to} awaiting approval (${APPROVAL_HINT} ${result.dossierId})`,
      );
    });

  introduce
    .command('decline')
    .argument('<id>', 'a request or referral (introduce list)')
    .description('decline with a reason (the answer awaits approval)')
    .requiredOption('--reason <code>', INTRODUCTION_DECLINE_REASONS.join(', '))
    .option('--note <text>', 'an explanation for the requester')
    .action(async (id: string, opts: { reason: string; note?: string }, cmd: Command) => {
      const g = globals(cmd, io);
      const result = await asUser(io, g, (node, actor) =>
        node.declineIntroduction(actor, id, {
          reason: opts.reason,
          ...(opts.note === undefined ? {} : { note: opts.note }),
        }),
      );
      emit(
        io,
        g.json,
        result,
        () =>
          `decline ${result.dossierId} awaiting approval (${APPROVAL_HINT} ${result.dossierId})`,
      );
    });

  introduce
    .command('export')
    .description(
      'the approved introductions this PoC issued, as `rogatory-network log add <file>` reads them',
    )
    .option('--out <file>', 'write them to this file (default: standard output)')
    .action(async (opts: { out?: string }, cmd: Command) => {
      const g = globals(cmd, io);
      const exported = await asUser(io, g, (node, actor) => node.exportIntroductions(actor));
      if (opts.out === undefined) {
        io.out(`${JSON.stringify(exported, null, 2)}\n`);
        return;
      }
      const path = resolve(opts.out);
      try {
        await writeFileAtomic(path, `${JSON.stringify(exported, null, 2)}\n`, { mode: 0o644 });
      } catch (cause) {
        throw toNodeError(cause, 'write the introductions file');
      }
      emit(
        io,
        g.json,
        { file: path, count: exported.introductions.length },
        () =>
          `${exported.introductions.length} introduction(s) written to ${path} (rogatory-network log add ${path})`,
      );
    });

  introduce
    .command('receive')
    .argument('<file>', 'a signed Introduction (JSON)')
    .description('verify and keep an introduction given out of band (refused with its code)')
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      let value: unknown;
      try {
        value = JSON.parse(await readFile(file, 'utf8'));
      } catch (cause) {
        nodeFail('INPUT_INVALID', 'the introduction file cannot be read as JSON', { cause });
      }
      const kept = await asUser(io, g, (node, actor) => node.receiveIntroduction(actor, value));
      emit(
        io,
        g.json,
        kept,
        () =>
          `introduction of ${kept.subject} by ${kept.issuer} kept, valid until ${formatTime(kept.validUntil)}`,
      );
    });
}
