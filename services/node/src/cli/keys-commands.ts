import { access, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { AuthorityNode } from '../authority-node.js';
import { isNodeError, nodeFail, toNodeError } from '../errors.js';
import { emit, formatTime, secret, table } from './io.js';
import { globals, withNode, type CliRun, type GlobalOptions } from './session.js';

const DAY = 24 * 3600 * 1000;

/** `rogatory keys list | rotate-encryption | rotate-identity`: the node's own keys. */
export function registerKeys(program: Command, run: CliRun): void {
  const { io } = run;
  const keys = program
    .command('keys')
    .description("the node's identity and encryption keys: list and rotate");

  keys
    .command('list')
    .description('identity and encryption keys, current, pending confirmation and retired')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd, io);
      const list = await withNode(io, g, (node) => node.keys());
      emit(io, g.json, { keys: list }, () =>
        table(
          ['KIND', 'KID', 'STATE', 'LISTED', 'CREATED', 'NOT AFTER'],
          list.map((k) => [
            k.kind,
            k.kid,
            k.state === 'pending' ? 'pending confirmation' : k.state,
            k.listed ? 'yes' : 'no',
            formatTime(k.created),
            formatTime(k.notAfter),
          ]),
        ),
      );
    });

  keys
    .command('rotate-encryption')
    .description(
      'make a new encryption key (old ones are kept to read what was sealed to them) and print its certificate for `rogatory-network authority update --cert`',
    )
    .option('--out <file>', 'also write the certificate to this file (must not exist)')
    .option(
      '--valid-days <days>',
      'validity of the new key in days (default 730, at most the identity key)',
    )
    .action(async (opts: { out?: string; validDays?: string }, cmd: Command) => {
      const g = globals(cmd, io);
      const out = await freeOutput(opts.out);
      const validityDays = opts.validDays === undefined ? undefined : days(opts.validDays);
      const result = await withPassphrase(io, g, (node, passphrase) =>
        node.rotateEncryptionKey({
          passphrase,
          ...(validityDays === undefined ? {} : { validityDays }),
        }),
      );
      if (out) await writeJson(out, result.certificate);
      emit(io, g.json, { ...result, ...(out ? { out } : {}) }, () =>
        [
          `new encryption key ${result.kid} (pending confirmation: senders use it once an edition lists it)`,
          `give this certificate to the secretariat: rogatory-network authority update <address> --cert <file>`,
          ...(out ? [`written to ${out}`] : []),
          JSON.stringify(result.certificate, null, 2),
        ].join('\n'),
      );
    });

  keys
    .command('rotate-identity')
    .description(
      'make a new identity key and a rotation signed by the current one, for `rogatory-network authority update --rotation` (with --cert); the node switches by itself once an edition lists it and effectiveAt has come',
    )
    .option('--out <file>', 'also write the rotation statement to this file (must not exist)')
    .option('--cert-out <file>', 'also write the re-issued encryption certificate to this file')
    .option(
      '--effective-in-days <days>',
      'effectiveAt this many days from now (default 7, at most 30)',
    )
    .option('--effective-at <time>', 'effectiveAt as an ISO 8601 time')
    .action(
      async (
        opts: { out?: string; certOut?: string; effectiveInDays?: string; effectiveAt?: string },
        cmd: Command,
      ) => {
        const g = globals(cmd, io);
        if (opts.effectiveAt !== undefined && opts.effectiveInDays !== undefined)
          nodeFail('INPUT_INVALID', 'give --effective-at or --effective-in-days, not both');
        const out = await freeOutput(opts.out);
        const certOut = await freeOutput(opts.certOut);
        let effectiveAt: number | undefined;
        if (opts.effectiveAt !== undefined) {
          effectiveAt = Date.parse(opts.effectiveAt);
          if (!Number.isFinite(effectiveAt) || !/^\d{4}-\d{2}-\d{2}T/.test(opts.effectiveAt))
            nodeFail('INPUT_INVALID', '--effective-at must be an ISO 8601 time');
        }
        if (opts.effectiveInDays !== undefined)
          effectiveAt = Date.now() + days(opts.effectiveInDays) * DAY;
        const result = await withPassphrase(io, g, (node, passphrase) =>
          node.rotateIdentityKey({
            passphrase,
            ...(effectiveAt === undefined ? {} : { effectiveAt }),
          }),
        );
        if (out) await writeJson(out, result.rotation);
        if (certOut) await writeJson(certOut, result.certificate);
        emit(
          io,
          g.json,
          { ...result, ...(out ? { out } : {}), ...(certOut ? { certOut } : {}) },
          () =>
            [
              `new identity key ${result.newKid} replaces ${result.oldKid} from ${formatTime(result.effectiveAt)}`,
              `the node signs with ${result.oldKid} until an edition lists the new key and that time has come, then switches by itself`,
              `the secretariat must publish before ${formatTime(result.effectiveAt)}: rogatory-network authority update <address> --rotation <rotation file> --cert <certificate file>`,
              ...(out ? [`rotation written to ${out}`] : []),
              ...(certOut ? [`certificate written to ${certOut}`] : []),
              'rotation:',
              JSON.stringify(result.rotation, null, 2),
              'encryption certificate by the new key:',
              JSON.stringify(result.certificate, null, 2),
            ].join('\n'),
        );
      },
    );
}

/** Open the node with the passphrase and hand both to `fn` (new key files are sealed under the same passphrase). */
async function withPassphrase<T>(
  io: CliRun['io'],
  g: GlobalOptions,
  fn: (node: AuthorityNode, passphrase: string) => Promise<T>,
): Promise<T> {
  const passphrase = await secret(io, 'ROGATORY_PASSPHRASE', 'Node passphrase: ');
  const node = await AuthorityNode.open({ dir: g.dir, passphrase });
  try {
    return await fn(node, passphrase);
  } finally {
    await node.close();
  }
}

function days(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1)
    return nodeFail('INPUT_INVALID', 'give a whole number of days (at least 1)');
  return n;
}

/** An output path checked before anything is made: a rotation must not be lost to an existing file. */
async function freeOutput(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  const full = resolve(path);
  try {
    await access(full);
  } catch {
    return full;
  }
  return nodeFail('INPUT_INVALID', `${path} exists already`);
}

async function writeJson(path: string, value: unknown): Promise<void> {
  try {
    await writeFile(path, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o644, flag: 'wx' });
  } catch (err) {
    throw isNodeError(err) ? err : toNodeError(err, 'write output file');
  }
}
