import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { NETWORK_ERRORS, NetworkError, networkFail } from '../errors.js';

/** Where the CLI reads and writes: the process, or a test harness. */
export interface CliIO {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Ask for a secret without echoing it; undefined when there is no terminal. */
  readonly promptSecret?: (question: string) => Promise<string>;
}

/** Exit codes besides the catalogue's (errors.ts). */
export const EXIT = { ok: 0, usage: 1, internal: 70 } as const;

export function processIO(): CliIO {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    env: process.env,
    ...(process.stdin.isTTY ? { promptSecret } : {}),
  };
}

/** Read a line from the terminal with echo off. */
function promptSecret(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}

/**
 * The root passphrase: from --passphrase-file (its first line), else
 * $ROGATORY_PASSPHRASE, else a prompt without echo; INPUT_INVALID when none
 * is available.
 */
export async function passphrase(
  io: CliIO,
  file: string | undefined,
  question: string,
): Promise<string> {
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      return networkFail('INPUT_INVALID', `--passphrase-file ${file} cannot be read`, { cause });
    }
    const line = text.split(/\r?\n/)[0] ?? '';
    if (line === '') networkFail('INPUT_INVALID', `--passphrase-file ${file} is empty`);
    return line;
  }
  const value = io.env['ROGATORY_PASSPHRASE'];
  if (value !== undefined && value !== '') return value;
  if (!io.promptSecret)
    return networkFail(
      'INPUT_INVALID',
      'give --passphrase-file, set ROGATORY_PASSPHRASE or run in a terminal to be asked',
    );
  return io.promptSecret(question);
}

/** Print a result: JSON (one document) with --json, else the text rendering. */
export function emit(io: CliIO, json: boolean, value: unknown, text: () => string): void {
  io.out(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** Print an error safely (code, fixed message, lower-level code) and return its exit code. */
export function reportError(io: CliIO, json: boolean, err: unknown): number {
  if (err instanceof NetworkError) {
    if (json) io.out(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
    else
      io.err(
        `rogatory-network: ${err.message}${err.detail === undefined ? '' : ` (${err.detail})`}\n`,
      );
    return NETWORK_ERRORS[err.code].exit;
  }
  // Never print an unknown error's text: it may hold data.
  if (json)
    io.out(`${JSON.stringify({ error: { code: 'INTERNAL', message: 'unexpected error' } })}\n`);
  else io.err('rogatory-network: unexpected internal error\n');
  return EXIT.internal;
}

export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
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
