import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protocol from '@rogatory/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CONFIG = join(ROOT, '.dependency-cruiser.json');
const DEPCRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Violation {
  readonly from: string;
  readonly to: string;
  readonly rule: { readonly name: string };
}

/**
 * A small workspace laid out like ours (packages/*, services/*, tests, infra/demo),
 * each file breaking or keeping one boundary rule.
 */
const FILES: Readonly<Record<string, string>> = {
  'tsconfig.json': JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true },
  }),
  'packages/a/package.json': JSON.stringify({
    name: '@fixture/a',
    type: 'module',
    exports: { '.': { types: './src/index.ts', default: './src/index.ts' } },
  }),
  'packages/a/src/index.ts': "export { x } from './x.js';\n",
  // A value cycle.
  'packages/a/src/x.ts': "import { y } from './y.js';\nexport const x = (): number => y + 1;\n",
  'packages/a/src/y.ts': "import { x } from './x.js';\nexport const y = 1;\nexport const z = x;\n",
  // A cycle through type-only imports only.
  'packages/a/src/t1.ts':
    "import type { T2 } from './t2.js';\nexport interface T1 { readonly next?: T2 }\n",
  'packages/a/src/t2.ts':
    "import type { T1 } from './t1.js';\nexport interface T2 { readonly next?: T1 }\n",
  'services/b/package.json': JSON.stringify({
    name: '@fixture/b',
    type: 'module',
    dependencies: { '@fixture/a': 'workspace:*' },
  }),
  // Into another package's internals by a relative path.
  'services/b/src/reach.ts': "export { x } from '../../../packages/a/src/x.js';\n",
  // Allowed: the other package by name, and a relative import inside the package.
  'services/b/src/by-name.ts': "export { x } from '@fixture/a';\n",
  'services/b/src/local.ts': "import { x } from './by-name.js';\nexport const w = x;\n",
  'tests/probe.ts': "export { x } from '../packages/a/src/index.js';\n",
  'infra/demo/probe.ts': "export { x } from '../../packages/a/src/index.js';\n",
  'infra/demo/ok.ts': "import { x } from '@fixture/a';\nexport const v = x;\n",
};

describe('lint: module boundaries (.dependency-cruiser.json, run by pnpm lint)', () => {
  let dir: string;
  let violations: readonly Violation[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rogatory-boundaries-'));
    for (const [path, text] of Object.entries(FILES)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    // What pnpm does for a workspace dependency.
    await mkdir(join(dir, 'services/b/node_modules/@fixture'), { recursive: true });
    await symlink('../../../../packages/a', join(dir, 'services/b/node_modules/@fixture/a'));
    await mkdir(join(dir, 'infra/demo/node_modules/@fixture'), { recursive: true });
    await symlink('../../../../packages/a', join(dir, 'infra/demo/node_modules/@fixture/a'));
    // The arguments of `pnpm lint:deps`, on the fixture.
    const script = (
      JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts['lint:deps'];
    expect(script).toBe(
      'depcruise packages services tests infra --config .dependency-cruiser.json --output-type err',
    );
    const run = spawnSync(
      process.execPath,
      [
        DEPCRUISE,
        'packages',
        'services',
        'tests',
        'infra',
        '--config',
        CONFIG,
        '--output-type',
        'json',
      ],
      { cwd: dir, encoding: 'utf8', timeout: 60_000 },
    );
    expect(run.stderr).toBe('');
    const result = JSON.parse(run.stdout) as {
      summary: { violations: Violation[]; totalCruised: number };
    };
    expect(result.summary.totalCruised).toBeGreaterThan(10);
    violations = result.summary.violations;
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const found = (rule: string): string[] =>
    violations.filter((v) => v.rule.name === rule).map((v) => `${v.from} -> ${v.to}`);

  it('refuse an import cycle, also when it goes through type-only imports', () => {
    const cycles = found('no-cycle');
    expect(
      cycles.some((c) => /packages\/a\/src\/[xy]\.ts -> packages\/a\/src\/[xy]\.ts/.test(c)),
    ).toBe(true);
    expect(cycles.some((c) => /src\/t[12]\.ts -> packages\/a\/src\/t[12]\.ts/.test(c))).toBe(true);
    expect(cycles).toHaveLength(2);
  });

  it('refuse a relative import that leaves its package, from a package, a service, tests or infra', () => {
    expect(found('no-relative-import-across-packages')).toEqual([
      'services/b/src/reach.ts -> packages/a/src/x.ts',
    ]);
    expect(found('no-relative-import-out-of-infra-or-tests').sort()).toEqual([
      'infra/demo/probe.ts -> packages/a/src/index.ts',
      'tests/probe.ts -> packages/a/src/index.ts',
    ]);
  });

  it('allow imports by package name and relative imports inside a package', () => {
    const allowed = [
      'packages/a/src/index.ts',
      'services/b/src/by-name.ts',
      'services/b/src/local.ts',
      'infra/demo/ok.ts',
    ];
    expect(violations.filter((v) => allowed.includes(v.from))).toEqual([]);
    expect(violations).toHaveLength(5);
  });
});

describe('@rogatory/protocol: a curated entry point', () => {
  it('does not export helpers that only the package itself uses', () => {
    const exported = Object.keys(protocol);
    for (const internal of [
      'outcomeOf',
      'contentKeyCommitment',
      'decryptSealedPayload',
      'payloadAssociatedData',
      'signingInput',
      'checkHops',
      'parseAttachmentManifest',
      'sodiumHashing',
      'deriveKeyInProcess',
      'openSigningKey',
      'keyId',
      'REQUEST_SCHEMAS',
    ]) {
      expect(exported, internal).not.toContain(internal);
    }
  });

  it('exports the protocol operations other packages use', () => {
    for (const name of [
      'ready',
      'verifyEnvelope',
      'sealDossier',
      'openDossier',
      'issueEvidence',
      'verifyManifest',
      'checkManifestSuccession',
      'TrustStore',
      'ERROR_CODES',
      'isProtocolError',
    ]) {
      expect((protocol as Record<string, unknown>)[name], name).toBeDefined();
    }
  });
});
