import type { Command } from 'commander';
import { Type } from 'typebox';
import {
  Base64url,
  KDF_LIMITS,
  KeyRefSchema,
  fromBase64url,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  ready,
  validator,
} from '@rogatory/protocol';
import { nodeFail } from '../errors.js';
import { readJsonFile } from '../files/file-errors.js';
import { initNode } from '../administration/node-directory.js';
import type { ImportedKeys } from '../administration/keyring.js';
import { CLOCK_AHEAD_ADVICE, emit, formatBytes, formatOffset, formatTime, secret } from './io.js';
import { globals, withNode, type CliRun } from './session.js';

const ImportKeysSchema = Type.Object(
  { identitySeed: Base64url(32), encryptionSeed: Base64url(32) },
  { additionalProperties: false },
);

function readJson(path: string, what: string): Promise<unknown> {
  return readJsonFile(path, what);
}

function parse<T>(shape: { parse(v: unknown): T }, value: unknown, what: string): T {
  try {
    return shape.parse(value);
  } catch (cause) {
    return nodeFail('INPUT_INVALID', `${what} is not valid`, { cause });
  }
}

export function registerInit(program: Command, run: CliRun): void {
  const { io } = run;
  program
    .command('init')
    .description(
      'create a node: sealed keys, node.json, trust material; prints the identity key and encryption-key certificate for the manifest',
    )
    .requiredOption(
      '--address <address>',
      'authority address, e.g. sn-moj@wacap (with --poc: a point-of-contact address, e.g. poc-sn@wacap)',
    )
    .option(
      '--poc',
      "a point of contact's node: its output is what `rogatory-network poc add --from` reads",
    )
    .requiredOption('--relay-url <url>', "URL of the network's relay")
    .requiredOption('--relay-id <id>', 'relay id as listed in the manifest, e.g. relay@wacap')
    .requiredOption('--root <file>', "the own network's root KeyRef (JSON), obtained out of band")
    .requiredOption('--manifest <files...>', 'signed manifests: the own network first, then peers')
    .option(
      '--admin <username>',
      'create the first administrator (password from ROGATORY_PASSWORD or a prompt)',
    )
    .option(
      '--import-keys <file>',
      'use given key seeds {identitySeed, encryptionSeed} (tests and demos only)',
    )
    .option('--kdf <level>', 'Argon2id work factors: moderate (default) or interactive', 'moderate')
    .option('--envelope-days <days>', 'lifetime of sent envelopes in days (1-90)', '30')
    .action(
      async (
        opts: {
          address: string;
          relayUrl: string;
          relayId: string;
          root: string;
          manifest: string[];
          admin?: string;
          importKeys?: string;
          kdf: string;
          envelopeDays: string;
          poc?: boolean;
        },
        cmd: Command,
      ) => {
        const g = globals(cmd, io);
        await ready();
        if (opts.kdf !== 'moderate' && opts.kdf !== 'interactive')
          nodeFail('INPUT_INVALID', '--kdf must be moderate or interactive');
        const days = Number(opts.envelopeDays);
        if (!Number.isInteger(days) || days < 1 || days > 90)
          nodeFail('INPUT_INVALID', '--envelope-days must be 1..90');
        const pinnedRoot = parse(
          validator(KeyRefSchema, 'root'),
          await readJson(opts.root, 'the root file'),
          'the root KeyRef',
        );
        const manifests: unknown[] = [];
        for (const file of opts.manifest) manifests.push(await readJson(file, 'a manifest file'));
        let importKeys: ImportedKeys | undefined;
        if (opts.importKeys !== undefined) {
          const seeds = parse(
            validator(ImportKeysSchema, 'keys'),
            await readJson(opts.importKeys, 'the key file'),
            'the key file',
          );
          importKeys = {
            identity: generateSigningKeyPair(fromBase64url(seeds.identitySeed)),
            encryption: generateEncryptionKeyPair(fromBase64url(seeds.encryptionSeed)),
          };
        }
        const passphrase = await secret(io, 'ROGATORY_PASSPHRASE', 'New node passphrase: ');
        const admin =
          opts.admin === undefined
            ? undefined
            : {
                username: opts.admin,
                password: await secret(io, 'ROGATORY_PASSWORD', `Password for ${opts.admin}: `),
              };
        const result = await initNode({
          dir: g.dir,
          address: opts.address,
          relayUrl: opts.relayUrl,
          relayId: opts.relayId,
          passphrase,
          pinnedRoot,
          manifests,
          kdf: KDF_LIMITS[opts.kdf],
          envelopeLifetimeDays: days,
          role: opts.poc === true ? 'poc' : 'authority',
          ...(importKeys ? { importKeys } : {}),
          ...(admin ? { admin } : {}),
        });
        emit(io, g.json, result, () =>
          [
            `${result.role === 'poc' ? 'point-of-contact node' : 'node'} ${result.address} created in ${result.dir}`,
            `listed in the trusted manifest: ${result.listedInManifest ? 'yes' : `no (send the two objects below to the network secretariat: rogatory-network ${result.role} add --from <this output with --json>)`}`,
            `identity key (KeyRef):`,
            JSON.stringify(result.identity, null, 2),
            `encryption-key certificate:`,
            JSON.stringify(result.encryptionCertificate, null, 2),
          ].join('\n'),
        );
      },
    );

  program
    .command('status')
    .description('node overview: identity, relay, trust, queue, counts (no content)')
    .option(
      '--check-relay',
      "also reach the relay: open a session and show how far its clock is from this machine's",
    )
    .action(async (opts: { checkRelay?: boolean }, cmd: Command) => {
      const g = globals(cmd, io);
      const status = await withNode(io, g, async (node) => ({
        ...node.status(),
        disk: await node.diskUse(),
        ...(opts.checkRelay === true ? { relayCheck: await node.checkRelay() } : {}),
      }));
      const check = status.relayCheck;
      emit(io, g.json, status, () =>
        [
          `address          ${status.address}`,
          `relay            ${status.relay.id} ${status.relay.url}`,
          `identity key     ${status.identityKid} (${status.listedInManifest ? 'listed in the manifest' : 'NOT listed in the manifest'})`,
          `trusted networks ${status.trustedNetworks.join(', ')}`,
          `mailbox cursor   ${status.mailboxCursor}`,
          `outbox           ${status.outbox.pending} pending, ${status.outbox.failed} failed, next attempt ${formatTime(status.outbox.nextAttemptAt)}`,
          `dossiers         ${
            Object.entries(status.dossiers)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ') || 'none'
          }`,
          `users            ${status.users}`,
          `disk             database ${formatBytes(status.disk.databaseBytes)}, ${status.disk.blobs} blobs ${formatBytes(status.disk.blobBytes)} (encrypted dossiers and attachment chunks)`,
          ...(status.waitingForRelayClock > 0
            ? [
                `CLOCK AHEAD      ${status.waitingForRelayClock} submission(s) refused by the relay as created in its future: ${CLOCK_AHEAD_ADVICE}`,
              ]
            : []),
          ...(check === undefined
            ? []
            : [
                `relay check      ${check.ok ? 'session opened' : `FAILED ${check.code ?? ''}`}${check.clockOffsetMs === null ? '' : `; relay clock ${formatOffset(check.clockOffsetMs)}`}${check.clockAhead ? ": this machine's clock is AHEAD beyond the 5-minute tolerance: the relay refuses envelopes dated now; set the clock (NTP)" : ''}`,
              ]),
          `relay incidents  ${status.relayIncidents.total}${status.relayIncidents.last ? `, last ${status.relayIncidents.last.code} at ${formatTime(status.relayIncidents.last.at)}` : ''}`,
          `trust logs       ${
            status.trust.networks
              .map((n) => `${n.network} v${n.edition ?? '-'} size ${n.logSize}`)
              .join(', ') || 'none'
          }; forks detected ${status.trust.forksTotal}`,
          ...status.trust.networks
            .filter((n) => n.forkAlarm)
            .map(
              (n) =>
                `TRUST ALARM      LOG_FORK_DETECTED for ${n.network}: its new editions are refused (rogatory trust status)`,
            ),
        ].join('\n'),
      );
    });
}
