import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toBase64url } from '@rogatory/protocol';
import { terminateHashWorker } from '@rogatory/protocol/node';
import { testSeed, type TestWorld } from '@rogatory/protocol/testing';
import { startTestRelays, type TestNetworkOfRelays } from '@rogatory/relay/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/program.js';
import type { CliIO } from '../src/cli/io.js';
import { PASSPHRASE, PASSWORD, mlaRequest, randomFile, tempDir } from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';

interface Run {
  code: number;
  out: string;
  err: string;
  json: () => unknown;
}

describe('rogatory CLI', () => {
  let net: TestNetworkOfRelays;
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };

  beforeAll(async () => {
    net = await startTestRelays({ backend: { kind: 'embedded' } });
    world = net.world;
    tmp = await tempDir();
  }, 120_000);
  afterAll(async () => {
    await net.stop();
    await terminateHashWorker();
    await tmp.remove();
  });

  async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
    let out = '';
    let err = '';
    const io: CliIO = {
      out: (t) => {
        out += t;
      },
      err: (t) => {
        err += t;
      },
      env: { ROGATORY_PASSPHRASE: PASSPHRASE, ROGATORY_PASSWORD: PASSWORD, ...env },
      isTTY: false,
    };
    const code = await runCli(args, io);
    return { code, out, err, json: () => JSON.parse(out) as unknown };
  }

  async function initNodeFor(address: string): Promise<string> {
    const network = address.split('@')[1]!;
    const net0 = world.networks[network]!;
    const dir = join(tmp.path, address.split('@')[0]!);
    const files: string[] = [];
    for (const m of [
      net0.manifest,
      ...net0.manifest.body.peers.map((p) => world.networks[p.network]!.manifest),
    ]) {
      const file = join(tmp.path, `${address}-${m.body.network}.manifest.json`);
      await writeFile(file, JSON.stringify(m));
      files.push(file);
    }
    const root = join(tmp.path, `${network}-root.json`);
    await writeFile(root, JSON.stringify(net0.rootRef));
    const keys = join(tmp.path, `${address}-keys.json`);
    await writeFile(
      keys,
      JSON.stringify({
        identitySeed: toBase64url(testSeed(`${address}/identity`)),
        encryptionSeed: toBase64url(testSeed(`${address}/encryption/1`)),
      }),
    );
    const init = await cli([
      '--dir',
      dir,
      '--json',
      'init',
      '--address',
      address,
      '--relay-url',
      net.relays[network]!.url,
      '--relay-id',
      net0.relay.id,
      '--root',
      root,
      '--manifest',
      ...files,
      '--admin',
      'admin',
      '--import-keys',
      keys,
      '--kdf',
      'interactive',
    ]);
    expect(init.code).toBe(0);
    expect(init.json()).toMatchObject({
      address,
      listedInManifest: true,
      identity: { kid: world.authority(address).identityRef.kid },
    });
    for (const [name, role] of [
      ['officer', 'officer'],
      ['approver', 'approver'],
    ]) {
      const added = await cli(
        [
          '--dir',
          dir,
          '--user',
          'admin',
          'user',
          'add',
          name!,
          '--role',
          role!,
          '--clearance',
          'restricted',
        ],
        { ROGATORY_NEW_PASSWORD: PASSWORD },
      );
      expect(added.code).toBe(0);
    }
    return dir;
  }

  it('runs the whole workflow with documented exit codes and --json output', async () => {
    expect((await cli(['init'])).code).toBe(1);
    expect((await cli(['no-such-command'])).code).toBe(1);

    const sn = await initNodeFor(SN);
    const kz = await initNodeFor(KZ);
    expect(
      (await cli(['--dir', sn, 'status'], { ROGATORY_PASSPHRASE: 'wrong passphrase' })).code,
    ).toBe(5);
    const status = await cli(['--dir', sn, '--json', 'status']);
    expect(status.json()).toMatchObject({ address: SN, listedInManifest: true, users: 3 });
    expect((await cli(['--dir', sn, '--user', 'officer', 'user', 'list'])).code).toBe(3);
    expect(
      (
        await cli(['--dir', sn, '--user', 'officer', 'user', 'list'], {
          ROGATORY_PASSWORD: 'wrong password!',
        })
      ).code,
    ).toBe(3);

    // Invalid content: exit 8 with the issues by field (never values).
    const bad = join(tmp.path, 'bad.json');
    await writeFile(
      bad,
      JSON.stringify({ ...mlaRequest(world, SN, KZ), requestType: 'mla', header: {} }),
    );
    const invalid = await cli([
      '--dir',
      sn,
      '--user',
      'officer',
      '--json',
      'compose',
      '--content',
      bad,
    ]);
    expect(invalid.code).toBe(8);
    expect(invalid.json()).toMatchObject({ error: { code: 'CONTENT_INVALID' } });

    const content = join(tmp.path, 'request.json');
    await writeFile(
      content,
      JSON.stringify(mlaRequest(world, SN, KZ, { caseReference: 'CLI-CASE-1' })),
    );
    const a = await randomFile(tmp.path, 'cli-a.pdf', 300_000);
    const b = await randomFile(tmp.path, 'cli-b.bin', 1000);
    const composed = await cli([
      '--dir',
      sn,
      '--user',
      'officer',
      '--json',
      'compose',
      '--content',
      content,
      '--attach',
      a.path,
      `${b.path}:application/octet-stream`,
    ]);
    expect(composed.code).toBe(0);
    const { id } = composed.json() as { id: string };
    expect((await cli(['--dir', sn, '--user', 'officer', 'send', id])).code).toBe(0);
    expect((await cli(['--dir', sn, '--user', 'officer', 'approve', id])).code).toBe(3);
    const approved = await cli(['--dir', sn, '--user', 'approver', '--json', 'approve', id]);
    expect(approved.code).toBe(0);
    expect(approved.json()).toMatchObject({ id, status: 'sent', queued: false });

    // The recipient pulls, lists, opens and saves the attachments.
    let inbox: { id: string; envelopeId: string }[] = [];
    for (let i = 0; i < 100 && inbox.length === 0; i++) {
      expect((await cli(['--dir', kz, 'sync', '--once'])).code).toBe(0);
      inbox = (
        await cli(['--dir', kz, '--user', 'officer', '--json', 'inbox', '--case-ref', 'cli-case'])
      ).json() as typeof inbox;
    }
    expect(inbox).toHaveLength(1);
    const out = join(tmp.path, 'kz-open');
    const opened = await cli([
      '--dir',
      kz,
      '--user',
      'officer',
      'open',
      inbox[0]!.id,
      '--out',
      out,
    ]);
    expect(opened.code).toBe(0);
    expect(opened.out).toContain('Case reference: CLI-CASE-1');
    expect(opened.out).toContain('Requesting authority:');
    expect(Buffer.compare(await readFile(join(out, 'cli-a.pdf')), a.bytes)).toBe(0);
    expect((await cli(['--dir', kz, 'sync', '--once'])).code).toBe(0);

    // The sender sees the evidences, exports a bundle, and the bundle verifies offline (exit 0), or not once tampered (exit 2).
    let shown: { status: string; evidences: { kind: string }[] } = { status: '', evidences: [] };
    for (let i = 0; i < 100 && !shown.evidences.some((e) => e.kind === 'retrieval'); i++) {
      expect((await cli(['--dir', sn, 'sync', '--once'])).code).toBe(0);
      shown = (
        await cli(['--dir', sn, '--user', 'officer', '--json', 'show', id])
      ).json() as typeof shown;
    }
    expect(shown.status).toBe('delivered');
    const bundle = join(tmp.path, 'cli-bundle');
    expect(
      (await cli(['--dir', sn, '--user', 'officer', 'export', id, '--out', bundle])).code,
    ).toBe(0);
    const exported = await cli([
      '--dir',
      sn,
      '--user',
      'officer',
      'export',
      id,
      '--out',
      `${bundle}-x`,
    ]);
    expect(exported.out).toMatch(/^full bundle written to .*: it contains the decrypted dossier/);
    const verified = await cli(['verify', bundle]);
    expect(verified.code).toBe(0);
    expect(verified.out.split('\n')[0]).toMatch(/^FULL BUNDLE: proves that the dossier/);
    expect(verified.out).toContain('VERIFIED: envelope');
    // A sealed bundle says first that it proves no content, and its VERIFIED line says so too.
    const sealedDir = join(tmp.path, 'cli-sealed');
    expect(
      (await cli(['--dir', sn, '--user', 'officer', 'export', id, '--out', sealedDir, '--sealed']))
        .code,
    ).toBe(0);
    const sealedOut = await cli(['verify', sealedDir]);
    expect(sealedOut.code).toBe(0);
    expect(sealedOut.out.split('\n')[0]).toMatch(
      /^SEALED BUNDLE: proves the signatures and evidences/,
    );
    expect(sealedOut.out).toContain('VERIFIED (SIGNATURES AND EVIDENCES ONLY, NOT CONTENT)');
    expect((await cli(['--json', 'verify', sealedDir])).json()).toMatchObject({
      ok: true,
      kind: 'sealed',
      proves: 'chain-only',
    });
    const json = JSON.parse(await readFile(join(bundle, 'bundle.json'), 'utf8')) as {
      evidences: unknown[];
    };
    json.evidences = json.evidences.slice(1);
    await writeFile(join(bundle, 'bundle.json'), JSON.stringify(json));
    const tampered = await cli(['--json', 'verify', bundle]);
    expect(tampered.code).toBe(2);
    // Not canonical any more: refused before anything else.
    expect(tampered.json()).toMatchObject({ ok: false, code: 'ENCODING_INVALID', proves: null });

    expect((await cli(['--dir', sn, '--user', 'admin', 'audit', 'verify'])).code).toBe(0);
    const q = await cli(['--dir', kz, '--user', 'admin', '--json', 'quarantine', 'list']);
    expect(q.code).toBe(0);
    expect(q.json()).toEqual([]);
  }, 240_000);
});
