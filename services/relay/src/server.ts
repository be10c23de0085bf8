import { mkdir, readFile } from 'node:fs/promises';
import type { Server as HttpsServer } from 'node:https';
import { join } from 'node:path';
import { KeyRefSchema, TrustStore, validator } from '@rogatory/protocol';
import { FsBlobStore, S3BlobStore, type BlobStore } from '@rogatory/storage';
import type { FastifyInstance } from 'fastify';
import { buildRelayApp } from './app.js';
import { openEmbeddedBackend } from './backend/embedded.js';
import { openRedisBackend } from './backend/redis.js';
import type { RelayBackend } from './backend/types.js';
import type { RelayConfig } from './config.js';
import type { RelayOptions } from './options.js';
import { preflightOrThrow, tlsMaterialChecked } from './preflight.js';
import { RelaySetupError } from './setup-errors.js';
import {
  RelayTlsError,
  readTlsMaterial,
  type RelayCertificateInfo,
  type RelayTlsFiles,
  type RelayTlsMaterial,
} from './tls.js';

const keyRefShape = validator(KeyRefSchema, 'root key');

function requireEnv(env: NodeJS.ProcessEnv, name: string, what: string): string {
  const value = env[name];
  if (!value) throw new Error(`${what}: set the environment variable ${name}`);
  return value;
}

/** Trust store pinned to the relay's own root, with its manifests (own first, then peers). */
export async function loadTrust(config: RelayConfig['trust']): Promise<TrustStore> {
  const root = keyRefShape.parse(JSON.parse(await readFile(config.rootFile, 'utf8')));
  const manifests = await Promise.all(
    config.manifestFiles.map(
      async (f) => JSON.parse(await readFile(f, 'utf8')) as { body: { network: string } },
    ),
  );
  const own = manifests[0]!.body.network;
  const trust = new TrustStore({ pinned: [{ network: own, root }] });
  for (const m of manifests) trust.addManifest(m, { now: Date.now() });
  return trust;
}

export interface OpenedStores {
  readonly backend: RelayBackend;
  readonly blobs: BlobStore;
}

/** Background backend errors: logged by code only (an error may quote a payload). */
function logBackendError(err: unknown): void {
  const code =
    typeof (err as { code?: unknown } | null)?.code === 'string'
      ? (err as { code: string }).code
      : 'INTERNAL';
  process.stderr.write(
    `${JSON.stringify({ level: 50, time: Date.now(), msg: 'relay backend background error', code })}\n`,
  );
}

/** Open the backend and chunk store a configuration names. */
export async function openStores(
  config: RelayConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<OpenedStores> {
  const { backend } = config;
  let blobs: BlobStore;
  if (backend.s3) {
    blobs = await S3BlobStore.open({
      endPoint: backend.s3.endPoint,
      port: backend.s3.port,
      useSSL: backend.s3.useSSL,
      accessKey: requireEnv(
        env,
        backend.s3.accessKeyEnv ?? 'ROGATORY_S3_ACCESS_KEY',
        'S3 access key',
      ),
      secretKey: requireEnv(
        env,
        backend.s3.secretKeyEnv ?? 'ROGATORY_S3_SECRET_KEY',
        'S3 secret key',
      ),
      bucket: backend.s3.bucket,
      prefix: backend.s3.prefix ?? '',
      region: backend.s3.region ?? 'us-east-1',
    });
  } else {
    if (!backend.dataDir) throw new Error('backend.dataDir is required without backend.s3');
    blobs = await FsBlobStore.open({ dir: join(backend.dataDir, 'chunks'), workerIo: true });
  }
  if (backend.kind === 'redis') {
    if (!backend.redis) throw new Error('backend.redis is required for kind redis');
    return {
      backend: await openRedisBackend({
        ...(backend.redis.url === undefined ? {} : { url: backend.redis.url }),
        ...(backend.redis.sentinel === undefined ? {} : { sentinel: backend.redis.sentinel }),
        ...(backend.redis.replicasToAck === undefined
          ? {}
          : { replicasToAck: backend.redis.replicasToAck }),
        prefix: backend.redis.prefix,
        onError: logBackendError,
      }),
      blobs,
    };
  }
  if (!backend.dataDir) throw new Error('backend.dataDir is required for kind embedded');
  await mkdir(backend.dataDir, { recursive: true });
  return {
    backend: await openEmbeddedBackend({
      file: join(backend.dataDir, 'relay.db'),
      onError: logBackendError,
    }),
    blobs,
  };
}

export { trustDirOf } from './preflight.js';

/** How the relay serves: with `relay.tls`, HTTPS and WSS from these files (re-read on reload). */
export interface RelayServeTls {
  readonly tls?: { readonly files: RelayTlsFiles; readonly material: RelayTlsMaterial };
}

/** Everything `buildRelayApp` needs, from a configuration file's content and the environment. */
export async function relayOptionsFromConfig(
  config: RelayConfig,
  env: NodeJS.ProcessEnv = process.env,
  file?: string,
): Promise<RelayOptions & OpenedStores & RelayServeTls> {
  // TLS files first: a bad certificate or key is refused before the key is unsealed or a store opened.
  const tlsFiles = config.relay.tls;
  const tls = tlsFiles
    ? { files: tlsFiles, material: await tlsMaterialChecked(tlsFiles) }
    : undefined;
  // The same checks as `rogatory-relay check-config` (preflight.ts): key, trust, listing, secrets, folders.
  // Argon2id on a short-lived worker: in-process, libsodium's wasm memory would keep its memlimit.
  // With a pending rotation (rogatory-relay keys rotate), the key switches live (key-rotation.ts).
  const { key, trust, sessionSecret, trustDir } = await preflightOrThrow(config, {
    env,
    ...(file === undefined ? {} : { file }),
  });
  let stores: OpenedStores;
  try {
    stores = await openStores(config, env);
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    throw new RelaySetupError(
      'BACKEND_UNREACHABLE',
      [
        {
          field: config.backend.kind === 'redis' ? 'backend.redis' : 'backend.dataDir',
          message: `the ${config.backend.kind} backend cannot be opened${typeof code === 'string' ? ` (${code})` : ''}`,
        },
      ],
      { file, cause: err },
    );
  }
  const f = config.forwarding;
  return {
    relayId: config.relay.id,
    key,
    trust,
    ...stores,
    sessionSecret,
    ...(config.sessionTtlMs === undefined ? {} : { sessionTtlMs: config.sessionTtlMs }),
    ...(config.limits ? { limits: config.limits } : {}),
    ...(config.retention ? { retention: config.retention } : {}),
    ...(config.connections ? { connections: config.connections } : {}),
    forwarding: {
      ...(f?.concurrency ? { concurrency: f.concurrency } : {}),
      ...(f?.requestTimeoutMs ? { requestTimeoutMs: f.requestTimeoutMs } : {}),
      ...(f?.backoffBaseMs || f?.backoffMaxMs || f?.jitter !== undefined
        ? {
            backoff: {
              baseMs: f.backoffBaseMs ?? 500,
              maxMs: f.backoffMaxMs ?? 300_000,
              jitter: f.jitter ?? 0.5,
            },
          }
        : {}),
    },
    ...(config.trust.peerUrls ? { peerUrls: config.trust.peerUrls } : {}),
    trustDir,
    trustPollMs: (config.trust.pollSeconds ?? 60) * 1000,
    logger: { level: config.logLevel ?? 'info' },
    ...(tls ? { tls } : {}),
  };
}

/** Outcome of a TLS reload (also logged by reloadTls). */
export type TlsReloadOutcome =
  | { readonly reloaded: true; readonly certificate: RelayCertificateInfo }
  | { readonly reloaded: false; readonly reason: 'not-configured' }
  | { readonly reloaded: false; readonly reason: 'refused'; readonly error: RelayTlsError };

export interface RunningRelay {
  readonly app: FastifyInstance;
  readonly url: string;
  /** Drain in-flight work, then close the server and the stores. */
  stop(): Promise<void>;
  /**
   * Re-read `relay.tls` (SIGHUP) and serve new connections with it; open
   * connections keep theirs. A file that does not load is refused (logged
   * with its field, file and reason) and the previous certificate keeps
   * serving. Never rejects; reloads run one at a time.
   */
  reloadTls(): Promise<TlsReloadOutcome>;
}

/** Build, listen, and close the stores when the app closes. */
export async function startRelay(
  options: RelayOptions & OpenedStores & RelayServeTls,
  listen: { host: string; port: number },
): Promise<RunningRelay> {
  const tls = options.tls;
  const app = await buildRelayApp(options, tls ? { tls: tls.material } : {});
  app.addHook('onClose', async () => {
    await options.backend.close();
    await options.blobs.close();
  });
  const address = await app.listen({ host: listen.host, port: listen.port });
  if (tls) app.log.info({ certificate: tls.material.info }, 'serving TLS');
  let stopping: Promise<void> | undefined;
  let reloading: Promise<TlsReloadOutcome> = Promise.resolve({
    reloaded: false,
    reason: 'not-configured',
  });
  const reload = async (): Promise<TlsReloadOutcome> => {
    if (!tls) {
      app.log.warn('TLS reload asked, but relay.tls is not configured: nothing to reload');
      return { reloaded: false, reason: 'not-configured' };
    }
    try {
      const material = await readTlsMaterial(tls.files);
      (app.server as unknown as HttpsServer).setSecureContext({
        cert: material.cert,
        key: material.key,
        ...(material.ca === undefined ? {} : { ca: material.ca }),
      });
      app.log.info({ certificate: material.info }, 'TLS certificate reloaded');
      return { reloaded: true, certificate: material.info };
    } catch (err) {
      const error =
        err instanceof RelayTlsError
          ? err
          : new RelayTlsError('relay.tls.certFile', tls.files.certFile, 'refused by TLS');
      app.log.error(
        { code: error.code, field: error.field, file: error.file, reason: error.reason },
        `TLS reload refused, the previous certificate keeps serving: ${error.message}`,
      );
      return { reloaded: false, reason: 'refused', error };
    }
  };
  return {
    app,
    url: address,
    stop: () => (stopping ??= app.close()),
    reloadTls: () => (reloading = reloading.then(reload, reload)),
  };
}
