/**
 * The checks a relay passes before it listens, in one place: `start`
 * (relayOptionsFromConfig) and `check-config` both run them, so they cannot
 * drift. Each check fails with a RelaySetupError naming the configuration
 * field, the file and the reason; none prints a value read from a file or
 * the environment.
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  KeyRefSchema,
  TrustStore,
  fromBase64url,
  fromHex,
  isProtocolError,
  networkOf,
  ready,
  validator,
} from '@rogatory/protocol';
import { Redis } from 'ioredis';
import type { RelayConfig } from './config.js';
import { openRelayKeyring, type RelayKeyring } from './key-rotation.js';
import {
  RelayTlsError,
  readTlsMaterial,
  type RelayTlsFiles,
  type RelayTlsMaterial,
} from './tls.js';
import {
  RelaySetupError,
  fsReason,
  setupFail,
  type RelaySetupCode,
  type SetupIssue,
} from './setup-errors.js';

const keyRefShape = validator(KeyRefSchema, 'root key');

export type CheckName =
  'config' | 'tls' | 'key' | 'trust' | 'listed' | 'secrets' | 'storage' | 'backend';

export interface CheckResult {
  readonly name: CheckName;
  readonly status: 'ok' | 'failed' | 'skipped';
  /** What was checked (ok), why it failed, or which failed check it depends on (skipped). */
  readonly detail: string;
  readonly error?: {
    readonly code: RelaySetupCode;
    readonly issues: readonly SetupIssue[];
  };
}

/** What the checks opened, for `start`. */
export interface Prepared {
  readonly key: RelayKeyring;
  readonly trust: TrustStore;
  readonly sessionSecret: Uint8Array;
  readonly trustDir: string;
}

export interface PreflightReport {
  readonly ok: boolean;
  readonly checks: readonly CheckResult[];
  /** Present when every check passed. */
  readonly prepared?: Prepared;
  /** The first failure, as thrown by its check. */
  readonly error?: RelaySetupError;
}

export interface PreflightOptions {
  /** The configuration file as the operator named it (prefixes every message). */
  readonly file?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Also reach the backend (Redis PING, the S3 bucket); `start` opens it anyway. */
  readonly connect?: boolean;
  /** Stop at the first failure (start) or run every check that does not depend on a failed one (check-config). */
  readonly stopAtFirstFailure?: boolean;
}

/**
 * Run the pre-start checks in order: key (passphrase set, key file unseals),
 * trust (root and manifests read and verify), listed (the own manifest
 * lists this relay id with this key), secrets (session secret, S3
 * credentials), storage (data and trust folders writable), and with
 * `connect` the backend.
 */
export async function preflight(
  config: RelayConfig,
  options: PreflightOptions = {},
): Promise<PreflightReport> {
  const env = options.env ?? process.env;
  const file = options.file;
  const checks: CheckResult[] = [];
  let firstError: RelaySetupError | undefined;

  const run = async <T>(
    name: CheckName,
    needs: readonly CheckName[],
    fn: () => Promise<{ value: T; detail: string }>,
  ): Promise<T | undefined> => {
    if (firstError !== undefined && options.stopAtFirstFailure === true) return undefined;
    const failedNeed = needs.find((n) => checks.find((c) => c.name === n)?.status !== 'ok');
    if (failedNeed !== undefined) {
      checks.push({ name, status: 'skipped', detail: `needs the ${failedNeed} check` });
      return undefined;
    }
    try {
      const { value, detail } = await fn();
      checks.push({ name, status: 'ok', detail });
      return value;
    } catch (err) {
      if (!(err instanceof RelaySetupError)) throw err;
      const error = err.file === undefined ? withFile(err, file) : err;
      firstError ??= error;
      checks.push({
        name,
        status: 'failed',
        detail: error.message,
        error: { code: error.code, issues: error.issues },
      });
      return undefined;
    }
  };

  await ready();
  if (config.relay.tls)
    await run('tls', [], async () => {
      const material = await tlsMaterialChecked(config.relay.tls!);
      return {
        value: true,
        detail: `certificate ${material.info.subject} valid until ${material.info.notAfter}`,
      };
    });
  const key = await run('key', [], async () => {
    const keyring = await openKey(config, env);
    return { value: keyring, detail: `key ${keyring.kid} opens` };
  });
  const trust = await run('trust', [], async () => {
    const store = await loadTrustChecked(config);
    return {
      value: store,
      detail: `${String(config.trust.manifestFiles.length)} manifest(s) verify against the pinned root`,
    };
  });
  await run('listed', ['key', 'trust'], () => {
    checkListed(config, key!, trust!);
    return Promise.resolve({
      value: true,
      detail: `${config.relay.id} is listed with key ${key!.kid}`,
    });
  });
  const sessionSecret = await run('secrets', [], () =>
    Promise.resolve({ value: readSecrets(config, env), detail: 'secrets are set' }),
  );
  const trustDir = await run('storage', [], async () => {
    const dirs = await checkFolders(config);
    return { value: dirs.trustDir, detail: `${dirs.checked.join(', ')} writable` };
  });
  if (options.connect === true)
    await run('backend', [], async () => ({
      value: true,
      detail: await pingBackend(config, env),
    }));

  if (firstError !== undefined || !key || !trust || !sessionSecret || trustDir === undefined)
    return { ok: false, checks, ...(firstError ? { error: firstError } : {}) };
  return { ok: true, checks, prepared: { key, trust, sessionSecret, trustDir } };
}

/** The checks `start` runs: the prepared key, trust and secrets, or the first failure thrown. */
export async function preflightOrThrow(
  config: RelayConfig,
  options: Omit<PreflightOptions, 'stopAtFirstFailure'> = {},
): Promise<Prepared> {
  const report = await preflight(config, { ...options, stopAtFirstFailure: true });
  if (report.prepared) return report.prepared;
  throw report.error ?? new RelaySetupError('CONFIG_INVALID', [{ field: '', message: 'invalid' }]);
}

/** The certificate and key of `relay.tls`, or TLS_FILE_REFUSED naming the field, the file and why. */
export async function tlsMaterialChecked(files: RelayTlsFiles): Promise<RelayTlsMaterial> {
  try {
    return await readTlsMaterial(files);
  } catch (err) {
    if (err instanceof RelayTlsError)
      return setupFail('TLS_FILE_REFUSED', err.field, `${err.file}: ${err.reason}`);
    throw err;
  }
}

function withFile(err: RelaySetupError, file: string | undefined): RelaySetupError {
  if (file === undefined) return err;
  return new RelaySetupError(err.code, err.issues, { file, cause: err.cause });
}

/** A file the configuration names: its text, or FILE_UNREADABLE naming the field and the path. */
async function readNamed(field: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    return setupFail('FILE_UNREADABLE', field, `${path}: ${fsReason(err)}`);
  }
}

function parseJson(code: RelaySetupCode, field: string, path: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return setupFail(code, field, `${path}: not JSON`);
  }
}

async function openKey(config: RelayConfig, env: NodeJS.ProcessEnv): Promise<RelayKeyring> {
  const envName = config.identity.passphraseEnv ?? 'ROGATORY_RELAY_PASSPHRASE';
  const passphrase = env[envName];
  if (passphrase === undefined || passphrase === '')
    setupFail(
      'KEY_PASSPHRASE_MISSING',
      'identity.passphraseEnv',
      `set the environment variable ${envName} to the key file's passphrase`,
    );
  const keyFile = config.identity.keyFile;
  parseJson(
    'KEY_UNSEALABLE',
    'identity.keyFile',
    keyFile,
    await readNamed('identity.keyFile', keyFile),
  );
  try {
    return await openRelayKeyring({ keyFile, passphrase });
  } catch (err) {
    if (err instanceof RelaySetupError) throw err;
    const why = isProtocolError(err, 'PASSPHRASE_INVALID')
      ? `does not open with the passphrase in ${envName} (wrong passphrase or damaged file)`
      : isProtocolError(err)
        ? `not a sealed relay identity key (${err.code})`
        : 'not a sealed relay identity key, or its pending rotation beside it is damaged';
    return setupFail('KEY_UNSEALABLE', 'identity.keyFile', `${keyFile}: ${why}`, { cause: err });
  }
}

/** Trust store pinned to the relay's own root, with its manifests; each failure names its file. */
export async function loadTrustChecked(config: RelayConfig): Promise<TrustStore> {
  const { rootFile, manifestFiles } = config.trust;
  const rootValue = parseJson(
    'TRUST_INVALID',
    'trust.rootFile',
    rootFile,
    await readNamed('trust.rootFile', rootFile),
  );
  if (!keyRefShape.check(rootValue))
    setupFail('TRUST_INVALID', 'trust.rootFile', `${rootFile}: not a root KeyRef`);
  const manifests: { field: string; path: string; value: unknown }[] = [];
  for (const [index, path] of manifestFiles.entries()) {
    const field = `trust.manifestFiles[${String(index)}]`;
    manifests.push({
      field,
      path,
      value: parseJson('TRUST_INVALID', field, path, await readNamed(field, path)),
    });
  }
  const own = networkOfManifest(manifests[0]!);
  const relayNetwork = networkOf(config.relay.id);
  if (own !== relayNetwork)
    setupFail(
      'TRUST_INVALID',
      'trust.manifestFiles[0]',
      `${manifests[0]!.path}: is the manifest of network ${own}, not of ${relayNetwork} (relay.id): the own network's manifest comes first`,
    );
  const trust = new TrustStore({ pinned: [{ network: own, root: rootValue }] });
  const now = Date.now();
  for (const [index, m] of manifests.entries()) {
    try {
      trust.addManifest(m.value, { now });
    } catch (err) {
      const code = isProtocolError(err) ? err.code : 'INVALID';
      const why =
        index === 0
          ? `does not verify against the pinned root in trust.rootFile (${code})`
          : `does not verify against the anchor the own manifest publishes for its network (${code})`;
      setupFail('TRUST_INVALID', m.field, `${m.path}: ${why}`, { cause: err });
    }
  }
  return trust;
}

function networkOfManifest(m: { field: string; path: string; value: unknown }): string {
  const network = (m.value as { body?: { network?: unknown } } | null)?.body?.network;
  if (typeof network !== 'string')
    setupFail('TRUST_INVALID', m.field, `${m.path}: not a signed network manifest`);
  return network;
}

function checkListed(config: RelayConfig, key: RelayKeyring, trust: TrustStore): void {
  const network = networkOf(config.relay.id);
  const kids = key.kids();
  const entry = trust.relays(network).find((r) => r.id === config.relay.id);
  if (!entry)
    setupFail(
      'KEY_NOT_IN_MANIFEST',
      'relay.id',
      `${config.relay.id} is not listed as a relay in the ${network} manifest (${config.trust.manifestFiles[0] ?? ''})`,
    );
  if (!kids.includes(entry.key.kid))
    setupFail(
      'KEY_NOT_IN_MANIFEST',
      'identity.keyFile',
      `${config.identity.keyFile}: key ${key.kid} is not the key the ${network} manifest lists for ${config.relay.id} (${entry.key.kid})`,
    );
}

function readSecrets(config: RelayConfig, env: NodeJS.ProcessEnv): Uint8Array {
  const issues: SetupIssue[] = [];
  const name = config.sessionSecretEnv ?? 'ROGATORY_RELAY_SESSION_SECRET';
  const text = env[name];
  let secret: Uint8Array | undefined;
  if (text === undefined || text === '')
    issues.push({
      field: 'sessionSecretEnv',
      message: `set the environment variable ${name} (32 bytes or more, hex or base64url, the same on every instance)`,
    });
  else {
    try {
      secret =
        /^[0-9a-f]+$/.test(text) && text.length % 2 === 0
          ? fromHex(text)
          : fromBase64url(text, 'session secret');
    } catch {
      secret = undefined;
    }
    if (secret === undefined || secret.length < 32)
      issues.push({
        field: 'sessionSecretEnv',
        message: `${name} must hold at least 32 bytes, hex or base64url`,
      });
  }
  const s3 = config.backend.s3;
  if (s3) {
    for (const [field, envName] of [
      ['backend.s3.accessKeyEnv', s3.accessKeyEnv ?? 'ROGATORY_S3_ACCESS_KEY'],
      ['backend.s3.secretKeyEnv', s3.secretKeyEnv ?? 'ROGATORY_S3_SECRET_KEY'],
    ] as const) {
      if (!env[envName]) issues.push({ field, message: `set the environment variable ${envName}` });
    }
  }
  if (issues.length > 0 || secret === undefined)
    throw new RelaySetupError('SECRET_MISSING', issues);
  return secret;
}

/**
 * Where the relay keeps its key transparency state: `trust.dir`, or
 * `<backend.dataDir>/trust`. Local to the instance, with either backend.
 */
export function trustDirOf(config: RelayConfig): string {
  if (config.trust.dir) return config.trust.dir;
  if (config.backend.dataDir) return join(config.backend.dataDir, 'trust');
  return setupFail('CONFIG_INVALID', 'trust.dir', 'required when backend.dataDir is not set');
}

/**
 * A folder the relay will write to: it exists and takes a probe file, or
 * the nearest existing ancestor is a writable folder (the relay creates the
 * rest). Nothing is created.
 */
async function checkWritable(path: string): Promise<void> {
  let at = path;
  for (;;) {
    let info;
    try {
      info = await stat(at);
    } catch (err) {
      const parent = dirname(at);
      if ((err as { code?: unknown } | null)?.code === 'ENOENT' && parent !== at) {
        at = parent;
        continue;
      }
      throw err;
    }
    if (!info.isDirectory())
      throw Object.assign(new Error('not a folder'), {
        code: at === path ? 'ENOTDIR_SELF' : 'ENOTDIR',
      });
    await access(at, constants.W_OK);
    if (at !== path) return;
    const probe = join(path, `.rogatory-write-check-${randomUUID()}`);
    await writeFile(probe, '', { flag: 'wx' });
    await rm(probe, { force: true });
    return;
  }
}

/** Every folder the relay writes to (data, trust state) is writable or can be created. */
async function checkFolders(config: RelayConfig): Promise<{ trustDir: string; checked: string[] }> {
  const folders: { field: string; path: string }[] = [];
  if (config.backend.dataDir)
    folders.push({ field: 'backend.dataDir', path: config.backend.dataDir });
  const trustDir = trustDirOf(config);
  folders.push({ field: config.trust.dir ? 'trust.dir' : 'backend.dataDir', path: trustDir });
  const issues: SetupIssue[] = [];
  for (const { field, path } of folders) {
    try {
      await checkWritable(path);
    } catch (err) {
      const why =
        (err as { code?: unknown } | null)?.code === 'ENOTDIR_SELF'
          ? 'is a file, not a folder'
          : `not writable: ${fsReason(err)}`;
      issues.push({ field, message: `${path}: ${why}` });
    }
  }
  if (issues.length > 0) throw new RelaySetupError('DIR_UNWRITABLE', issues);
  return { trustDir, checked: folders.map((f) => f.path) };
}

const CONNECT_TIMEOUT_MS = 5_000;

/** Reach the backend the configuration names, without opening it (nothing is created or migrated). */
async function pingBackend(config: RelayConfig, env: NodeJS.ProcessEnv): Promise<string> {
  const { backend } = config;
  const reached: string[] = [];
  if (backend.kind === 'redis' && backend.redis) {
    const redis = backend.redis;
    const options = {
      lazyConnect: true,
      connectTimeout: CONNECT_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    };
    const client =
      redis.sentinel === undefined
        ? new Redis(redis.url ?? '', options)
        : new Redis({
            sentinels: redis.sentinel.sentinels.map((s) => ({ host: s.host, port: s.port })),
            name: redis.sentinel.name,
            sentinelRetryStrategy: () => null,
            ...options,
          });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      reached.push('Redis answers PING');
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      setupFail(
        'BACKEND_UNREACHABLE',
        redis.sentinel === undefined ? 'backend.redis.url' : 'backend.redis.sentinel',
        `Redis cannot be reached${typeof code === 'string' ? ` (${code})` : ''}`,
      );
    } finally {
      client.disconnect();
    }
  }
  if (backend.s3) {
    const { S3BlobStore } = await import('@rogatory/storage');
    try {
      const store = await S3BlobStore.open({
        endPoint: backend.s3.endPoint,
        port: backend.s3.port,
        useSSL: backend.s3.useSSL,
        accessKey: env[backend.s3.accessKeyEnv ?? 'ROGATORY_S3_ACCESS_KEY'] ?? '',
        secretKey: env[backend.s3.secretKeyEnv ?? 'ROGATORY_S3_SECRET_KEY'] ?? '',
        bucket: backend.s3.bucket,
        prefix: backend.s3.prefix ?? '',
        region: backend.s3.region ?? 'us-east-1',
        createBucket: false,
      });
      await store.close();
      reached.push(`bucket ${backend.s3.bucket} exists`);
    } catch (err) {
      // Reached, without the bucket: `start` creates it (check-config creates nothing).
      if ((err as { message?: unknown } | null)?.message === 'the bucket does not exist') {
        reached.push(`the object store answers; bucket ${backend.s3.bucket} is created at start`);
        return reached.join('; ');
      }
      const code = (err as { code?: unknown } | null)?.code;
      setupFail(
        'BACKEND_UNREACHABLE',
        'backend.s3',
        `the object store cannot be reached or has no bucket ${backend.s3.bucket}${typeof code === 'string' ? ` (${code})` : ''}`,
      );
    }
  }
  if (backend.kind === 'embedded') reached.push('embedded backend (a file in backend.dataDir)');
  return reached.join('; ');
}
