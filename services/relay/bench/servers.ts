/**
 * The servers under test, each in a child process of its own
 * (bench/relay-process.ts), and CPU accounting for them and for Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { ServerSpec } from './relay-process.js';

const SCRIPT = fileURLToPath(new URL('./relay-process.ts', import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

/** One child process running relays (or the baseline server), driven by JSON lines. */
export class ServerProcess {
  private readonly replies: ((line: string) => void)[] = [];
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly urls: Readonly<Record<string, string>>,
    /** Where the relays' stores are (relay processes only), to start more instances sharing them. */
    readonly shared: { readonly namespace: string; readonly dir: string } | undefined,
    lines: AsyncIterator<string>,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void (async () => {
      for (;;) {
        const next = await lines.next();
        if (next.done === true) return;
        this.replies.shift()?.(next.value);
      }
    })();
  }

  /** Spawn with the same runtime flags as this process (the tsx loader), plus `extraArgs`. */
  static async start(spec: ServerSpec, extraArgs: readonly string[] = []): Promise<ServerProcess> {
    const child = spawn(
      process.execPath,
      [...process.execArgv, ...extraArgs, SCRIPT, JSON.stringify(spec)],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await Promise.race([
      lines.next(),
      new Promise<never>((_, reject) => {
        child.once('exit', (code) =>
          reject(new Error(`server process exited with code ${String(code)} before listening`)),
        );
      }),
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error('server process did not start in time')),
          START_TIMEOUT_MS,
        ).unref(),
      ),
    ]).catch((err: unknown) => {
      child.kill('SIGKILL');
      throw err;
    });
    if (first.done === true) throw new Error('server process closed its output before listening');
    const { urls, shared } = JSON.parse(first.value) as {
      urls: Record<string, string>;
      shared?: { namespace: string; dir: string };
    };
    return new ServerProcess(child, urls, shared, lines);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private request<T>(message: unknown): Promise<T> {
    return new Promise((resolve) => {
      this.replies.push((line) => resolve(JSON.parse(line) as T));
      this.child.stdin!.write(`${JSON.stringify(message)}\n`);
    });
  }

  setPeerUrls(peerUrls: Record<string, string>): Promise<unknown> {
    return this.request({ peerUrls });
  }

  /** CPU ms (user + system) the process used since the previous call. */
  async cpuMs(): Promise<number> {
    return (await this.stats()).cpuMs;
  }

  /** CPU ms since the previous call, and the event-loop delay (p99, max) meanwhile. */
  stats(): Promise<{ cpuMs: number; loopDelayP99Ms: number; loopDelayMaxMs: number }> {
    return this.request({ cpu: true });
  }

  /** End of stdin stops the servers; killed if it takes longer than STOP_TIMEOUT_MS. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }
}

/** CPU ms (user + system) redis-server used so far, from INFO cpu. */
export async function redisCpuMs(url: string): Promise<number> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const info = await client.info('cpu');
    const value = (name: string): number =>
      Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
    return (value('used_cpu_user') + value('used_cpu_sys')) * 1000;
  } finally {
    client.disconnect();
  }
}

/**
 * Redis's command counters (INFO commandstats): calls and microseconds per
 * command, scripts' inner commands included. Deterministic where CPU time
 * is not, so a diff over a run counts what each envelope costs Redis.
 */
export async function redisCommandStats(
  url: string,
): Promise<Record<string, { calls: number; usec: number }>> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const info = await client.info('commandstats');
    const stats: Record<string, { calls: number; usec: number }> = {};
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm))
      stats[m[1]!] = { calls: Number(m[2]), usec: Number(m[3]) };
    return stats;
  } finally {
    client.disconnect();
  }
}

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const [, ...fields] = line.trim().split(/\s+/);
    const n = fields.map(Number);
    const total = n.reduce((a, b) => a + b, 0);
    const idle = (n[3] ?? 0) + (n[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

export interface MachineLoad {
  /** Share of all cores that was busy during the window. */
  readonly busyPct: number;
  /** Of which not used by the bench's own processes (given their CPU time): other users of the machine. */
  readonly otherPct: number;
}

/**
 * Starts a measurement window over the whole machine. The returned function
 * ends it, given the CPU ms the bench's own processes used meanwhile;
 * undefined where /proc/stat is not available.
 */
export function machineWindow(): (ownCpuMs: number) => MachineLoad | undefined {
  const before = machineTicks();
  const start = performance.now();
  return (ownCpuMs) => {
    const after = machineTicks();
    if (!before || !after || after.total === before.total) return undefined;
    const busyPct = ((after.busy - before.busy) / (after.total - before.total)) * 100;
    const ownPct = (ownCpuMs / ((performance.now() - start) * availableParallelism())) * 100;
    return {
      busyPct: Math.round(busyPct * 10) / 10,
      otherPct: Math.round(Math.max(0, busyPct - ownPct) * 10) / 10,
    };
  };
}
