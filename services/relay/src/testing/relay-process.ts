import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KDF_LIMITS, sealSigningKey } from '@rogatory/protocol';
import type { TestWorld } from '@rogatory/protocol/testing';
import type { RelayConfig } from '../config.js';

/** The relay's real CLI entry point (it registers tsx itself). */
export const RELAY_BIN = fileURLToPath(new URL('../../bin/rogatory-relay.js', import.meta.url));

export type ProcessBackend =
  | { readonly kind: 'embedded' }
  | {
      readonly kind: 'redis';
      readonly url: string;
      readonly prefix: string;
      readonly s3?: {
        readonly endPoint: string;
        readonly port: number;
        readonly bucket: string;
        readonly accessKey: string;
        readonly secretKey: string;
      };
    };

export interface RelayFiles {
  readonly configFile: string;
  /** Secrets the relay reads from its environment. */
  readonly env: Readonly<Record<string, string>>;
}

/**
 * Write everything a relay process of `network` needs into `dir`: its sealed
 * identity key, the pinned root, the manifests (own first) and a JSON
 * configuration file; secrets go to the environment, not to files.
 */
export async function writeRelayFiles(options: {
  dir: string;
  world: TestWorld;
  network: string;
  port: number;
  backend: ProcessBackend;
  limits?: RelayConfig['limits'];
}): Promise<RelayFiles> {
  const { dir, world, network } = options;
  const net = world.networks[network]!;
  const passphrase = randomBytes(12).toString('hex');
  const keyFile = join(dir, 'relay-key.json');
  await writeFile(
    keyFile,
    JSON.stringify(
      sealSigningKey(net.relay.key, {
        passphrase,
        purpose: 'relay-identity',
        limits: KDF_LIMITS.interactive,
      }),
    ),
    { mode: 0o600 },
  );
  const rootFile = join(dir, `${network}-root.json`);
  await writeFile(rootFile, JSON.stringify(net.rootRef));
  const manifestFiles: string[] = [];
  for (const n of [network, ...net.manifest.body.peers.map((p) => p.network)]) {
    const file = join(dir, `${n}-manifest.json`);
    await writeFile(file, JSON.stringify(world.networks[n]!.manifest));
    manifestFiles.push(file);
  }
  const env: Record<string, string> = {
    ROGATORY_RELAY_PASSPHRASE: passphrase,
    ROGATORY_RELAY_SESSION_SECRET: randomBytes(32).toString('hex'),
  };
  const b = options.backend;
  const backend: RelayConfig['backend'] =
    b.kind === 'embedded'
      ? { kind: 'embedded', dataDir: join(dir, 'data') }
      : {
          kind: 'redis',
          redis: { url: b.url, prefix: b.prefix },
          ...(b.s3
            ? {
                s3: {
                  endPoint: b.s3.endPoint,
                  port: b.s3.port,
                  useSSL: false,
                  bucket: b.s3.bucket,
                  prefix: 'chunks',
                },
              }
            : { dataDir: join(dir, 'data') }),
        };
  if (b.kind === 'redis' && b.s3) {
    env['ROGATORY_S3_ACCESS_KEY'] = b.s3.accessKey;
    env['ROGATORY_S3_SECRET_KEY'] = b.s3.secretKey;
  }
  const config: RelayConfig = {
    relay: { id: net.relay.id, host: '127.0.0.1', port: options.port },
    identity: { keyFile },
    trust: { rootFile, manifestFiles, dir: join(dir, 'trust') },
    backend,
    ...(options.limits ? { limits: options.limits } : {}),
    logLevel: 'warn',
  };
  const configFile = join(dir, 'relay.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  return { configFile, env };
}

const running = new Set<ChildProcess>();
let exitHook = false;

/** A relay running as a child process of the test, with the real CLI. */
export class RelayProcess {
  private output = '';

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
  ) {
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString('utf8')).slice(-8000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /** Start `rogatory-relay start --config <file>` and wait (bounded) until /readyz answers 200. */
  static async start(
    files: RelayFiles,
    url: string,
    readyTimeoutMs = 60_000,
  ): Promise<RelayProcess> {
    if (!exitHook) {
      exitHook = true;
      // Last resort if the test process ends without afterAll: no relay outlives it.
      process.once('exit', () => {
        for (const c of running) c.kill('SIGKILL');
      });
    }
    const child = spawn(process.execPath, [RELAY_BIN, 'start', '--config', files.configFile], {
      env: { ...process.env, ...files.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    const exited = once(child, 'exit').then(([code, signal]) => {
      running.delete(child);
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
    const relay = new RelayProcess(child, url, exited);
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (!relay.alive) throw new Error(`relay exited before it was ready:\n${relay.output}`);
      if (await relay.ready()) return relay;
      if (Date.now() > deadline) {
        await relay.kill();
        throw new Error(`relay not ready within ${String(readyTimeoutMs)} ms:\n${relay.output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Last output of the process, for failure messages. */
  get log(): string {
    return this.output;
  }

  async ready(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** Send SIGKILL now (synchronously): no drain, no cleanup, as in a power cut of the process. */
  killNow(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }

  /** SIGKILL, and wait until the process is gone. */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (drain, then exit), escalating to SIGKILL after `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
