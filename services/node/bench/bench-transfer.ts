/**
 * End-to-end transfer benchmark: `pnpm bench:transfer [--json] [--quick] [--only embedded|s3]`.
 *
 * One attachment from sn-moj@wacap to kz-gpo@casc through exactly two
 * relays (wacap's = relayA, casc's = relayB; in this world the two networks
 * peer directly). Timed from the start of sending (compose with the
 * attachment read from disk, approve, upload, submit) to the recipient
 * holding the plaintext: received (downloaded, verified, stored, acked),
 * opened and the attachment decrypted into a file (`saveAttachments`, checked
 * by the node against the signed manifest). The bench then checks the file's
 * SHA-256 against the source's, after the clock has stopped.
 *
 * Set-up: relayA, relayB, the sending and the receiving node each run in a
 * child process of their own (bench/transfer-child.ts, bundled to plain
 * JavaScript with esbuild so that the tsx loader does not inflate RSS); each
 * samples its own RSS every 50 ms and reports the peak at the end:
 * `peakRssMB` over the transfer (from just before the sender starts until
 * the recipient holds the file), `lifetimePeakRssMB` (in details) over the
 * whole process, start-up included, where Argon2id (64 MiB, by design)
 * unlocks the keyring and checks the officers' passwords. The processes run
 * with the deployment's environment (MALLOC_ARENA_MAX=2, as in
 * infra/compose.production.yaml and services/node/README.md). Section
 * `embedded`: relays on the embedded backend with chunks on disk; section
 * `s3`: relays on Redis (startRedis) with chunks on s3rver (startS3, which
 * runs inside this parent process). The nodes keep their blobs on disk.
 *
 * The baseline, measured in the same run in this process: bare libsodium
 * crypto_secretstream_xchacha20poly1305_push over 1 MiB messages (best of
 * interleaved rounds). MB means 2^20 bytes throughout. With --json, stdout
 * carries exactly one JSON object; logs go to stderr.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { ready, sodium } from '@rogatory/protocol';
import {
  freePort,
  startRedis,
  startS3,
  type RedisServer,
  type S3Server,
} from '@rogatory/test-services';
import type { Backend, ChildMessage, ChildSpec } from './transfer-child.js';

const MiB = 1024 * 1024;
const SECTIONS = ['embedded', 's3'] as const;
type Section = (typeof SECTIONS)[number];
const ROLES = ['sender', 'relayA', 'relayB', 'recipient'] as const;
type Role = (typeof ROLES)[number];

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: bench-transfer [--json] [--quick] [--only embedded|s3]\n`,
  );
  process.exit(2);
}
const opts = { json: false, quick: false, only: new Set<Section>(SECTIONS) };
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') opts.json = true;
    else if (a === '--quick') opts.quick = true;
    else if (a === '--only') {
      const v = argv[++i];
      if (v !== 'embedded' && v !== 's3') usage('--only takes embedded or s3');
      opts.only = new Set([v]);
    } else usage(`unknown argument ${a}`);
  }
}

const out = process.stdout.write.bind(process.stdout);
console.log = console.error;
const log = (m: string): void => {
  process.stderr.write(`[bench-transfer] ${m}\n`);
};

/** [small, large]; the large one gives endToEndMBps. */
const SIZES = opts.quick
  ? [
      { label: '16MiB', bytes: 16 * MiB },
      { label: '64MiB', bytes: 64 * MiB },
    ]
  : [
      { label: '100MiB', bytes: 100 * MiB },
      { label: '1GiB', bytes: 1024 * MiB },
    ];
const RAW_BYTES = (opts.quick ? 64 : 256) * MiB;
const RAW_ROUNDS = opts.quick ? 3 : 5;
const START_TIMEOUT_MS = 60_000;
/**
 * Environment every relay and node process is deployed with: two glibc
 * malloc arenas instead of one per thread (freed chunk buffers otherwise
 * linger in each thread's arena).
 */
const DEPLOYMENT_ENV = { MALLOC_ARENA_MAX: '2' } as const;
/** Generous bound on one transfer: a 1 GiB transfer at 2 MB/s. */
const TRANSFER_TIMEOUT_MS = opts.quick ? 120_000 : 600_000;
const STOP_TIMEOUT_MS = 30_000;

const r1 = (x: number): number => Math.round(x * 10) / 10;
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

// ------------------------------------------------------------- clean-up

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
const services: { redis?: RedisServer; s3?: S3Server } = {};
let bundleDir: string | undefined;

function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
function removeTemp(): void {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
}
process.on('exit', () => {
  killChildren();
  removeTemp();
});
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    killChildren();
    void Promise.allSettled([services.redis?.stop(), services.s3?.stop()]).finally(() =>
      process.exit(130),
    );
  });

// ------------------------------------------------------------- baseline

await ready();
const s = sodium();
const pool = randomFillSync(new Uint8Array(4 * MiB));

/** Bare libsodium secretstream push of `total` bytes in 1 MiB messages; MB/s. */
function rawPush(total: number): number {
  const key = s.crypto_secretstream_xchacha20poly1305_keygen();
  const { state } = s.crypto_secretstream_xchacha20poly1305_init_push(key);
  const start = performance.now();
  for (let off = 0, k = 0; off < total; off += MiB, k++) {
    const at = (k * 40961) % (3 * MiB);
    s.crypto_secretstream_xchacha20poly1305_push(
      state,
      pool.subarray(at, at + Math.min(MiB, total - off)),
      null,
      off + MiB >= total
        ? s.crypto_secretstream_xchacha20poly1305_TAG_FINAL
        : s.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
    );
  }
  return total / MiB / ((performance.now() - start) / 1000);
}

// ------------------------------------------------------------- children

const CHILD_SOURCE = fileURLToPath(new URL('./transfer-child.ts', import.meta.url));

/** Bundle the child once, next to this file so that the native externals resolve from this package. */
function bundleChild(): string {
  bundleDir = fileURLToPath(new URL(`./.build-${process.pid}/`, import.meta.url));
  mkdirSync(bundleDir, { recursive: true });
  buildSync({
    entryPoints: [CHILD_SOURCE],
    bundle: true,
    // One chunk per role's imports: a relay process loads the relay's code, a node the node's.
    splitting: true,
    platform: 'node',
    format: 'esm',
    // ESM builds first: a UMD build (jsonc-parser's "main") requires its modules by computed paths esbuild cannot follow.
    mainFields: ['module', 'main'],
    target: 'node20',
    outdir: bundleDir,
    logLevel: 'error',
    // Native addons load from node_modules (this package depends on both).
    external: ['better-sqlite3', 'sodium-native'],
    // Bundled CommonJS dependencies call require(): give the ESM bundle one.
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
  });
  const outfile = join(bundleDir, 'transfer-child.js');
  return outfile;
}

class Child {
  readonly messages: ChildMessage[] = [];
  private waiters: (() => void)[] = [];
  readonly exited: Promise<void>;
  private stderrTail = '';

  constructor(
    readonly role: Role,
    readonly proc: ChildProcess,
  ) {
    children.add(proc);
    proc.on('message', (m: ChildMessage) => {
      this.messages.push(m);
      if (m.type === 'error') log(`${role}: ${m.message}`);
      for (const w of this.waiters.splice(0)) w();
    });
    proc.stderr?.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString('utf8')).slice(-4000);
    });
    this.exited = new Promise((resolve) =>
      proc.once('exit', () => {
        children.delete(proc);
        for (const w of this.waiters.splice(0)) w();
        resolve();
      }),
    );
  }

  static start(bundle: string, role: Role, spec: ChildSpec): Child {
    const profileDir = process.env['ROGATORY_BENCH_PROFILE'];
    const proc = fork(bundle, [JSON.stringify(spec)], {
      // The environment of the deployment (infra/compose.production.yaml, services/node/README.md).
      env: { ...process.env, ...DEPLOYMENT_ENV },
      // ROGATORY_BENCH_PROFILE=DIR writes a V8 CPU profile of every child to DIR.
      execArgv: profileDir
        ? [
            '--cpu-prof',
            '--cpu-prof-dir',
            profileDir,
            '--cpu-prof-name',
            `${role}-${Date.now()}.cpuprofile`,
          ]
        : [],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    return new Child(role, proc);
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The first message of `type`, waiting at most `ms`; an `error` message or exit fails it. */
  async wait<T extends ChildMessage['type']>(
    type: T,
    ms: number,
  ): Promise<Extract<ChildMessage, { type: T }>> {
    const deadline = performance.now() + ms;
    for (let i = 0; i < 1_000_000; i++) {
      const found = this.messages.find((m) => m.type === type);
      if (found) return found as Extract<ChildMessage, { type: T }>;
      const error = this.messages.find(
        (m): m is Extract<ChildMessage, { type: 'error' }> => m.type === 'error',
      );
      if (error) throw new Error(`${this.role}: ${error.message}`);
      if (!this.alive)
        throw new Error(
          `${this.role} exited (${String(this.proc.exitCode)}) before '${type}': ${this.stderrTail}`,
        );
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${this.role}: no '${type}' within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    throw new Error('unreachable');
  }

  send(message: { type: string }): void {
    if (this.alive) this.proc.send(message);
  }

  /** Ask it to stop and report its peak RSS (over the transfer, and over its life); killed if it takes longer than STOP_TIMEOUT_MS. */
  async stop(): Promise<{
    transfer: number | null;
    lifetime: number | null;
    cpuMs: number | null;
  }> {
    if (!this.alive) return { transfer: null, lifetime: null, cpuMs: null };
    this.send({ type: 'stop' });
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
    const peak = this.messages.find(
      (m): m is Extract<ChildMessage, { type: 'peak' }> => m.type === 'peak',
    );
    return {
      transfer: peak?.transferPeakRssMB ?? null,
      lifetime: peak?.peakRssMB ?? null,
      cpuMs: peak?.transferCpuMs ?? null,
    };
  }
}

// ------------------------------------------------------------- one transfer

interface TransferFigures {
  readonly bytes: number;
  readonly elapsedMs: number;
  readonly mbps: number;
  readonly phasesMs: Record<string, number>;
  readonly startRssMB: Record<Role, number>;
  /**
   * CPU time (all threads) each process spent from the start of sending to
   * the recipient holding the file, per MB transferred: the work a byte
   * costs on its way, which bounds the throughput 2 cores can reach.
   */
  readonly cpuMsPerMB: Record<Role, number | null>;
  /** Which libsodium build signed and hashed in each process. */
  readonly crypto: Record<Role, string>;
  /** Peak RSS from just before the sender starts to the end of the transfer. */
  readonly peakRssMB: Record<Role, number | null>;
  /** Peak RSS over the process's life, start-up included (Argon2id unlocking the keyring, password checks). */
  readonly lifetimePeakRssMB: Record<Role, number | null>;
}

async function writeSource(path: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const stream = createWriteStream(path);
  for (let off = 0; off < bytes; off += 4 * MiB) {
    const piece = randomBytes(Math.min(4 * MiB, bytes - off));
    hash.update(piece);
    if (!stream.write(piece)) await new Promise<void>((r) => stream.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) =>
    stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
  return hash.digest('hex');
}

async function transfer(bundle: string, section: Section, bytes: number): Promise<TransferFigures> {
  const root = await mkdtemp(join(tmpdir(), 'rogatory-bench-transfer-'));
  tempDirs.add(root);
  const started: Child[] = [];
  try {
    const source = join(root, 'evidence.bin');
    const sourceSha = await writeSource(source, bytes);
    const now = Date.now();
    const ports = { wacap: await freePort(), casc: await freePort() };
    let backend: Backend = { kind: 'embedded' };
    if (section === 's3') {
      const s3 = services.s3!;
      backend = {
        kind: 'redis',
        url: services.redis!.url,
        prefix: `bench-${randomBytes(4).toString('hex')}`,
        s3: {
          endPoint: s3.endPoint,
          port: s3.port,
          accessKey: s3.accessKey,
          secretKey: s3.secretKey,
        },
      };
    }
    const relayA = Child.start(bundle, 'relayA', {
      role: 'relay',
      network: 'wacap',
      now,
      ports,
      dir: join(root, 'relay-a'),
      backend,
    });
    const relayB = Child.start(bundle, 'relayB', {
      role: 'relay',
      network: 'casc',
      now,
      ports,
      dir: join(root, 'relay-b'),
      backend,
    });
    started.push(relayA, relayB);
    await Promise.all([
      relayA.wait('ready', START_TIMEOUT_MS),
      relayB.wait('ready', START_TIMEOUT_MS),
    ]);
    const sender = Child.start(bundle, 'sender', {
      role: 'sender',
      now,
      ports,
      dir: join(root, 'sender'),
      file: source,
    });
    const recipient = Child.start(bundle, 'recipient', {
      role: 'recipient',
      now,
      ports,
      dir: join(root, 'recipient'),
      file: join(root, 'received'),
    });
    started.push(sender, recipient);
    const readies = await Promise.all(
      [sender, relayA, relayB, recipient].map((c) => c.wait('ready', START_TIMEOUT_MS)),
    );
    // Let the recipient's mailbox subscription settle before the clock starts.
    await new Promise((r) => setTimeout(r, 500));

    for (const c of [sender, relayA, relayB, recipient]) c.send({ type: 'mark' });
    const t0 = performance.timeOrigin + performance.now();
    sender.send({ type: 'go' });
    const done = await recipient.wait('done', TRANSFER_TIMEOUT_MS);
    for (const c of [sender, relayA, relayB, recipient]) c.send({ type: 'cpu' });
    const sent = await sender.wait('sent', TRANSFER_TIMEOUT_MS);
    const elapsedMs = done.at - t0;
    const verified = await recipient.wait('verified', TRANSFER_TIMEOUT_MS);
    if (done.bytes !== bytes || verified.sha256 !== sourceSha)
      throw new Error(`plaintext mismatch at the recipient (${done.bytes} of ${bytes} bytes)`);

    const sentAt =
      t0 + sent.phases.composeMs! + sent.phases.approveMs! + sent.phases.uploadSubmitMs!;
    const phasesMs = {
      compose: r1(sent.phases.composeMs!),
      approve: r1(sent.phases.approveMs!),
      uploadSubmit: r1(sent.phases.uploadSubmitMs!),
      /** From acceptance by relayA to the recipient's item stored and acked: forwarding, download, verification. */
      forwardReceive: r1(done.phases.receivedAt! - sentAt),
      openSave: r1(done.phases.openSaveMs!),
    };
    const peaks = await Promise.all([sender, relayA, relayB, recipient].map((c) => c.stop()));
    return {
      bytes,
      elapsedMs: r1(elapsedMs),
      mbps: r1(bytes / MiB / (elapsedMs / 1000)),
      phasesMs,
      startRssMB: Object.fromEntries(ROLES.map((r, i) => [r, readies[i]!.rssMB])) as Record<
        Role,
        number
      >,
      cpuMsPerMB: Object.fromEntries(
        ROLES.map((r, i) => [
          r,
          peaks[i]!.cpuMs === null ? null : r1(peaks[i]!.cpuMs / (bytes / MiB)),
        ]),
      ) as Record<Role, number | null>,
      crypto: Object.fromEntries(ROLES.map((r, i) => [r, readies[i]!.crypto])) as Record<
        Role,
        string
      >,
      peakRssMB: Object.fromEntries(ROLES.map((r, i) => [r, peaks[i]!.transfer])) as Record<
        Role,
        number | null
      >,
      lifetimePeakRssMB: Object.fromEntries(ROLES.map((r, i) => [r, peaks[i]!.lifetime])) as Record<
        Role,
        number | null
      >,
    };
  } finally {
    await Promise.allSettled(started.map((c) => c.stop()));
    await rm(root, { recursive: true, force: true });
    tempDirs.delete(root);
  }
}

// ------------------------------------------------------------- run

interface SectionResult {
  readonly endToEndMBps: number;
  readonly peakRssMB: Record<string, Record<Role, number | null>>;
  readonly rssGrowth: Record<Role, number | null>;
  readonly runs: Record<string, TransferFigures>;
}

const loadBefore = loadavg()[0]!;
rawPush(16 * MiB);
const raws: number[] = [];
const bundle = bundleChild();
const results: Partial<Record<Section, SectionResult>> = {};
const errors: Record<string, string> = {};

for (const section of SECTIONS) {
  if (!opts.only.has(section)) continue;
  try {
    if (section === 's3') {
      services.redis = await startRedis();
      services.s3 = await startS3();
    }
    const runs: Record<string, TransferFigures> = {};
    for (const size of SIZES) {
      raws.push(rawPush(RAW_BYTES));
      log(`${section}: ${size.label} ...`);
      runs[size.label] = await transfer(bundle, section, size.bytes);
      log(
        `${section}: ${size.label}: ${runs[size.label]!.mbps} MB/s, ${JSON.stringify(runs[size.label]!.phasesMs)}, peak RSS ${JSON.stringify(runs[size.label]!.peakRssMB)}`,
      );
    }
    const [small, large] = SIZES.map((sz) => runs[sz.label]!);
    results[section] = {
      endToEndMBps: large!.mbps,
      peakRssMB: Object.fromEntries(SIZES.map((sz) => [sz.label, runs[sz.label]!.peakRssMB])),
      rssGrowth: Object.fromEntries(
        ROLES.map((r) => {
          const a = small!.peakRssMB[r];
          const b = large!.peakRssMB[r];
          return [r, a === null || b === null ? null : r3(b / a)];
        }),
      ) as Record<Role, number | null>,
      runs,
    };
  } catch (err) {
    errors[section] = err instanceof Error ? err.message : 'failed';
    log(`${section} failed: ${errors[section]}`);
  } finally {
    if (section === 's3') {
      await Promise.allSettled([services.redis?.stop(), services.s3?.stop()]);
      delete services.redis;
      delete services.s3;
    }
  }
}
for (let i = raws.length; i < RAW_ROUNDS; i++) raws.push(rawPush(RAW_BYTES));
const raw = Math.max(...raws);

const result = {
  rawSecretstreamMBps: r1(raw),
  embedded: results.embedded
    ? { endToEndMBps: results.embedded.endToEndMBps, peakRssMB: results.embedded.peakRssMB }
    : null,
  s3: results.s3
    ? { endToEndMBps: results.s3.endToEndMBps, peakRssMB: results.s3.peakRssMB }
    : null,
  ratios: {
    embeddedVsRaw: results.embedded ? r3(results.embedded.endToEndMBps / raw) : null,
    s3VsRaw: results.s3 ? r3(results.s3.endToEndMBps / raw) : null,
    /** Peak RSS at the large size over the small size, per process (target <= 1.2). */
    rssGrowth: { embedded: results.embedded?.rssGrowth ?? null, s3: results.s3?.rssGrowth ?? null },
  },
  setup: {
    quick: opts.quick,
    sizesMiB: SIZES.map((sz) => sz.bytes / MiB),
    path: 'sn-moj@wacap -> relay@wacap (A) -> relay@casc (B) -> kz-gpo@casc',
    processEnv: DEPLOYMENT_ENV,
    cores: cpus().length,
    loadAverage1m: { before: r1(loadBefore), after: r1(loadavg()[0]!) },
    rawRoundsMBps: raws.map(r1),
  },
  details: {
    embedded: results.embedded?.runs ?? null,
    s3: results.s3?.runs ?? null,
  },
  errors,
};

killChildren();
if (opts.json) {
  out(`${JSON.stringify(result)}\n`);
} else {
  out(
    `transfer benchmark${opts.quick ? ' (quick)' : ''}: ${result.setup.path}; MB = 2^20 bytes; ${result.setup.cores} cores, load ${result.setup.loadAverage1m.before} -> ${result.setup.loadAverage1m.after}\n`,
  );
  out(
    `rawSecretstreamMBps  ${result.rawSecretstreamMBps}  (bare push, 1 MiB messages, best of ${raws.length}: ${result.setup.rawRoundsMBps.join(' ')})\n`,
  );
  for (const section of SECTIONS) {
    const r = results[section];
    if (!r) {
      if (errors[section]) out(`${section}: FAILED ${errors[section]}\n`);
      continue;
    }
    out(
      `\n${section}: endToEndMBps ${r.endToEndMBps} (${r3(r.endToEndMBps / raw)} x raw; target >= 0.4)\n`,
    );
    out(
      `  ${'size'.padEnd(8)} ${'MB/s'.padStart(7)} ${'ms'.padStart(9)}  ${ROLES.map((x) => `${x} MB`.padStart(13)).join(' ')}  phases ms\n`,
    );
    for (const sz of SIZES) {
      const f = r.runs[sz.label]!;
      out(
        `  ${sz.label.padEnd(8)} ${String(f.mbps).padStart(7)} ${String(f.elapsedMs).padStart(9)}  ${ROLES.map((x) => String(f.peakRssMB[x]).padStart(13)).join(' ')}  ${Object.entries(
          f.phasesMs,
        )
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}\n`,
      );
    }
    for (const sz of SIZES) {
      const f = r.runs[sz.label]!;
      out(
        `  ${`${sz.label}*`.padEnd(8)} ${''.padStart(7)} ${''.padStart(9)}  ${ROLES.map((x) => String(f.lifetimePeakRssMB[x]).padStart(13)).join(' ')}  * lifetime peak, start-up included (Argon2id 64 MiB unlocking keys, checking passwords)\n`,
      );
    }
    for (const sz of SIZES) {
      const f = r.runs[sz.label]!;
      const sum = ROLES.reduce((a, x) => a + (f.cpuMsPerMB[x] ?? 0), 0);
      out(
        `  ${`${sz.label} cpu`.padEnd(8)} ${''.padStart(7)} ${''.padStart(9)}  ${ROLES.map((x) => String(f.cpuMsPerMB[x]).padStart(13)).join(' ')}  CPU ms per MB (all threads); sum ${r1(sum)}: at most ${r1((cpus().length * 1000) / sum)} MB/s on ${cpus().length} cores however well the hops overlap\n`,
      );
    }
    out(
      `  ${'growth'.padEnd(8)} ${''.padStart(7)} ${''.padStart(9)}  ${ROLES.map((x) => String(r.rssGrowth[x]).padStart(13)).join(' ')}  (transfer peak RSS large / small; target <= 1.2, and < 200 MB)\n`,
    );
  }
}
process.exitCode = Object.keys(errors).length > 0 ? 1 : 0;
