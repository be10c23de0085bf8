import { loadRelayConfig, type RelayConfig } from '../config.js';
import { preflight, type CheckResult } from '../preflight.js';
import { RELAY_EXIT, RelaySetupError } from '../setup-errors.js';
import { table } from './output.js';

export interface CheckConfigResult {
  readonly ok: boolean;
  readonly file: string;
  readonly relayId?: string;
  readonly backend?: RelayConfig['backend']['kind'];
  readonly checks: readonly CheckResult[];
}

/**
 * `rogatory-relay check-config`: the checks `start` runs before it listens
 * (preflight.ts), each reported; returns the exit code of the first failure.
 */
export async function checkConfigCommand(opts: {
  config: string;
  json?: boolean;
  connect?: boolean;
}): Promise<number> {
  const json = opts.json === true;
  let result: CheckConfigResult;
  let exit: number = RELAY_EXIT.ok;
  try {
    const config = await loadRelayConfig(opts.config);
    const report = await preflight(config, { file: opts.config, connect: opts.connect === true });
    const checks: CheckResult[] = [
      { name: 'config', status: 'ok', detail: 'the file parses and every field is valid' },
      ...report.checks,
    ];
    if (opts.connect !== true)
      checks.push({ name: 'backend', status: 'skipped', detail: 'not reached (use --connect)' });
    result = {
      ok: report.ok,
      file: opts.config,
      relayId: config.relay.id,
      backend: config.backend.kind,
      checks,
    };
    if (report.error) exit = report.error.exit;
  } catch (err) {
    if (!(err instanceof RelaySetupError)) throw err;
    exit = err.exit;
    result = {
      ok: false,
      file: opts.config,
      checks: [
        {
          name: 'config',
          status: 'failed',
          detail: err.message,
          error: { code: err.code, issues: err.issues },
        },
      ],
    };
  }
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    const head =
      result.relayId === undefined
        ? `configuration ${result.file}`
        : `configuration ${result.file} of ${result.relayId} (${result.backend ?? ''} backend)`;
    const rows = result.checks.map((c) => [
      c.status === 'failed' ? 'FAILED' : c.status,
      c.name,
      c.error
        ? `${c.error.code}${c.error.issues.length > 1 ? ` (${String(c.error.issues.length)} issues)` : ''}`
        : c.detail,
    ]);
    const problems = result.checks.flatMap((c) => (c.error ? c.detail.split('\n') : []));
    const out = [
      head,
      table(['STATUS', 'CHECK', 'DETAIL'], rows),
      ...(problems.length > 0 ? ['', ...problems] : []),
      '',
      result.ok ? 'the relay can start with this configuration' : 'the relay would not start',
      '',
    ].join('\n');
    (result.ok ? process.stdout : process.stderr).write(out);
  }
  return exit;
}
