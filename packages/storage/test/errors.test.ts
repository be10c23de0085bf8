import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  assertBlobId,
  blobIdOf,
  isBlobId,
  isStorageError,
  STORAGE_ERROR_CODES,
  StorageError,
  type StorageErrorCode,
} from '../src/index.js';
import { toStorageError } from '../src/errors.js';

const codes = Object.keys(STORAGE_ERROR_CODES) as StorageErrorCode[];

describe('error catalogue', () => {
  it('describes every code, and the README documents every code', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    expect(codes.length).toBeGreaterThan(5);
    for (const code of codes) {
      expect(STORAGE_ERROR_CODES[code].length).toBeGreaterThan(10);
      expect(readme).toContain(`\`${code}\``);
    }
  });

  it('isStorageError narrows by class and code', () => {
    const err = new StorageError('BLOB_NOT_FOUND', 'no blob under this id', {
      blobId: 'a'.repeat(64),
    });
    expect(isStorageError(err)).toBe(true);
    expect(isStorageError(err, 'BLOB_NOT_FOUND')).toBe(true);
    expect(isStorageError(err, 'BLOB_ID_INVALID')).toBe(false);
    expect(isStorageError(Object.assign(new Error('x'), { code: 'BLOB_NOT_FOUND' }))).toBe(false);
    expect(isStorageError(undefined)).toBe(false);
  });

  it('serialises without its cause', () => {
    const cause = new Error('/var/lib/secret/path: EIO');
    const err = new StorageError('STORAGE_UNAVAILABLE', 'reading a blob failed', { cause });
    expect(err.cause).toBe(cause);
    expect(JSON.stringify(err)).not.toContain('secret');
    expect(err.toJSON()).toEqual({
      code: 'STORAGE_UNAVAILABLE',
      message: 'STORAGE_UNAVAILABLE: reading a blob failed',
    });
  });

  it('maps backend failures: out of space to STORAGE_FULL, the rest to STORAGE_UNAVAILABLE', () => {
    const errno = (code: string): Error =>
      Object.assign(new Error(`${code}: /some/path`), { code });
    expect(toStorageError(errno('ENOSPC'), 'writing a blob').code).toBe('STORAGE_FULL');
    expect(toStorageError(errno('EDQUOT'), 'writing a blob').code).toBe('STORAGE_FULL');
    expect(toStorageError(errno('XMinioStorageFull'), 'writing a blob').code).toBe('STORAGE_FULL');
    const io = toStorageError(errno('EIO'), 'writing a blob', 'b'.repeat(64));
    expect(io.code).toBe('STORAGE_UNAVAILABLE');
    expect(io.blobId).toBe('b'.repeat(64));
    expect(io.message).not.toContain('/some/path');
    const original = new StorageError('BLOB_HASH_MISMATCH', 'x');
    expect(toStorageError(original, 'writing a blob')).toBe(original);
  });
});

describe('blob ids', () => {
  it('are the lowercase hex SHA-256 of the bytes', () => {
    expect(blobIdOf(new Uint8Array(0))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(blobIdOf(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('are validated strictly', () => {
    const id = blobIdOf(new Uint8Array(1));
    expect(isBlobId(id)).toBe(true);
    for (const bad of [
      id.toUpperCase(),
      id.slice(1),
      `${id}\n`,
      `${id}a`,
      '../etc/passwd',
      null,
      7,
    ]) {
      expect(isBlobId(bad)).toBe(false);
      expect(() => {
        assertBlobId(bad);
      }).toThrow(StorageError);
    }
  });
});
