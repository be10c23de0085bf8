/**
 * `rogatory-relay migrate-backend`: its refusals (exit 1, the message names
 * the file or the store, nothing written) and its text report. The copy
 * between embedded and Redis with a node on each side is the acceptance test
 * services/node/test/backend-switch.test.ts; export/import themselves are
 * test/backend/epoch-snapshot.test.ts.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalBytes, ready } from '@rogatory/protocol';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { freePort } from '@rogatory/test-services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEmbeddedBackend } from '../src/backend/embedded.js';
import { RELAY_BIN, writeRelayFiles, type RelayFiles } from '../src/testing/relay-process.js';

let dir: string;
let world: TestWorld;
let port: number;

beforeAll(async () => {
  await ready();
  dir = await mkdtemp(join(tmpdir(), 'rogatory-migrate-'));
  port = await freePort();
  world = buildTestWorld({ now: Date.now(), relayUrl: () => `http://127.0.0.1:${port}` });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function embeddedFiles(name: string): Promise<RelayFiles> {
  const at = join(dir, name);
  await mkdir(at, { recursive: true });
  return writeRelayFiles({ dir: at, world, network: 'wacap', port, backend: { kind: 'embedded' } });
}

async function run(
  args: string[],
  command = 'migrate-backend',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [RELAY_BIN, command, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

describe('rogatory-relay migrate-backend', () => {
  it('refuses a configuration it cannot read, naming the option and the file', async () => {
    const to = await embeddedFiles('to-missing');
    const missing = join(dir, 'nowhere.json');
    const text = await run(['--from', missing, '--to', to.configFile]);
    expect(text.code).toBe(3);
    expect(text.stderr).toContain(`--from ${missing}`);
    const json = await run(['--from', missing, '--to', to.configFile, '--json']);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'CONFIG_INVALID' } });
  }, 60_000);

  it('refuses to copy a store onto itself', async () => {
    const same = await embeddedFiles('same');
    const result = await run(['--from', same.configFile, '--to', same.configFile, '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ error: { code: 'SAME_STORE' } });
  }, 60_000);

  it('copies embedded → embedded, prints the counts, and the copy keeps the epoch and the seqs', async () => {
    const from = await embeddedFiles('from');
    const to = await embeddedFiles('to');
    await mkdir(join(dir, 'from', 'data'), { recursive: true });
    const source = await openEmbeddedBackend({ file: join(dir, 'from', 'data', 'relay.db') });
    for (let i = 1; i <= 3; i++)
      await source.pushEvidence('sn-moj@wacap', `env-${i}`, `k-${i}`, canonicalBytes({ i }));
    await source.ack('sn-moj@wacap', [1]);
    const epoch = await source.mailboxEpoch();
    await source.close();

    const result = await run(['--from', from.configFile, '--to', to.configFile]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`mailbox epoch ${epoch} kept`);
    expect(result.stdout).toMatch(/mailbox items +2 waiting/);

    const target = await openEmbeddedBackend({ file: join(dir, 'to', 'data', 'relay.db') });
    try {
      expect(await target.mailboxEpoch()).toBe(epoch);
      expect((await target.readMailbox('sn-moj@wacap', 0, 10)).map((i) => i.seq)).toEqual([2, 3]);
      expect(await target.pushEvidence('sn-moj@wacap', 'env-4', 'k-4', canonicalBytes({}))).toBe(
        true,
      );
      expect((await target.readMailbox('sn-moj@wacap', 3, 10)).map((i) => i.seq)).toEqual([4]);
    } finally {
      await target.close();
    }
  }, 60_000);
});

describe('rogatory-relay new-epoch', () => {
  it('gives a restored store a new mailbox epoch and keeps its items; refuses an unreadable config', async () => {
    const files = await embeddedFiles('restored');
    await mkdir(join(dir, 'restored', 'data'), { recursive: true });
    const file = join(dir, 'restored', 'data', 'relay.db');
    const store = await openEmbeddedBackend({ file });
    await store.pushEvidence('sn-moj@wacap', 'env-1', 'k-1', canonicalBytes({ i: 1 }));
    const before = await store.mailboxEpoch();
    await store.close();

    const result = await run(['-c', files.configFile, '--json'], 'new-epoch');
    expect(result.code).toBe(0);
    const answer = JSON.parse(result.stdout) as { previous: string; epoch: string };
    expect(answer.previous).toBe(before);
    expect(answer.epoch).not.toBe(before);

    const reopened = await openEmbeddedBackend({ file });
    try {
      expect(await reopened.mailboxEpoch()).toBe(answer.epoch);
      expect((await reopened.readMailbox('sn-moj@wacap', 0, 10)).map((i) => i.seq)).toEqual([1]);
    } finally {
      await reopened.close();
    }

    const missing = await run(['-c', join(dir, 'nowhere.yaml')], 'new-epoch');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('nowhere.yaml');
  }, 60_000);
});
