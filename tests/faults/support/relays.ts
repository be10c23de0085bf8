import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ready } from '@rogatory/protocol';
import { buildTestWorld, DIRECT_PEERING_WORLD, type TestWorld } from '@rogatory/protocol/testing';
import type { RelayConfig } from '@rogatory/relay';
import { RelayProcess, writeRelayFiles, type RelayFiles } from '@rogatory/relay/testing/process';
import { freePort } from '@rogatory/test-services';

/** The two networks of the fault scenarios: wacap and casc peer directly (two relays on the path). */
export const NET_A = 'wacap';
export const NET_B = 'casc';

export interface FaultWorld {
  readonly world: TestWorld;
  readonly ports: Readonly<Record<string, number>>;
}

/** The test world with wacap and casc federating directly, each relay on a free loopback port. */
export async function faultWorld(): Promise<FaultWorld> {
  await ready();
  const ports: Record<string, number> = { [NET_A]: await freePort(), [NET_B]: await freePort() };
  const world = buildTestWorld({
    now: Date.now(),
    specs: DIRECT_PEERING_WORLD,
    relayUrl: (n) => `http://127.0.0.1:${String(ports[n] ?? 9)}`,
  });
  return { world, ports };
}

/** Parts of the relay configuration a scenario changes (merged over writeRelayFiles' file). */
export interface RelayPatch {
  readonly forwarding?: RelayConfig['forwarding'];
  readonly retention?: RelayConfig['retention'];
  readonly limits?: RelayConfig['limits'];
  /** Where this relay reaches a peer network's relay (a flaky proxy in front of it). */
  readonly peerUrls?: Readonly<Record<string, string>>;
  /** The embedded backend's data folder (default `<dir>/data`). */
  readonly dataDir?: string;
}

/**
 * One network's relay as a process (the real CLI, embedded backend), that a
 * scenario can stop and start again on the same port and data folder.
 */
export class FaultRelay {
  private proc: RelayProcess | undefined;

  private constructor(
    readonly network: string,
    readonly url: string,
    readonly files: RelayFiles,
    private readonly extraEnv: Readonly<Record<string, string>>,
  ) {}

  static async create(options: {
    world: FaultWorld;
    network: string;
    dir: string;
    patch?: RelayPatch;
    env?: Readonly<Record<string, string>>;
  }): Promise<FaultRelay> {
    const { world, network } = options;
    const dir = join(options.dir, `relay-${network}`);
    await mkdir(dir, { recursive: true });
    const port = world.ports[network]!;
    const files = await writeRelayFiles({
      dir,
      world: world.world,
      network,
      port,
      backend: { kind: 'embedded' },
    });
    const config = JSON.parse(await readFile(files.configFile, 'utf8')) as RelayConfig;
    const p = options.patch ?? {};
    const patched: RelayConfig = {
      ...config,
      ...(p.forwarding ? { forwarding: p.forwarding } : {}),
      ...(p.retention ? { retention: p.retention } : {}),
      ...(p.limits ? { limits: p.limits } : {}),
      ...(p.peerUrls ? { trust: { ...config.trust, peerUrls: { ...p.peerUrls } } } : {}),
      ...(p.dataDir ? { backend: { ...config.backend, dataDir: p.dataDir } } : {}),
    };
    await writeFile(files.configFile, JSON.stringify(patched, null, 2));
    return new FaultRelay(network, `http://127.0.0.1:${String(port)}`, files, options.env ?? {});
  }

  get alive(): boolean {
    return this.proc?.alive === true;
  }

  get pid(): number | undefined {
    return this.alive ? this.proc?.child.pid : undefined;
  }

  /** The tail of the process's output, for failure messages. */
  get log(): string {
    return this.proc?.log ?? '';
  }

  async start(): Promise<void> {
    if (this.alive) return;
    this.proc = await RelayProcess.start(
      {
        configFile: this.files.configFile,
        env: {
          ...this.files.env,
          ...(process.env['FAULTS_RELAY_LOG']
            ? { ROGATORY_RELAY__LOG_LEVEL: process.env['FAULTS_RELAY_LOG'] }
            : {}),
          ...this.extraEnv,
        },
      },
      this.url,
    );
  }

  /** SIGTERM (the relay drains and exits), SIGKILL past the grace period. */
  async stop(): Promise<void> {
    await this.proc?.stop(10_000);
  }

  async kill(): Promise<void> {
    await this.proc?.kill();
  }
}

/** Stop every relay given (for finally blocks: never throws). */
export async function stopAll(relays: readonly (FaultRelay | undefined)[]): Promise<void> {
  await Promise.allSettled(relays.map((r) => r?.kill() ?? Promise.resolve()));
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new Error('scenario aborted: time budget spent'));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('scenario aborted: time budget spent'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Poll `fn` until it returns a value (not undefined); throws after `ms` or when `signal` aborts. */
export async function until<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  options: { ms: number; signal?: AbortSignal; intervalMs?: number },
): Promise<T> {
  const end = Date.now() + options.ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(options.intervalMs ?? 100, options.signal);
  }
}

/** Like {@link until}, but a timeout is an answer (false), so the scenario still reports its counts. */
export async function settle(
  fn: () => boolean | Promise<boolean>,
  options: { ms: number; signal?: AbortSignal; intervalMs?: number },
): Promise<boolean> {
  const end = Date.now() + options.ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > end) return false;
    await sleep(options.intervalMs ?? 100, options.signal);
  }
}
