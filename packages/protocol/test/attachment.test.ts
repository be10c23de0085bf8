import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import * as iso from '../src/attachment.js';
import {
  startEncryption,
  type ByteSource,
  type FixedKeyMaterial,
} from '../src/attachment-stream.js';
import {
  concatBytes,
  fromBase64url,
  fromHex,
  sha256,
  toBase64url,
  toHex,
  utf8,
} from '../src/bytes.js';
import { canonicalBytes, decodeCanonical } from '../src/encoding.js';
import { ENVELOPE_LIMITS } from '../src/envelope.js';
import { isProtocolError, type ErrorCode } from '../src/errors.js';
import * as node from '../src/node/index.js';
import { ready, sodium } from '../src/sodium.js';

type Manifest = iso.AttachmentManifest;

interface Impl {
  readonly name: string;
  readonly hashing: iso.AttachmentHashing;
  readonly encrypt: typeof iso.encryptAttachment;
  readonly decrypt: typeof iso.decryptAttachment;
}

const IMPLS: readonly Impl[] = [
  {
    name: 'isomorphic',
    hashing: iso.sodiumHashing,
    encrypt: iso.encryptAttachment,
    decrypt: iso.decryptAttachment,
  },
  {
    name: 'node worker',
    hashing: node.workerHashing,
    encrypt: node.encryptAttachment,
    decrypt: node.decryptAttachment,
  },
];

/** Small chunks keep most tests fast; one test uses the 1 MiB default. */
const CS = 64;
const OPTS = {
  name: 'evidence.bin',
  mediaType: 'application/octet-stream',
  chunkSize: CS,
} as const;
const FIXED: FixedKeyMaterial = {
  key: Uint8Array.from({ length: 32 }, (_, i) => i),
  header: Uint8Array.from({ length: 24 }, (_, i) => 0xa0 + i),
};

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
function pattern(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function split(data: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const p of points) {
    pieces.push(data.subarray(start, p));
    start = p;
  }
  pieces.push(data.subarray(start));
  return pieces;
}

async function* asAsync<T>(items: Iterable<T>): AsyncGenerator<T> {
  for (const item of items) {
    await Promise.resolve();
    yield item;
  }
}

interface Encrypted {
  readonly manifest: Manifest;
  readonly chunks: Uint8Array[];
  readonly ids: string[];
  readonly indexes: number[];
}

async function drain(enc: iso.AttachmentEncryption): Promise<Encrypted> {
  const chunks: Uint8Array[] = [];
  const ids: string[] = [];
  const indexes: number[] = [];
  for await (const c of enc.chunks) {
    chunks.push(c.bytes);
    ids.push(c.id);
    indexes.push(c.index);
  }
  return { manifest: enc.manifest(), chunks, ids, indexes };
}

interface Outcome {
  readonly code: ErrorCode | undefined;
  readonly plaintext: Uint8Array;
  readonly pieces: number;
}

/** Decrypt and report what was released before the error, and the error code. */
async function outcome(impl: Impl, manifest: unknown, chunks: ByteSource): Promise<Outcome> {
  const received: Uint8Array[] = [];
  try {
    for await (const piece of impl.decrypt(manifest, chunks)) received.push(piece);
    return { code: undefined, plaintext: concatBytes(...received), pieces: received.length };
  } catch (err) {
    if (isProtocolError(err))
      return { code: err.code, plaintext: concatBytes(...received), pieces: received.length };
    throw err;
  }
}

/** Reference decoder with bare libsodium: checks the format independently of the engine. */
function referenceDecrypt(manifest: Manifest, chunks: readonly Uint8Array[]): Uint8Array {
  const s = sodium();
  const state = s.crypto_secretstream_xchacha20poly1305_init_pull(
    fromBase64url(manifest.header),
    fromBase64url(manifest.key),
  );
  const out: Uint8Array[] = [];
  chunks.forEach((c, i) => {
    expect(toHex(sha256(c))).toBe(manifest.chunks[i]);
    const r = s.crypto_secretstream_xchacha20poly1305_pull(state, c, null);
    if (r === false) throw new Error(`reference: chunk ${i} does not decrypt`);
    const last = i === chunks.length - 1;
    expect(r.tag).toBe(
      last
        ? s.crypto_secretstream_xchacha20poly1305_TAG_FINAL
        : s.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
    );
    expect(c.length).toBe(r.message.length + 17);
    if (!last) expect(r.message.length).toBe(manifest.chunkSize);
    out.push(r.message);
  });
  return concatBytes(...out);
}

/** Fast equality for large arrays (deep equality walks them element by element). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.length),
      Buffer.from(b.buffer, b.byteOffset, b.length),
    ) === 0
  );
}

function withBitFlipped(chunks: readonly Uint8Array[], index: number, bit: number): Uint8Array[] {
  return chunks.map((c, i) => {
    if (i !== index) return c;
    const copy = c.slice();
    copy[bit >> 3]! ^= 1 << (bit & 7);
    return copy;
  });
}

beforeAll(async () => {
  await ready();
});

describe.each(IMPLS)('attachments ($name)', (impl) => {
  const data = pattern(3.5 * CS, 7);
  let base: Encrypted;
  let other: Encrypted;

  beforeAll(async () => {
    base = await drain(impl.encrypt([data], OPTS));
    other = await drain(impl.encrypt([pattern(3.5 * CS, 8)], OPTS));
  });

  it.each([0, 1, CS - 1, CS, CS + 1, 3.5 * CS])(
    'round-trips %i bytes in the normative format',
    async (size) => {
      const plain = pattern(size, size + 1);
      const enc = await drain(impl.encrypt(asAsync([plain]), OPTS));
      const m = enc.manifest;
      expect(m.size).toBe(size);
      expect(m.chunks).toHaveLength(Math.max(1, Math.ceil(size / CS)));
      expect(enc.ids).toEqual(m.chunks);
      expect(enc.indexes).toEqual(m.chunks.map((_, i) => i));
      expect(m.sha256).toBe(toHex(sha256(plain)));
      expect(fromBase64url(m.key)).toHaveLength(32);
      expect(fromBase64url(m.header)).toHaveLength(24);
      expect(iso.parseAttachmentManifest(decodeCanonical(canonicalBytes(m)))).toEqual(m);
      expect(referenceDecrypt(m, enc.chunks)).toEqual(plain);
      const back = await outcome(impl, m, enc.chunks);
      expect(back.code).toBeUndefined();
      expect(back.plaintext).toEqual(plain);
    },
  );

  it('uses the 1 MiB default chunk size and a fresh key for every attachment', async () => {
    const plain = pattern(2 * 1024 * 1024 + 5, 3);
    const a = await drain(
      impl.encrypt(split(plain, [65536, 70000, 1048576]), {
        name: 'a.pdf',
        mediaType: 'application/pdf',
      }),
    );
    const b = await drain(impl.encrypt([plain], { name: 'a.pdf', mediaType: 'application/pdf' }));
    expect(a.manifest.chunkSize).toBe(1024 * 1024);
    expect(a.manifest.chunks).toHaveLength(3);
    expect(a.chunks.map((c) => c.length)).toEqual([1048576 + 17, 1048576 + 17, 5 + 17]);
    expect(a.manifest.key).not.toBe(b.manifest.key);
    expect(a.manifest.header).not.toBe(b.manifest.header);
    expect(a.manifest.chunks[0]).not.toBe(b.manifest.chunks[0]);
    const back = await outcome(impl, a.manifest, asAsync(a.chunks));
    expect(back.code).toBeUndefined();
    expect(back.pieces).toBe(3);
    expect(sameBytes(back.plaintext, plain)).toBe(true);
    expect(sameBytes(referenceDecrypt(b.manifest, b.chunks), plain)).toBe(true);
  });

  it('matches the known-answer vector of docs/protocol.md, section 11', async () => {
    const plain = utf8('Rogatory attachment test vector, 42 bytes.');
    const enc = await drain(
      startEncryption(
        [plain],
        { name: 'vector.txt', mediaType: 'text/plain', chunkSize: 16, hashing: impl.hashing },
        FIXED,
      ),
    );
    expect(enc.chunks.map(toHex)).toEqual([
      '354d23241ca6a778606eff442a821c5ecdb5e24e4785e3ca66ecd03720ca6e1e46',
      'b26af47dd5302ab2b2c66d5007859d391db222a944885ffdc692b0caed4626f820',
      'ec46e1dd4fbdda4de664b863cb7b1bca095bc2702000ce818b1dd0',
    ]);
    expect(enc.manifest).toEqual({
      name: 'vector.txt',
      mediaType: 'text/plain',
      size: 42,
      sha256: 'bd37f5ef2832df7f2a43961bd937bea4fedb05abb9de316641befce818a9f969',
      key: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8',
      header: 'oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3',
      chunkSize: 16,
      chunks: [
        '8b913dec79b7308abbb5aadcdefea3f9b7c2e5ec2dcd72bec5670d0fda4ce15a',
        'e7a4e987dfef170e16e7e78094271b9faeb091c32ee59ae9c4f34a2c94273f27',
        '202eeeeed6eaecf2a65aaf61c720316d4a307baba2c2a5ca1d4e1622770a24b2',
      ],
    });
    expect(referenceDecrypt(enc.manifest, enc.chunks)).toEqual(plain);
  });

  it('produces the same ciphertext however the source is split (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 5 * CS }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.boolean(),
        async (plain, cuts, useAsync) => {
          const pieces = split(plain, cuts);
          const whole = await drain(
            startEncryption([plain], { ...OPTS, hashing: impl.hashing }, FIXED),
          );
          const cut = await drain(
            startEncryption(
              useAsync ? asAsync(pieces) : pieces,
              { ...OPTS, hashing: impl.hashing },
              FIXED,
            ),
          );
          expect(cut.manifest).toEqual(whole.manifest);
          expect(cut.chunks).toEqual(whole.chunks);
          const back = await outcome(impl, cut.manifest, cut.chunks);
          expect(back.code).toBeUndefined();
          expect(back.plaintext).toEqual(plain);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('does not depend on the hashing implementation (cross-decrypts)', async () => {
    const peer = IMPLS.find((i) => i !== impl)!;
    const back = await outcome(peer, base.manifest, base.chunks);
    expect(back.code).toBeUndefined();
    expect(back.plaintext).toEqual(data);
    const here = await drain(startEncryption([data], { ...OPTS, hashing: impl.hashing }, FIXED));
    const there = await drain(startEncryption([data], { ...OPTS, hashing: peer.hashing }, FIXED));
    expect(here).toEqual(there);
  });

  it('leaves the caller’s ciphertext buffers intact', async () => {
    const copies = base.chunks.map((c) => c.slice());
    await outcome(impl, base.manifest, base.chunks);
    expect(base.chunks).toEqual(copies);
    expect(base.chunks.every((c) => c.buffer.byteLength > 0)).toBe(true);
  });

  describe('rejects tampered chunk streams', () => {
    const cases: [string, (c: Uint8Array[], o: Uint8Array[]) => Uint8Array[], ErrorCode, number][] =
      [
        ['no chunks at all', () => [], 'CHUNK_TRUNCATED', 0],
        ['the last chunk missing', (c) => c.slice(0, 3), 'CHUNK_TRUNCATED', 3],
        ['a middle chunk missing', (c) => [c[0]!, c[2]!, c[3]!], 'CHUNK_REORDERED', 1],
        ['two chunks swapped', (c) => [c[0]!, c[2]!, c[1]!, c[3]!], 'CHUNK_REORDERED', 1],
        ['the last chunk first', (c) => [c[3]!, c[0]!, c[1]!, c[2]!], 'CHUNK_REORDERED', 0],
        ['a chunk repeated', (c) => [c[0]!, c[1]!, c[1]!, c[2]!, c[3]!], 'CHUNK_DUPLICATED', 2],
        [
          'an earlier chunk replayed last',
          (c) => [c[0]!, c[1]!, c[2]!, c[0]!],
          'CHUNK_DUPLICATED',
          3,
        ],
        [
          'a chunk of another attachment substituted',
          (c, o) => [c[0]!, o[1]!, c[2]!, c[3]!],
          'CHUNK_HASH_MISMATCH',
          1,
        ],
        ['a foreign last chunk', (c, o) => [c[0]!, c[1]!, c[2]!, o[3]!], 'CHUNK_HASH_MISMATCH', 3],
        ['an extra chunk appended', (c) => [...c, new Uint8Array(CS + 17)], 'CHUNK_EXTRA', 3],
        ['a valid chunk appended again', (c) => [...c, c[3]!], 'CHUNK_EXTRA', 3],
        [
          'a truncated chunk',
          (c) => [c[0]!, c[1]!.subarray(0, 40), c[2]!, c[3]!],
          'CHUNK_HASH_MISMATCH',
          1,
        ],
        [
          'a chunk shorter than the MAC',
          (c) => [c[0]!, c[1]!.subarray(0, 5), c[2]!, c[3]!],
          'CHUNK_HASH_MISMATCH',
          1,
        ],
        [
          'an oversized chunk',
          (c) => [c[0]!, concatBytes(c[1]!, c[2]!), c[3]!],
          'CHUNK_HASH_MISMATCH',
          1,
        ],
        [
          'two chunks concatenated at the end',
          (c) => [c[0]!, c[1]!, concatBytes(c[2]!.subarray(0, 10), c[3]!)],
          'CHUNK_HASH_MISMATCH',
          2,
        ],
      ];

    it.each(cases)('%s', async (_label, tamper, code, released) => {
      const result = await outcome(impl, base.manifest, asAsync(tamper(base.chunks, other.chunks)));
      expect(result.code).toBe(code);
      // Exactly the verified chunks before the bad one; never the last chunk before every check passed.
      expect(result.plaintext).toEqual(data.subarray(0, released * CS));
    });

    it('detects a flipped bit anywhere (property)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.nat({ max: 3 }), fc.nat(), async (index, bitSeed) => {
          const bit = bitSeed % (base.chunks[index]!.length * 8);
          const result = await outcome(
            impl,
            base.manifest,
            withBitFlipped(base.chunks, index, bit),
          );
          expect(result.code).toBe('CHUNK_HASH_MISMATCH');
          expect(result.plaintext).toEqual(data.subarray(0, index * CS));
        }),
        { numRuns: 100 },
      );
    });

    it('rejects non-byte chunks as a programming error', async () => {
      const bad = [base.chunks[0], 'x'] as unknown as Uint8Array[];
      await expect(outcome(impl, base.manifest, bad)).rejects.toThrow(TypeError);
    });
  });

  describe('rejects manifests that do not match the chunks', () => {
    it('wrong key: DECRYPT_FAILED before any plaintext', async () => {
      const key = toBase64url(sodium().crypto_secretstream_xchacha20poly1305_keygen());
      const result = await outcome(impl, { ...base.manifest, key }, base.chunks);
      expect(result).toEqual({ code: 'DECRYPT_FAILED', plaintext: new Uint8Array(0), pieces: 0 });
    });

    it('wrong header: DECRYPT_FAILED', async () => {
      const result = await outcome(
        impl,
        { ...base.manifest, header: other.manifest.header },
        base.chunks,
      );
      expect(result.code).toBe('DECRYPT_FAILED');
      expect(result.pieces).toBe(0);
    });

    it('another attachment’s key: DECRYPT_FAILED', async () => {
      const result = await outcome(
        impl,
        { ...base.manifest, key: other.manifest.key, header: other.manifest.header },
        base.chunks,
      );
      expect(result.code).toBe('DECRYPT_FAILED');
    });

    it('wrong size with the same chunk count: ATTACHMENT_MISMATCH, last chunk withheld', async () => {
      for (const size of [data.length - 1, data.length + 1]) {
        const result = await outcome(impl, { ...base.manifest, size }, base.chunks);
        expect(result.code).toBe('ATTACHMENT_MISMATCH');
        expect(result.plaintext).toEqual(data.subarray(0, 3 * CS));
      }
    });

    it('wrong plaintext sha256: ATTACHMENT_MISMATCH, last chunk withheld', async () => {
      const result = await outcome(
        impl,
        { ...base.manifest, sha256: toHex(sha256(utf8('other'))) },
        base.chunks,
      );
      expect(result.code).toBe('ATTACHMENT_MISMATCH');
      expect(result.plaintext).toEqual(data.subarray(0, 3 * CS));
    });

    it('a listed chunk id that is not the chunk’s hash: CHUNK_HASH_MISMATCH', async () => {
      const chunks = [...base.manifest.chunks];
      chunks[2] = other.manifest.chunks[2]!;
      const result = await outcome(impl, { ...base.manifest, chunks }, base.chunks);
      expect(result.code).toBe('CHUNK_HASH_MISMATCH');
      expect(result.pieces).toBe(2);
    });

    it('a manifest that stops before the stream’s final tag: CHUNK_TRUNCATED', async () => {
      // A sender that signs a manifest listing only the first two of three chunks.
      const full = await drain(
        startEncryption([pattern(3 * CS, 2)], { ...OPTS, hashing: impl.hashing }, FIXED),
      );
      const short: Manifest = {
        ...full.manifest,
        size: 2 * CS,
        sha256: toHex(sha256(pattern(3 * CS, 2).subarray(0, 2 * CS))),
        chunks: full.manifest.chunks.slice(0, 2),
      };
      const result = await outcome(impl, short, full.chunks.slice(0, 2));
      expect(result.code).toBe('CHUNK_TRUNCATED');
      expect(result.pieces).toBe(1);
    });

    it('a stream whose final tag comes before the last listed chunk: DECRYPT_FAILED', async () => {
      const two = await drain(
        startEncryption([pattern(2 * CS, 4)], { ...OPTS, hashing: impl.hashing }, FIXED),
      );
      const filler = new Uint8Array(1 + 17);
      const long: Manifest = {
        ...two.manifest,
        size: 2 * CS + 1,
        chunks: [...two.manifest.chunks, toHex(sha256(filler))],
      };
      const result = await outcome(impl, long, [...two.chunks, filler]);
      expect(result.code).toBe('DECRYPT_FAILED');
      expect(result.plaintext).toEqual(pattern(2 * CS, 4).subarray(0, CS));
    });

    it('an invalid manifest: SCHEMA_INVALID, synchronously', () => {
      expect(() =>
        impl.decrypt({ ...base.manifest, chunks: base.manifest.chunks.slice(1) }, base.chunks),
      ).toThrow(expect.objectContaining({ code: 'SCHEMA_INVALID' }));
    });
  });

  describe('misuse', () => {
    it('manifest() is not available before the chunks are drained', async () => {
      const enc = impl.encrypt([data], OPTS);
      expect(() => enc.manifest()).toThrow(/only after all chunks/);
      const it0 = enc.chunks[Symbol.asyncIterator]();
      await it0.next();
      expect(() => enc.manifest()).toThrow(/only after all chunks/);
      await it0.return?.();
    });

    it('chunks and plaintext can be iterated only once', async () => {
      const enc = impl.encrypt([data], OPTS);
      await drain(enc);
      expect(() => enc.chunks[Symbol.asyncIterator]()).toThrow(TypeError);
      const dec = impl.decrypt(base.manifest, base.chunks);
      for await (const _ of dec) {
        // drain
      }
      expect(() => dec[Symbol.asyncIterator]()).toThrow(TypeError);
    });

    it('validates options synchronously', () => {
      const bad: [Record<string, unknown>, ErrorCode][] = [
        [{ name: '..' }, 'SCHEMA_INVALID'],
        [{ name: 'a/b' }, 'SCHEMA_INVALID'],
        [{ name: 'a\\b' }, 'SCHEMA_INVALID'],
        [{ name: 'a\u0000b' }, 'SCHEMA_INVALID'],
        [{ name: '' }, 'SCHEMA_INVALID'],
        [{ mediaType: 'application/PDF' }, 'SCHEMA_INVALID'],
        [{ mediaType: 'text/plain; charset=utf-8' }, 'SCHEMA_INVALID'],
        [{ chunkSize: 15 }, 'SCHEMA_INVALID'],
        [{ chunkSize: 16 * 1024 * 1024 + 1 }, 'SCHEMA_INVALID'],
        [{ chunkSize: 100.5 }, 'SCHEMA_INVALID'],
      ];
      for (const [override, code] of bad) {
        expect(() => impl.encrypt([data], { ...OPTS, ...override })).toThrow(
          expect.objectContaining({ code }),
        );
      }
      expect(() => impl.encrypt('text' as unknown as Uint8Array[], OPTS)).toThrow(TypeError);
      expect(() => impl.encrypt([data], { ...OPTS, maxChunksInFlight: 0 })).toThrow(RangeError);
    });

    it('rejects a source that yields something other than bytes', async () => {
      const enc = impl.encrypt(['abc'] as unknown as Uint8Array[], OPTS);
      await expect(drain(enc)).rejects.toThrow(TypeError);
    });

    it('can be abandoned half-way and leaves the implementation usable', async () => {
      const enc = impl.encrypt(asAsync(split(pattern(10 * CS), [CS, 3 * CS])), OPTS);
      for await (const c of enc.chunks) if (c.index === 2) break;
      expect(() => enc.manifest()).toThrow();
      for await (const _ of impl.decrypt(base.manifest, base.chunks)) break;
      const back = await outcome(impl, base.manifest, base.chunks);
      expect(back.plaintext).toEqual(data);
    });
  });

  it('keeps concurrent attachments apart', async () => {
    const plains = [pattern(5 * CS + 3, 11), pattern(4 * CS, 12), pattern(1, 13)];
    const encs = plains.map((p) => impl.encrypt(asAsync(split(p, [7, 100, 200])), OPTS));
    const iters = encs.map((e) => e.chunks[Symbol.asyncIterator]());
    const got: Uint8Array[][] = plains.map(() => []);
    let live = iters.length;
    const done = iters.map(() => false);
    while (live > 0) {
      // Interleave: one chunk of each in turn, all in flight at once.
      const steps = await Promise.all(
        iters.map((it, i) => (done[i] ? Promise.resolve(undefined) : it.next())),
      );
      steps.forEach((step, i) => {
        if (step === undefined) return;
        if (step.done === true) {
          done[i] = true;
          live--;
        } else got[i]!.push(step.value.bytes);
      });
    }
    const results = await Promise.all(
      encs.map((e, i) => outcome(impl, e.manifest(), asAsync(got[i]!))),
    );
    results.forEach((r, i) => {
      expect(r.code).toBeUndefined();
      expect(r.plaintext).toEqual(plains[i]);
      expect(encs[i]!.manifest().sha256).toBe(toHex(sha256(plains[i]!)));
    });
  });

  it('streams 64 MiB through encryption and decryption with bounded read-ahead', async () => {
    const MiB = 1024 * 1024;
    const total = 64 * MiB;
    const piece = 64 * 1024;
    const poolBytes = pattern(4 * MiB + piece, 99);
    const stats = { pulled: 0, maxAhead: 0 };
    let delivered = 0;
    // Generated on the fly: 64 KiB views at shifting offsets of a 4 MiB pool, like an fs stream.
    function* generate(track: boolean): Generator<Uint8Array> {
      for (let off = 0, k = 0; off < total; off += piece, k++) {
        if (track) {
          stats.pulled += piece;
          stats.maxAhead = Math.max(stats.maxAhead, stats.pulled - delivered);
        }
        const start = (k * 40961) % (4 * MiB);
        yield poolBytes.subarray(start, start + piece);
      }
    }
    const expected = createHash('sha256');
    for (const p of generate(false)) expected.update(p);
    const expectedHex = expected.digest('hex');

    // Pass 1: encrypt with fixed key material, discarding ciphertext as it goes.
    const enc = startEncryption(
      generate(true),
      { name: 'big.bin', mediaType: 'application/octet-stream', hashing: impl.hashing },
      FIXED,
    );
    for await (const c of enc.chunks) delivered += c.bytes.length - 17;
    const manifest = enc.manifest();
    expect(manifest.sha256).toBe(expectedHex);
    expect(manifest.chunks).toHaveLength(64);
    // At most the in-flight window, the held-back chunk and the one being filled are read ahead.
    expect(stats.maxAhead).toBeLessThanOrEqual(7 * MiB);

    // Pass 2: regenerate the same ciphertext on the fly and decrypt it, counting chunks read ahead.
    const regenerated = startEncryption(
      generate(false),
      { name: 'big.bin', mediaType: 'application/octet-stream', hashing: impl.hashing },
      FIXED,
    );
    let chunksIn = 0;
    let chunksOut = 0;
    let maxChunksAhead = 0;
    async function* feed(): AsyncGenerator<Uint8Array> {
      for await (const c of regenerated.chunks) {
        chunksIn++;
        maxChunksAhead = Math.max(maxChunksAhead, chunksIn - chunksOut);
        yield c.bytes;
      }
    }
    const got = createHash('sha256');
    let size = 0;
    for await (const p of impl.decrypt(manifest, feed())) {
      chunksOut++;
      size += p.length;
      got.update(p);
    }
    expect(size).toBe(total);
    expect(got.digest('hex')).toBe(expectedHex);
    expect(maxChunksAhead).toBeLessThanOrEqual(7);
  });
});

describe('attachment manifest validation', () => {
  let valid: Manifest;

  beforeAll(async () => {
    valid = (await drain(iso.encryptAttachment([pattern(3 * CS + 1)], OPTS))).manifest;
  });

  function codeOf(value: unknown): ErrorCode | undefined {
    try {
      iso.parseAttachmentManifest(value);
      return undefined;
    } catch (err) {
      if (isProtocolError(err)) return err.code;
      throw err;
    }
  }

  it('accepts a valid manifest and names of up to 255 code points', () => {
    expect(codeOf(valid)).toBeUndefined();
    expect(codeOf({ ...valid, name: '\u{1F4C4}'.repeat(255) })).toBeUndefined();
    expect(codeOf({ ...valid, name: 'Акт о передаче.pdf' })).toBeUndefined();
  });

  it.each<[string, (m: Manifest) => unknown, ErrorCode]>([
    ['not an object', () => 'manifest', 'SCHEMA_INVALID'],
    ['an unknown field', (m) => ({ ...m, extra: 1 }), 'SCHEMA_INVALID'],
    ['a missing field', ({ sha256: _sha, ...rest }) => rest, 'SCHEMA_INVALID'],
    ['name "."', (m) => ({ ...m, name: '.' }), 'SCHEMA_INVALID'],
    ['name ".."', (m) => ({ ...m, name: '..' }), 'SCHEMA_INVALID'],
    ['name with a slash', (m) => ({ ...m, name: 'dir/file' }), 'SCHEMA_INVALID'],
    ['name with a backslash', (m) => ({ ...m, name: 'dir\\file' }), 'SCHEMA_INVALID'],
    ['name with NUL', (m) => ({ ...m, name: 'a\u0000' }), 'SCHEMA_INVALID'],
    ['name with a newline', (m) => ({ ...m, name: 'a\nb' }), 'SCHEMA_INVALID'],
    ['name of 256 code points', (m) => ({ ...m, name: 'x'.repeat(256) }), 'SCHEMA_INVALID'],
    ['media type without subtype', (m) => ({ ...m, mediaType: 'application' }), 'SCHEMA_INVALID'],
    ['media type in capitals', (m) => ({ ...m, mediaType: 'Application/pdf' }), 'SCHEMA_INVALID'],
    ['negative size', (m) => ({ ...m, size: -1 }), 'SCHEMA_INVALID'],
    ['fractional size', (m) => ({ ...m, size: 1.5 }), 'SCHEMA_INVALID'],
    ['size above 2^50', (m) => ({ ...m, size: 2 ** 50 + 1 }), 'LIMIT_EXCEEDED'],
    ['uppercase sha256', (m) => ({ ...m, sha256: m.sha256.toUpperCase() }), 'SCHEMA_INVALID'],
    ['short key', (m) => ({ ...m, key: m.key.slice(1) }), 'SCHEMA_INVALID'],
    [
      'non-canonical key (trailing bits)',
      (m) => ({ ...m, key: `${m.key.slice(0, 42)}B` }),
      'ENCODING_INVALID',
    ],
    ['padded header', (m) => ({ ...m, header: `${m.header.slice(0, 30)}==` }), 'SCHEMA_INVALID'],
    ['chunk size below 16', (m) => ({ ...m, chunkSize: 8 }), 'SCHEMA_INVALID'],
    ['chunk size above 16 MiB', (m) => ({ ...m, chunkSize: 2 ** 24 + 1 }), 'SCHEMA_INVALID'],
    ['one chunk too few', (m) => ({ ...m, chunks: m.chunks.slice(1) }), 'SCHEMA_INVALID'],
    [
      'one chunk too many',
      (m) => ({ ...m, chunks: [...m.chunks, '0'.repeat(64)] }),
      'SCHEMA_INVALID',
    ],
    ['no chunks for an empty file', (m) => ({ ...m, size: 0, chunks: [] }), 'SCHEMA_INVALID'],
    [
      'a chunk id listed twice',
      (m) => ({ ...m, chunks: [m.chunks[0], m.chunks[0], m.chunks[1], m.chunks[2]] }),
      'SCHEMA_INVALID',
    ],
    [
      'a chunk id in capitals',
      (m) => ({ ...m, chunks: [m.chunks[0]!.toUpperCase(), ...m.chunks.slice(1)] }),
      'SCHEMA_INVALID',
    ],
    [
      'too many chunks',
      (m) => ({
        ...m,
        chunks: new Array<string>(ENVELOPE_LIMITS.maxChunks + 1).fill(m.chunks[0]!),
      }),
      'LIMIT_EXCEEDED',
    ],
  ])('rejects %s', (_label, mutate, code) => {
    expect(codeOf(mutate(valid))).toBe(code);
  });

  it('counts chunks with exact integer arithmetic', () => {
    expect(iso.attachmentChunkCount(0, 16)).toBe(1);
    expect(iso.attachmentChunkCount(16, 16)).toBe(1);
    expect(iso.attachmentChunkCount(17, 16)).toBe(2);
    expect(iso.attachmentChunkCount(2 ** 50, 16)).toBe(2 ** 46);
    expect(iso.attachmentChunkCount(2 ** 50 - 1, 2 ** 24)).toBe(2 ** 26);
    expect(iso.attachmentChunkCount(2 ** 50 + 0, 2 ** 24 - 1)).toBe(
      Math.floor(2 ** 50 / (2 ** 24 - 1)) + 1,
    );
  });

  it('is what dossiers embed: the schema is the typebox object the dossier uses', () => {
    expect(iso.AttachmentManifestSchema.type).toBe('object');
    expect(ENVELOPE_LIMITS.maxChunkBytes).toBe(
      iso.ATTACHMENT_LIMITS.maxChunkSize + iso.ATTACHMENT_LIMITS.chunkOverhead,
    );
  });

  it('chunkId is the lowercase hex SHA-256 relays check objects with', () => {
    const bytes = pattern(100);
    expect(iso.chunkId(bytes)).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(fromHex(iso.chunkId(new Uint8Array(0)))).toEqual(sha256(new Uint8Array(0)));
  });
});
