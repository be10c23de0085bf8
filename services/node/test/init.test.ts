import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KDF_LIMITS, toBase64url, verifyEncryptionKeyCert } from '@rogatory/protocol';
import type { TestWorld } from '@rogatory/protocol/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorityNode, initNode, isNodeError } from '../src/index.js';
import {
  PASSPHRASE,
  PASSWORD,
  makeNode,
  mlaRequest,
  offlineWorld,
  tempDir,
} from './support/fixtures.js';

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else
        out[path] = `${(await stat(path)).mtimeMs}:${createHash('sha256')
          .update(await readFile(path))
          .digest('hex')}`;
    }
  };
  await walk(dir);
  return out;
}

async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if ((await readFile(path)).includes(Buffer.from(needle))) hits.push(path);
    }
  };
  await walk(dir);
  return hits;
}

describe('initNode and openNode', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };

  beforeAll(async () => {
    world = await offlineWorld();
    tmp = await tempDir();
  });
  afterAll(async () => {
    await tmp.remove();
  });

  const common = () => {
    const net = world.networks['wacap']!;
    return {
      address: 'gh-ago@wacap',
      relayUrl: 'http://127.0.0.1:9',
      relayId: 'relay@wacap',
      passphrase: PASSPHRASE,
      pinnedRoot: net.rootRef,
      manifests: [
        net.manifest,
        world.networks['global']!.manifest,
        world.networks['casc']!.manifest,
      ],
      kdf: KDF_LIMITS.interactive,
    };
  };

  it('creates fresh keys sealed at rest and returns the identity KeyRef and a certificate that verifies', async () => {
    const dir = join(tmp.path, 'fresh');
    const result = await initNode({ ...common(), dir });
    expect(result.listedInManifest).toBe(false);
    expect(result.identity.alg).toBe('ed25519');
    expect(
      verifyEncryptionKeyCert(result.encryptionCertificate, result.identity).body.subject,
    ).toBe('gh-ago@wacap');
    const identityFile = JSON.parse(await readFile(join(dir, 'keys/identity.json'), 'utf8'));
    expect(identityFile).toMatchObject({
      type: 'rogatory-sealed-secret',
      purpose: 'authority-identity',
      kdf: 'argon2id13',
    });
    expect((await stat(join(dir, 'keys/identity.json'))).mode & 0o077).toBe(0);
    const config = JSON.parse(await readFile(join(dir, 'node.json'), 'utf8'));
    expect(config).toMatchObject({
      address: 'gh-ago@wacap',
      network: 'wacap',
      relay: { id: 'relay@wacap' },
      pinnedRoot: { kid: world.networks['wacap']!.rootRef.kid },
    });
    expect((await readdir(join(dir, 'trust'))).sort()).toEqual([
      'casc.json',
      'global.json',
      'wacap.json',
    ]);

    const node = await AuthorityNode.open({ dir, passphrase: PASSPHRASE });
    expect(node.identity().identity).toEqual(result.identity);
    expect(node.status()).toMatchObject({ listedInManifest: false, users: 0 });
    expect([...node.status().trustedNetworks].sort()).toEqual(['casc', 'global', 'wacap']);
    await node.close();
  });

  it('imports the test world keys: the manifest lists them, and the published objects are the manifest entries', async () => {
    const dir = join(tmp.path, 'imported');
    const a = world.authority('gh-ago@wacap');
    const result = await initNode({
      ...common(),
      dir,
      importKeys: { identity: a.identity, encryption: a.encryption },
    });
    expect(result.listedInManifest).toBe(true);
    expect(result.identity).toEqual(a.identityRef);
    expect(result.encryptionCertificate.body.key.kid).toBe(a.encryption.kid);
    // The seed is stored sealed, never in clear.
    expect(await filesContaining(dir, toBase64url(a.identity.secretKey.subarray(0, 32)))).toEqual(
      [],
    );
  });

  it('refuses a wrong passphrase with PASSPHRASE_INVALID and changes nothing on disk', async () => {
    const dir = join(tmp.path, 'fresh');
    const before = await snapshot(dir);
    const err = await AuthorityNode.open({ dir, passphrase: 'not the passphrase' }).catch(
      (e: unknown) => e,
    );
    expect(isNodeError(err, 'PASSPHRASE_INVALID')).toBe(true);
    expect((err as Error).message).not.toContain('not the passphrase');
    expect(await snapshot(dir)).toEqual(before);
  });

  it('refuses to initialise over an existing node, and leaves nothing behind when the trust material does not verify', async () => {
    const err = await initNode({ ...common(), dir: join(tmp.path, 'fresh') }).catch(
      (e: unknown) => e,
    );
    expect(isNodeError(err, 'NODE_EXISTS')).toBe(true);

    const wrongRoot = {
      ...common(),
      pinnedRoot: world.networks['casc']!.rootRef,
      dir: join(tmp.path, 'wrong-root'),
    };
    const bad = await initNode(wrongRoot).catch((e: unknown) => e);
    expect(isNodeError(bad, 'VERIFICATION_FAILED')).toBe(true);
    expect((bad as { detail?: string }).detail).toBe('TRUST_CHAIN_BROKEN');
    await expect(stat(join(tmp.path, 'wrong-root'))).rejects.toThrow();

    const short = await initNode({
      ...common(),
      passphrase: 'short',
      dir: join(tmp.path, 'short'),
    }).catch((e: unknown) => e);
    expect(isNodeError(short, 'INPUT_INVALID')).toBe(true);
  });

  it('keeps a stolen disk to sizes and times: no case reference, party name or file name in the database, WAL or blobs', async () => {
    const dir = join(tmp.path, 'disk');
    const n = await makeNode({ world, address: 'sn-moj@wacap', dir });
    const officer = n.user('officer1', 'officer', ['restricted']);
    const content = mlaRequest(world, 'sn-moj@wacap', 'kz-gpo@casc', {
      caseReference: 'CASE-REF-TELLTALE-77',
    });
    const { randomFile } = await import('./support/fixtures.js');
    const file = await randomFile(tmp.path, 'witness-statement-telltale.pdf', 10_000);
    const id = await n.node.compose(officer, {
      content,
      attachments: [{ path: file.path }, { path: file.path, name: 'second-telltale.pdf' }],
    });
    n.node.submitForApproval(officer, id);
    // The trust directory holds the public manifests; everything else is what a thief gets.
    const stored = (await filesContaining(dir, '')).filter((p) => !p.includes('/trust/'));
    expect(stored.some((p) => p.endsWith('mailbox.db'))).toBe(true);
    for (const needle of [
      'CASE-REF-TELLTALE-77',
      'Jane SPECIMEN',
      'witness-statement-telltale',
      'kz-gpo@casc',
      'Acme Fictitious',
    ]) {
      expect((await filesContaining(dir, needle)).filter((p) => !p.includes('/trust/'))).toEqual(
        [],
      );
    }
    await n.node.close();
    // The password of a user is stored as an Argon2id string, never in clear.
    expect(await filesContaining(dir, PASSWORD)).toEqual([]);
  });
});
