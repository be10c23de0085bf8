import { Command, CommanderError } from 'commander';
import { EXIT, reportError, type CliIO } from './io.js';
import { registerCases } from './case-commands.js';
import { registerDirectory } from './directory-command.js';
import { registerDossiers } from './dossier-commands.js';
import { registerDrafting } from './draft-commands.js';
import { registerInit } from './init-command.js';
import { registerIntroduce } from './introduce-commands.js';
import { registerKeys } from './keys-commands.js';
import { registerOps } from './ops-commands.js';
import { registerServe } from './serve-command.js';
import type { CliRun } from './session.js';
import { registerUsers } from './user-commands.js';

export interface CliOptions {
  /** How `sync` (without --once) waits to stop; default SIGINT/SIGTERM. */
  readonly untilSignal?: (io: CliIO) => Promise<void>;
}

export function buildProgram(run: CliRun, options: CliOptions = {}): Command {
  const { io } = run;
  const program = new Command('rogatory')
    .description(
      'Rogatory authority node: draft, approve, send, receive and verify request dossiers',
    )
    .option('-d, --dir <path>', 'node directory (default $ROGATORY_NODE_DIR or ./rogatory-node)')
    .option('-u, --user <username>', 'acting user (password from $ROGATORY_PASSWORD or a prompt)')
    .option('--json', 'machine-readable output')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
  registerInit(program, run);
  registerUsers(program, run);
  registerDrafting(program, run);
  registerDossiers(program, run);
  registerCases(program, run);
  registerDirectory(program, run);
  registerIntroduce(program, run);
  registerKeys(program, run);
  registerOps(program, run, options.untilSignal ? { untilSignal: options.untilSignal } : {});
  registerServe(program, run, options.untilSignal ? { untilSignal: options.untilSignal } : {});
  for (const cmd of program.commands) {
    cmd.exitOverride();
    for (const sub of cmd.commands) sub.exitOverride();
  }
  return program;
}

/** Run the CLI on `argv` (user arguments only) and return the exit code (README.md lists them). */
export async function runCli(
  argv: readonly string[],
  io: CliIO,
  options: CliOptions = {},
): Promise<number> {
  const run: CliRun = { io, code: EXIT.ok };
  const program = buildProgram(run, options);
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return reportError(io, argv.includes('--json'), err);
  }
  return run.code;
}
