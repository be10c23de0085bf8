import type { Command } from 'commander';
import { nodeFail } from '../errors.js';
import { CLEARANCES, ROLES, type Clearance, type Role } from '../administration/users.js';
import { emit, formatTime, secret, table } from './io.js';
import { asUser, globals, withNode, type CliRun } from './session.js';

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

  user
    .command('enable <username>')
    .description('enable a disabled user again')
    .action(async (username: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const enabled = await asUser(io, g, (node, actor) => node.enableUser(actor, username));
      emit(io, g.json, enabled, () => `user ${enabled.username} enabled`);
    });

  user
    .command('passwd')
    .description(
      'change your own password (the acting --user): the current one from ROGATORY_PASSWORD or a prompt, the new one from ROGATORY_NEW_PASSWORD or a prompt',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      if (g.user === undefined)
        nodeFail('INPUT_INVALID', 'give your username with --user (or ROGATORY_USER)');
      const changed = await withNode(io, g, async (node) => {
        const username = g.user as string;
        const current = await secret(io, 'ROGATORY_PASSWORD', `Current password of ${username}: `);
        const actor = node.login(username, current);
        const next = await secret(io, 'ROGATORY_NEW_PASSWORD', `New password for ${username}: `);
        return node.changePassword(actor, current, next);
      });
      emit(io, g.json, changed, () => `password of ${changed.username} changed`);
    });

  user
    .command('reset-password <username>')
    .description(
      "set another user's password (admins); the new one from ROGATORY_NEW_PASSWORD or a prompt",
    )
    .action(async (username: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const reset = await asUser(io, g, async (node, actor) => {
        const next = await secret(io, 'ROGATORY_NEW_PASSWORD', `New password for ${username}: `);
        return node.resetPassword(actor, username, next);
      });
      emit(io, g.json, reset, () => `password of ${reset.username} reset`);
    });

  user
    .command('set-role <username> <role>')
    .description(`change a user's role (${ROLES.join(', ')}); takes effect at once`)
    .action(async (username: string, role: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      if (!(ROLES as readonly string[]).includes(role))
        nodeFail('INPUT_INVALID', `the role must be one of ${ROLES.join(', ')}`);
      const changed = await asUser(io, g, (node, actor) =>
        node.setUserRole(actor, username, role as Role),
      );
      emit(io, g.json, changed, () => `user ${changed.username} is now ${changed.role}`);
    });

  user
    .command('set-clearance <username> [codes...]')
    .description(
      `replace a user's clearances (${CLEARANCES.join(', ')}; none given: no clearance); takes effect at once`,
    )
    .action(async (username: string, codes: string[], _opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      for (const c of codes)
        if (!(CLEARANCES as readonly string[]).includes(c))
          nodeFail('INPUT_INVALID', `unknown clearance ${c}; use ${CLEARANCES.join(', ')}`);
      const changed = await asUser(io, g, (node, actor) =>
        node.setUserClearances(actor, username, [...new Set(codes)] as Clearance[]),
      );
      emit(
        io,
        g.json,
        changed,
        () =>
          `user ${changed.username} cleared for ${changed.clearances.length > 0 ? changed.clearances.join(', ') : 'nothing beyond unrestricted dossiers'}`,
      );
    });
}
