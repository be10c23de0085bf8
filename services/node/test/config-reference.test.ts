/** docs/operations.md (Configuration reference, Node) names every field of node.json. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NodeConfigSchema } from '../src/administration/config.js';

describe('node configuration reference', () => {
  it('names every top-level field of node.json', () => {
    const doc = readFileSync(
      fileURLToPath(new URL('../../../docs/operations.md', import.meta.url)),
      'utf8',
    );
    const from = doc.indexOf('### Node (`node.json`');
    expect(from).toBeGreaterThanOrEqual(0);
    const table = doc.slice(from, doc.indexOf('\n## ', from));
    const fields = Object.keys(NodeConfigSchema.properties);
    expect(fields.length).toBeGreaterThan(10);
    expect(fields.filter((f) => !table.includes(`\`${f}\``))).toEqual([]);
  });
});
