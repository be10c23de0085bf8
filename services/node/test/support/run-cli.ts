import type { CliIO } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/program.js';
import { PASSPHRASE, PASSWORD } from './fixtures.js';

export interface CliRunResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/**
 * Run the node CLI in-process with its output captured, the test passphrase
 * and password in the environment (overridable by `env`), and no terminal.
 */
export async function runCliCaptured(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliRunResult> {
  let out = '';
  let err = '';
  const io: CliIO = {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    env: { ROGATORY_PASSPHRASE: PASSPHRASE, ROGATORY_PASSWORD: PASSWORD, ...env },
    isTTY: false,
  };
  const code = await runCli(args, io);
  return { code, out, err };
}
