/**
 * The operator's command line, as the real bin (RELAY_BIN): every
 * configuration error names the file and the field, each failure class has
 * its exit code, `check-config` runs the checks `start` runs, and `queue`
 * reads what waits in the backend.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KDF_LIMITS, generateSigningKeyPair, ready, sealSigningKey } from '@rogatory/protocol';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { freePort, startRedis, type RedisServer } from '@rogatory/test-services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedisBackend } from '../src/backend/redis.js';
import { reportFailure } from '../src/cli/output.js';
import { loadRelayConfig, type RelayConfig } from '../src/config.js';
import { RELAY_EXIT, RelaySetupError } from '../src/setup-errors.js';
import { nodeClient, sealAndUpload } from '../src/testing/relay-helpers.js';
import {
  RELAY_BIN,
  RelayProcess,
  writeRelayFiles,
  type RelayFiles,
} from '../src/testing/relay-process.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment without any relay variable of the developer's shell. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env))
    if (value !== undefined && !name.startsWith('ROGATORY_')) env[name] = value;
  return env;
}

function runCli(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RELAY_BIN, ...args], {
      env: { ...cleanEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    // Bounded: a CLI that hangs fails the test instead of holding the machine.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Nothing an operator should never see: a raw system error, a stack trace. */
function expectClean(run: Run): void {
  const all = run.stdout + run.stderr;
  expect(all).not.toMatch(/\bE[A-Z]{3,}\b: /);
  expect(all).not.toMatch(/ENOENT/);
  expect(all).not.toMatch(/\n\s+at /);
}

type Issue = { field: string; message: string };

function jsonError(run: Run): { code: string; file?: string; issues: Issue[] } {
  return (JSON.parse(run.stdout) as { error: { code: string; file?: string; issues: Issue[] } })
    .error;
}

let world: TestWorld;
let dir: string;
let files: RelayFiles;
let config: RelayConfig;
let port: number;

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: Date.now() });
  dir = await mkdtemp(join(tmpdir(), 'rogatory-relay-cli-'));
  port = await freePort();
  files = await writeRelayFiles({
    dir,
    world,
    network: 'wacap',
    port,
    backend: { kind: 'embedded' },
  });
  config = JSON.parse(await readFile(files.configFile, 'utf8')) as RelayConfig;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A variant of the good configuration, written next to it. */
async function variant(name: string, change: (c: RelayConfig) => unknown): Promise<string> {
  const copy = JSON.parse(JSON.stringify(config)) as RelayConfig;
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(change(copy) ?? copy, null, 2));
  return file;
}

describe('rogatory-relay usage and help', { timeout: 180_000 }, () => {
  it('documents the exit codes in --help (exit 0)', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(RELAY_EXIT.ok);
    expect(run.stdout).toMatch(/Exit codes:/);
    for (const code of ['0', '1', '2', '3', '4', '5', '6', '70'])
      expect(run.stdout).toMatch(new RegExp(`^\\s+${code}\\s+\\w`, 'm'));
    expect((await runCli(['check-config', '--help'])).stdout).toMatch(/--connect/);
  });

  it('exits 1 on an unknown command, an unknown option or a missing --config', async () => {
    expect((await runCli(['frobnicate'])).code).toBe(RELAY_EXIT.usage);
    expect((await runCli(['check-config', '-c', files.configFile, '--bogus'])).code).toBe(
      RELAY_EXIT.usage,
    );
    const missing = await runCli(['queue']);
    expect(missing.code).toBe(RELAY_EXIT.usage);
    expect(missing.stderr).toMatch(/--config/);
  });

  it('exits 70 on an unexpected error without printing its text', () => {
    const writes: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = (chunk: string) => {
      writes.push(chunk);
      return true;
    };
    try {
      expect(reportFailure(new Error('dossier of Mr X, passphrase hunter2'), false)).toBe(
        RELAY_EXIT.internal,
      );
    } finally {
      process.stderr.write = write;
    }
    expect(writes.join('')).toMatch(/unexpected internal error/);
    expect(writes.join('')).not.toMatch(/hunter2|Mr X/);
  });
});

describe('configuration errors name the file and the field (exit 3)', { timeout: 180_000 }, () => {
  it('a missing configuration file', async () => {
    const file = join(dir, 'absent.yaml');
    const run = await runCli(['check-config', '-c', file], files.env);
    expect(run.code).toBe(RELAY_EXIT.config);
    expect(run.stderr).toContain(`${file}: not found`);
    expectClean(run);
    const json = await runCli(['start', '-c', file, '--json'], files.env);
    expect(json.code).toBe(RELAY_EXIT.config);
    expect(jsonError(json)).toEqual({
      code: 'CONFIG_FILE_UNREADABLE',
      file,
      issues: [{ field: '', message: 'not found' }],
    });
  });

  it('a folder given as the configuration file', async () => {
    const run = await runCli(['queue', '-c', dir], files.env);
    expect(run.code).toBe(RELAY_EXIT.config);
    expect(run.stderr).toContain(`${dir}: is a folder, not a file`);
    expectClean(run);
  });

  it('a YAML syntax error, with its line and column', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'relay:\n  id: relay@wacap\n  port: [8443\nidentity: {}\n');
    const run = await runCli(['start', '-c', file], files.env);
    expect(run.code).toBe(RELAY_EXIT.config);
    expect(run.stderr).toMatch(
      new RegExp(
        `${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: line \\d+, column \\d+: not valid YAML or JSON`,
      ),
    );
    expectClean(run);
  });

  it('every schema issue, each with its path; no value is printed', async () => {
    const file = join(dir, 'relay.yaml');
    await writeFile(
      file,
      [
        'relay: { id: relay@wacap, port: 8443, colour: "s3cr3t-value" }',
        'identity: { keyFile: ./relay-key.json }',
        'trust: { rootFile: ./r.json, manifestFiles: [./m.json], pollSeconds: 0 }',
        'backend: { kind: redis, redis: { url: "redis://127.0.0.1:1", prefix: "bad prefix!" }, dataDir: ./data }',
        'logLevel: loud',
      ].join('\n'),
    );
    const run = await runCli(['check-config', '-c', file], files.env);
    expect(run.code).toBe(RELAY_EXIT.config);
    expect(run.stderr).toContain(
      `${file}: backend.redis.prefix: must match ^[A-Za-z0-9:_-]{1,64}$`,
    );
    expect(run.stderr).toContain(`${file}: relay.colour: unknown field`);
    expect(run.stderr).toContain(`${file}: trust.pollSeconds: must be at least 1`);
    expect(run.stderr).toContain(
      `${file}: logLevel: must be one of fatal, error, warn, info, debug`,
    );
    expect(run.stderr).not.toContain('s3cr3t-value');
    expect(run.stderr).not.toContain('bad prefix!');
    const json = await runCli(['check-config', '-c', file, '--json'], files.env);
    expect(json.code).toBe(RELAY_EXIT.config);
    const result = JSON.parse(json.stdout) as {
      ok: boolean;
      checks: { name: string; status: string; error?: { code: string; issues: Issue[] } }[];
    };
    expect(result.ok).toBe(false);
    expect(result.checks[0]?.error?.code).toBe('CONFIG_INVALID');
    expect(result.checks[0]?.error?.issues.map((i) => i.field).sort()).toEqual([
      'backend.redis.prefix',
      'logLevel',
      'relay.colour',
      'trust.pollSeconds',
    ]);
  });

  it('names every issue, past the eight TypeBox buffers by default (in process)', async () => {
    const file = join(dir, 'many.yaml');
    await writeFile(
      file,
      [
        'relay: { id: Relay, port: -1, a: 1, b: 2 }',
        'identity: { keyFile: 1, c: 3 }',
        'trust: { rootFile: 2, manifestFiles: [] }',
        'backend: { kind: redos, redis: { prefix: "a b" } }',
        'sessionTtlMs: 1',
        'logLevel: loud',
      ].join('\n'),
    );
    const err = await loadRelayConfig(file, {}).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RelaySetupError);
    const issues = (err as RelaySetupError).issues.map((i) => i.field).sort();
    expect(issues).toEqual([
      'backend.kind',
      'backend.redis.prefix',
      'identity.c',
      'identity.keyFile',
      'logLevel',
      'relay.a',
      'relay.b',
      'relay.id',
      'relay.port',
      'sessionTtlMs',
      'trust.manifestFiles',
      'trust.rootFile',
    ]);
    expect((err as RelaySetupError).code).toBe('CONFIG_INVALID');
    expect((err as RelaySetupError).message.split('\n')[0]).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `),
    );
  });

  it('an invalid value from an environment override names the variable, not its value (in process)', async () => {
    const err = await loadRelayConfig(files.configFile, {
      ROGATORY_RELAY__RELAY__PORT: 'not-a-port',
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RelaySetupError);
    expect((err as RelaySetupError).message).toBe(
      `${files.configFile}: relay.port: must be an integer (set by ROGATORY_RELAY__RELAY__PORT)`,
    );
  });

  it('rules across fields (kind embedded without dataDir)', async () => {
    const file = await variant('no-data.json', (c) => {
      c.backend = { kind: 'embedded' };
    });
    const run = await runCli(['check-config', '-c', file], files.env);
    expect(run.code).toBe(RELAY_EXIT.config);
    expect(run.stderr).toContain(
      `${file}: backend.dataDir: required when backend.kind is embedded`,
    );
  });

  it('a manifest file that is missing, and a root that is not JSON', async () => {
    const gone = join(dir, 'gone-manifest.json');
    const file = await variant('missing-manifest.json', (c) => {
      c.trust.manifestFiles = [c.trust.manifestFiles[0]!, gone];
    });
    const run = await runCli(['check-config', '-c', file], files.env);
    expect(run.code).toBe(RELAY_EXIT.config);
    expect(run.stderr).toContain(`${file}: trust.manifestFiles[1]: ${gone}: not found`);
    expectClean(run);
    // start fails the same way, before it listens.
    const start = await runCli(['start', '-c', file], files.env);
    expect(start.code).toBe(RELAY_EXIT.config);
    expect(start.stderr).toContain(`trust.manifestFiles[1]: ${gone}: not found`);

    const root = join(dir, 'root-garbage.json');
    await writeFile(root, '{ not json');
    const badRoot = await variant('bad-root.json', (c) => {
      c.trust.rootFile = root;
    });
    const r2 = await runCli(['check-config', '-c', badRoot, '--json'], files.env);
    expect(r2.code).toBe(RELAY_EXIT.config);
    const trust = (
      JSON.parse(r2.stdout) as {
        checks: { name: string; error?: { code: string; issues: Issue[] } }[];
      }
    ).checks.find((c) => c.name === 'trust');
    expect(trust?.error).toEqual({
      code: 'TRUST_INVALID',
      issues: [{ field: 'trust.rootFile', message: `${root}: not JSON` }],
    });
  });

  it('a key file that is missing', async () => {
    const gone = join(dir, 'no-such-key.json');
    const file = await variant('missing-key.json', (c) => {
      c.identity.keyFile = gone;
    });
    const run = await runCli(['check-config', '-c', file], files.env);
    expect(run.code).toBe(RELAY_EXIT.config);
    expect(run.stderr).toMatch(/FAILED\s+key\s+FILE_UNREADABLE/);
    expect(run.stderr).toContain(`${file}: identity.keyFile: ${gone}: not found`);
    expectClean(run);
  });

  it('a TLS certificate file that is missing, with relay.tls named', async () => {
    const gone = join(dir, 'no-such-cert.pem');
    const file = await variant('missing-cert.json', (c) => {
      c.relay.tls = { certFile: gone, keyFile: join(dir, 'no-such-key.pem') };
    });
    const run = await runCli(['check-config', '-c', file], files.env);
    expect(run.code).toBe(RELAY_EXIT.config);
    expect(run.stderr).toMatch(/FAILED\s+tls\s+TLS_FILE_REFUSED/);
    expect(run.stderr).toContain('relay.tls.certFile');
    expect(run.stderr).toContain(gone);
    expectClean(run);
  });

  it('a manifest of another network first', async () => {
    const file = await variant('wrong-first.json', (c) => {
      c.trust.manifestFiles = [...c.trust.manifestFiles].reverse();
    });
    const run = await runCli(['check-config', '-c', file], files.env);
    expect(run.code).toBe(RELAY_EXIT.config);
    expect(run.stderr).toMatch(
      /trust\.manifestFiles\[0\]: .*is the manifest of network \w+, not of wacap/,
    );
  });

  it('a data folder that is a file', async () => {
    const blocker = join(dir, 'a-file');
    await writeFile(blocker, 'x');
    const file = await variant('data-is-file.json', (c) => {
      c.backend = { kind: 'embedded', dataDir: blocker };
    });
    const run = await runCli(['check-config', '-c', file], files.env);
    expect(run.code).toBe(RELAY_EXIT.config);
    expect(run.stderr).toContain(`${file}: backend.dataDir: ${blocker}: is a file, not a folder`);
  });
});

describe('the key and the secrets (exit 4)', { timeout: 180_000 }, () => {
  it('the passphrase variable is not set', async () => {
    const { ROGATORY_RELAY_PASSPHRASE: _omitted, ...env } = files.env;
    const run = await runCli(['check-config', '-c', files.configFile], env);
    expect(run.code).toBe(RELAY_EXIT.key);
    expect(run.stderr).toContain(
      `${files.configFile}: identity.passphraseEnv: set the environment variable ROGATORY_RELAY_PASSPHRASE`,
    );
  });

  it('the key does not open with the passphrase; the passphrase is not printed', async () => {
    const wrong = 'wrong-passphrase-0123';
    const run = await runCli(['check-config', '-c', files.configFile, '--json'], {
      ...files.env,
      ROGATORY_RELAY_PASSPHRASE: wrong,
    });
    expect(run.code).toBe(RELAY_EXIT.key);
    expect(run.stdout).not.toContain(wrong);
    const key = (
      JSON.parse(run.stdout) as {
        checks: { name: string; error?: { code: string; issues: Issue[] } }[];
      }
    ).checks.find((c) => c.name === 'key');
    expect(key?.error?.code).toBe('KEY_UNSEALABLE');
    expect(key?.error?.issues[0]?.field).toBe('identity.keyFile');
    expect(key?.error?.issues[0]?.message).toContain(config.identity.keyFile);
  });

  it('the session secret is missing', async () => {
    const { ROGATORY_RELAY_SESSION_SECRET: _omitted, ...env } = files.env;
    const run = await runCli(['check-config', '-c', files.configFile], env);
    expect(run.code).toBe(RELAY_EXIT.key);
    expect(run.stderr).toContain(
      `sessionSecretEnv: set the environment variable ROGATORY_RELAY_SESSION_SECRET`,
    );
    expect(run.stderr).not.toContain(files.env['ROGATORY_RELAY_PASSPHRASE']!);
  });

  it('check-config and start refuse a key the manifest does not list for this relay', async () => {
    const keyFile = join(dir, 'stranger-key.json');
    await writeFile(
      keyFile,
      JSON.stringify(
        sealSigningKey(generateSigningKeyPair(), {
          passphrase: files.env['ROGATORY_RELAY_PASSPHRASE']!,
          purpose: 'relay-identity',
          limits: KDF_LIMITS.interactive,
        }),
      ),
    );
    const file = await variant('stranger.json', (c) => {
      c.identity.keyFile = keyFile;
    });
    const run = await runCli(['check-config', '-c', file], files.env);
    expect(run.code).toBe(RELAY_EXIT.key);
    expect(run.stderr).toMatch(/FAILED\s+listed\s+KEY_NOT_IN_MANIFEST/);
    expect(run.stderr).toContain(`${file}: identity.keyFile: ${keyFile}: key `);
    expect(run.stderr).toMatch(/is not the key the wacap manifest lists for relay@wacap/);
    const start = await runCli(['start', '-c', file, '--json'], files.env);
    expect(start.code).toBe(RELAY_EXIT.key);
    expect(jsonError(start).code).toBe('KEY_NOT_IN_MANIFEST');

    // A relay id the manifest does not list at all.
    const other = await variant('other-id.json', (c) => {
      c.relay.id = 'relay2@wacap';
    });
    const r2 = await runCli(['check-config', '-c', other], files.env);
    expect(r2.code).toBe(RELAY_EXIT.key);
    expect(r2.stderr).toContain(
      `${other}: relay.id: relay2@wacap is not listed as a relay in the wacap manifest`,
    );
  });
});

describe('the backend (exit 5)', { timeout: 180_000 }, () => {
  it('check-config --connect and queue on an unreachable Redis', async () => {
    const closed = await freePort();
    const file = await variant('redis-down.json', (c) => {
      c.backend = {
        kind: 'redis',
        redis: { url: `redis://127.0.0.1:${String(closed)}`, prefix: 'cli-test' },
        dataDir: join(dir, 'redis-data'),
      };
    });
    // Without --connect the backend is not reached: the rest is fine.
    expect((await runCli(['check-config', '-c', file], files.env)).code).toBe(RELAY_EXIT.ok);
    const run = await runCli(['check-config', '-c', file, '--connect'], files.env);
    expect(run.code).toBe(RELAY_EXIT.backend);
    expect(run.stderr).toContain(`${file}: backend.redis.url: Redis cannot be reached`);
    const queue = await runCli(['queue', '-c', file, '--json'], files.env);
    expect(queue.code).toBe(RELAY_EXIT.backend);
    expect(jsonError(queue).code).toBe('BACKEND_UNREACHABLE');
    expectClean(queue);
  });
});

describe('a good configuration', { timeout: 180_000 }, () => {
  it('check-config lists every check ok (exit 0), --connect included', async () => {
    const run = await runCli(
      ['check-config', '-c', files.configFile, '--connect', '--json'],
      files.env,
    );
    expect(run.code).toBe(RELAY_EXIT.ok);
    const result = JSON.parse(run.stdout) as {
      ok: boolean;
      relayId: string;
      checks: { name: string; status: string }[];
    };
    expect(result.ok).toBe(true);
    expect(result.relayId).toBe('relay@wacap');
    expect(result.checks.map((c) => [c.name, c.status])).toEqual([
      ['config', 'ok'],
      ['key', 'ok'],
      ['trust', 'ok'],
      ['listed', 'ok'],
      ['secrets', 'ok'],
      ['storage', 'ok'],
      ['backend', 'ok'],
    ]);
    const text = await runCli(['check-config', '-c', files.configFile], files.env);
    expect(text.code).toBe(RELAY_EXIT.ok);
    expect(text.stdout).toMatch(/ok\s+listed\s+relay@wacap is listed with key/);
    expect(text.stdout).toMatch(/skipped\s+backend/);
  });

  it('queue before the relay ever ran names the missing database', async () => {
    const file = await variant('fresh.json', (c) => {
      c.backend = { kind: 'embedded', dataDir: join(dir, 'never-used') };
    });
    const run = await runCli(['queue', '-c', file], files.env);
    expect(run.code).toBe(RELAY_EXIT.config);
    expect(run.stderr).toContain(
      `backend.dataDir: ${join(dir, 'never-used', 'relay.db')}: not found`,
    );
  });

  it('start exits 3 naming relay.port when the port is taken', async () => {
    const relay = await RelayProcess.start(files, `http://127.0.0.1:${String(port)}`);
    try {
      const run = await runCli(['start', '-c', files.configFile], files.env);
      expect(run.code).toBe(RELAY_EXIT.config);
      expect(run.stderr).toContain(
        `relay.port: cannot listen on 127.0.0.1:${String(port)}: address in use`,
      );
    } finally {
      await relay.stop();
    }
  });
});

describe('rogatory-relay queue (embedded, beside the running relay)', { timeout: 180_000 }, () => {
  let relay: RelayProcess | undefined;

  afterAll(async () => {
    await relay?.stop();
  });

  it('lists the mailboxes with waiting items, the forward backlog and no non-delivery', async () => {
    const url = `http://127.0.0.1:${String(port)}`;
    relay = await RelayProcess.start(files, url);
    const sender = 'sn-moj@wacap';
    const client = nodeClient(world, url, sender, 2);
    const prepared = await sealAndUpload(world, client, {
      from: sender,
      to: ['gh-ago@wacap', 'ng-agf@wacap', 'kz-gpo@casc'],
    });
    await client.submit(prepared.envelope);

    const run = await runCli(['queue', '-c', files.configFile, '--json'], files.env);
    expect(run.code).toBe(RELAY_EXIT.ok);
    const report = JSON.parse(run.stdout) as {
      relayId: string;
      backend: string;
      at: number;
      mailboxes: { address: string; items: number; envelopes: number; oldestAgeMs: number }[];
      forwards: { network: string; tasks: number; envelopes: number }[];
      nonDeliveries: { count: number };
    };
    expect(report.relayId).toBe('relay@wacap');
    expect(report.backend).toBe('embedded');
    const boxes = report.mailboxes.filter((m) => m.address !== sender);
    expect(boxes.map((m) => [m.address, m.items, m.envelopes])).toEqual([
      ['gh-ago@wacap', 1, 1],
      ['ng-agf@wacap', 1, 1],
    ]);
    for (const m of boxes) expect(m.oldestAgeMs).toBeGreaterThanOrEqual(0);
    // The casc recipient waits in the forward backlog (no peer relay runs).
    expect(report.forwards).toHaveLength(1);
    expect(report.forwards[0]).toMatchObject({ tasks: 1, envelopes: 1 });
    expect(report.nonDeliveries.count).toBe(0);

    const text = await runCli(['queue', '-c', files.configFile], files.env);
    expect(text.code).toBe(RELAY_EXIT.ok);
    expect(text.stdout).toMatch(/^queue of relay@wacap \(embedded backend\)/);
    expect(text.stdout).toMatch(/ADDRESS\s+ITEMS\s+ENVELOPES\s+EVIDENCES\s+OLDEST/);
    expect(text.stdout).toMatch(/gh-ago@wacap\s+1\s+1\s+0\s+\d+s/);
    expect(text.stdout).toMatch(
      /NETWORK\s+TASKS\s+ENVELOPES\s+EVIDENCES\s+OLDEST\s+NEXT ATTEMPT\s+ATTEMPTS/,
    );
    expect(text.stdout).toMatch(/Non-deliveries due: none/);
  });
});

describe('rogatory-relay on a Redis backend', { timeout: 180_000 }, () => {
  let server: RedisServer | undefined;

  afterAll(async () => {
    await server?.stop();
  });

  it('check-config --connect reaches it and queue reads the namespace of backend.redis.prefix', async () => {
    server = await startRedis();
    const prefix = `cli-${randomUUID()}`;
    const file = await variant('redis-up.json', (c) => {
      c.backend = {
        kind: 'redis',
        redis: { url: server!.url, prefix },
        dataDir: join(dir, 'redis-up-data'),
      };
    });
    const check = await runCli(['check-config', '-c', file, '--connect'], files.env);
    expect(check.code).toBe(RELAY_EXIT.ok);
    expect(check.stdout).toMatch(/ok\s+backend\s+Redis answers PING/);

    // An item waiting in one mailbox of this namespace, and one in another namespace (not reported).
    const now = Date.now();
    for (const p of [prefix, `${prefix}-other`]) {
      const backend = await openRedisBackend({ url: server.url, prefix: p });
      try {
        await backend.pushEvidence('sn-moj@wacap', 'env-1', 'k-1', new Uint8Array([1]));
        await backend.enqueueForward({
          kind: 'evidence',
          envelopeId: 'env-1',
          network: 'casc',
          payload: new Uint8Array([2]),
          deadline: now + 3_600_000,
        });
      } finally {
        await backend.close();
      }
    }
    const run = await runCli(['queue', '-c', file, '--json'], files.env);
    expect(run.code).toBe(RELAY_EXIT.ok);
    const report = JSON.parse(run.stdout) as {
      backend: string;
      mailboxes: { address: string; items: number; evidences: number; oldestAcceptedAt: null }[];
      forwards: { network: string; tasks: number; evidences: number }[];
    };
    expect(report.backend).toBe('redis');
    expect(report.mailboxes).toEqual([
      {
        address: 'sn-moj@wacap',
        items: 1,
        envelopes: 0,
        evidences: 1,
        oldestAcceptedAt: null,
        oldestAgeMs: null,
      },
    ]);
    expect(report.forwards).toMatchObject([{ network: 'casc', tasks: 1, evidences: 1 }]);
  });
});
