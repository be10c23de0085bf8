import { access, readFile, writeFile } from 'node:fs/promises';
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

const program = new Command('rogatory-relay')
  .description('Rogatory relay: store-and-forward of sealed dossiers')
  .showHelpAfterError();

program
  .command('start')
  .description('start the relay and run until SIGINT/SIGTERM, then drain and stop')
  .requiredOption('-c, --config <file>', 'configuration file (YAML or JSON)')
  .action(async (opts: { config: string }) => {
    const config = await loadRelayConfig(opts.config);
    // Signature checks and acceptance signing are most of a submission's CPU: libsodium compiled natively, same rules.
    const crypto = useNativeCrypto();
    const options = await relayOptionsFromConfig(config);
    const relay = await startRelay(options, {
      host: config.relay.host ?? '127.0.0.1',
      port: config.relay.port,
    });
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
  });

program
  .command('keygen')
  .description(
    'create a relay identity key, sealed with the passphrase in $ROGATORY_RELAY_PASSPHRASE; prints its public key for the manifest',
  )
  .requiredOption('-o, --out <file>', 'where to write the sealed key')
  .option('--valid-days <days>', 'validity of the published key', '730')
  .action(async (opts: { out: string; validDays: string }) => {
    await ready();
    const passphrase = process.env['ROGATORY_RELAY_PASSPHRASE'];
    if (!passphrase) throw new Error('set ROGATORY_RELAY_PASSPHRASE');
    const key = generateSigningKeyPair();
    await writeFile(
      opts.out,
      JSON.stringify(
        sealSigningKey(key, { passphrase, purpose: 'relay-identity', limits: KDF_LIMITS.moderate }),
        null,
        2,
      ),
      { mode: 0o600, flag: 'wx' },
    );
    const now = Date.now();
    process.stdout.write(
      `${JSON.stringify(keyRef(key, { notBefore: now, notAfter: now + Number(opts.validDays) * 86_400_000 }), null, 2)}\n`,
    );
  });

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
    async (opts: { config: string; out?: string; effectiveInDays?: string; json?: boolean }) => {
      await ready();
      const config = await loadRelayConfig(opts.config);
      const envName = config.identity.passphraseEnv ?? 'ROGATORY_RELAY_PASSPHRASE';
      const passphrase = process.env[envName];
      if (!passphrase) throw new Error(`set ${envName}`);
      if (opts.out !== undefined && (await exists(opts.out)))
        throw new Error(`${opts.out} exists already`);
      const now = Date.now();
      let effectiveAt: number | undefined;
      if (opts.effectiveInDays !== undefined) {
        if (!/^\d+$/.test(opts.effectiveInDays) || Number(opts.effectiveInDays) < 1)
          throw new Error('--effective-in-days: a whole number of days, at least 1');
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
        return;
      }
      process.stderr.write(
        `new relay key ${result.newKid} replaces ${result.oldKid} from ${new Date(result.effectiveAt).toISOString()}; the secretariat must publish before then\n`,
      );
      process.stdout.write(`${JSON.stringify(result.rotation, null, 2)}\n`);
    },
  );

program
  .command('check-config')
  .description('validate a configuration file')
  .requiredOption('-c, --config <file>', 'configuration file')
  .action(async (opts: { config: string }) => {
    const config = await loadRelayConfig(opts.config);
    await readFile(config.trust.rootFile);
    process.stdout.write(
      `configuration of ${config.relay.id} is valid (${config.backend.kind} backend)\n`,
    );
  });

registerMigrateBackend(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`rogatory-relay: ${err instanceof Error ? err.message : 'failed'}\n`);
  process.exit(2);
});

function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
