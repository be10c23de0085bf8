import { access, writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { useNativeCrypto } from '@rogatory/protocol/node';
import {
  KDF_LIMITS,
  generateSigningKeyPair,
  keyRef,
  ready,
  sealSigningKey,
} from '@rogatory/protocol';
import { loadRelayConfig } from './config.js';
import { rotateRelayKey } from './key-rotation.js';
import { registerMigrateBackend } from './migrate-backend.js';
import { relayOptionsFromConfig, startRelay } from './server.js';
import { checkConfigCommand } from './cli/check-config.js';
import { EXIT_CODES_HELP, reportFailure, usageError } from './cli/output.js';
import { queueCommand } from './cli/queue.js';
import { RelaySetupError, fsReason, setupFail } from './setup-errors.js';

/**
 * Run a command's action: its result (or failure) becomes the exit code
 * (EXIT_CODES_HELP). `start` keeps the process alive itself.
 */
function action<O extends { json?: boolean }>(
  fn: (opts: O) => Promise<number | undefined>,
): (opts: O) => Promise<void> {
  return async (opts: O) => {
    try {
      const code = await fn(opts);
      if (code !== undefined) process.exitCode = code;
    } catch (err) {
      process.exitCode = reportFailure(err, opts.json === true);
    }
  };
}

function passphraseFrom(envName: string, field: string): string {
  const value = process.env[envName];
  if (!value) setupFail('KEY_PASSPHRASE_MISSING', field, `set the environment variable ${envName}`);
  return value;
}

const program = new Command('rogatory-relay')
  .description('Rogatory relay: store-and-forward of sealed dossiers')
  .showHelpAfterError()
  .addHelpText('after', EXIT_CODES_HELP);

program
  .command('start')
  .description('start the relay and run until SIGINT/SIGTERM, then drain and stop')
  .requiredOption('-c, --config <file>', 'configuration file (YAML or JSON)')
  .option('--json', 'report a failure to start as JSON on stdout')
  .action(
    action(async (opts: { config: string; json?: boolean }) => {
      const config = await loadRelayConfig(opts.config);
      // Signature checks and acceptance signing are most of a submission's CPU: libsodium compiled natively, same rules.
      const crypto = useNativeCrypto();
      // The checks of `check-config` (preflight.ts), then the backend.
      const options = await relayOptionsFromConfig(config, process.env, opts.config);
      const host = config.relay.host ?? '127.0.0.1';
      let relay: Awaited<ReturnType<typeof startRelay>>;
      try {
        relay = await startRelay(options, { host, port: config.relay.port });
      } catch (err) {
        await Promise.allSettled([options.backend.close(), options.blobs.close()]);
        const code = (err as { code?: unknown } | null)?.code;
        if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL')
          throw new RelaySetupError(
            'CONFIG_INVALID',
            [
              {
                field: 'relay.port',
                message: `cannot listen on ${host}:${String(config.relay.port)}: ${code === 'EADDRINUSE' ? 'address in use' : code === 'EACCES' ? 'permission denied' : 'address not available'}`,
              },
            ],
            { file: opts.config },
          );
        throw err;
      }
      relay.app.log.info(
        { relay: config.relay.id, url: relay.url, backend: config.backend.kind, crypto },
        'relay started',
      );
      let signals = 0;
      const shutdown = (signal: string) => {
        signals++;
        if (signals > 1) process.exit(1);
        relay.app.log.info({ signal }, 'draining');
        relay.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      // SIGHUP: re-read relay.tls (renewed certificate) without dropping connections; logs the outcome.
      process.on('SIGHUP', () => {
        void relay.reloadTls();
      });
      return undefined;
    }),
  );

program
  .command('keygen')
  .description(
    'create a relay identity key, sealed with the passphrase in $ROGATORY_RELAY_PASSPHRASE; prints its public key for the manifest',
  )
  .requiredOption('-o, --out <file>', 'where to write the sealed key (must not exist)')
  .option('--valid-days <days>', 'validity of the published key', '730')
  .option('--json', 'report a failure as JSON (the key reference is JSON anyway)')
  .action(
    action(async (opts: { out: string; validDays: string; json?: boolean }) => {
      if (!/^\d+$/.test(opts.validDays) || Number(opts.validDays) < 1)
        throw usageError('--valid-days', 'a whole number of days, at least 1');
      await ready();
      const passphrase = passphraseFrom('ROGATORY_RELAY_PASSPHRASE', '');
      const key = generateSigningKeyPair();
      try {
        await writeFile(
          opts.out,
          JSON.stringify(
            sealSigningKey(key, {
              passphrase,
              purpose: 'relay-identity',
              limits: KDF_LIMITS.moderate,
            }),
            null,
            2,
          ),
          { mode: 0o600, flag: 'wx' },
        );
      } catch (err) {
        const code = (err as { code?: unknown } | null)?.code;
        throw usageError(
          '--out',
          `${opts.out}: ${code === 'EEXIST' ? 'exists already' : fsReason(err)}`,
        );
      }
      const now = Date.now();
      process.stdout.write(
        `${JSON.stringify(keyRef(key, { notBefore: now, notAfter: now + Number(opts.validDays) * 86_400_000 }), null, 2)}\n`,
      );
      return 0;
    }),
  );

const keys = program.command('keys').description("the relay's signing key");
keys
  .command('rotate')
  .description(
    'make a new relay key (sealed beside the configured key file) and print the KeyRotation for `rogatory-network relay update <id> --rotation`; the running relay switches to it once an applied edition lists it and effectiveAt has come',
  )
  .requiredOption('-c, --config <file>', 'configuration file (YAML or JSON)')
  .option('--out <file>', 'also write the rotation statement to this file (must not exist)')
  .option(
    '--effective-in-days <days>',
    'effectiveAt this many days from now (default 7, at most 30)',
  )
  .option('--json', 'print { rotation, oldKid, newKid, effectiveAt }')
  .action(
    action(
      async (opts: { config: string; out?: string; effectiveInDays?: string; json?: boolean }) => {
        await ready();
        const config = await loadRelayConfig(opts.config);
        const envName = config.identity.passphraseEnv ?? 'ROGATORY_RELAY_PASSPHRASE';
        const passphrase = passphraseFrom(envName, 'identity.passphraseEnv');
        if (opts.out !== undefined && (await exists(opts.out)))
          throw usageError('--out', `${opts.out}: exists already`);
        const now = Date.now();
        let effectiveAt: number | undefined;
        if (opts.effectiveInDays !== undefined) {
          if (!/^\d+$/.test(opts.effectiveInDays) || Number(opts.effectiveInDays) < 1)
            throw usageError('--effective-in-days', 'a whole number of days, at least 1');
          effectiveAt = now + Number(opts.effectiveInDays) * 86_400_000;
        }
        const result = await rotateRelayKey({
          relayId: config.relay.id,
          keyFile: config.identity.keyFile,
          passphrase,
          now,
          ...(effectiveAt === undefined ? {} : { effectiveAt }),
        });
        if (opts.out !== undefined)
          await writeFile(opts.out, `${JSON.stringify(result.rotation, null, 2)}\n`, {
            mode: 0o644,
            flag: 'wx',
          });
        if (opts.json === true) {
          process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
          return 0;
        }
        process.stderr.write(
          `new relay key ${result.newKid} replaces ${result.oldKid} from ${new Date(result.effectiveAt).toISOString()}; the secretariat must publish before then\n`,
        );
        process.stdout.write(`${JSON.stringify(result.rotation, null, 2)}\n`);
        return 0;
      },
    ),
  );

program
  .command('check-config')
  .description(
    'run the checks `start` runs before it listens, and list each: configuration, key (unseals with its passphrase), trust (manifests verify against the pinned root), listed (the manifest lists this relay with this key), secrets, storage (folders writable); --connect also reaches the backend',
  )
  .requiredOption('-c, --config <file>', 'configuration file (YAML or JSON)')
  .option('--connect', 'also reach the backend (Redis PING, the S3 bucket)')
  .option(
    '--json',
    'print { ok, file, relayId, backend, checks: [{ name, status, detail, error? }] }',
  )
  .action(
    action((opts: { config: string; connect?: boolean; json?: boolean }) =>
      checkConfigCommand(opts),
    ),
  );

program
  .command('queue')
  .description(
    'what waits in the relay, read from its backend: mailboxes with waiting items (count, oldest), the forward backlog per peer network (count, oldest, next attempt), non-deliveries due (expired envelopes not yet reported)',
  )
  .requiredOption('-c, --config <file>', 'configuration file (YAML or JSON)')
  .option(
    '--json',
    'print { relayId, backend, at, mailboxes, forwards, nonDeliveries } (times in ms since the epoch, ages in ms)',
  )
  .action(action((opts: { config: string; json?: boolean }) => queueCommand(opts)));

registerMigrateBackend(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.exitCode = reportFailure(err, process.argv.includes('--json'));
});

function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
