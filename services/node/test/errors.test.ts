import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '@rogatory/storage';
import { RelayClientError } from '@rogatory/client';
import { ProtocolError } from '@rogatory/protocol';
import { describe, expect, it } from 'vitest';
import { NODE_ERRORS, NodeError, isNodeError } from '../src/index.js';
import { toNodeError } from '../src/errors.js';

const README = join(import.meta.dirname, '..', 'README.md');

describe('error catalogue', () => {
  it('documents every code with its exit code, and every exit code', async () => {
    const readme = await readFile(README, 'utf8');
    for (const [code, { exit }] of Object.entries(NODE_ERRORS)) {
      expect(readme).toMatch(new RegExp(`\\| \`${code}\` +\\| ${exit} +\\|`));
    }
    for (const exit of new Set([0, ...Object.values(NODE_ERRORS).map((e) => e.exit)])) {
      expect(readme).toMatch(new RegExp(`^\\| ${exit} +\\| `, 'm'));
    }
  });

  it('maps lower-level failures to codes, keeps the cause out of the safe form', () => {
    expect(toNodeError(new StorageError('STORAGE_FULL', 'x'), 'op')).toMatchObject({
      code: 'STORAGE_FULL',
      detail: 'STORAGE_FULL',
    });
    expect(toNodeError(new RelayClientError('NETWORK', 'x'), 'op')).toMatchObject({
      code: 'RELAY_UNREACHABLE',
      detail: 'NETWORK',
    });
    expect(toNodeError(new RelayClientError('FORBIDDEN', 'x'), 'op')).toMatchObject({
      code: 'RELAY_REJECTED',
      detail: 'FORBIDDEN',
    });
    expect(toNodeError(new ProtocolError('SIGNATURE_INVALID', 'x'), 'op')).toMatchObject({
      code: 'VERIFICATION_FAILED',
      detail: 'SIGNATURE_INVALID',
    });
    expect(toNodeError(new ProtocolError('PASSPHRASE_INVALID', 'x'), 'op').code).toBe(
      'PASSPHRASE_INVALID',
    );
    const secret = toNodeError(new Error('John EXAMPLE, passport X0000000'), 'store');
    expect(secret.code).toBe('INTERNAL');
    expect(JSON.stringify(secret)).not.toContain('EXAMPLE');
    expect(isNodeError(new NodeError('NOT_FOUND', 'x'), 'NOT_FOUND')).toBe(true);
    expect(new NodeError('FOUR_EYES_VIOLATION', 'x').exitCode).toBe(3);
  });
});
