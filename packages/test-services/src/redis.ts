import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { onProcessExit } from './cleanup.js';
import { freePort } from './free-port.js';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The server's data directory (AOF files), removed by stop(). */
  readonly dir: string;
  /** Shuts the server down and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** The redis-server executable; default `$REDIS_SERVER` or `redis-server` on PATH. */
  readonly binary?: string;
  /** Extra command-line arguments, e.g. `['--maxmemory', '64mb']`. */
  readonly args?: readonly string[];
  /** How long to wait for the first PONG before giving up (default 20 s). */
  readonly readyTimeoutMs?: number;
}

const HOST = '127.0.0.1';
const PORT_ATTEMPTS = 3;
const OUTPUT_KEEP = 8 * 1024;

/**
 * Runs redis-server (the arguments after the script name) and stops it when
 * our stdin reaches end of file: when stop() closes it, or when the Node
 * process dies in any way, even SIGKILL, since the kernel then closes the
 * pipe. Once redis-server has exited, for whatever reason, it removes the
 * data directory and exits with redis-server's status. Asynchronous lists
 * get /dev/null as stdin unless redirected, hence fd 3.
 */
const WATCHDOG = `
exec 3<&0
"$@" </dev/null 3<&- &
server=$!
{ cat <&3 >/dev/null; kill -TERM "$server" 2>/dev/null; } &
exec 3<&-
wait "$server"
status=$?
rm -rf -- "$ROGATORY_REDIS_DIR"
exit "$status"
`;

export class RedisNotInstalledError extends Error {
  override readonly name = 'RedisNotInstalledError';
}

function assertInstalled(binary: string): void {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new RedisNotInstalledError(
      `cannot run "${binary} --version": redis-server is needed for these tests. ` +
        'Install it with "apt-get install redis-server" (or "bash infra/scripts/ensure-tools.sh --with-services"), ' +
        'or point $REDIS_SERVER at the executable.',
      probe.error === undefined ? undefined : { cause: probe.error },
    );
  }
}

/** One PING over a raw socket: '+PONG' once redis-server accepts commands (not while loading). */
async function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => {
      done(false);
    });
    socket.once('error', () => {
      done(false);
    });
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      reply += data.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    // Negative pid: the watchdog's whole process group (detached made it a leader).
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * Starts a throwaway redis-server on a free loopback port, with AOF on (as in
 * production), RDB snapshots off and a temp data directory, and waits until
 * it answers PING. The server dies with this process whatever way it ends.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = options.binary ?? process.env['REDIS_SERVER'] ?? 'redis-server';
  assertInstalled(binary);
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  let lastOutput = '';
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
    // A directory per attempt: the watchdog of a failed attempt removes its own.
    const dir = await mkdtemp(join(tmpdir(), 'rogatory-redis-'));
    const port = await freePort();
    const args = [
      ...['--port', String(port), '--bind', HOST, '--protected-mode', 'yes'],
      ...['--save', '', '--appendonly', 'yes', '--dir', dir, '--daemonize', 'no'],
      ...(options.args ?? []),
    ];
    const child = spawn('sh', ['-c', WATCHDOG, 'rogatory-redis-watchdog', binary, ...args], {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ROGATORY_REDIS_DIR: dir },
    });
    let output = '';
    const keep = (data: Buffer): void => {
      output = (output + data.toString('utf8')).slice(-OUTPUT_KEEP);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        resolve();
      });
    });
    const running = (): boolean => child.exitCode === null && child.signalCode === null;
    const unregister = onProcessExit(() => {
      killGroup(child);
      rmSync(dir, { recursive: true, force: true });
    });

    const deadline = Date.now() + readyTimeoutMs;
    let ready = false;
    while (running() && Date.now() < deadline) {
      if (await ping(port)) {
        ready = true;
        break;
      }
      await sleep(50);
    }
    if (ready) {
      // A forgotten server must not keep the test process alive; the exit hook still kills it.
      child.unref();
      for (const stream of [child.stdin, child.stdout, child.stderr]) {
        (stream as Partial<{ unref(): void }>).unref?.();
      }
      return makeHandle(child, exited, dir, port, unregister);
    }
    killGroup(child);
    await exited;
    unregister();
    await rm(dir, { recursive: true, force: true });
    lastOutput = output;
    if (!output.includes('Address already in use')) break; // not a port race: retrying will not help
  }
  throw new Error(`redis-server did not become ready. Its last output:\n${lastOutput}`);
}

function makeHandle(
  child: ChildProcess,
  exited: Promise<void>,
  dir: string,
  port: number,
  unregister: () => void,
): RedisServer {
  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    // End of stdin asks the watchdog for a clean SIGTERM shutdown (AOF flushed).
    child.stdin?.end();
    const timer = setTimeout(() => {
      killGroup(child);
    }, 10_000);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
    killGroup(child); // sweeps the watchdog's helper processes
    unregister();
    await rm(dir, { recursive: true, force: true });
  };
  return {
    url: `redis://${HOST}:${port}`,
    host: HOST,
    port,
    dir,
    stop: () => (stopping ??= stop()),
  };
}
