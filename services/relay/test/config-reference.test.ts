/**
 * The operator's configuration reference cannot drift from what the relay
 * accepts: every field of the configuration schema is named in
 * docs/operations.md (Configuration reference, Relay) and shown in
 * infra/relay/relay.example.yaml.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES_HELP } from '../src/cli/output.js';
import { RelayConfigSchema } from '../src/config.js';
import { RELAY_EXIT, RELAY_SETUP_ERRORS } from '../src/setup-errors.js';

const read = (relative: string) =>
  readFileSync(fileURLToPath(new URL(relative, import.meta.url)), 'utf8');

interface SchemaNode {
  readonly type?: string;
  readonly anyOf?: readonly SchemaNode[];
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly patternProperties?: Readonly<Record<string, SchemaNode>>;
  readonly items?: SchemaNode;
}

/** Leaf field paths of a TypeBox object schema: `a.b`, `a.list[].c`, `a.map.<network>`. */
function leafPaths(schema: SchemaNode, prefix = ''): string[] {
  if (schema.anyOf) return [...new Set(schema.anyOf.flatMap((s) => leafPaths(s, prefix)))];
  if (schema.properties)
    return Object.entries(schema.properties).flatMap(([key, child]) =>
      leafPaths(child, prefix === '' ? key : `${prefix}.${key}`),
    );
  if (schema.patternProperties) return [`${prefix}.<network>`];
  if (schema.type === 'array' && schema.items?.properties)
    return leafPaths(schema.items, `${prefix}[]`);
  return [prefix];
}

function section(text: string, start: string, end: string): string {
  const from = text.indexOf(start);
  const to = text.indexOf(end, from + start.length);
  expect(from, `docs/operations.md has a "${start}" heading`).toBeGreaterThanOrEqual(0);
  return text.slice(from, to < 0 ? undefined : to);
}

describe('relay configuration reference', () => {
  const paths = leafPaths(RelayConfigSchema as unknown as SchemaNode);

  it('finds the schema fields (the walker itself works)', () => {
    expect(paths).toContain('relay.port');
    expect(paths).toContain('backend.redis.sentinel.sentinels[].host');
    expect(paths).toContain('trust.peerUrls.<network>');
    expect(paths.length).toBeGreaterThan(40);
  });

  it('docs/operations.md names every field', () => {
    const doc = section(
      read('../../../docs/operations.md'),
      '### Relay (`relay.yaml`)',
      '### Node (`node.json`',
    );
    const missing = paths.filter((p) => !doc.includes(`\`${p}\``));
    expect(missing).toEqual([]);
  });

  it('infra/relay/relay.example.yaml shows every field', () => {
    const example = read('../../../infra/relay/relay.example.yaml');
    const missing = paths.filter((p) => {
      const key = p
        .split('.')
        .filter((part) => part !== '<network>')
        .at(-1)!
        .replace('[]', '');
      return !new RegExp(`(^|[\\s#-])${key}:`, 'm').test(example);
    });
    expect(missing).toEqual([]);
  });

  it('the exit codes are documented in --help and docs/operations.md, and every setup code has one', () => {
    const doc = read('../../../docs/operations.md');
    for (const code of Object.values(RELAY_EXIT)) {
      expect(doc).toMatch(new RegExp(`^\\s*\\| ${String(code)}\\s+\\|`, 'm'));
      expect(EXIT_CODES_HELP).toMatch(new RegExp(`^\\s+${String(code)}\\s+\\w`, 'm'));
    }
    const exits = new Set<number>(Object.values(RELAY_EXIT));
    for (const { exit } of Object.values(RELAY_SETUP_ERRORS)) expect(exits.has(exit)).toBe(true);
  });
});
