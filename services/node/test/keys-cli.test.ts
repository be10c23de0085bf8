import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  verifyEncryptionKeyCert,
  verifyKeyRotation,
  type EncryptionKeyCert,
  type KeyRotation,
} from '@rogatory/protocol';
import { terminateHashWorker } from '@rogatory/protocol/node';
import type { TestWorld } from '@rogatory/protocol/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/program.js';
import type { CliIO } from '../src/cli/io.js';
import type { NodeKeyInfo } from '../src/index.js';
import { PASSPHRASE, makeNode, offlineWorld, tempDir } from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const DAY = 24 * 3600_000;

interface Run {
  code: number;
  out: string;
  err: string;
  json: () => unknown;
}

describe('rogatory keys (CLI)', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let dir: string;

  beforeAll(async () => {
    world = await offlineWorld();
    tmp = await tempDir();
    dir = join(tmp.path, 'sn');
    const fx = await makeNode({ world, address: SN, dir });
    await fx.node.close();
  }, 60_000);
  afterAll(async () => {
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
      env: { ROGATORY_PASSPHRASE: PASSPHRASE, ...env },
      isTTY: false,
    };
    const code = await runCli(['--dir', dir, ...args], io);
    return { code, out, err, json: () => JSON.parse(out) as unknown };
  }

  async function keys(): Promise<NodeKeyInfo[]> {
    const run = await cli(['--json', 'keys', 'list']);
    expect(run.code).toBe(0);
    return (run.json() as { keys: NodeKeyInfo[] }).keys;
  }

  const nodeJson = () => readFile(join(dir, 'node.json'), 'utf8');

  it('lists the identity and encryption keys', async () => {
    expect(await keys()).toMatchObject([
      {
        kind: 'identity',
        kid: world.authority(SN).identityRef.kid,
        state: 'current',
        listed: true,
      },
      {
        kind: 'encryption',
        kid: world.authority(SN).encryption.kid,
        state: 'current',
        listed: true,
      },
    ]);
    const text = await cli(['keys', 'list']);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^KIND\s+KID\s+STATE/);
  });

  it('refuses to rotate while locked (no passphrase) or with a wrong passphrase: exit codes, nothing written', async () => {
    const before = await nodeJson();
    const locked = await cli(['--json', 'keys', 'rotate-encryption'], { ROGATORY_PASSPHRASE: '' });
    expect(locked.code).toBe(1);
    expect(locked.json()).toMatchObject({ error: { code: 'INPUT_INVALID' } });
    const wrong = await cli(['--json', 'keys', 'rotate-identity'], {
      ROGATORY_PASSPHRASE: 'not the passphrase',
    });
    expect(wrong.code).toBe(5);
    expect(wrong.json()).toMatchObject({ error: { code: 'PASSPHRASE_INVALID' } });
    const far = await cli(['--json', 'keys', 'rotate-identity', '--effective-in-days', '31']);
    expect(far.code).toBe(1);
    expect(far.json()).toMatchObject({ error: { code: 'INPUT_INVALID' } });
    const bad = await cli(['--json', 'keys', 'rotate-encryption', '--valid-days', 'soon']);
    expect(bad.code).toBe(1);
    expect(await nodeJson()).toBe(before);
  });

  it('rotate-encryption prints (and --out writes) the certificate the secretariat takes', async () => {
    const out = join(tmp.path, 'cert.json');
    const run = await cli(['--json', 'keys', 'rotate-encryption', '--out', out]);
    expect(run.code).toBe(0);
    const result = run.json() as { kid: string; certificate: EncryptionKeyCert; out: string };
    expect(result.out).toBe(out);
    const written = JSON.parse(await readFile(out, 'utf8')) as unknown;
    expect(written).toEqual(result.certificate);
    const cert = verifyEncryptionKeyCert(written, world.authority(SN).identityRef);
    expect(cert.body).toMatchObject({ subject: SN, key: { kid: result.kid } });
    expect((await keys()).filter((k) => k.kind === 'encryption')).toMatchObject([
      { state: 'current', listed: true },
      { kid: result.kid, state: 'pending', listed: false },
    ]);
    // An existing output file is refused before anything is made.
    const again = await cli(['--json', 'keys', 'rotate-encryption', '--out', out]);
    expect(again.code).toBe(1);
    expect(again.json()).toMatchObject({ error: { code: 'INPUT_INVALID' } });
    expect((await keys()).filter((k) => k.kind === 'encryption')).toHaveLength(2);
  });

  it('rotate-identity writes the rotation and the re-issued certificate; a second one is refused while it is pending', async () => {
    const out = join(tmp.path, 'rotation.json');
    const certOut = join(tmp.path, 'cert-new-identity.json');
    const before = Date.now();
    const run = await cli([
      'keys',
      'rotate-identity',
      '--out',
      out,
      '--cert-out',
      certOut,
      '--effective-in-days',
      '3',
    ]);
    expect(run.code).toBe(0);
    expect(run.out).toContain('the secretariat must publish before');
    const rotation = verifyKeyRotation(
      JSON.parse(await readFile(out, 'utf8')) as KeyRotation,
      world.authority(SN).identityRef,
    );
    expect(rotation.body.subject).toBe(SN);
    expect(rotation.body.effectiveAt).toBeGreaterThanOrEqual(before + 3 * DAY);
    expect(rotation.body.effectiveAt).toBeLessThanOrEqual(Date.now() + 3 * DAY);
    verifyEncryptionKeyCert(JSON.parse(await readFile(certOut, 'utf8')), rotation.body.newKey);
    const list = await keys();
    expect(list.filter((k) => k.kind === 'identity')).toMatchObject([
      { kid: rotation.body.oldKid, state: 'current' },
      { kid: rotation.body.newKey.kid, state: 'pending', listed: false },
    ]);
    const text = await cli(['keys', 'list']);
    expect(text.out).toContain('pending confirmation');

    const again = await cli(['--json', 'keys', 'rotate-identity']);
    expect(again.code).toBe(7);
    expect(again.json()).toMatchObject({ error: { code: 'INVALID_STATE' } });
    const enc = await cli(['--json', 'keys', 'rotate-encryption']);
    expect(enc.code).toBe(7);
  });
});
