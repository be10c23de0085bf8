import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// The demo is the workspace package @rogatory/demo (infra/demo), found by name like any dependency.
const DEMO = join(
  dirname(createRequire(import.meta.url).resolve('@rogatory/demo/package.json')),
  'demo.ts',
);

/** Run the demo (infra/demo/demo.ts, what `npm run demo` runs after installing) as a child process. */
function runDemo(
  timeoutMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', DEMO], {
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

describe('demo: relays and authority nodes as separate processes', () => {
  it('runs the whole story and exits 0', async () => {
    const { code, output } = await runDemo(240_000);
    expect(output, output).toContain('Demo completed');
    expect(code, output).toBe(0);
    expect(output).toContain('TEST KEY');
    expect(output).toMatch(/SubmissionAcceptance by relay@wacap/);
    expect(output).toMatch(/RelayAcceptance by relay@global/);
    expect(output).toMatch(/RelayAcceptance by relay@casc/);
    expect(output).toMatch(/Delivery by kz-gpo@casc/);
    expect(output).toMatch(/Retrieval by kz-gpo@casc/);
    expect(output).toMatch(/refused as expected: NOT_AUTHORISED/);
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
  }, 300_000);
});
