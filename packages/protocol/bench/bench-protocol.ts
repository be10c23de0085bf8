/**
 * Protocol benchmark: `pnpm bench:protocol [--json] [--quick]`.
 *
 * Prints a table, or with --json exactly one JSON object on stdout:
 * signing and sealing figures from `measureSealing()` (null until the lead's
 * seal-bench implements it), attachment throughput through the accelerated
 * Node pipeline (`@rogatory/protocol/node`: re-chunking, worker hashing,
 * secretstream) against bare libsodium `crypto_secretstream_xchacha20poly1305_push`
 * on the same bytes in the same run, and the peak RSS while streaming a
 * 1 GiB attachment through encryption and decryption (bench/attachment-rss.ts,
 * in a child process of its own).
 *
 * MB means 2^20 bytes throughout. Throughput rounds are interleaved
 * (raw, encrypt, decrypt, raw, ...) and the best round of each is reported:
 * load from other processes only ever slows a round down, and it hurts the
 * two-thread pipeline more than the one-thread baseline, so the least
 * disturbed round is the fairest estimate of each. The table lists every
 * round.
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { buildSync } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { decryptAttachment, encryptAttachment } from '../src/node/index.js';
import { ready, sodium } from '../src/sodium.js';
import { measureSealing, type SealingFigures } from './seal-bench.js';

const MiB = 1024 * 1024;
const args = new Set(process.argv.slice(2));
const json = args.has('--json');
const quick = args.has('--quick');
for (const a of args) {
  if (a !== '--json' && a !== '--quick') {
    process.stderr.write(`unknown argument ${a}\nusage: bench-protocol [--json] [--quick]\n`);
    process.exit(2);
  }
}

const THROUGHPUT_BYTES = (quick ? 64 : 256) * MiB;
const RSS_BYTES = (quick ? 256 : 1024) * MiB;
const ROUNDS = quick ? 3 : 5;
/** Source pieces of 64 KiB, the size fs read streams hand out by default. */
const PIECE = 64 * 1024;
const OPTIONS = { name: 'bench.bin', mediaType: 'application/octet-stream' } as const;

// In --json mode stdout carries the one JSON object only: anything else goes to stderr.
const out = process.stdout.write.bind(process.stdout);
if (json) console.log = console.error;

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

await ready();
const s = sodium();
/** 4 MiB of random bytes (+ one piece) that the generators slice views from. */
const pool = randomFillSync(new Uint8Array(4 * MiB + PIECE));

/** Plaintext generated on the fly: 64 KiB views at shifting offsets of the pool, nothing retained. */
function* plaintext(total: number): Generator<Uint8Array> {
  for (let off = 0, k = 0; off < total; off += PIECE, k++) {
    const start = (k * 40961) % (4 * MiB);
    yield pool.subarray(start, start + Math.min(PIECE, total - off));
  }
}

const best = (xs: readonly number[]): number => Math.max(...xs);

/**
 * CPU time of the main thread in ms (Linux /proc; NaN elsewhere). Context for
 * a loaded machine: the calling thread's CPU cost per MB does not depend on
 * what other processes do, wall-clock throughput does.
 */
function mainThreadCpuMs(): number {
  try {
    const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')
      .split(') ')[1]!
      .split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}
const cpu = { raw: 0, enc: 0, dec: 0 };
const mbps = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000);
const round1 = (x: number): number => Math.round(x * 10) / 10;

/** Bare libsodium secretstream push of the same bytes, 1 MiB messages. */
function rawPush(total: number): number {
  const key = s.crypto_secretstream_xchacha20poly1305_keygen();
  const { state } = s.crypto_secretstream_xchacha20poly1305_init_push(key);
  const start = performance.now();
  const cpu0 = mainThreadCpuMs();
  for (let off = 0, k = 0; off < total; off += MiB, k++) {
    const at = (k * 40961) % (3 * MiB);
    const last = off + MiB >= total;
    s.crypto_secretstream_xchacha20poly1305_push(
      state,
      pool.subarray(at, at + Math.min(MiB, total - off)),
      null,
      last
        ? s.crypto_secretstream_xchacha20poly1305_TAG_FINAL
        : s.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
    );
  }
  const ms = performance.now() - start;
  cpu.raw = Math.max(cpu.raw, mbps(total, mainThreadCpuMs() - cpu0));
  return mbps(total, ms);
}

/**
 * The pipeline as a consumer that handles each chunk before asking for the
 * next uses it (`reuseBuffers`: one buffer set circulates); with
 * `fresh`, every chunk gets a new buffer, as for a consumer that keeps them.
 */
async function timedEncrypt(total: number, fresh = false): Promise<number> {
  const start = performance.now();
  const cpu0 = mainThreadCpuMs();
  const enc = encryptAttachment(plaintext(total), { ...OPTIONS, reuseBuffers: !fresh });
  let n = 0;
  for await (const c of enc.chunks) n += c.bytes.length;
  const ms = performance.now() - start;
  if (!fresh) cpu.enc = Math.max(cpu.enc, mbps(total, mainThreadCpuMs() - cpu0));
  if (enc.manifest().size !== total || n !== total + 17 * enc.manifest().chunks.length)
    throw new Error('encryption lost bytes');
  return mbps(total, ms);
}

async function timedDecrypt(
  manifest: unknown,
  chunks: readonly Uint8Array[],
  total: number,
  fresh = false,
): Promise<number> {
  const start = performance.now();
  const cpu0 = mainThreadCpuMs();
  let n = 0;
  for await (const p of decryptAttachment(manifest, chunks, { reuseBuffers: !fresh }))
    n += p.length;
  const ms = performance.now() - start;
  if (!fresh) cpu.dec = Math.max(cpu.dec, mbps(total, mainThreadCpuMs() - cpu0));
  if (n !== total) throw new Error('decryption lost bytes');
  return mbps(total, ms);
}

/**
 * Run bench/attachment-rss.ts in a child process of plain Node, bundled to
 * JavaScript first as a deployment would run it: the tsx loader alone costs
 * about 80 MB of RSS, which is the benchmark harness's, not the pipeline's.
 */
function childRss(total: number, mode: 'pipeline' | 'raw'): { baseMB: number; peakMB: number } {
  const script = fileURLToPath(new URL('./attachment-rss.ts', import.meta.url));
  // Inside this package (git-ignored .tmp/), so that the bundle resolves @rogatory/protocol and esbuild as the source does.
  const bundle = fileURLToPath(
    new URL(`./.tmp/attachment-rss-${process.pid}.mjs`, import.meta.url),
  );
  buildSync({
    entryPoints: [script],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    logLevel: 'error',
  });
  const child = spawnSync(process.execPath, ['--expose-gc', bundle, String(total), mode], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  rmSync(bundle, { force: true });
  if (child.status !== 0)
    throw new Error(
      `attachment-rss ${mode} failed (status ${String(child.status)}): ${child.stderr}`,
    );
  const figures = JSON.parse(child.stdout) as { baseMB: number; peakMB: number };
  return { baseMB: figures.baseMB, peakMB: figures.peakMB };
}

const loadBefore = loadavg()[0]!;

// 1. Memory, each in a fresh process: the pipeline, and bare push over the same bytes for reference.
const rss = childRss(RSS_BYTES, 'pipeline');
const rssRaw = childRss(RSS_BYTES, 'raw');

// 2. Throughput, interleaved rounds after a warm-up.
rawPush(16 * MiB);
await timedEncrypt(16 * MiB);
const stored: Uint8Array[] = [];
const source = encryptAttachment(plaintext(THROUGHPUT_BYTES), OPTIONS);
for await (const c of source.chunks) stored.push(c.bytes);
const storedManifest = source.manifest();
await timedDecrypt(storedManifest, stored, THROUGHPUT_BYTES);
const raws: number[] = [];
const encs: number[] = [];
const decs: number[] = [];
const freshEncs: number[] = [];
const freshDecs: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  gc();
  raws.push(rawPush(THROUGHPUT_BYTES));
  gc();
  encs.push(await timedEncrypt(THROUGHPUT_BYTES));
  gc();
  decs.push(await timedDecrypt(storedManifest, stored, THROUGHPUT_BYTES));
  gc();
  freshEncs.push(await timedEncrypt(THROUGHPUT_BYTES, true));
  gc();
  freshDecs.push(await timedDecrypt(storedManifest, stored, THROUGHPUT_BYTES, true));
}
stored.length = 0;
const raw = best(raws);
const enc = best(encs);
const dec = best(decs);

// 3. Signing and sealing (the lead's seal-bench).
let sealing: SealingFigures | null = null;
let sealingNote = '';
try {
  gc();
  sealing = await measureSealing();
} catch (err) {
  sealingNote = err instanceof Error ? err.message : 'failed';
}

const result = {
  signPerSec: sealing?.signPerSec ?? null,
  verifyPerSec: sealing?.verifyPerSec ?? null,
  sealPerSec1: sealing?.sealPerSec1 ?? null,
  openPerSec1: sealing?.openPerSec1 ?? null,
  sealPerSec10: sealing?.sealPerSec10 ?? null,
  nativeSignPerSec: sealing?.nativeSignPerSec ?? null,
  nativeVerifyPerSec: sealing?.nativeVerifyPerSec ?? null,
  attachmentEncryptMBps: round1(enc),
  attachmentDecryptMBps: round1(dec),
  rawSecretstreamMBps: round1(raw),
  attachmentRatio: Math.round((Math.min(enc, dec) / raw) * 1000) / 1000,
  peakRssMB: rss.peakMB,
};

if (json) {
  out(`${JSON.stringify(result)}\n`);
} else {
  const rows: [string, string, string][] = [
    ['signPerSec', String(result.signPerSec), sealingNote],
    ['verifyPerSec', String(result.verifyPerSec), ''],
    ['sealPerSec1', String(result.sealPerSec1), '1 recipient'],
    ['openPerSec1', String(result.openPerSec1), ''],
    ['sealPerSec10', String(result.sealPerSec10), '10 recipients'],
    [
      '(native)',
      `${String(sealing?.nativeSignPerSec ?? 'n/a')}/${String(sealing?.nativeVerifyPerSec ?? 'n/a')}`,
      'sign/verify per second with natively compiled libsodium (useNativeCrypto(), what relays and nodes use)',
    ],
    [
      'attachmentEncryptMBps',
      String(result.attachmentEncryptMBps),
      `node pipeline, reuseBuffers, ${THROUGHPUT_BYTES / MiB} MB; rounds ${encs.map((x) => x.toFixed(0)).join(' ')}`,
    ],
    [
      'attachmentDecryptMBps',
      String(result.attachmentDecryptMBps),
      `reuseBuffers; rounds ${decs.map((x) => x.toFixed(0)).join(' ')}`,
    ],
    [
      '(fresh buffers)',
      `${round1(best(freshEncs))}/${round1(best(freshDecs))}`,
      'encrypt/decrypt MB/s when every chunk gets a new buffer (consumer keeps them): GC of the garbage costs this much',
    ],
    [
      'rawSecretstreamMBps',
      String(result.rawSecretstreamMBps),
      `bare push, 1 MB messages; rounds ${raws.map((x) => x.toFixed(0)).join(' ')}`,
    ],
    [
      'attachmentRatio',
      String(result.attachmentRatio),
      'min(encrypt, decrypt) / raw; target >= 0.85',
    ],
    [
      '(main thread)',
      Number.isNaN(cpu.raw) ? 'n/a' : (Math.min(cpu.enc, cpu.dec) / cpu.raw).toFixed(3),
      `same ratio in CPU time of the calling thread: encrypt ${cpu.enc.toFixed(0)}, decrypt ${cpu.dec.toFixed(0)}, raw ${cpu.raw.toFixed(0)} MB per CPU-second`,
    ],
    [
      'peakRssMB',
      String(result.peakRssMB),
      `streaming ${RSS_BYTES / MiB} MB encrypt+decrypt; process RSS before streaming ${rss.baseMB} MB; target < 150`,
    ],
    [
      '(reference)',
      String(rssRaw.peakMB),
      `peak RSS of bare push over ${RSS_BYTES / MiB} MB in the same set-up (RSS before ${rssRaw.baseMB} MB)`,
    ],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  out(
    `protocol benchmark${quick ? ' (quick)' : ''}: MB = 2^20 bytes, throughput = best of ${ROUNDS} interleaved rounds\n`,
  );
  out(
    `machine: ${cpus().length} cores, 1-min load average ${loadBefore.toFixed(2)} before and ${loadavg()[0]!.toFixed(2)} after (the pipeline needs two free cores)\n`,
  );
  for (const [k, v, note] of rows) out(`${k.padEnd(w0)}  ${v.padStart(w1)}  ${note}\n`);
}
