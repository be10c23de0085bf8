import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import {
  MemoryTree,
  generateSigningKeyPair,
  logEntryLeafHash,
  ready,
  sha256,
  signCheckpoint,
  toHex,
  utf8,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
  type LogEntry,
} from '@rogatory/protocol';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  TLOG_ERROR_CODES,
  TransparencyLog,
  isTransparencyLogError,
  type TransparencyLogErrorCode,
} from '../src/index.js';

const dirs: string[] = [];
function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tlog-test-'));
  dirs.push(dir);
  return join(dir, 'log.sqlite');
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

beforeAll(async () => {
  await ready();
});

const entryAt = (i: number, network = 'wacap'): LogEntry => ({
  type: 'log-entry',
  network,
  kind: (['manifest', 'rotation', 'revocation', 'introduction'] as const)[i % 4]!,
  hash: toHex(sha256(utf8(`entry-${i}`))),
});

function codeOf(fn: () => unknown): TransparencyLogErrorCode | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (isTransparencyLogError(err)) return err.code;
    throw err;
  }
}

const hex = (h: Uint8Array) => toHex(h);

describe('TransparencyLog against an in-memory tree', () => {
  it('gives the same roots and proofs for random batches, sizes and indexes (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 12 }),
        (batches, probes) => {
          const path = tempPath();
          const log = TransparencyLog.open({ path, network: 'wacap' });
          const memory = new MemoryTree();
          try {
            for (const n of batches) {
              const entries = Array.from({ length: n }, (_, i) => entryAt(memory.size + i));
              const { first, size } = log.append(entries);
              expect(first).toBe(memory.size);
              for (const e of entries) memory.appendLeafHash(logEntryLeafHash(e));
              expect(size).toBe(memory.size);
              const total = memory.size;
              expect(hex(log.root())).toBe(hex(memory.root()));
              for (const [a, b] of probes) {
                const size2 = 1 + (b % total);
                const size1 = a % (size2 + 1);
                const index = a % size2;
                expect(hex(log.root(size2))).toBe(hex(memory.root(size2)));
                const incl = log.inclusionProof(index, size2);
                expect(incl.map(hex)).toEqual(memory.inclusionProof(index, size2).map(hex));
                verifyInclusion({
                  index,
                  size: size2,
                  leafHash: log.leafHash(index),
                  proof: incl,
                  root: log.root(size2),
                });
                const cons = log.consistencyProof(size1, size2);
                expect(cons.map(hex)).toEqual(memory.consistencyProof(size1, size2).map(hex));
                verifyConsistency({
                  size1,
                  size2,
                  root1: log.root(size1),
                  root2: log.root(size2),
                  proof: cons,
                });
              }
            }
          } finally {
            log.close();
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('keeps entries, and gives a checkpoint the root key signs and a verifier accepts', () => {
    const path = tempPath();
    const log = TransparencyLog.open({ path, network: 'wacap' });
    log.append([entryAt(0), entryAt(1), entryAt(2)]);
    log.close();
    const again = TransparencyLog.open({ path, network: 'wacap' });
    expect(again.size).toBe(3);
    expect(again.entry(1)).toEqual(entryAt(1));
    expect(again.entries(1, 10)).toEqual([entryAt(1), entryAt(2)]);
    const cp = again.checkpoint();
    expect(cp.text).toBe(
      `rogatory.invalid/key-log/wacap\n3\n${Buffer.from(again.root()).toString('base64')}\n`,
    );
    const root = generateSigningKeyPair(sha256(utf8('tlog-test-root')));
    const verified = verifyCheckpoint(signCheckpoint(cp, root), {
      name: again.origin,
      publicKey: root.publicKey,
    });
    expect(verified.checkpoint.size).toBe(3);
    expect(again.checkpoint(0).rootHash).toEqual(sha256(new Uint8Array(0)));
    again.close();
  });
});

describe('preview', () => {
  it('gives the size and root an append would give, and writes nothing', () => {
    const log = TransparencyLog.open({ path: tempPath(), network: 'wacap' });
    log.append([entryAt(0), entryAt(1), entryAt(2)]);
    const before = hex(log.root());
    const batch = [entryAt(3), entryAt(4)];
    const seen = log.preview(batch);
    expect(log.size).toBe(3);
    expect(hex(log.root())).toBe(before);
    log.append(batch);
    expect(seen.size).toBe(5);
    expect(hex(seen.rootHash)).toBe(hex(log.root()));
    expect(codeOf(() => log.preview([]))).toBe('LOG_BATCH_INVALID');
    expect(codeOf(() => log.preview([entryAt(5, 'casc')]))).toBe('LOG_ENTRY_INVALID');
    expect(log.size).toBe(5);
    expect(codeOf(() => log.append([entryAt(5)], { at: 4 }))).toBe('LOG_SIZE_CHANGED');
    expect(log.append([entryAt(5)], { at: 5 })).toEqual({ first: 5, size: 6 });
    log.close();
  });
});

describe('bad input is refused with a code and changes nothing', () => {
  it('indexes and sizes outside the log', () => {
    const log = TransparencyLog.open({ path: tempPath(), network: 'wacap' });
    log.append([entryAt(0), entryAt(1)]);
    for (const fn of [
      () => log.entry(2),
      () => log.entry(-1),
      () => log.entry(0.5),
      () => log.leafHash(2),
      () => log.root(3),
      () => log.inclusionProof(2, 2),
      () => log.inclusionProof(0, 3),
      () => log.consistencyProof(2, 1),
      () => log.consistencyProof(0, 3),
      () => log.entries(2, 1),
      () => log.entries(0, 0),
      () => log.entries(0, 1001),
      () => log.checkpoint(Number.NaN),
    ])
      expect(codeOf(fn), fn.toString()).toBe('LOG_INDEX_OUT_OF_RANGE');
    log.close();
  });

  it('entries of another network or shape, empty batches: nothing appended', () => {
    const log = TransparencyLog.open({ path: tempPath(), network: 'wacap' });
    log.append([entryAt(0)]);
    const root = hex(log.root());
    expect(codeOf(() => log.append([entryAt(1), entryAt(2, 'casc')]))).toBe('LOG_ENTRY_INVALID');
    expect(codeOf(() => log.append([entryAt(1), { ...entryAt(2), extra: 1 } as LogEntry]))).toBe(
      'LOG_ENTRY_INVALID',
    );
    expect(codeOf(() => log.append([{ ...entryAt(1), hash: 'ABC' }]))).toBe('LOG_ENTRY_INVALID');
    expect(codeOf(() => log.append([]))).toBe('LOG_BATCH_INVALID');
    expect(log.size).toBe(1);
    expect(hex(log.root())).toBe(root);
    log.close();
  });

  it('a file of another network, or of another format', () => {
    const path = tempPath();
    TransparencyLog.open({ path, network: 'wacap' }).close();
    expect(codeOf(() => TransparencyLog.open({ path, network: 'casc' }))).toBe('LOG_STORE_INVALID');
    expect(codeOf(() => TransparencyLog.open({ path, network: 'Not A Network' }))).toBe(
      'LOG_STORE_INVALID',
    );
  });
});

describe('crash safety', () => {
  it('a transaction that fails half-way leaves the log as it was, and appends go on correctly', () => {
    const path = tempPath();
    const log = TransparencyLog.open({ path, network: 'wacap' });
    log.append(Array.from({ length: 5 }, (_, i) => entryAt(i)));
    const before = hex(log.root());
    // A storage failure in the middle of the batch: the 4th subtree hash written fails.
    const other = new Database(path);
    other.exec(
      "CREATE TRIGGER fail_midway BEFORE INSERT ON nodes WHEN NEW.level = 1 AND NEW.idx = 4 BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    );
    expect(() => log.append(Array.from({ length: 10 }, (_, i) => entryAt(5 + i)))).toThrow(
      /injected/,
    );
    expect(log.size).toBe(5);
    expect(hex(log.root())).toBe(before);
    other.exec('DROP TRIGGER fail_midway');
    other.close();
    log.append(Array.from({ length: 10 }, (_, i) => entryAt(5 + i)));
    const memory = new MemoryTree();
    for (let i = 0; i < 15; i++) memory.appendLeafHash(logEntryLeafHash(entryAt(i)));
    expect(hex(log.root())).toBe(hex(memory.root()));
    log.close();
  });

  it('a writer killed mid-append: every acknowledged batch is there, no partial batch, the tree is whole', async () => {
    const path = tempPath();
    const batch = 2000;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'crash-writer.ts'), path, String(batch)],
      {
        cwd: join(import.meta.dirname, '..'),
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let acknowledged = 0;
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        const lines = chunk.toString().trim().split('\n');
        acknowledged = Number(lines[lines.length - 1]);
        if (acknowledged >= 3 * batch) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
      child.on('error', reject);
    });
    expect(acknowledged).toBeGreaterThanOrEqual(3 * batch);
    const log = TransparencyLog.open({ path, network: 'wacap' });
    expect(log.size).toBeGreaterThanOrEqual(acknowledged);
    expect(log.size % batch).toBe(0);
    const memory = new MemoryTree();
    for (let i = 0; i < log.size; i++)
      memory.appendLeafHash(
        logEntryLeafHash({
          type: 'log-entry',
          network: 'wacap',
          kind: 'manifest',
          hash: toHex(sha256(utf8(`entry-${i}`))),
        }),
      );
    expect(hex(log.root())).toBe(hex(memory.root()));
    const index = log.size - 1;
    verifyInclusion({
      index,
      size: log.size,
      leafHash: log.leafHash(index),
      proof: log.inclusionProof(index),
      root: memory.root(),
    });
    log.close();
  }, 60_000);
});

describe('error codes', () => {
  it('are each documented in the README', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    expect(TLOG_ERROR_CODES.filter((c) => !readme.includes(`\`${c}\``))).toEqual([]);
  });
});
