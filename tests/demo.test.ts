import { execFile, spawn } from 'node:child_process';
import { readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// The demo is the workspace package @rogatory/demo (infra/demo), found by name like any dependency.
// The node CLI of the workspace package @rogatory/node (its entry is src/index.ts; the bin is beside src).
const NODE_CLI = join(
  dirname(createRequire(import.meta.url).resolve('@rogatory/node')),
  '..',
  'bin',
  'rogatory.js',
);
const DEMO = join(
  dirname(createRequire(import.meta.url).resolve('@rogatory/demo/package.json')),
  'demo.ts',
);

/** Run the demo (infra/demo/demo.ts, what `npm run demo` runs after installing) as a child process. */
function runDemo(
  timeoutMs: number,
  args: readonly string[] = [],
): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', DEMO, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
    // SIGINT first: the demo then stops every relay and node it started.
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    const hardTimer = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 30_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(hardTimer);
      resolve({ code, signal, output });
    });
  });
}

/** Run the node CLI (services/node/bin/rogatory.js) with `env` added. */
function runCli(
  args: readonly string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [NODE_CLI, ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, output: `${stdout}${stderr}` });
      },
    );
  });
}

describe('demo: relays and authority nodes as separate processes', () => {
  it('runs the whole story and exits 0', async () => {
    const { code, output } = await runDemo(240_000, ['--keep']);
    expect(output, output).toContain('Demo completed');
    expect(code, output).toBe(0);
    expect(output).toContain('TEST KEY');
    expect(output).toMatch(/SubmissionAcceptance by relay@wacap/);
    expect(output).toMatch(/RelayAcceptance by relay@global/);
    expect(output).toMatch(/RelayAcceptance by relay@casc/);
    expect(output).toMatch(/Delivery by kz-gpo@casc/);
    expect(output).toMatch(/Retrieval by kz-gpo@casc/);
    expect(output).toMatch(/refused as expected: FOUR_EYES_VIOLATION/);
    // The introduction step: referred across networks, introduced, seen by both sides.
    expect(output).toMatch(
      /referral d-[0-9a-f]{16} approved by poc\.approver and sent to poc-kz@casc/,
    );
    expect(output).toMatch(/outcome: introduced by poc-kz@casc: kz-gpo@casc for mla/);
    expect(output).toMatch(/directory at sn-moj@wacap: kz-gpo@casc, .*, introduced by poc-kz@casc/);
    expect(output).toMatch(/kz-gpo@casc: introduced to sn-moj@wacap by poc-kz@casc \(introduced\)/);
    expect(output).toMatch(/status of the request at sn-moj@wacap: executed/);
    expect(output).toContain('MATCH');
    expect(output).toMatch(/VERIFIED offline/);
    expect(output).not.toContain('FAILED');

    // --keep: the folder stays, with what is needed to reopen the nodes.
    const saved = /saved in (\S+demo-credentials\.json)/.exec(output)?.[1];
    expect(saved, output).toBeDefined();
    const file = saved!;
    try {
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const credentials = JSON.parse(await readFile(file, 'utf8')) as {
        nodes: Record<
          string,
          { dir: string; passphrase: string; users: { username: string; password: string }[] }
        >;
        relays: Record<string, { dir: string; env: string }>;
      };
      const sn = credentials.nodes['sn-moj@wacap']!;
      const officer = sn.users.find((u) => u.username === 'amadou.diallo')!;
      const inbox = await runCli(
        ['--dir', sn.dir, '--user', officer.username, '--json', 'inbox', '--all'],
        { ROGATORY_PASSPHRASE: sn.passphrase, ROGATORY_PASSWORD: officer.password },
      );
      expect(inbox.code, inbox.output).toBe(0);
      const dossiers = JSON.parse(inbox.stdout) as { caseReference?: string }[];
      expect(dossiers.length).toBeGreaterThanOrEqual(2);
      expect(Object.keys(credentials.relays)).toEqual([
        'relay@wacap',
        'relay@global',
        'relay@casc',
      ]);
    } finally {
      await rm(dirname(file), { recursive: true, force: true });
    }
  }, 360_000);
});
