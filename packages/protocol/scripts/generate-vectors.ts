/**
 * Generates the language-neutral test vectors in packages/protocol/test-vectors/
 * from fixed seeds. `--check` regenerates in memory and fails if any byte of
 * any file would change (CI runs it).
 *
 * Every random byte libsodium draws (content keys, nonces, secretstream
 * headers, sealed-box ephemeral keys) comes from a deterministic generator
 * installed before libsodium loads, so the output is reproducible.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function installDeterministicRandom(seed: string): void {
  let counter = 0;
  let pool = new Uint8Array(0);
  let offset = 0;
  const next = (n: number, out: Uint8Array) => {
    for (let i = 0; i < n; i++) {
      if (offset >= pool.length) {
        pool = new Uint8Array(createHash('sha256').update(`${seed}/${counter++}`).digest());
        offset = 0;
      }
      out[i] = pool[offset++]!;
    }
  };
  const cryptoObject = globalThis.crypto as { getRandomValues: <T extends ArrayBufferView>(array: T) => T };
  cryptoObject.getRandomValues = <T extends ArrayBufferView>(array: T): T => {
    next(array.byteLength, new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
    return array;
  };
}

installDeterministicRandom('rogatory-test-vectors/v1');
const { buildVectors } = await import('./vectors-build.js');

const outDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-vectors');
const check = process.argv.includes('--check');
const vectors = await buildVectors();
const files = new Map(vectors.map((v) => [`${v.name}.json`, `${JSON.stringify(v, null, 2)}\n`]));

if (check) {
  const problems: string[] = [];
  const present = new Set((await readdir(outDir).catch(() => [] as string[])).filter((f) => f.endsWith('.json')));
  for (const [file, text] of files) {
    const current = present.has(file) ? await readFile(join(outDir, file), 'utf8') : undefined;
    if (current === undefined) problems.push(`missing: ${file}`);
    else if (current !== text) problems.push(`changed: ${file}`);
    present.delete(file);
  }
  for (const extra of present) problems.push(`stale: ${extra}`);
  if (problems.length > 0) {
    console.error(`test vectors differ from what the generator produces:\n  ${problems.join('\n  ')}\nRun \`pnpm vectors\` and review the diff.`);
    process.exit(1);
  }
  console.log(`${files.size} test vectors reproduce byte for byte`);
} else {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  for (const [file, text] of files) await writeFile(join(outDir, file), text);
  console.log(`wrote ${files.size} test vectors to ${outDir}`);
}
