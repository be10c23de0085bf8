import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { AddressSchema, NetworkIdSchema, validator } from '@rogatory/protocol';
import { Type, type Static } from 'typebox';
import { parse as parseYaml } from 'yaml';
import { schemaIssues } from './config-issues.js';
import { RelaySetupError, fsReason, setupFail, type SetupIssue } from './setup-errors.js';

const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const Positive = Type.Integer({ minimum: 1 });

/** The relay configuration file (YAML or JSON). infra/relay.example.yaml documents every field. */
export const RelayConfigSchema = Type.Object(
  {
    relay: Type.Object(
      {
        id: AddressSchema,
        host: Type.Optional(Type.String({ default: '127.0.0.1' })),
        port: Port,
        /**
         * Serve HTTPS and WSS directly from these PEM files (absent: plain
         * HTTP behind a TLS proxy). SIGHUP reloads them without dropping
         * connections; a file that does not load leaves the old ones serving.
         */
        tls: Type.Optional(
          Type.Object(
            {
              /** The certificate, or the full chain (leaf first), in PEM. */
              certFile: Type.String({ minLength: 1 }),
              /** Its private key in PEM, unencrypted (readable by the relay only). */
              keyFile: Type.String({ minLength: 1 }),
              /** Intermediate CA certificates (PEM) sent with the leaf, when certFile holds the leaf only. */
              caFile: Type.Optional(Type.String({ minLength: 1 })),
            },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false },
    ),
    identity: Type.Object(
      {
        /** Passphrase-sealed Ed25519 key of the relay (rogatory-relay keygen). */
        keyFile: Type.String(),
        /** Environment variable holding the key file's passphrase. */
        passphraseEnv: Type.Optional(Type.String({ default: 'ROGATORY_RELAY_PASSPHRASE' })),
      },
      { additionalProperties: false },
    ),
    trust: Type.Object(
      {
        /** File with the pinned root KeyRef of the relay's own network (JSON). */
        rootFile: Type.String(),
        /** Signed manifests: own network first, then peers (JSON files). */
        manifestFiles: Type.Array(Type.String(), { minItems: 1 }),
        /** Override a peer network's relay URL (split-horizon DNS, tests). */
        peerUrls: Type.Optional(Type.Record(NetworkIdSchema, Type.String())),
        /**
         * Folder of the key transparency state (publication chains, witness
         * state); default `<backend.dataDir>/trust`. Local to the instance,
         * also with the Redis backend: the witness must run as one instance
         * per relay id, or every instance must share this folder.
         */
        dir: Type.Optional(Type.String()),
        /** How often peer networks' publication chains are fetched (default 60). */
        pollSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
      },
      { additionalProperties: false },
    ),
    backend: Type.Object(
      {
        kind: Type.Union([Type.Literal('embedded'), Type.Literal('redis')]),
        /** Embedded: directory holding relay.db and chunks/. */
        dataDir: Type.Optional(Type.String()),
        redis: Type.Optional(
          Type.Object(
            {
              /** A single Redis: redis://host:port. Give this or `sentinel`. */
              url: Type.Optional(Type.String({ minLength: 1 })),
              /** Redis behind Sentinel: the sentinels and the monitored primary's name. */
              sentinel: Type.Optional(
                Type.Object(
                  {
                    sentinels: Type.Array(
                      Type.Object(
                        { host: Type.String({ minLength: 1 }), port: Port },
                        { additionalProperties: false },
                      ),
                      { minItems: 1, maxItems: 16 },
                    ),
                    name: Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' }),
                  },
                  { additionalProperties: false },
                ),
              ),
              /** Replicas that must confirm an accepted envelope before the relay answers (WAIT); default 0. */
              replicasToAck: Type.Optional(Type.Integer({ minimum: 0, maximum: 16 })),
              prefix: Type.String({ pattern: '^[A-Za-z0-9:_-]{1,64}$' }),
            },
            { additionalProperties: false },
          ),
        ),
        s3: Type.Optional(
          Type.Object(
            {
              endPoint: Type.String(),
              port: Port,
              useSSL: Type.Boolean(),
              accessKeyEnv: Type.Optional(Type.String({ default: 'ROGATORY_S3_ACCESS_KEY' })),
              secretKeyEnv: Type.Optional(Type.String({ default: 'ROGATORY_S3_SECRET_KEY' })),
              bucket: Type.String(),
              prefix: Type.Optional(Type.String({ default: '' })),
              region: Type.Optional(Type.String({ default: 'us-east-1' })),
            },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false },
    ),
    /** Environment variable holding the session secret shared by all instances (>= 32 bytes, base64url or hex). */
    sessionSecretEnv: Type.Optional(Type.String({ default: 'ROGATORY_RELAY_SESSION_SECRET' })),
    /** Lifetime of a node session token (default 30 minutes); short ones let a conformance run check expiry. */
    sessionTtlMs: Type.Optional(Type.Integer({ minimum: 5000, maximum: 24 * 3600 * 1000 })),
    limits: Type.Optional(
      Type.Object(
        {
          maxEnvelopeBytes: Type.Optional(Positive),
          maxChunkBytes: Type.Optional(Positive),
          maxTotalBytes: Type.Optional(Positive),
          maxRecipients: Type.Optional(Positive),
          submitPerMinute: Type.Optional(Positive),
          requestsPerMinute: Type.Optional(Positive),
          loginPerMinute: Type.Optional(Positive),
          badTokensPerMinute: Type.Optional(Positive),
          maxWebSocketsPerNode: Type.Optional(Positive),
          pendingBytesPerNode: Type.Optional(Positive),
          heldBytesPerNode: Type.Optional(Positive),
          pendingBytesPerPeer: Type.Optional(Positive),
          heldBytesPerPeer: Type.Optional(Positive),
          trustPerMinute: Type.Optional(Positive),
        },
        { additionalProperties: false },
      ),
    ),
    connections: Type.Optional(
      Type.Object(
        {
          maxPerAddress: Type.Optional(Type.Integer({ minimum: 0 })),
          headersTimeoutMs: Type.Optional(Positive),
          requestTimeoutMs: Type.Optional(Positive),
          keepAliveTimeoutMs: Type.Optional(Positive),
        },
        { additionalProperties: false },
      ),
    ),
    retention: Type.Optional(
      Type.Object(
        {
          mailboxMs: Type.Optional(Positive),
          chunkRetentionMs: Type.Optional(Type.Integer({ minimum: 0 })),
          uploadGraceMs: Type.Optional(Positive),
          gcIntervalMs: Type.Optional(Positive),
        },
        { additionalProperties: false },
      ),
    ),
    forwarding: Type.Optional(
      Type.Object(
        {
          concurrency: Type.Optional(Positive),
          backoffBaseMs: Type.Optional(Positive),
          backoffMaxMs: Type.Optional(Positive),
          jitter: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
          requestTimeoutMs: Type.Optional(Positive),
        },
        { additionalProperties: false },
      ),
    ),
    logLevel: Type.Optional(Type.Enum(['fatal', 'error', 'warn', 'info', 'debug'])),
  },
  { additionalProperties: false },
);
export type RelayConfig = Static<typeof RelayConfigSchema>;
const configShape = validator(RelayConfigSchema, 'relay configuration');

/**
 * Environment overrides: ROGATORY_RELAY__<PATH> where PATH is the config
 * path with `__` between levels, e.g. ROGATORY_RELAY__RELAY__PORT=8443 or
 * ROGATORY_RELAY__BACKEND__KIND=redis. Values are parsed as JSON when they
 * parse (numbers, booleans, arrays), as strings otherwise.
 */
export function applyEnvOverrides(
  config: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  const prefix = 'ROGATORY_RELAY__';
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(prefix) || raw === undefined) continue;
    const path = name
      .slice(prefix.length)
      .split('__')
      .map((part) => part.toLowerCase().replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()));
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    let target = config;
    for (const key of path.slice(0, -1)) {
      const next = target[key];
      target[key] = typeof next === 'object' && next !== null ? next : {};
      target = target[key] as Record<string, unknown>;
    }
    // Keys are matched case-insensitively against existing ones (maxEnvelopeBytes from MAXENVELOPEBYTES).
    const last = path.at(-1)!;
    const existing = Object.keys(target).find((k) => k.toLowerCase() === last.toLowerCase());
    target[existing ?? last] = value;
  }
  return config;
}

/**
 * Read, override from the environment, validate, and resolve relative paths
 * against the file's folder. Every failure is a RelaySetupError naming the
 * file and, for each issue, the field: CONFIG_FILE_UNREADABLE (missing,
 * a folder, no permission) or CONFIG_INVALID (YAML/JSON syntax with line
 * and column, every schema issue with its path).
 */
export async function loadRelayConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RelayConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return setupFail('CONFIG_FILE_UNREADABLE', '', fsReason(err), { file });
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    return setupFail('CONFIG_INVALID', '', yamlReason(err), { file });
  }
  parsed ??= {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    return setupFail('CONFIG_INVALID', '', 'must be a mapping of fields (YAML or JSON object)', {
      file,
    });
  const raw = applyEnvOverrides(parsed as Record<string, unknown>, env);
  if (!configShape.check(raw))
    throw new RelaySetupError(
      'CONFIG_INVALID',
      withEnvSources(schemaIssues(RelayConfigSchema, raw), env),
      { file },
    );
  const config: RelayConfig = raw;
  const issues: SetupIssue[] = [];
  // The key transparency state is local to the instance: with Redis and an object store there is no data directory to put it in.
  if (config.trust.dir === undefined && config.backend.dataDir === undefined)
    issues.push({ field: 'trust.dir', message: 'required when backend.dataDir is not set' });
  const redis = config.backend.redis;
  if (redis && (redis.url === undefined) === (redis.sentinel === undefined))
    issues.push({ field: 'backend.redis', message: 'needs either url or sentinel (not both)' });
  if (config.backend.kind === 'redis' && !redis)
    issues.push({ field: 'backend.redis', message: 'required when backend.kind is redis' });
  if (config.backend.kind === 'embedded' && config.backend.dataDir === undefined)
    issues.push({ field: 'backend.dataDir', message: 'required when backend.kind is embedded' });
  if (config.backend.kind === 'redis' && !config.backend.s3 && config.backend.dataDir === undefined)
    issues.push({
      field: 'backend.dataDir',
      message: 'required without backend.s3 (where the chunks are kept)',
    });
  if (issues.length > 0)
    throw new RelaySetupError('CONFIG_INVALID', withEnvSources(issues, env), { file });
  const base = dirname(resolve(file));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const tls = config.relay.tls;
  return {
    ...config,
    relay: {
      ...config.relay,
      ...(tls
        ? {
            tls: {
              certFile: abs(tls.certFile),
              keyFile: abs(tls.keyFile),
              ...(tls.caFile === undefined ? {} : { caFile: abs(tls.caFile) }),
            },
          }
        : {}),
    },
    identity: { ...config.identity, keyFile: abs(config.identity.keyFile) },
    trust: {
      ...config.trust,
      rootFile: abs(config.trust.rootFile),
      manifestFiles: config.trust.manifestFiles.map(abs),
      ...(config.trust.dir ? { dir: abs(config.trust.dir) } : {}),
    },
    backend: {
      ...config.backend,
      ...(config.backend.dataDir ? { dataDir: abs(config.backend.dataDir) } : {}),
    },
  };
}

/** A YAML/JSON syntax error: its reason and where, without the quoted source (it may hold a value). */
function yamlReason(err: unknown): string {
  const e = err as { message?: unknown; linePos?: readonly { line: number; col: number }[] } | null;
  const message = typeof e?.message === 'string' ? e.message : '';
  const reason =
    message
      .split(/ at line \d+/)[0]
      ?.split('\n')[0]
      ?.trim() || 'syntax error';
  const pos = e?.linePos?.[0];
  return pos === undefined
    ? `not valid YAML or JSON: ${reason}`
    : `line ${String(pos.line)}, column ${String(pos.col)}: not valid YAML or JSON: ${reason}`;
}

/**
 * An issue in a field an environment override set says so (the file is not
 * where to look): `(set by ROGATORY_RELAY__RELAY__PORT)`. Names only, never the value.
 */
function withEnvSources(issues: readonly SetupIssue[], env: NodeJS.ProcessEnv): SetupIssue[] {
  const prefix = 'ROGATORY_RELAY__';
  const overrides = Object.keys(env)
    .filter((name) => name.startsWith(prefix) && env[name] !== undefined)
    .map((name) => ({
      name,
      path: name.slice(prefix.length).split('__').join('.').replace(/_/g, '').toLowerCase(),
    }));
  if (overrides.length === 0) return [...issues];
  return issues.map((issue) => {
    const field = issue.field.replace(/\[\d+\]/g, '').toLowerCase();
    const source = overrides.find((o) => field === o.path || field.startsWith(`${o.path}.`));
    return source ? { ...issue, message: `${issue.message} (set by ${source.name})` } : issue;
  });
}
