import type { Command } from 'commander';
import { nodeFail } from '../errors.js';
import { CLEARANCES, ROLES, type Clearance, type Role } from '../administration/users.js';
import { emit, formatTime, secret, table } from './io.js';
import { asUser, globals, type CliRun } from './session.js';

export function registerUsers(program: Command, run: CliRun): void {
  const { io } = run;
  const user = program
    .command('user')
    .description('manage officers, approvers and admins (admins only)');

  user
    .command('add <username>')
    .description('add a user; the new password comes from ROGATORY_NEW_PASSWORD or a prompt')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .option(
      '--clearance <codes...>',
      `handling codes the user may open: ${CLEARANCES.join(', ')}`,
      [],
    )
    .action(async (username: string, opts: { role: string; clearance: string[] }, cmd: Command) => {
      const g = globals(cmd, io);
      if (!(ROLES as readonly string[]).includes(opts.role))
        nodeFail('INPUT_INVALID', `--role must be one of ${ROLES.join(', ')}`);
      for (const c of opts.clearance)
        if (!(CLEARANCES as readonly string[]).includes(c))
          nodeFail('INPUT_INVALID', `unknown clearance; use ${CLEARANCES.join(', ')}`);
      const added = await asUser(io, g, async (node, actor) => {
        const password = await secret(io, 'ROGATORY_NEW_PASSWORD', `Password for ${username}: `);
        return node.addUser(actor, {
          username,
          password,
          role: opts.role as Role,
          clearances: opts.clearance as Clearance[],
        });
      });
      emit(
        io,
        g.json,
        added,
        () =>
          `user ${added.username} added (${added.role}${added.clearances.length > 0 ? `, cleared for ${added.clearances.join(', ')}` : ''})`,
      );
    });

  user
    .command('list')
    .description('list users')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const users = await asUser(io, g, (node, actor) => node.listUsers(actor));
      emit(io, g.json, users, () =>
        table(
          ['USERNAME', 'ROLE', 'CLEARANCES', 'DISABLED', 'CREATED'],
          users.map((u) => [
            u.username,
            u.role,
            u.clearances.join(',') || '-',
            u.disabled ? 'yes' : 'no',
            formatTime(u.createdAt),
          ]),
        ),
      );
    });

  user
    .command('disable <username>')
    .description('disable a user (takes effect at once)')
    .action(async (username: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const disabled = await asUser(io, g, (node, actor) => node.disableUser(actor, username));
      emit(io, g.json, disabled, () => `user ${disabled.username} disabled`);
    });
}
