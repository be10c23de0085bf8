/**
 * Peak RSS of the accelerated attachment pipeline, run by bench-protocol.ts
 * in a child process of its own, so that the figure is the pipeline's and not
 * the benchmark harness's (test worlds, retained ciphertext of the throughput
 * phase). Usage: attachment-rss.ts BYTES [pipeline|raw]; prints one JSON
 * object { mode, baseMB, peakMB } (MB = 2^20 bytes).
 *
 * Decryption needs the manifest, which exists only once encryption has
 * finished. So pass 1 encrypts with fixed key material and discards every
 * chunk as it comes; pass 2 re-creates the identical ciphertext on the fly
 * (same key material) and feeds it straight into decryption, whose plaintext
 * is discarded too. Both passes run the engine of the public API with worker
 * hashing and `reuseBuffers` (each chunk is consumed before the next is
 * requested, as when writing to a file or a socket). Nothing is retained:
 * memory is whatever the pipeline needs.
 *
 * Mode `raw` is the reference: the same process set-up, then bare
 * crypto_secretstream_xchacha20poly1305_push over the same number of bytes,
 * outputs discarded: what any streaming encryption costs in this runtime.
 */
import { randomFillSync } from 'node:crypto';
import { startEncryption, type FixedKeyMaterial } from '../src/attachment-stream.js';
import { decryptAttachment, workerHashing } from '../src/node/index.js';
import { ready, sodium } from '../src/sodium.js';

const MiB = 1024 * 1024;
const PIECE = 64 * 1024;
const total = Number(process.argv[2]);
const mode = process.argv[3] ?? 'pipeline';
if (!Number.isSafeInteger(total) || total <= 0 || (mode !== 'pipeline' && mode !== 'raw')) {
  process.stderr.write('usage: attachment-rss.ts BYTES [pipeline|raw]\n');
  process.exit(2);
}

await ready();
const s = sodium();
const pool = randomFillSync(new Uint8Array(4 * MiB + PIECE));

function* plaintext(): Generator<Uint8Array> {
  for (let off = 0, k = 0; off < total; off += PIECE, k++) {
    const start = (k * 40961) % (4 * MiB);
    yield pool.subarray(start, start + Math.min(PIECE, total - off));
  }
}

let peak = 0;
const sample = (): void => {
  peak = Math.max(peak, process.memoryUsage.rss());
};
const gc = (): void => {
  (globalThis as { gc?: () => void }).gc?.();
};

// Start the hashing worker before measuring the base, in both modes, so the bases compare.
const warm = startEncryption([new Uint8Array(1)], {
  name: 'warm.bin',
  mediaType: 'application/octet-stream',
  hashing: workerHashing,
});
for await (const _ of warm.chunks) {
  // drain
}
gc();
const base = process.memoryUsage.rss();
const timer = setInterval(sample, 10);

if (mode === 'raw') {
  const { state } = s.crypto_secretstream_xchacha20poly1305_init_push(
    s.crypto_secretstream_xchacha20poly1305_keygen(),
  );
  for (let off = 0, k = 0; off < total; off += MiB, k++) {
    const at = (k * 40961) % (3 * MiB);
    s.crypto_secretstream_xchacha20poly1305_push(
      state,
      pool.subarray(at, at + Math.min(MiB, total - off)),
      null,
      0,
    );
    sample();
  }
} else {
  const fixed: FixedKeyMaterial = {
    key: s.crypto_secretstream_xchacha20poly1305_keygen(),
    header: randomFillSync(new Uint8Array(24)),
  };
  const options = {
    name: 'rss.bin',
    mediaType: 'application/octet-stream',
    hashing: workerHashing,
    reuseBuffers: true,
  } as const;
  const pass1 = startEncryption(plaintext(), options, fixed);
  for await (const c of pass1.chunks) {
    sample();
    if (c.bytes.length === 0) throw new Error('empty chunk');
  }
  const pass2 = startEncryption(plaintext(), options, fixed);
  const ciphertext = async function* (): AsyncGenerator<Uint8Array> {
    for await (const c of pass2.chunks) yield c.bytes;
  };
  let n = 0;
  for await (const p of decryptAttachment(pass1.manifest(), ciphertext(), { reuseBuffers: true })) {
    sample();
    n += p.length;
  }
  if (n !== total) throw new Error('the streamed round trip lost bytes');
}
clearInterval(timer);
sample();
const mb = (x: number): number => Math.round((x / MiB) * 10) / 10;
process.stdout.write(`${JSON.stringify({ mode, baseMB: mb(base), peakMB: mb(peak) })}\n`);
