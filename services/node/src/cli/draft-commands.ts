import { writeFile } from 'node:fs/promises';
import {
  ANSWER_TYPES,
  validateDossierContent,
  type AnswerType,
  type RequestType,
} from '@rogatory/protocol';
import type { Command } from 'commander';
import { nodeFail } from '../errors.js';
import { readJsonFile, whyUnreadable } from '../files/file-errors.js';
import { emit } from './io.js';
import { asUser, globals, type CliRun } from './session.js';

/** Short names officers type for the request types. */
const TYPE_NAMES: Readonly<Record<string, RequestType>> = {
  mla: 'mla',
  extradition: 'extradition',
  transfer: 'transfer-of-sentenced-persons',
  'transfer-of-sentenced-persons': 'transfer-of-sentenced-persons',
  confiscation: 'confiscation',
};

function requestType(value: string): RequestType {
  const t = TYPE_NAMES[value];
  if (t === undefined)
    return nodeFail(
      'INPUT_INVALID',
      `--type must be one of mla, extradition, transfer, confiscation (not ${JSON.stringify(value.slice(0, 40))})`,
    );
  return t;
}

function answerType(value: string): AnswerType {
  if (!(ANSWER_TYPES as readonly string[]).includes(value))
    return nodeFail('INPUT_INVALID', `--answer-type must be one of ${ANSWER_TYPES.join(', ')}`);
  return value as AnswerType;
}

function today(): string {
  return new Date().toISOString().slice(0, 10);
}

export function registerDrafting(program: Command, run: CliRun): void {
  const { io } = run;
  const draft = program
    .command('draft')
    .description('dossier content without the spec at hand: templates and checks');

  draft
    .command('new')
    .description(
      'write a commented template (every field, what it means, whether it is required) for a request or an answer',
    )
    .option('--type <type>', 'a request: mla, extradition, transfer or confiscation')
    .option('--to <address>', 'the requested authority (name, country and language filled in)')
    .option('--answer-to <id>', 'an answer to this request (local id)')
    .option(
      '--answer-type <type>',
      `the answer's type: ${ANSWER_TYPES.join(', ')}`,
      'acknowledgement',
    )
    .option('--out <file>', 'write the template to this new file instead of printing it')
    .action(
      async (
        opts: { type?: string; to?: string; answerTo?: string; answerType: string; out?: string },
        cmd: Command,
      ) => {
        const g = globals(cmd, io);
        const options = {
          ...(opts.type === undefined ? {} : { type: requestType(opts.type) }),
          ...(opts.to === undefined ? {} : { to: opts.to }),
          ...(opts.answerTo === undefined
            ? {}
            : { answerTo: opts.answerTo, answerType: answerType(opts.answerType) }),
        };
        const template = await asUser(io, g, (node, actor) => node.draftTemplate(actor, options));
        if (opts.out === undefined) {
          if (g.json) emit(io, true, { template }, () => template);
          else io.out(template);
          return;
        }
        try {
          await writeFile(opts.out, template, { flag: 'wx', mode: 0o600 });
        } catch (cause) {
          const code = (cause as NodeJS.ErrnoException).code;
          nodeFail(
            'PATH_REFUSED',
            code === 'EEXIST'
              ? `${opts.out} exists already; choose a new file name`
              : `cannot create ${opts.out}: it ${whyUnreadable(cause)}`,
          );
        }
        emit(io, g.json, { file: opts.out }, () =>
          [
            `template written to ${opts.out ?? ''}`,
            `fill it in, then: rogatory draft check ${opts.out ?? ''}`,
          ].join('\n'),
        );
      },
    );

  draft
    .command('check <file>')
    .description(
      'check a content file as drafting will (fields, rules, dates against today), listing every issue by field; no node needed',
    )
    .option(
      '--attachments <n>',
      'the number of attachments you will give (checks the attachment numbers the content refers to)',
    )
    .action(async (file: string, opts: { attachments?: string }, cmd: Command) => {
      const g = globals(cmd, io);
      const count = opts.attachments === undefined ? undefined : Number(opts.attachments);
      if (count !== undefined && (!Number.isInteger(count) || count < 0 || count > 1000))
        nodeFail('INPUT_INVALID', '--attachments must be a whole number from 0 to 1000');
      const content = await readJsonFile(file, 'the content file', 'INPUT_INVALID', {
        comments: true,
      });
      const issues = validateDossierContent(content, {
        today: today(),
        ...(count === undefined ? {} : { attachmentCount: count }),
      });
      if (issues.length > 0)
        nodeFail('CONTENT_INVALID', `${file} has ${String(issues.length)} problem(s) to fix`, {
          issues,
        });
      emit(io, g.json, { ok: true, file, issues: [] }, () =>
        [
          `${file}: no problem found`,
          ...(count === undefined
            ? ['(attachment numbers not checked: give --attachments <n> to check them)']
            : []),
          'the recipient and its accepted languages are checked when you compose',
        ].join('\n'),
      );
    });
}
