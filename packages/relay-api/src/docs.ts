import { RELAY_ERRORS } from './errors.js';

/** The markers around the generated error table in docs/relay-api.md. */
export const ERROR_TABLE_MARKERS = {
  begin:
    '<!-- generated from @rogatory/relay-api RELAY_ERRORS: pnpm --filter @rogatory/relay-api docs:generate -->',
  end: '<!-- end of generated error table -->',
} as const;

/** The rows of the error table: status, code and meaning of every code, in catalogue order. */
export function errorTableRows(): string[][] {
  return Object.entries(RELAY_ERRORS).map(([code, { status, meaning }]) => [
    String(status),
    `\`${code}\``,
    meaning,
  ]);
}

/** The error table of docs/relay-api.md, as Markdown laid out as prettier lays it out, from RELAY_ERRORS. */
export function renderErrorTable(): string {
  const rows = [['status', 'code', 'meaning'], ...errorTableRows()];
  const widths = rows[0]!.map((_, i) => Math.max(3, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(rows[0]!), line(widths.map((w) => '-'.repeat(w))), ...rows.slice(1).map(line)].join(
    '\n',
  );
}

/** The rows of the table between the markers of `doc`, cells trimmed (the header and rule rows left out). */
export function documentedErrorRows(doc: string): string[][] {
  const begin = doc.indexOf(ERROR_TABLE_MARKERS.begin);
  const end = doc.indexOf(ERROR_TABLE_MARKERS.end);
  if (begin < 0 || end < begin)
    throw new Error('docs/relay-api.md has no generated error table markers');
  return doc
    .slice(begin + ERROR_TABLE_MARKERS.begin.length, end)
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .slice(2)
    .map((l) =>
      l
        .slice(1, -1)
        .split(' | ')
        .map((cell) => cell.trim()),
    );
}

/**
 * `doc` with the text between the markers replaced by the current table.
 * Throws when the markers are missing (the table must have one place).
 */
export function withErrorTable(doc: string): string {
  const begin = doc.indexOf(ERROR_TABLE_MARKERS.begin);
  const end = doc.indexOf(ERROR_TABLE_MARKERS.end);
  if (begin < 0 || end < begin)
    throw new Error('docs/relay-api.md has no generated error table markers');
  return `${doc.slice(0, begin + ERROR_TABLE_MARKERS.begin.length)}\n\n${renderErrorTable()}\n\n${doc.slice(end)}`;
}
