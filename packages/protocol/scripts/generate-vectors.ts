/**
 * Generates the language-neutral test vectors in packages/protocol/test-vectors/
 * from fixed seeds, and the JSON Schemas of docs/schemas/ from the TypeBox
 * definitions. `--check` regenerates both in memory and fails if any byte of
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
import type { Vector } from './vectors-common.js';

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
  const cryptoObject = globalThis.crypto as {
    getRandomValues: <T extends ArrayBufferView>(array: T) => T;
  };
  cryptoObject.getRandomValues = <T extends ArrayBufferView>(array: T): T => {
    next(array.byteLength, new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
    return array;
  };
}

installDeterministicRandom('rogatory-test-vectors/v1');

/**
 * The vector groups, in this order: each module exports a function returning
 * its vectors (type `Vector` of vectors-build.ts). They draw from the one
 * deterministic generator in turn, so a new group goes at the end (earlier
 * groups then keep their bytes).
 */
const groups: (() => Promise<Vector[]> | Vector[])[] = [
  (await import('./vectors-build.js')).buildVectors,
  (await import('./vectors-transparency.js')).transparencyVectors,
];
const { buildSchemas } = await import('./schemas.js');

const here = dirname(fileURLToPath(import.meta.url));
const outputs: { dir: string; what: string; files: Map<string, string> }[] = [];
const vectors: Vector[] = [];
for (const group of groups) vectors.push(...(await group()));
const names = new Set<string>();
for (const v of vectors) {
  if (names.has(v.name)) throw new Error(`two vectors named ${v.name}`);
  names.add(v.name);
}
outputs.push({
  dir: join(here, '..', 'test-vectors'),
  what: 'test vectors',
  files: new Map(vectors.map((v) => [`${v.name}.json`, `${JSON.stringify(v, null, 2)}\n`])),
});
outputs.push({
  dir: join(here, '..', '..', '..', 'docs', 'schemas'),
  what: 'JSON Schemas',
  files: buildSchemas(),
});

const check = process.argv.includes('--check');
const problems: string[] = [];
for (const { dir, what, files } of outputs) {
  if (check) {
    const present = new Set(
      (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.json')),
    );
    for (const [file, text] of files) {
      const current = present.has(file) ? await readFile(join(dir, file), 'utf8') : undefined;
      if (current === undefined) problems.push(`missing: ${join(dir, file)}`);
      else if (current !== text) problems.push(`changed: ${join(dir, file)}`);
      present.delete(file);
    }
    for (const extra of present) problems.push(`stale: ${join(dir, extra)}`);
    if (problems.length === 0) console.log(`${files.size} ${what} reproduce byte for byte`);
  } else {
    await mkdir(dir, { recursive: true });
    for (const stale of (await readdir(dir)).filter((f) => f.endsWith('.json') && !files.has(f)))
      await rm(join(dir, stale));
    for (const [file, text] of files) await writeFile(join(dir, file), text);
    console.log(`wrote ${files.size} ${what} to ${dir}`);
  }
}
if (problems.length > 0) {
  console.error(
    `generated files differ from what the generator produces:\n  ${problems.join('\n  ')}\nRun \`pnpm vectors\` and review the diff.`,
  );
  process.exit(1);
}
