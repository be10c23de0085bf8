import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { NODE_ERRORS, NodeError, nodeFail } from '../errors.js';

/** Where the CLI reads and writes: the process, or a test harness. */
export interface CliIO {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Whether stdout is a terminal (progress bars, prompts). */
  readonly isTTY: boolean;
  /** Ask for a secret without echoing it; undefined when there is no terminal. */
  readonly promptSecret?: (question: string) => Promise<string>;
}

/** Exit codes. Every NodeError code maps to one (errors.ts); these are the others. */
export const EXIT = { ok: 0, usage: 1, verificationFailed: 2, internal: 70 } as const;

export function processIO(): CliIO {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    env: process.env,
    isTTY: process.stdout.isTTY,
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

/** A secret from an environment variable, else from the terminal; INPUT_INVALID when neither is available. */
export async function secret(io: CliIO, envName: string, question: string): Promise<string> {
  const value = io.env[envName];
  if (value !== undefined && value !== '') return value;
  if (!io.promptSecret)
    return nodeFail('INPUT_INVALID', `set ${envName} or run in a terminal to be asked`);
  return io.promptSecret(question);
}

/** Print a result: JSON (one document) with --json, else the text rendering. */
export function emit(io: CliIO, json: boolean, value: unknown, text: () => string): void {
  io.out(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** Print an error safely (code, fixed message, lower-level code, content issues by field) and return its exit code. */
export function reportError(io: CliIO, json: boolean, err: unknown): number {
  if (err instanceof NodeError) {
    if (json) io.out(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
    else {
      io.err(`rogatory: ${err.message}${err.detail === undefined ? '' : ` (${err.detail})`}\n`);
      for (const issue of err.issues) io.err(`  ${issue.path || '/'}: ${issue.message}\n`);
    }
    return NODE_ERRORS[err.code].exit;
  }
  // Never print an unknown error's text: it may hold data.
  if (json)
    io.out(`${JSON.stringify({ error: { code: 'INTERNAL', message: 'unexpected error' } })}\n`);
  else io.err('rogatory: unexpected internal error\n');
  return EXIT.internal;
}

export function formatTime(ms: number | null | undefined): string {
  return ms === null || ms === undefined
    ? '-'
    : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
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

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${String(n)} bytes` : `${v.toFixed(1)} ${units[u] ?? ''}`;
}

/** The relay's clock against ours, in words: `+0.4 s (ahead of this machine)`. */
export function formatOffset(ms: number): string {
  const s = Math.abs(ms) / 1000;
  const amount = s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`;
  return `${ms >= 0 ? '+' : '-'}${amount} (${ms >= 0 ? 'ahead of' : 'behind'} this machine)`;
}

/** What an officer or operator does about submissions waiting as CLOCK_AHEAD (status, approve). */
export const CLOCK_AHEAD_ADVICE =
  "this machine's clock runs ahead of the relay's by more than 5 minutes; what the relay refused so is kept and sent once the relay's clock reaches it. Set this machine's clock (NTP); rogatory status --check-relay shows the offset.";
