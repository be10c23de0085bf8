import { readFile, writeFile } from 'node:fs/promises';
import { withErrorTable } from '../src/docs.js';

/**
 * Regenerate the error table of docs/relay-api.md from RELAY_ERRORS, or with
 * `--check` exit 1 when the file is not what it would generate.
 */
const path = new URL('../../../docs/relay-api.md', import.meta.url);
const doc = await readFile(path, 'utf8');
const next = withErrorTable(doc);
if (process.argv.includes('--check')) {
  if (next !== doc) {
    process.stderr.write(
      'docs/relay-api.md: the error table is not generated from RELAY_ERRORS; run `pnpm --filter @rogatory/relay-api docs:generate`\n',
    );
    process.exit(1);
  }
} else if (next !== doc) {
  await writeFile(path, next);
  process.stdout.write('docs/relay-api.md: error table regenerated\n');
}
