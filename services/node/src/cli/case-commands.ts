import type { Command } from 'commander';
import { nodeFail } from '../errors.js';
import type { CaseSummary } from '../reading/lists.js';
import { emit, formatTime, table } from './io.js';
import { asUser, globals, type CliRun } from './session.js';

/** One line per case: reference, counterparts, dossiers by status (redacted without clearance). */
function caseRows(cases: readonly CaseSummary[]): string {
  if (cases.length === 0) return 'no cases';
  return table(
    ['CASE', 'REFERENCE', 'TYPE', 'COUNTERPARTS', 'DOSSIERS', 'UPDATED'],
    cases.map((c) => [
      c.id,
      c.redacted ? `(${c.handlingCode ?? 'restricted'})` : (c.caseReference ?? '-'),
      c.requestType ?? '-',
      c.redacted ? '-' : (c.counterparts ?? []).join(',') || '-',
      String(c.dossiers.length),
      formatTime(c.updatedAt),
    ]),
  );
}

/** A case and its thread: every dossier in the order it was created. */
function caseThread(c: CaseSummary): string {
  const head = c.redacted
    ? [`case ${c.id} (${c.handlingCode ?? 'restricted'}: you are not cleared to see its details)`]
    : [
        `case ${c.id}  reference ${c.caseReference ?? '-'}${c.requestType ? `  ${c.requestType}` : ''}`,
        `counterparts ${(c.counterparts ?? []).join(', ') || '-'}  handling ${c.handlingCode ?? '-'}`,
        `opened ${formatTime(c.createdAt)}  updated ${formatTime(c.updatedAt)}`,
      ];
  return [
    ...head,
    '',
    table(
      ['DOSSIER', 'DIRECTION', 'KIND', 'TYPE', 'STATUS'],
      c.dossiers.map((d) => [
        d.id,
        d.direction === 'out' ? 'sent' : 'received',
        d.kind,
        d.type ?? '-',
        d.status,
      ]),
    ),
  ].join('\n');
}

export function registerCases(program: Command, run: CliRun): void {
  const { io } = run;
  const cases = program
    .command('cases')
    .description('cases: a request with its answers and follow-ups (list, show)');

  cases
    .command('list', { isDefault: true })
    .description('list cases, most recently updated first')
    .option('--reference <text>', 'only cases whose reference contains this text')
    .action(async (opts: { reference?: string }, cmd: Command) => {
      const g = globals(cmd, io);
      const all = await asUser(io, g, (node, actor) => node.cases(actor));
      const wanted = opts.reference?.toLowerCase();
      const shown = all
        .filter(
          (c) => wanted === undefined || (c.caseReference ?? '').toLowerCase().includes(wanted),
        )
        .sort((a, b) => b.updatedAt - a.updatedAt);
      emit(io, g.json, shown, () => caseRows(shown));
    });

  cases
    .command('show <caseIdOrReference>')
    .description('a case and its thread of dossiers, by case id or exact case reference')
    .action(async (key: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const all = await asUser(io, g, (node, actor) => node.cases(actor));
      const found = all.filter((c) => c.id === key || c.caseReference === key);
      if (found.length === 0) return nodeFail('NOT_FOUND', `no case ${key} you may see`);
      if (found.length > 1)
        return nodeFail(
          'INPUT_INVALID',
          `the reference names ${String(found.length)} cases (${found.map((c) => c.id).join(', ')}); give a case id`,
        );
      const c = found[0] as CaseSummary;
      emit(io, g.json, c, () => caseThread(c));
    });
}
