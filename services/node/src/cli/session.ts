import { resolve } from 'node:path';
import type { Command } from 'commander';
import { nodeFail } from '../errors.js';
import { AuthorityNode } from '../authority-node.js';
import type { Actor } from '../administration/users.js';
import { secret, type CliIO } from './io.js';

export interface GlobalOptions {
  readonly dir: string;
  readonly json: boolean;
  readonly user: string | undefined;
}

/** Shared state of one CLI run: the exit code a command sets without failing (e.g. verification failed). */
export interface CliRun {
  readonly io: CliIO;
  code: number;
}

export function globals(cmd: Command, io: CliIO): GlobalOptions {
  const o = cmd.optsWithGlobals<{ dir?: string; json?: boolean; user?: string }>();
  return {
    dir: resolve(o.dir ?? io.env['ROGATORY_NODE_DIR'] ?? 'rogatory-node'),
    json: o.json === true,
    user: o.user ?? io.env['ROGATORY_USER'],
  };
}

/** Open the node with the passphrase (ROGATORY_PASSPHRASE or a prompt), run `fn`, always close. */
export async function withNode<T>(
  io: CliIO,
  g: GlobalOptions,
  fn: (node: AuthorityNode) => Promise<T> | T,
): Promise<T> {
  const passphrase = await secret(io, 'ROGATORY_PASSPHRASE', 'Node passphrase: ');
  const node = await AuthorityNode.open({ dir: g.dir, passphrase });
  try {
    return await fn(node);
  } finally {
    await node.close();
  }
}

/** The acting user: --user (or ROGATORY_USER) and ROGATORY_PASSWORD (or a prompt). */
export async function actingUser(io: CliIO, g: GlobalOptions, node: AuthorityNode): Promise<Actor> {
  if (g.user === undefined)
    return nodeFail('INPUT_INVALID', 'give the acting user with --user (or ROGATORY_USER)');
  const password = await secret(io, 'ROGATORY_PASSWORD', `Password of ${g.user}: `);
  return node.login(g.user, password);
}

/** Open the node and log the acting user in. */
export function asUser<T>(
  io: CliIO,
  g: GlobalOptions,
  fn: (node: AuthorityNode, actor: Actor) => Promise<T> | T,
): Promise<T> {
  return withNode(io, g, async (node) => fn(node, await actingUser(io, g, node)));
}
