import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The source layout the node README describes: one folder per use case,
// store/ owning all SQL, receiving independent of sending, no import cycles.
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [relative(SRC, join(dir, entry.name))]
        : [],
  );
}

const FILES = sourceFiles(SRC).sort();
const TEXT = new Map(FILES.map((f) => [f, readFileSync(join(SRC, f), 'utf8')]));

/** Relative imports of a file (static, re-exports, type-only and dynamic), as paths under src/. */
function importsOf(file: string): string[] {
  const specs = [
    ...TEXT.get(file)!.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)'(\.{1,2}\/[^']+)'/gm),
  ].map((m) => m[1]!);
  return specs.map((s) => join(dirname(file), s).replace(/\.js$/, '.ts'));
}

const GRAPH = new Map(FILES.map((f) => [f, importsOf(f)]));

function reachable(from: string): Set<string> {
  const seen = new Set<string>();
  const stack = [...GRAPH.get(from)!];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (seen.has(next)) continue;
    seen.add(next);
    stack.push(...(GRAPH.get(next) ?? []));
  }
  return seen;
}

describe('source layout of the node', () => {
  it('finds the source and resolves every relative import to a file', () => {
    expect(FILES).toContain('authority-node.ts');
    for (const [file, targets] of GRAPH)
      for (const target of targets) expect(FILES, `${file} imports ${target}`).toContain(target);
  });

  it('keeps every SQL statement in store/', () => {
    const sql =
      /\.prepare\(|\.exec\(\s*['"`]|['"`]\s*(?:SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b/;
    const outside = FILES.filter((f) => !f.startsWith('store/') && sql.test(TEXT.get(f)!));
    expect(outside).toEqual([]);
  });

  it('has receiving code that reaches no sending code, even through other modules', () => {
    const receiving = FILES.filter((f) => f.startsWith('receiving/'));
    expect(receiving.length).toBeGreaterThan(0);
    const offending = receiving.flatMap((f) =>
      [...reachable(f)].filter((t) => t.startsWith('sending/')).map((t) => `${f} -> ${t}`),
    );
    expect(offending).toEqual([]);
  });

  it('has no import cycle', () => {
    const cycles = FILES.filter((f) => reachable(f).has(f));
    expect(cycles).toEqual([]);
  });
});
