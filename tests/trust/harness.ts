/**
 * A harness for acceptance tests that run Rogatory as separate processes:
 * the real executables (`rogatory-network`, `rogatory-relay`, `rogatory`)
 * spawned with `node <bin>`, in a temporary folder, on loopback ports.
 *
 * - `run` executes a CLI to completion (bounded by a timeout, killed past
 *   it) and keeps a transcript of every run: command, exit code, output.
 * - `start` launches a long-running process (relay, `rogatory serve`); its
 *   output goes to a log file in the folder and its tail is kept in memory.
 * - `report()` is what a failing step prints: the last runs and the tail of
 *   every process.
 * - `shutdown()` stops every process (SIGTERM, SIGKILL after a grace
 *   period), then removes the folder (kept when ROGATORY_E2E_KEEP=1).
 *
 * Secrets reach the CLIs the way an operator gives them: environment
 * variables (ROGATORY_PASSPHRASE, ROGATORY_PASSWORD, ...), never arguments.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The executables, run as `node <bin> ...` (each registers tsx itself: one process, no build step). */
export const BIN = {
  network: join(ROOT, 'services/network/bin/rogatory-network.js'),
  relay: join(ROOT, 'services/relay/bin/rogatory-relay.js'),
  node: join(ROOT, 'services/node/bin/rogatory.js'),
} as const;
export type BinName = keyof typeof BIN;

const TAIL_CHARS = 6000;
const TRANSCRIPT_RUNS = 12;

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** A free TCP port on 127.0.0.1 (closed again at once: the caller binds it soon after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** Poll `fn` until it returns a value other than undefined; fails after `ms` with `what`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 60_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + ms;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `gave up after ${String(ms / 1000)} s waiting for ${what}${
          lastError instanceof Error ? ` (last error: ${lastError.message})` : ''
        }`,
      );
    await sleep(intervalMs);
  }
}

/** Environment of a child: this process's, without any ROGATORY_* variable (each run names its own). */
function childEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('ROGATORY_') && v !== undefined) env[k] = v;
  return { ...env, ...extra };
}

function tail(text: string, chars = TAIL_CHARS): string {
  return text.length > chars ? `...${text.slice(-chars)}` : text;
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON; the caller names the shape (checked by its assertions). */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
  json<T>(): T;
}

export interface RunOptions {
  /** Extra environment (secrets go here). */
  readonly env?: Readonly<Record<string, string>>;
  /** Killed (SIGKILL) past this; default 90 s. */
  readonly timeoutMs?: number;
  /** The exit code expected (default 0); anything else throws with the output. */
  readonly expectCode?: number | null;
}

/** A long-running child process: output to a log file, tail kept in memory. */
export class Proc {
  private out = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly log: WriteStream;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    logFile: string,
  ) {
    this.log = createWriteStream(logFile);
    const keep = (d: Buffer): void => {
      this.log.write(d);
      this.out = tail(this.out + d.toString('utf8'), 4 * TAIL_CHARS);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.log.end();
        resolve({ code, signal });
      });
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Output so far (stdout and stderr interleaved, the last few thousand characters). */
  get output(): string {
    return this.out;
  }

  /** Wait until the output matches `pattern` (fails if the process exits first). */
  async waitForOutput(pattern: RegExp, ms = 60_000): Promise<RegExpExecArray> {
    return waitFor(
      `${this.name} to print ${String(pattern)}`,
      () => {
        const m = pattern.exec(this.out);
        if (m) return m;
        if (!this.alive)
          throw new Error(`${this.name} exited before printing ${String(pattern)}:\n${this.out}`);
        return undefined;
      },
      ms,
      100,
    );
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** One test's world of processes and files. */
export class Harness {
  private readonly procs: Proc[] = [];
  private readonly running = new Set<ChildProcess>();
  private readonly transcript: string[] = [];
  private closed = false;

  private constructor(readonly dir: string) {}

  static async create(prefix = 'rogatory-e2e-'): Promise<Harness> {
    return new Harness(await mkdtemp(join(tmpdir(), prefix)));
  }

  /** A path inside the harness folder. */
  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** Run a CLI to completion; throws (with its output) unless it exits with `expectCode` (default 0). */
  run(bin: BinName, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    if (this.closed) return Promise.reject(new Error('the harness is shut down'));
    const timeoutMs = options.timeoutMs ?? 90_000;
    const expectCode = options.expectCode === undefined ? 0 : options.expectCode;
    const command = `${bin} ${args.join(' ')}`;
    const started = Date.now();
    return new Promise<RunResult>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN[bin], ...args], {
        cwd: this.dir,
        env: childEnv(options.env ?? {}),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      this.running.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        this.running.delete(child);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        this.running.delete(child);
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        const record = `$ ${command}\n  -> exit ${String(code ?? signal)} in ${seconds} s${
          stdout.trim() ? `\n  stdout: ${tail(stdout.trim(), 1500)}` : ''
        }${stderr.trim() ? `\n  stderr: ${tail(stderr.trim(), 1500)}` : ''}`;
        this.transcript.push(record);
        if (this.transcript.length > TRANSCRIPT_RUNS) this.transcript.shift();
        if (timedOut) {
          reject(new Error(`timed out after ${String(timeoutMs / 1000)} s: ${record}`));
          return;
        }
        if (expectCode !== null && code !== expectCode) {
          reject(new Error(`expected exit ${String(expectCode)}: ${record}`));
          return;
        }
        resolve({
          code,
          signal,
          stdout,
          stderr,
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
          json<T>(): T {
            try {
              return JSON.parse(stdout) as T;
            } catch (cause) {
              throw new Error(`stdout of "${command}" is not JSON: ${tail(stdout, 500)}`, {
                cause,
              });
            }
          },
        });
      });
    });
  }

  /** Start a long-running process; its output goes to `<dir>/<name>.log`. */
  start(
    name: string,
    bin: BinName,
    args: readonly string[],
    options: { env?: Readonly<Record<string, string>> } = {},
  ): Proc {
    if (this.closed) throw new Error('the harness is shut down');
    const child = spawn(process.execPath, [BIN[bin], ...args], {
      cwd: this.dir,
      env: childEnv(options.env ?? {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = new Proc(name, child, this.path(`${name.replace(/[^A-Za-z0-9@._-]/g, '_')}.log`));
    this.procs.push(proc);
    return proc;
  }

  /** What a failing step shows: the last CLI runs, then the tail of every process. */
  report(): string {
    const parts = ['--- last command-line runs ---', ...this.transcript];
    for (const p of this.procs)
      parts.push(
        `--- ${p.name} (pid ${String(p.pid)}, ${p.alive ? 'running' : `exited ${String(p.child.exitCode ?? p.child.signalCode)}`}) ---`,
        tail(p.output.trim(), 3000) || '(no output)',
      );
    return parts.join('\n');
  }

  /** Stop every process (bounded), then remove the folder unless ROGATORY_E2E_KEEP=1. */
  async shutdown(graceMs = 10_000): Promise<void> {
    this.closed = true;
    for (const child of this.running) child.kill('SIGKILL');
    await Promise.all(this.procs.map((p) => p.stop(graceMs)));
    if (process.env['ROGATORY_E2E_KEEP'] === '1')
      process.stdout.write(`ROGATORY_E2E_KEEP=1: kept ${this.dir}\n`);
    else await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** A client of a node's REST API (`rogatory serve`), one bearer token per user. */
export class NodeApi {
  private readonly tokens = new Map<string, string>();

  constructor(readonly url: string) {}

  async login(username: string, password: string): Promise<void> {
    const res = await this.request<{ token: string }>('POST', '/login', undefined, {
      username,
      password,
    });
    this.tokens.set(username, res.token);
  }

  /** `as` must have logged in; throws `{ status, code }` on an error answer. */
  call<T>(as: string, method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
    const token = this.tokens.get(as);
    if (token === undefined) return Promise.reject(new Error(`${as} has not logged in`));
    return this.request<T>(method, path, token, body);
  }

  private async request<T>(
    method: string,
    path: string,
    token: string | undefined,
    body: unknown,
  ): Promise<T> {
    const res = await fetch(`${this.url}/api/v1${path}`, {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    const value = text === '' ? undefined : (JSON.parse(text) as unknown);
    if (!res.ok) {
      const error =
        typeof value === 'object' && value !== null && 'error' in value
          ? (value.error as { code?: string; message?: string })
          : {};
      throw Object.assign(
        new Error(
          `${method} ${path}: ${String(res.status)} ${error.code ?? '?'} ${error.message ?? ''}`,
        ),
        { status: res.status, code: error.code },
      );
    }
    return value as T;
  }
}

/** GET a URL and tell whether it answered 200 (readiness probes). */
export async function answers200(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}
