import { isProtocolError } from '@rogatory/protocol';
import { SchemaVersionError } from '../backend/embedded-schema.js';
import { RotationError } from '../key-rotation.js';
import { RELAY_EXIT, RelaySetupError, formatIssue } from '../setup-errors.js';

/** The exit codes, as the help text lists them. */
export const EXIT_CODES_HELP = `
Exit codes:
  0   ok
  1   usage: unknown command or option, a missing or malformed argument, a refused request
  2   migrate-backend: the copy does not verify (the target's counts differ from the source's)
  3   configuration: the file, or a file or folder it names, is missing, unreadable or invalid
  4   key: the passphrase or a secret is not set, the key does not open, or the manifest does not list it
  5   backend: Redis or the object store cannot be reached
  6   stored data: written by a newer relay (SCHEMA_VERSION_NEWER) or of an unknown layout, left untouched
  70  internal error (nothing about the data is printed)

With --json, a failure prints { "error": { "code", "file"?, "issues": [{ "field", "message" }] } } on stdout.`;

/** A refusal of the command line itself (exit 1). */
export function usageError(field: string, message: string): RelaySetupError {
  return new RelaySetupError('USAGE', [{ field, message }]);
}

/** Print a failure and return its exit code. Unknown errors print their code only: their text may hold data. */
export function reportFailure(err: unknown, json: boolean): number {
  let error: RelaySetupError | undefined;
  if (err instanceof RelaySetupError) error = err;
  else if (err instanceof SchemaVersionError)
    error = new RelaySetupError(err.code, [
      { field: 'backend', message: `${err.message} (${err.code})` },
    ]);
  else if (err instanceof RotationError) error = usageError('', err.message);
  else if (isProtocolError(err, 'PASSPHRASE_INVALID'))
    error = new RelaySetupError('KEY_UNSEALABLE', [
      {
        field: 'identity.keyFile',
        message: 'does not open with the passphrase (wrong passphrase or damaged file)',
      },
    ]);
  if (error) {
    if (json) process.stdout.write(`${JSON.stringify({ error: error.toJSON() }, null, 2)}\n`);
    else
      for (const issue of error.issues)
        process.stderr.write(`rogatory-relay: ${formatIssue(error.file, issue)}\n`);
    return error.exit;
  }
  const code = (err as { code?: unknown } | null)?.code;
  const shown = typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? ` (${code})` : '';
  if (json)
    process.stdout.write(
      `${JSON.stringify({ error: { code: 'INTERNAL', issues: [{ field: '', message: `unexpected internal error${shown}` }] } })}\n`,
    );
  else process.stderr.write(`rogatory-relay: unexpected internal error${shown}\n`);
  return RELAY_EXIT.internal;
}

export function formatTime(ms: number | null | undefined): string {
  return ms === null || ms === undefined
    ? '-'
    : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** 93_000 -> "1m 33s"; negative -> "now". */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts =
    d > 0
      ? [`${String(d)}d`, `${String(h)}h`]
      : h > 0
        ? [`${String(h)}h`, `${String(m)}m`]
        : m > 0
          ? [`${String(m)}m`, `${String(s % 60)}s`]
          : [`${String(s)}s`];
  return parts.join(' ');
}

/** Render rows as an aligned text table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}
