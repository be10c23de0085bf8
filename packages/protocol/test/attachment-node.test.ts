import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProtocolError } from '../src/errors.js';
import {
  decryptAttachment,
  decryptToFile,
  encryptAttachment,
  encryptFile,
  terminateHashWorker,
  workerHashing,
} from '../src/node/index.js';
import { ready } from '../src/sodium.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
let dir: string;

function bytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const sha = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

beforeAll(async () => {
  await ready();
  dir = await mkdtemp(join(tmpdir(), `rogatory-attachment-${randomUUID()}-`));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('node worker hashing', () => {
  it('transfers buffers it owns and returns them, and never detaches the caller’s', async () => {
    const session = workerHashing.open();
    const owned = bytes(1000, 1);
    const ownedCopy = owned.slice();
    const lent = bytes(500, 2);
    const r1 = await session.chunk({
      ciphertext: owned,
      plaintext: lent,
      ciphertextOwned: true,
      plaintextOwned: false,
    });
    expect(owned.byteLength).toBe(0); // moved to the worker and back, not copied
    expect(r1.ciphertext).toEqual(ownedCopy);
    expect(lent.byteLength).toBe(500);
    expect(Buffer.from(r1.digest).toString('hex')).toBe(sha(ownedCopy));

    // A small Buffer lives in Node's shared pool: claiming it is owned must not detach the pool.
    const pooled = Buffer.from('pooled chunk bytes');
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.length);
    const r2 = await session.chunk({
      ciphertext: pooled,
      plaintext: pooled,
      ciphertextOwned: true,
      plaintextOwned: false,
    });
    expect(pooled.toString()).toBe('pooled chunk bytes');
    expect(Buffer.from(r2.ciphertext).toString()).toBe('pooled chunk bytes');
    const digest = await session.finish();
    expect(Buffer.from(digest).toString('hex')).toBe(sha(Buffer.concat([lent, pooled])));
    session.close();
  });

  it('fails outstanding work when the worker dies and starts a new one afterwards', async () => {
    const plain = bytes(3 * 1024 * 1024, 3);
    const enc = encryptAttachment([plain], {
      name: 'x.bin',
      mediaType: 'application/octet-stream',
      chunkSize: 64 * 1024,
    });
    const chunks = enc.chunks[Symbol.asyncIterator]();
    await chunks.next();
    await terminateHashWorker();
    let failure: unknown;
    try {
      for (;;) {
        const step = await chunks.next();
        if (step.done === true) break;
      }
    } catch (err) {
      failure = err;
    }
    expect(failure).toBeInstanceOf(Error);
    expect(isProtocolError(failure)).toBe(false);

    const again = encryptAttachment([plain], {
      name: 'x.bin',
      mediaType: 'application/octet-stream',
    });
    const stored: Uint8Array[] = [];
    for await (const c of again.chunks) stored.push(c.bytes);
    let size = 0;
    for await (const p of decryptAttachment(again.manifest(), stored)) size += p.length;
    expect(size).toBe(plain.length);
  });

  it('never keeps the process alive, yet keeps it alive while hashing', () => {
    const script = join(dir, 'exit-check.mjs');
    const entry = pathToFileURL(join(repoRoot, 'packages/protocol/src/node/index.ts')).href;
    const sodiumEntry = pathToFileURL(join(repoRoot, 'packages/protocol/src/sodium.ts')).href;
    return writeFile(
      script,
      `import { encryptAttachment, decryptAttachment } from ${JSON.stringify(entry)};
import { ready } from ${JSON.stringify(sodiumEntry)};
await ready();
const enc = encryptAttachment([new Uint8Array(3 * 1024 * 1024 + 1)], { name: 'z.bin', mediaType: 'application/octet-stream' });
const chunks = [];
for await (const c of enc.chunks) chunks.push(c.bytes);
let n = 0;
for await (const p of decryptAttachment(enc.manifest(), chunks)) n += p.length;
console.log('decrypted', n);
`,
    ).then(() => {
      // Top-level await: if the worker were unref'd while a job is pending the process would exit 13 early;
      // if it stayed ref'd when idle, the process would never exit (and the timeout kills it).
      const child = spawnSync(process.execPath, ['--import', 'tsx', script], {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(child.stderr).toBe('');
      expect(child.status).toBe(0);
      expect(child.stdout.trim()).toBe(`decrypted ${3 * 1024 * 1024 + 1}`);
    });
  });
});

describe('files', () => {
  it('encrypts a file from disk and decrypts it to disk', async () => {
    const plain = bytes(2.5 * 1024 * 1024, 5);
    const source = join(dir, 'Акт о передаче.pdf');
    await writeFile(source, plain);
    const enc = encryptFile(source, { mediaType: 'application/pdf', chunkSize: 256 * 1024 });
    const stored = new Map<string, Uint8Array>();
    for await (const c of enc.chunks) stored.set(c.id, c.bytes);
    const manifest = enc.manifest();
    expect(manifest.name).toBe('Акт о передаче.pdf');
    expect(manifest.size).toBe(plain.length);
    expect(manifest.sha256).toBe(sha(plain));

    const target = join(dir, 'out.pdf');
    const written = await decryptToFile(
      manifest,
      manifest.chunks.map((id) => stored.get(id)!),
      target,
    );
    expect(written).toBe(plain.length);
    expect(sha(await readFile(target))).toBe(sha(plain));

    await expect(
      decryptToFile(
        manifest,
        manifest.chunks.map((id) => stored.get(id)!),
        target,
      ),
    ).rejects.toMatchObject({ code: 'EEXIST' });
    const replaced = await decryptToFile(
      manifest,
      manifest.chunks.map((id) => stored.get(id)!),
      target,
      { overwrite: true },
    );
    expect(replaced).toBe(plain.length);
  });

  it('leaves nothing on disk when decryption fails', async () => {
    const plain = bytes(300 * 1024, 6);
    const enc = encryptAttachment([plain], {
      name: 'doc.txt',
      mediaType: 'text/plain',
      chunkSize: 64 * 1024,
    });
    const chunks: Uint8Array[] = [];
    for await (const c of enc.chunks) chunks.push(c.bytes);
    const manifest = enc.manifest();
    const before = (await readdir(dir)).sort();
    const target = join(dir, 'tampered.txt');
    const reordered = [chunks[0]!, chunks[2]!, chunks[1]!, ...chunks.slice(3)];
    await expect(decryptToFile(manifest, reordered, target)).rejects.toMatchObject({
      code: 'CHUNK_REORDERED',
    });
    await expect(
      decryptToFile({ ...manifest, sha256: sha(new Uint8Array(1)) }, chunks, target),
    ).rejects.toMatchObject({
      code: 'ATTACHMENT_MISMATCH',
    });
    expect((await readdir(dir)).sort()).toEqual(before);
  });

  it('does not open the file before the chunks are iterated', async () => {
    const enc = encryptFile(join(dir, 'missing.bin'), { mediaType: 'application/octet-stream' });
    await expect(
      (async () => {
        for await (const _ of enc.chunks) {
          // drain
        }
      })(),
    ).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
