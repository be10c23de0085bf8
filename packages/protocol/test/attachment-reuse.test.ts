import { randomFillSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import * as iso from '../src/attachment.js';
import { concatBytes } from '../src/bytes.js';
import * as node from '../src/node/index.js';
import { SecretstreamCipher } from '../src/secretstream.js';
import { ready, sodium } from '../src/sodium.js';

const OPTIONS = {
  name: 'reuse.bin',
  mediaType: 'application/octet-stream',
  chunkSize: 64,
} as const;

beforeAll(ready);

const paths = [
  { label: 'isomorphic', api: iso as Pick<typeof iso, 'encryptAttachment' | 'decryptAttachment'> },
  {
    label: 'node (worker hashing)',
    api: node as Pick<typeof iso, 'encryptAttachment' | 'decryptAttachment'>,
  },
];

describe.each(paths)('reuseBuffers, $label', ({ api }) => {
  const plaintext = randomFillSync(new Uint8Array(64 * 40 + 23));

  it('round-trips when the consumer copies each piece before asking for the next', async () => {
    const enc = api.encryptAttachment([plaintext], { ...OPTIONS, reuseBuffers: true });
    const copies: Uint8Array[] = [];
    const seen = new Set<ArrayBufferLike>();
    for await (const c of enc.chunks) {
      copies.push(c.bytes.slice());
      seen.add(c.bytes.buffer);
    }
    expect(copies).toHaveLength(41);
    const pieces: Uint8Array[] = [];
    const seenPlain = new Set<ArrayBufferLike>();
    for await (const p of api.decryptAttachment(enc.manifest(), copies, { reuseBuffers: true })) {
      pieces.push(p.slice());
      seenPlain.add(p.buffer);
    }
    expect(concatBytes(...pieces)).toEqual(plaintext);
    if (api === iso) {
      // Inline hashing hands back the very buffers: a handful circulate, not one per chunk.
      expect(seen.size).toBeLessThanOrEqual(8);
      expect(seenPlain.size).toBeLessThanOrEqual(8);
    }
  });

  it('overwrites a chunk kept past the next request (the documented contract)', async () => {
    const enc = api.encryptAttachment([plaintext], { ...OPTIONS, reuseBuffers: true });
    const kept: Uint8Array[] = [];
    const copies: Uint8Array[] = [];
    for await (const c of enc.chunks) {
      kept.push(c.bytes);
      copies.push(c.bytes.slice());
    }
    // With the worker, buffers come back as new objects over the same memory;
    // either way some kept chunk no longer holds its own bytes.
    const overwritten = kept.filter(
      (k, i) => k.length !== copies[i]!.length || !k.every((b, j) => b === copies[i]![j]),
    ).length;
    expect(overwritten).toBeGreaterThan(0);
  });

  it('without reuseBuffers every chunk keeps its own bytes', async () => {
    const enc = api.encryptAttachment([plaintext], OPTIONS);
    const kept: Uint8Array[] = [];
    for await (const c of enc.chunks) kept.push(c.bytes);
    const pieces: Uint8Array[] = [];
    for await (const p of api.decryptAttachment(enc.manifest(), kept)) pieces.push(p);
    expect(concatBytes(...pieces)).toEqual(plaintext);
  });

  it('still detects a substituted chunk with reused buffers', async () => {
    const enc = api.encryptAttachment([plaintext], { ...OPTIONS, reuseBuffers: true });
    const copies: Uint8Array[] = [];
    for await (const c of enc.chunks) copies.push(c.bytes.slice());
    copies[5] = copies[5]!.slice();
    copies[5][3]! ^= 1;
    const run = async (): Promise<void> => {
      for await (const _ of api.decryptAttachment(enc.manifest(), copies, { reuseBuffers: true })) {
        // drain
      }
    };
    await expect(run()).rejects.toMatchObject({ code: 'CHUNK_HASH_MISMATCH' });
  });
});

describe('SecretstreamCipher (libsodium in place)', () => {
  it('produces the bytes of the wrapper functions, and pulls them back', async () => {
    const s = sodium();
    const key = s.crypto_secretstream_xchacha20poly1305_keygen();
    const { cipher, header } = await SecretstreamCipher.push(key);
    const reference = s.crypto_secretstream_xchacha20poly1305_init_pull(header, key);
    const messages = [
      new Uint8Array(0),
      randomFillSync(new Uint8Array(1000)),
      randomFillSync(new Uint8Array(5)),
    ];
    const pull = await SecretstreamCipher.pull(key, header);
    messages.forEach((m, i) => {
      const tag = i === messages.length - 1 ? s.crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0;
      const c = cipher.push(m, tag);
      const r = s.crypto_secretstream_xchacha20poly1305_pull(reference, c, null);
      expect(r).not.toBe(false);
      if (r === false) return;
      expect(r.message).toEqual(m);
      expect(r.tag).toBe(tag);
      const out = new Uint8Array(m.length);
      const mine = pull.pull(c, out);
      expect(mine).not.toBe(false);
      if (mine === false) return;
      expect(mine.message).toBe(out);
      expect(mine.message).toEqual(m);
      expect(mine.tag).toBe(tag);
    });
    cipher.dispose();
    pull.dispose();
    expect(() => cipher.push(new Uint8Array(1), 0)).toThrow(/disposed/);
  });

  it('refuses a forged chunk and output arrays of the wrong size', async () => {
    const key = sodium().crypto_secretstream_xchacha20poly1305_keygen();
    const { cipher, header } = await SecretstreamCipher.push(key);
    const c = cipher.push(new Uint8Array([1, 2, 3]), 0);
    expect(() => cipher.push(new Uint8Array(3), 0, new Uint8Array(3))).toThrow(RangeError);
    const pull = await SecretstreamCipher.pull(key, header);
    const forged = c.slice();
    forged[forged.length - 1]! ^= 1;
    expect(pull.pull(forged)).toBe(false);
    expect(pull.pull(new Uint8Array(16))).toBe(false);
    cipher.dispose();
    pull.dispose();
  });
});
