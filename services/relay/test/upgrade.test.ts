/**
 * Upgrading a relay in place (issue 14 item 5): both store layouts carry a
 * schema version (embedded: the `schema_version` row; Redis: the
 * `{prefix}:schema` key). Data written by the previous layout is opened by
 * the current code, migrated forward, and served as it was: the held
 * envelope reaches its recipient with its chunks, a retried submission
 * gets the acceptance signed before the upgrade. A store written by a
 * newer relay is refused with SCHEMA_VERSION_NEWER and left untouched.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalBytes, ready, TrustStore } from '@rogatory/protocol';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { FsBlobStore } from '@rogatory/storage';
import { startRedis, type RedisServer } from '@rogatory/test-services';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_MIGRATIONS, SchemaVersionError } from '../src/backend/embedded-schema.js';
import { openEmbeddedBackend } from '../src/backend/embedded.js';
import { REDIS_LAYOUT_VERSION, openRedisBackend } from '../src/backend/redis.js';
import type { RelayBackend } from '../src/backend/types.js';
import { startRelay, type RunningRelay } from '../src/server.js';
import {
  RelayProcess,
  writeRelayFiles,
  type ProcessBackend,
} from '../src/testing/relay-process.js';
import { freeLoopbackPort } from '../src/testing/harness.js';
import { nodeClient, sealAndUpload, type Prepared } from '../src/testing/relay-helpers.js';

const SN = 'sn-moj@wacap';
const NG = 'ng-agf@wacap';
const redisInstalled =
  spawnSync(process.env['REDIS_SERVER'] ?? 'redis-server', ['--version']).status === 0;

let world: TestWorld;
let dir: string;
const sessionSecret = randomBytes(32);

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: Date.now(), relayUrl: () => 'http://127.0.0.1:9' });
  dir = await mkdtemp(join(tmpdir(), 'rogatory-relay-upgrade-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function relayOn(backend: RelayBackend, chunks: string): Promise<RunningRelay> {
  const net = world.networks['wacap']!;
  const trust = new TrustStore({ pinned: [{ network: 'wacap', root: net.rootRef }] });
  trust.addManifest(net.manifest);
  return startRelay(
    {
      relayId: net.relay.id,
      key: net.relay.key,
      trust,
      backend,
      blobs: await FsBlobStore.open({ dir: chunks }),
      sessionSecret,
      logger: false,
      trustDir: join(dir, `trust-${randomUUID()}`),
    },
    { host: '127.0.0.1', port: 0 },
  );
}

/** Accepts one dossier from SN to NG; returns it and the acceptance's canonical bytes. */
async function holdOne(relay: RunningRelay): Promise<{ prepared: Prepared; acceptance: string }> {
  const sn = nodeClient(world, relay.url, SN);
  const prepared = await sealAndUpload(world, sn, { from: SN, to: [NG] });
  const evidence = await sn.submit(prepared.envelope);
  return { prepared, acceptance: Buffer.from(canonicalBytes(evidence)).toString('hex') };
}

/** What the upgraded relay must still do with the dossier held before the upgrade. */
async function expectServed(
  relay: RunningRelay,
  held: { prepared: Prepared; acceptance: string },
): Promise<void> {
  const { prepared } = held;
  const sn = nodeClient(world, relay.url, SN);
  const ng = nodeClient(world, relay.url, NG);
  // A sender retrying after the upgrade gets the acceptance signed before it.
  const again = await sn.submit(prepared.envelope);
  expect(Buffer.from(canonicalBytes(again)).toString('hex')).toBe(held.acceptance);
  const items = await ng.readMailbox(0, 100);
  expect(items).toHaveLength(1);
  const item = items[0]!;
  expect(item.kind).toBe('envelope');
  if (item.kind !== 'envelope') return;
  // As signed by its sender (the relay adds its hop).
  expect(canonicalBytes(item.envelope.body)).toEqual(canonicalBytes(prepared.envelope.body));
  expect(item.envelope.signature).toEqual(prepared.envelope.signature);
  expect(await ng.getChunkBytes(prepared.envelope.body.dossier.id)).toEqual(prepared.sealed);
  for (const c of prepared.chunks) expect(await ng.getChunkBytes(c.id)).toEqual(c.bytes);
  await ng.ack([item.seq]);
  expect(await ng.readMailbox(0, 100)).toEqual([]);
  // And new traffic goes through.
  const fresh = await sealAndUpload(world, sn, { from: SN, to: [NG] });
  await sn.submit(fresh.envelope);
  const next = await ng.readMailbox(item.seq, 100);
  expect(next.map((i) => (i.kind === 'envelope' ? i.envelope.body.id : i.kind))).toEqual([
    fresh.envelope.body.id,
  ]);
}

/**
 * Rewrites the embedded relay file `file` as schema `version` stored the
 * same data (a fresh file with that many migrations, rows copied column by
 * column). Exact for migration 3, which only dropped an unused table.
 */
function writePreviousLayout(file: string, out: string, version: number): void {
  const db = new Database(out);
  try {
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT');
    for (const m of SCHEMA_MIGRATIONS.slice(0, version)) db.exec(m);
    db.exec(`ATTACH DATABASE '${file.replaceAll("'", "''")}' AS cur`);
    const names = (schema: string, table: string): string[] =>
      db
        .prepare<[], { name: string }>(`PRAGMA ${schema}.table_info("${table}")`)
        .all()
        .map((c) => c.name);
    const tables = db
      .prepare<[], { name: string }>(
        "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_version'",
      )
      .all()
      .map((r) => r.name);
    db.transaction(() => {
      for (const t of tables) {
        const current = new Set(names('cur', t));
        const list = names('main', t)
          .filter((c) => current.has(c))
          .map((c) => `"${c}"`)
          .join(', ');
        if (list === '') continue; // a table the current schema dropped: it held nothing needed
        // Triggers have filled the derived usage table while rows were copied: the copy replaces it.
        if (t === 'chunk_usage') db.exec('DELETE FROM main.chunk_usage');
        db.exec(`INSERT INTO main."${t}" (${list}) SELECT ${list} FROM cur."${t}"`);
      }
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(version);
    })();
    db.exec('DETACH DATABASE cur');
  } finally {
    db.close();
  }
}

function read<T>(file: string, sql: string): T[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare<[], T>(sql).all();
  } finally {
    db.close();
  }
}

describe('relay upgrade, embedded backend', () => {
  it('opens a file of the previous schema: migrated forward, the held dossier served as before', async () => {
    const base = join(dir, 'embedded');
    const file = join(base, 'relay.db');
    const chunks = join(base, 'chunks');
    await mkdir(base);
    const first = await relayOn(await openEmbeddedBackend({ file }), chunks);
    let held;
    try {
      held = await holdOne(first);
    } finally {
      await first.stop();
    }

    const previous = SCHEMA_MIGRATIONS.length - 1;
    const old = join(base, 'previous.db');
    writePreviousLayout(file, old, previous);
    for (const suffix of ['', '-wal', '-shm']) await rm(`${file}${suffix}`, { force: true });
    await rename(old, file);
    expect(read(file, 'SELECT version FROM schema_version')).toEqual([{ version: previous }]);
    // The last migration adds the store's mailbox epoch (table meta).
    expect(read(file, "SELECT name FROM sqlite_master WHERE name = 'meta'")).toHaveLength(0);

    const second = await relayOn(await openEmbeddedBackend({ file }), chunks);
    try {
      expect(read(file, 'SELECT version FROM schema_version')).toEqual([
        { version: SCHEMA_MIGRATIONS.length },
      ]);
      expect(
        read<{ value: string }>(file, "SELECT value FROM meta WHERE key = 'mailbox_epoch'"),
      ).toEqual([{ value: expect.stringMatching(/^[0-9a-f]{32}$/) as unknown }]);
      await expectServed(second, held);
    } finally {
      await second.stop();
    }
  });

  it('refuses a file written by a newer relay with SCHEMA_VERSION_NEWER, and leaves it as it was', async () => {
    const file = join(dir, 'newer.db');
    await (await openEmbeddedBackend({ file })).close();
    const db = new Database(file);
    db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_MIGRATIONS.length + 1);
    db.close();
    const tables = read(file, 'SELECT name, sql FROM sqlite_master ORDER BY name');
    const err = await openEmbeddedBackend({ file }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SchemaVersionError);
    expect((err as SchemaVersionError).code).toBe('SCHEMA_VERSION_NEWER');
    expect(read(file, 'SELECT version FROM schema_version')).toEqual([
      { version: SCHEMA_MIGRATIONS.length + 1 },
    ]);
    expect(read(file, 'SELECT name, sql FROM sqlite_master ORDER BY name')).toEqual(tables);
  });
});

describe.runIf(redisInstalled)('relay upgrade, Redis backend', () => {
  let redis: RedisServer;
  let admin: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    await admin.quit();
    await redis.stop();
  });

  it('writes its layout version under the prefix, and moves data of the unversioned layout forward', async () => {
    const prefix = `test-${randomUUID()}`;
    const chunks = join(dir, `redis-chunks-${prefix}`);
    const first = await relayOn(await openRedisBackend({ url: redis.url, prefix }), chunks);
    let held;
    try {
      expect(await admin.get(`{${prefix}}:schema`)).toBe(String(REDIS_LAYOUT_VERSION));
      held = await holdOne(first);
    } finally {
      await first.stop();
    }
    // What a relay from before the version key left: the same keys, without it.
    expect(await admin.del(`{${prefix}}:schema`)).toBe(1);

    const second = await relayOn(await openRedisBackend({ url: redis.url, prefix }), chunks);
    try {
      expect(await admin.get(`{${prefix}}:schema`)).toBe(String(REDIS_LAYOUT_VERSION));
      await expectServed(second, held);
    } finally {
      await second.stop();
    }
  });

  it('refuses a prefix written by a newer relay, or with a version that is not a number, and writes nothing', async () => {
    const cases = [
      [String(REDIS_LAYOUT_VERSION + 1), 'SCHEMA_VERSION_NEWER'],
      ['two', 'SCHEMA_VERSION_INVALID'],
    ] as const;
    for (const [version, code] of cases) {
      const prefix = `test-${randomUUID()}`;
      await admin.set(`{${prefix}}:schema`, version);
      const err = await openRedisBackend({ url: redis.url, prefix }).then(
        async (b) => {
          await b.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err, version).toBeInstanceOf(SchemaVersionError);
      expect((err as SchemaVersionError).code).toBe(code);
      expect(await admin.get(`{${prefix}}:schema`)).toBe(version);
      expect(await admin.keys(`{${prefix}}:*`)).toEqual([`{${prefix}}:schema`]);
    }
  });
});

/** The relay CLI on a store a newer relay wrote: it exits, naming the code, without serving. */
async function refusedByCli(backend: ProcessBackend, prepare: (dir: string) => Promise<void>) {
  const relayDir = await mkdtemp(join(dir, 'cli-'));
  await prepare(relayDir);
  const port = await freeLoopbackPort();
  const files = await writeRelayFiles({ dir: relayDir, world, network: 'wacap', port, backend });
  return RelayProcess.start(files, `http://127.0.0.1:${String(port)}`).then(
    async (p) => {
      await p.kill();
      return 'started';
    },
    (e: unknown) => (e instanceof Error ? e.message : String(e)),
  );
}

describe('relay CLI on a store of a newer relay', () => {
  it('embedded: exits before serving and names SCHEMA_VERSION_NEWER', async () => {
    const outcome = await refusedByCli({ kind: 'embedded' }, async (relayDir) => {
      await mkdir(join(relayDir, 'data'));
      const file = join(relayDir, 'data', 'relay.db');
      await (await openEmbeddedBackend({ file })).close();
      const db = new Database(file);
      db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_MIGRATIONS.length + 1);
      db.close();
    });
    expect(outcome).toMatch(/exited before it was ready/);
    expect(outcome).toMatch(/SCHEMA_VERSION_NEWER/);
  });

  it.runIf(redisInstalled)(
    'Redis: exits before serving and names SCHEMA_VERSION_NEWER',
    async () => {
      const redis = await startRedis();
      const admin = new Redis(redis.url);
      try {
        const prefix = `test-${randomUUID()}`;
        await admin.set(`{${prefix}}:schema`, String(REDIS_LAYOUT_VERSION + 1));
        const outcome = await refusedByCli({ kind: 'redis', url: redis.url, prefix }, () =>
          Promise.resolve(),
        );
        expect(outcome).toMatch(/exited before it was ready/);
        expect(outcome).toMatch(/SCHEMA_VERSION_NEWER/);
        expect(await admin.keys(`{${prefix}}:*`)).toEqual([`{${prefix}}:schema`]);
      } finally {
        await admin.quit();
        await redis.stop();
      }
    },
  );
});
