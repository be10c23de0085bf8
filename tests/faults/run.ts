/**
 * The fault matrix runner: `pnpm faults [--json] [--quick] [--only a,b]`.
 *
 * Runs the scenarios of registry.ts one after another, each in a fresh
 * temporary folder with an AbortSignal that fires when its time budget is
 * spent, and prints one table (or, with --json, exactly
 * `{ "scenarios": { "<name>": { sent, accepted, delivered, duplicated, lost,
 * evidencesOwed, evidencesReceived, measured?, notes?, skipped? } } }`) on
 * stdout; progress goes to stderr. A scenario that threw (or overran its
 * budget) is reported with zero counts and `measured.error`, and fails.
 *
 * Exit codes: 0 every scenario passed (skipped ones are named, not failed),
 * 1 some scenario failed, 2 usage error.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { scenarioPassed, type Scenario, type ScenarioResult } from './scenario.js';

/** One scenario's line of the report (the JSON value under its name). */
export interface ReportEntry extends ScenarioResult {
  /** Why the scenario did not run. */
  readonly skipped?: string;
}

export interface MatrixReport {
  readonly scenarios: Record<string, ReportEntry>;
}

export interface RunOptions {
  readonly quick: boolean;
  /** Names to run; all when absent. */
  readonly only?: readonly string[];
  /** Progress lines (stderr in the CLI). */
  readonly log?: (line: string) => void;
  /** After the budget's abort, how long a scenario may take to stop before it is given up (ms). */
  readonly graceMs?: number;
  /** Where scenario folders are made (default: the OS temp folder). */
  readonly tmp?: string;
}

export interface MatrixOutcome {
  readonly report: MatrixReport;
  /** Names of the scenarios that failed (threw, overran, lost, duplicated or missed evidences). */
  readonly failed: readonly string[];
  readonly skipped: readonly string[];
  /** Seconds each scenario took (not in the JSON: timings vary). */
  readonly seconds: Readonly<Record<string, number>>;
}

const ZERO = {
  sent: 0,
  accepted: 0,
  delivered: 0,
  duplicated: 0,
  lost: 0,
  evidencesOwed: 0,
  evidencesReceived: 0,
} as const;

/** Whether a report entry counts as passed (skipped ones are neither passed nor failed). */
export function entryPassed(entry: ReportEntry): boolean {
  return entry.measured?.['error'] === undefined && scenarioPassed(entry);
}

function message(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  // One line, bounded: the table and JSON stay readable.
  return text.split('\n')[0]!.slice(0, 300);
}

/** Only the contract's keys, in the contract's order. */
function entryOf(result: ScenarioResult): ReportEntry {
  return {
    sent: result.sent,
    accepted: result.accepted,
    delivered: result.delivered,
    duplicated: result.duplicated,
    lost: result.lost,
    evidencesOwed: result.evidencesOwed,
    evidencesReceived: result.evidencesReceived,
    ...(result.measured && Object.keys(result.measured).length > 0
      ? { measured: { ...result.measured } }
      : {}),
    ...(result.notes && result.notes.length > 0 ? { notes: [...result.notes] } : {}),
  };
}

/** Run `scenarios` (filtered by `only`) one after another. Throws a RangeError on an unknown name. */
export async function runMatrix(
  scenarios: readonly Scenario[],
  options: RunOptions,
): Promise<MatrixOutcome> {
  const log = options.log ?? (() => undefined);
  const known = new Set(scenarios.map((s) => s.name));
  const unknown = (options.only ?? []).filter((n) => !known.has(n));
  if (unknown.length > 0)
    throw new RangeError(
      `unknown scenario(s): ${unknown.join(', ')} (known: ${[...known].join(', ')})`,
    );
  const chosen = options.only ? scenarios.filter((s) => options.only!.includes(s.name)) : scenarios;
  const report: Record<string, ReportEntry> = {};
  const failed: string[] = [];
  const skipped: string[] = [];
  const seconds: Record<string, number> = {};
  for (const scenario of chosen) {
    let reason: string | undefined;
    try {
      reason = scenario.skip?.();
    } catch (err) {
      reason = `skip check failed: ${message(err)}`;
    }
    if (reason !== undefined) {
      report[scenario.name] = { ...ZERO, skipped: reason };
      skipped.push(scenario.name);
      log(`${scenario.name}: skipped (${reason})`);
      continue;
    }
    const budget = options.quick ? scenario.budgetSeconds.quick : scenario.budgetSeconds.full;
    const dir = await mkdtemp(join(options.tmp ?? tmpdir(), `rogatory-fault-${scenario.name}-`));
    const controller = new AbortController();
    const started = Date.now();
    const timer = setTimeout(
      () => controller.abort(new Error(`time budget of ${String(budget)} s spent`)),
      budget * 1000,
    );
    let giveUp: NodeJS.Timeout | undefined;
    const overran = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => {
        giveUp = setTimeout(
          () =>
            reject(
              new Error(
                `time budget of ${String(budget)} s spent and the scenario did not stop within the grace period`,
              ),
            ),
          options.graceMs ?? 30_000,
        );
      });
    });
    overran.catch(() => undefined);
    log(`${scenario.name}: ${scenario.title} (budget ${String(budget)} s)`);
    let entry: ReportEntry;
    try {
      const result = await Promise.race([
        scenario.run({
          quick: options.quick,
          dir,
          log: (m) => log(`${scenario.name} +${((Date.now() - started) / 1000).toFixed(1)}s: ${m}`),
          signal: controller.signal,
        }),
        overran,
      ]);
      entry = entryOf(result);
    } catch (err) {
      const why = controller.signal.aborted
        ? `${message(controller.signal.reason)}: ${message(err)}`
        : message(err);
      entry = { ...ZERO, measured: { error: why }, notes: [`failed to complete: ${why}`] };
    } finally {
      clearTimeout(timer);
      clearTimeout(giveUp);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    seconds[scenario.name] = Math.round((Date.now() - started) / 100) / 10;
    report[scenario.name] = entry;
    const ok = entryPassed(entry);
    if (!ok) failed.push(scenario.name);
    log(`${scenario.name}: ${ok ? 'PASS' : 'FAIL'} in ${String(seconds[scenario.name])} s`);
  }
  return { report: { scenarios: report }, failed, skipped, seconds };
}

function figure(value: number | string | boolean): string {
  return typeof value === 'number' && !Number.isInteger(value) ? value.toFixed(2) : String(value);
}

/** The human table: one row per scenario, then measured figures and notes. */
export function formatTable(outcome: MatrixOutcome): string {
  const head = [
    'scenario',
    'sent',
    'accepted',
    'delivered',
    'duplicated',
    'lost',
    'evidences',
    'result',
    'seconds',
  ];
  const rows: string[][] = [];
  const details: string[] = [];
  for (const [name, e] of Object.entries(outcome.report.scenarios)) {
    const result =
      e.skipped !== undefined ? 'SKIP' : outcome.failed.includes(name) ? 'FAIL' : 'PASS';
    rows.push([
      name,
      String(e.sent),
      String(e.accepted),
      String(e.delivered),
      String(e.duplicated),
      String(e.lost),
      `${String(e.evidencesReceived)}/${String(e.evidencesOwed)}`,
      result,
      e.skipped !== undefined ? '-' : String(outcome.seconds[name] ?? '-'),
    ]);
    if (e.skipped !== undefined) details.push(`${name}: skipped: ${e.skipped}`);
    if (e.measured && Object.keys(e.measured).length > 0)
      details.push(
        `${name}: ${Object.entries(e.measured)
          .map(([k, v]) => `${k}=${figure(v)}`)
          .join(', ')}`,
      );
    for (const n of e.notes ?? []) details.push(`${name}: ${n}`);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  if (details.length > 0) out.push('', ...details);
  const passed = rows.length - outcome.failed.length - outcome.skipped.length;
  out.push(
    '',
    `${String(passed)} passed, ${String(outcome.failed.length)} failed` +
      (outcome.failed.length > 0 ? ` (${outcome.failed.join(', ')})` : '') +
      `, ${String(outcome.skipped.length)} skipped` +
      (outcome.skipped.length > 0 ? ` (${outcome.skipped.join(', ')})` : ''),
  );
  return out.join('\n') + '\n';
}

export interface CliArgs {
  readonly json: boolean;
  readonly quick: boolean;
  readonly only?: readonly string[];
}

/** Parse the command line; throws a RangeError on anything unknown. */
export function parseArgs(argv: readonly string[]): CliArgs {
  let json = false;
  let quick = false;
  let only: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') json = true;
    else if (a === '--quick') quick = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const value = a === '--only' ? argv[++i] : a.slice('--only='.length);
      if (!value) throw new RangeError('--only needs a comma-separated list of scenario names');
      only = [...(only ?? []), ...value.split(',').filter((n) => n.length > 0)];
    } else throw new RangeError(`unknown argument ${a}`);
  }
  return { json, quick, ...(only ? { only } : {}) };
}

/** The CLI: returns the exit code. */
export async function main(
  argv: readonly string[],
  scenarios: readonly Scenario[],
  io: { out: (text: string) => void; err: (text: string) => void },
): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    io.err(`faults: ${message(err)}\nusage: pnpm faults [--json] [--quick] [--only name,...]\n`);
    return 2;
  }
  let outcome: MatrixOutcome;
  try {
    outcome = await runMatrix(scenarios, {
      quick: args.quick,
      ...(args.only ? { only: args.only } : {}),
      log: (line) => io.err(`[faults] ${line}\n`),
    });
  } catch (err) {
    io.err(`faults: ${message(err)}\n`);
    return 2;
  }
  io.out(args.json ? JSON.stringify(outcome.report, null, 2) + '\n' : formatTable(outcome));
  return outcome.failed.length === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { scenarios } = await import('./registry.js');
  const code = await main(process.argv.slice(2), scenarios, {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  });
  // Every scenario stops its processes; exiting explicitly also ends stray handles (and the relay exit hook kills leftovers).
  process.stdout.write('', () => process.exit(code));
}
