import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Compile } from 'typebox/compile';
import { describe, expect, it } from 'vitest';
import type { Vector } from '../scripts/vectors-common.js';

const schemaDir = join(import.meta.dirname, '..', '..', '..', 'docs', 'schemas');
const vectorDir = join(import.meta.dirname, '..', 'test-vectors');
const vectors = new Map(
  readdirSync(vectorDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => {
      const v = JSON.parse(readFileSync(join(vectorDir, f), 'utf8')) as Vector;
      return [v.name, v] as const;
    }),
);
/** The published schema, compiled as a plain JSON Schema document (not the TypeBox object it came from). */
const published = (name: string) =>
  Compile(JSON.parse(readFileSync(join(schemaDir, `${name}.json`), 'utf8')));
const input = (vector: string, member: string) => vectors.get(vector)!.input[member];

describe('published JSON Schemas (docs/schemas)', () => {
  it('accept the objects of the positive vectors', () => {
    const seal = vectors.get('seal-one-recipient')!;
    const cases: [string, unknown][] = [
      ['envelope', input('envelope-valid', 'envelope')],
      ['envelope', (seal.result as { envelope: unknown }).envelope],
      ['manifest', input('manifest-valid', 'manifest')],
      ['introduction', input('statement-introduction', 'statement')],
      ['key-rotation', input('statement-key-rotation', 'statement')],
      ['revocation', input('statement-revocation', 'statement')],
      ['encryption-key-certificate', input('statement-encryption-key', 'statement')],
      ['attachment-manifest', input('attachment-several-chunks', 'manifest')],
      ['dossier-content', input('seal-one-recipient', 'content')],
      ['sealed-secret', input('keyfile-signing-key', 'keyFile')],
      ['key-ref', (input('seal-one-recipient', 'sender') as { archiveKey: unknown }).archiveKey],
      ...(input('evidence-chain-complete', 'evidences') as unknown[]).map(
        (e) => ['evidence', e] as [string, unknown],
      ),
      [
        'sealed-dossier',
        JSON.parse(
          Buffer.from(input('dossier-one-recipient', 'sealed') as string, 'base64url').toString(
            'utf8',
          ),
        ),
      ],
    ];
    for (const [name, value] of cases) expect(published(name).Check(value), name).toBe(true);
  });

  it('refuse the objects of the SCHEMA_INVALID vectors that the schema decides', () => {
    expect(published('envelope').Check(input('envelope-schema-extra-member', 'envelope'))).toBe(
      false,
    );
    expect(published('envelope').Check(input('envelope-hops-missing', 'envelope'))).toBe(false);
    expect(
      published('sealed-secret').Check(input('keyfile-work-factor-out-of-range', 'keyFile')),
    ).toBe(false);
    expect(
      published('encryption-key-certificate').Check(
        input('statement-encryption-key-no-body', 'statement'),
      ),
    ).toBe(false);
    expect(
      published('encryption-key-certificate').Check(
        input('statement-encryption-key-no-kid', 'statement'),
      ),
    ).toBe(false);
  });

  it('leave procedure constraints to the procedures: the LIMIT_EXCEEDED lifetime passes the schema', () => {
    // EC3 (lifetime at most 90 days) is a procedure step (§8.3), not a schema constraint.
    expect(published('envelope').Check(input('envelope-lifetime-too-long', 'envelope'))).toBe(true);
  });
});
