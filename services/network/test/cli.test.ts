import { cp, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  TrustStore,
  certifyEncryptionKey,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  keyRef,
  ready,
  type KeyRef,
  type Manifest,
} from '@rogatory/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NETWORK_ERRORS } from '../src/index.js';
import { NOW, PASSPHRASE, cli, memberFile, relayKeyFile, tempDir, type Run } from './support.js';

let tmp: { path: string; remove: () => Promise<void> };

beforeAll(async () => {
  await ready();
  tmp = await tempDir();
});
afterAll(async () => {
  await tmp.remove();
});

const errorOf = (run: Run) =>
  run.json<{ error: { code: string; message: string; detail?: string } }>().error;

/** A fresh secretariat folder with its network created (interactive KDF: tests only). */
async function secretariat(name: string, network = name): Promise<string> {
  const dir = join(tmp.path, name);
  const run = await cli(['--dir', dir, 'init', '--network', network, '--kdf', 'interactive']);
  expect(run.code, run.err).toBe(0);
  return dir;
}

/** A secretariat with a relay, a PoC and an authority in its draft. */
async function populated(
  name: string,
  network = name,
): Promise<{
  dir: string;
  sn: Awaited<ReturnType<typeof memberFile>>;
  poc: Awaited<ReturnType<typeof memberFile>>;
}> {
  const dir = await secretariat(name, network);
  const relay = await relayKeyFile(dir, 'relay-key');
  expect(
    (
      await cli([
        '--dir',
        dir,
        'relay',
        'add',
        '--key',
        relay.file,
        '--url',
        `https://relay.${network}.example`,
      ])
    ).code,
  ).toBe(0);
  const sn = await memberFile(tmp.path, `sn-moj-${name}@${network}`);
  const added = await cli([
    '--dir',
    dir,
    'authority',
    'add',
    '--from',
    sn.file,
    '--name',
    'Ministry of Justice',
    '--country',
    'SN',
    '--competences',
    'mla,extradition',
    '--languages',
    'fr,en',
  ]);
  expect(added.code, added.err).toBe(0);
  const poc = await memberFile(tmp.path, `poc-sn-${name}@${network}`);
  const pocAdded = await cli([
    '--dir',
    dir,
    'poc',
    'add',
    '--from',
    poc.file,
    '--name',
    'Point of contact Senegal',
    '--country',
    'SN',
  ]);
  expect(pocAdded.code, pocAdded.err).toBe(0);
  return { dir, sn, poc };
}

async function editionsOf(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'editions'))).sort();
}

async function edition(dir: string, version: number): Promise<Manifest> {
  return JSON.parse(
    await readFile(join(dir, 'editions', `${String(version).padStart(6, '0')}.json`), 'utf8'),
  ) as Manifest;
}

describe('init', () => {
  it('creates a sealed root key and prints the anchor with its fingerprint', async () => {
    const dir = join(tmp.path, 'init-ok');
    const run = await cli([
      '--dir',
      dir,
      '--json',
      'init',
      '--network',
      'wacap',
      '--kdf',
      'interactive',
    ]);
    expect(run.code, run.err).toBe(0);
    const anchor = run.json<{ network: string; root: KeyRef; fingerprint: string }>();
    expect(anchor.network).toBe('wacap');
    expect(anchor.fingerprint).toMatch(/^([0-9a-f]{4} ){15}[0-9a-f]{4}$/);
    const sealed = await readFile(join(dir, 'root-key.json'), 'utf8');
    expect(JSON.parse(sealed)).toMatchObject({
      type: 'rogatory-sealed-secret',
      purpose: 'network-root',
    });
    expect(sealed).not.toContain(PASSPHRASE);
    expect((await stat(join(dir, 'root-key.json'))).mode & 0o077).toBe(0);
    const text = await cli(['--dir', dir, 'anchor', 'export']);
    expect(text.out).toContain(anchor.fingerprint);
  });

  it('refuses a folder that holds a secretariat, a short passphrase, a bad network id, and no passphrase at all', async () => {
    const dir = await secretariat('init-twice', 'casc');
    const before = await readFile(join(dir, 'root-key.json'), 'utf8');
    const again = await cli([
      '--dir',
      dir,
      '--json',
      'init',
      '--network',
      'casc',
      '--kdf',
      'interactive',
    ]);
    expect(again.code).toBe(NETWORK_ERRORS.SECRETARIAT_EXISTS.exit);
    expect(errorOf(again).code).toBe('SECRETARIAT_EXISTS');
    expect(await readFile(join(dir, 'root-key.json'), 'utf8')).toBe(before);

    const short = await cli(
      [
        '--dir',
        join(tmp.path, 'short'),
        '--json',
        'init',
        '--network',
        'x',
        '--kdf',
        'interactive',
      ],
      { ROGATORY_PASSPHRASE: 'short' },
    );
    expect(errorOf(short).code).toBe('INPUT_INVALID');
    const badId = await cli([
      '--dir',
      join(tmp.path, 'bad-id'),
      '--json',
      'init',
      '--network',
      'WACAP',
      '--kdf',
      'interactive',
    ]);
    expect(errorOf(badId).code).toBe('INPUT_INVALID');
    const none = await cli(
      ['--dir', join(tmp.path, 'none'), '--json', 'init', '--network', 'x', '--kdf', 'interactive'],
      { ROGATORY_PASSPHRASE: '' },
    );
    expect(errorOf(none).code).toBe('INPUT_INVALID');
    expect(none.code).toBe(1);
  });

  it('reads the passphrase from --passphrase-file, and publish opens the root with it', async () => {
    const file = join(tmp.path, 'pass.txt');
    await writeFile(file, 'a passphrase kept in a file\n', { mode: 0o600 });
    const dir = join(tmp.path, 'from-file');
    const env = { ROGATORY_PASSPHRASE: '' };
    expect(
      (
        await cli(
          [
            '--dir',
            dir,
            'init',
            '--network',
            'glcjn',
            '--kdf',
            'interactive',
            '--passphrase-file',
            file,
          ],
          env,
        )
      ).code,
    ).toBe(0);
    const relay = await relayKeyFile(dir, 'relay-key');
    await cli([
      '--dir',
      dir,
      'relay',
      'add',
      '--key',
      relay.file,
      '--url',
      'https://relay.glcjn.example',
    ]);
    expect((await cli(['--dir', dir, 'publish', '--passphrase-file', file], env)).code).toBe(0);
    const wrong = await cli(['--dir', dir, '--json', 'publish'], {
      ROGATORY_PASSPHRASE: PASSPHRASE,
    });
    expect(errorOf(wrong).code).toBe('PASSPHRASE_INVALID');
  });
});

describe('members', () => {
  it('authority add, poc add and relay add fill the draft; show lists them; duplicates are refused', async () => {
    const { dir, sn, poc } = await populated('members', 'wacap');
    const show = await cli(['--dir', dir, '--json', 'show']);
    const draft = show.json<{
      label: string;
      authorities: { address: string; competences: string[] }[];
      pocs: { address: string; encryptionKeys: { body: { key: { kid: string } } }[] }[];
      relays: { id: string }[];
    }>();
    expect(draft.label).toBe('draft');
    expect(draft.authorities.map((a) => a.address)).toEqual(['sn-moj-members@wacap']);
    expect(draft.authorities[0]!.competences).toEqual(['mla', 'extradition']);
    expect(draft.pocs[0]!.encryptionKeys[0]!.body.key.kid).toBe(poc.encryptionKid);
    expect(draft.relays.map((r) => r.id)).toEqual(['relay@wacap']);
    expect((await cli(['--dir', dir, 'show'])).out).toContain('sn-moj-members@wacap');

    const twice = await cli([
      '--dir',
      dir,
      '--json',
      'authority',
      'add',
      '--from',
      sn.file,
      '--name',
      'Again',
      '--country',
      'SN',
      '--competences',
      'mla',
      '--languages',
      'fr',
    ]);
    expect(twice.code).toBe(1);
    expect(errorOf(twice)).toMatchObject({ code: 'MEMBER_EXISTS' });
    expect(errorOf(twice).message).toContain('sn-moj-members@wacap');
    // The same address as a PoC is the same address.
    const asPoc = await cli([
      '--dir',
      dir,
      '--json',
      'poc',
      'add',
      '--from',
      sn.file,
      '--name',
      'Again',
      '--country',
      'SN',
    ]);
    expect(errorOf(asPoc).code).toBe('MEMBER_EXISTS');
    const relay = await relayKeyFile(dir, 'relay-2');
    const relayTwice = await cli([
      '--dir',
      dir,
      '--json',
      'relay',
      'add',
      '--key',
      relay.file,
      '--url',
      'https://other.example',
    ]);
    expect(errorOf(relayTwice).code).toBe('MEMBER_EXISTS');
    expect(
      (
        await cli([
          '--dir',
          dir,
          'relay',
          'add',
          '--key',
          relay.file,
          '--url',
          'https://other.example',
          '--id',
          'relay-2@wacap',
        ])
      ).code,
    ).toBe(0);
  });

  it('refuses malformed KeyRefs and certificates, naming the file and the field', async () => {
    const dir = await secretariat('malformed', 'wacap');
    const ok = await memberFile(tmp.path, 'gh-ago@wacap');
    const parsed = JSON.parse(await readFile(ok.file, 'utf8')) as {
      identity: KeyRef;
      encryptionCertificate: unknown;
    };
    const add = (files: string[]) =>
      cli([
        '--dir',
        dir,
        '--json',
        'authority',
        'add',
        ...files,
        '--name',
        'Attorney-General',
        '--country',
        'GH',
        '--competences',
        'mla',
        '--languages',
        'en',
      ]);

    const badKid = join(tmp.path, 'bad-kid.json');
    await writeFile(badKid, JSON.stringify({ ...parsed.identity, kid: 'not a kid' }));
    const certFile = join(tmp.path, 'cert.json');
    await writeFile(certFile, JSON.stringify(parsed.encryptionCertificate));
    const r1 = await add(['--identity', badKid, '--certificate', certFile]);
    expect(r1.code).toBe(1);
    expect(errorOf(r1).code).toBe('INPUT_INVALID');
    expect(errorOf(r1).message).toContain(badKid);
    expect(errorOf(r1).message).toContain('/kid');

    const otherKid = join(tmp.path, 'other-kid.json');
    await writeFile(
      otherKid,
      JSON.stringify({
        ...parsed.identity,
        kid: keyRef(generateSigningKeyPair(), { notBefore: 0, notAfter: 1 }).kid,
      }),
    );
    const r2 = await add(['--identity', otherKid, '--certificate', certFile]);
    expect(errorOf(r2)).toMatchObject({ code: 'INPUT_INVALID', detail: 'SCHEMA_INVALID' });
    expect(errorOf(r2).message).toContain(otherKid);

    // A certificate not issued by this identity key.
    const stranger = generateSigningKeyPair();
    const foreignCert = join(tmp.path, 'foreign-cert.json');
    await writeFile(
      foreignCert,
      JSON.stringify(
        certifyEncryptionKey({
          subject: 'gh-ago@wacap',
          identity: stranger,
          encryptionKey: generateEncryptionKeyPair(),
          notBefore: NOW,
          notAfter: NOW + 1000,
        }),
      ),
    );
    const identityFile = join(tmp.path, 'identity.json');
    await writeFile(identityFile, JSON.stringify(parsed.identity));
    const r3 = await add(['--identity', identityFile, '--certificate', foreignCert]);
    expect(errorOf(r3)).toMatchObject({ code: 'INPUT_INVALID', detail: 'KEY_WRONG_ROLE' });
    expect(errorOf(r3).message).toContain(foreignCert);

    // A member of another network.
    const casc = await memberFile(tmp.path, 'kz-gpo@casc');
    const r4 = await add(['--from', casc.file]);
    expect(errorOf(r4).code).toBe('INPUT_INVALID');
    expect(errorOf(r4).message).toContain('/body/subject');
    expect(errorOf(r4).message).toContain(casc.file);

    // --from without the fields `rogatory init --json` prints.
    const empty = join(tmp.path, 'empty.json');
    await writeFile(empty, '{}');
    const r5 = await add(['--from', empty]);
    expect(errorOf(r5).code).toBe('INPUT_INVALID');
    expect(errorOf(r5).message).toContain('field identity');

    const notJson = join(tmp.path, 'not-json.json');
    await writeFile(notJson, 'identity: yes');
    const r6 = await add(['--identity', notJson, '--certificate', certFile]);
    expect(errorOf(r6).message).toContain(notJson);

    const r7 = await cli([
      '--dir',
      dir,
      '--json',
      'authority',
      'add',
      '--from',
      ok.file,
      '--name',
      'A',
      '--country',
      'GH',
      '--competences',
      'espionage',
      '--languages',
      'en',
    ]);
    expect(errorOf(r7).code).toBe('INPUT_INVALID');
    expect(errorOf(r7).message).toContain('/competences');
    const r8 = await cli([
      '--dir',
      dir,
      '--json',
      'relay',
      'add',
      '--key',
      certFile,
      '--url',
      'https://relay.example',
    ]);
    expect(errorOf(r8).code).toBe('INPUT_INVALID');
    expect(errorOf(r8).message).toContain(`--key ${certFile}`);
    const r9 = await cli([
      '--dir',
      dir,
      '--json',
      'authority',
      'add',
      '--from',
      ok.file,
      '--identity',
      identityFile,
      '--name',
      'A',
      '--country',
      'GH',
      '--competences',
      'mla',
      '--languages',
      'en',
    ]);
    expect(errorOf(r9).code).toBe('INPUT_INVALID');

    expect(
      (await cli(['--dir', dir, '--json', 'show'])).json<{ authorities: unknown[] }>().authorities,
    ).toEqual([]);
  });

  it('commands outside a secretariat folder are SECRETARIAT_NOT_FOUND', async () => {
    const run = await cli(['--dir', join(tmp.path, 'nowhere'), '--json', 'status']);
    expect(run.code).toBe(1);
    expect(errorOf(run).code).toBe('SECRETARIAT_NOT_FOUND');
  });
});

describe('publish', () => {
  it('signs edition 1, then 2 with previous = hash of 1; verify, status and diff describe them', async () => {
    const { dir, sn, poc } = await populated('chain', 'wacap');
    const p1 = await cli(['--dir', dir, '--json', 'publish', '--valid-days', '30']);
    expect(p1.code, p1.err).toBe(0);
    const v1 = p1.json<{ version: number; hash: string; validUntil: number; issuedAt: number }>();
    expect(v1).toMatchObject({ version: 1, issuedAt: NOW, validUntil: NOW + 30 * 86_400_000 });

    const gh = await memberFile(tmp.path, 'gh-ago-chain@wacap');
    await cli([
      '--dir',
      dir,
      'authority',
      'add',
      '--from',
      gh.file,
      '--name',
      'Attorney-General of Ghana',
      '--country',
      'GH',
      '--competences',
      'mla',
      '--languages',
      'en',
    ]);
    const pending = await cli(['--dir', dir, '--json', 'diff']);
    expect(pending.json()).toMatchObject({
      from: 'v1',
      to: 'draft',
      authorities: { added: ['gh-ago-chain@wacap'], removed: [], changed: [] },
    });
    expect((await cli(['--dir', dir, 'diff'])).out).toContain('+ authority gh-ago-chain@wacap');
    expect((await cli(['--dir', dir, '--json', 'status'])).json()).toMatchObject({
      editions: 1,
      pendingChanges: true,
      draftBasedOn: { version: 1, hash: v1.hash },
    });

    const p2 = await cli(['--dir', dir, '--json', 'publish'], {}, () => NOW + 1000);
    expect(p2.code, p2.err).toBe(0);
    expect(await editionsOf(dir)).toEqual(['000001.json', '000002.json']);
    const e2 = await edition(dir, 2);
    expect(e2.body).toMatchObject({ version: 2, previous: v1.hash, issuedAt: NOW + 1000 });

    const verify = await cli(['--dir', dir, '--json', 'verify'], {}, () => NOW + 2000);
    expect(verify.code).toBe(0);
    expect(verify.json()).toMatchObject({
      network: 'wacap',
      editions: 2,
      last: { version: 2, authorities: 2, pocs: 1, relays: 1, expired: false },
    });
    expect((await cli(['--dir', dir, 'verify'])).out).toContain(
      'editions 1..2 of wacap form one chain',
    );
    const one = await cli(['--dir', dir, '--json', 'verify', join(dir, 'editions', '000001.json')]);
    expect(one.json()).toMatchObject({
      network: 'wacap',
      version: 1,
      verifiedUnder: 'root',
      inChain: true,
    });
    expect((await cli(['--dir', dir, '--json', 'status'])).json()).toMatchObject({
      editions: 2,
      pendingChanges: false,
    });
    expect((await cli(['--dir', dir, '--json', 'diff', '1', '2'])).json()).toMatchObject({
      from: 'v1',
      to: 'v2',
      authorities: { added: ['gh-ago-chain@wacap'] },
    });
    expect((await cli(['--dir', dir, '--json', 'diff', '2', 'draft'])).json()).toMatchObject({
      from: 'v2',
      to: 'draft',
      authorities: { added: [] },
    });
    expect(errorOf(await cli(['--dir', dir, '--json', 'diff', '7'])).code).toBe('MEMBER_NOT_FOUND');
    expect(
      (await cli(['--dir', dir, '--json', 'show', '1'])).json<{ authorities: unknown[] }>()
        .authorities,
    ).toHaveLength(1);
    expect((await cli(['--dir', dir, 'verify'], {}, () => NOW + 91 * 86_400_000)).out).toContain(
      'EXPIRED',
    ); // v2: the default 90 days

    // The protocol's trust store takes the chain, and resolves the PoC's encryption key.
    const config = JSON.parse(await readFile(join(dir, 'network.json'), 'utf8')) as {
      root: KeyRef;
    };
    const trust = new TrustStore({ pinned: [{ network: 'wacap', root: config.root }] });
    trust.addManifest(await edition(dir, 1), { now: NOW });
    trust.addManifest(e2, { now: NOW + 1000 });
    expect(trust.encryptionKeysFor('poc-sn-chain@wacap', NOW).map((k) => k.kid)).toEqual([
      poc.encryptionKid,
    ]);
    expect(
      trust.resolveSigningKey('sn-moj-chain@wacap', sn.identity.kid, NOW, ['authority']).key,
    ).toEqual(sn.identity);
  });

  it('refuses a wrong passphrase and a draft without a relay, writing nothing', async () => {
    const dir = await secretariat('refusals', 'wacap');
    const noRelay = await cli(['--dir', dir, '--json', 'publish']);
    expect(noRelay.code).toBe(NETWORK_ERRORS.DRAFT_INVALID.exit);
    expect(errorOf(noRelay)).toMatchObject({ code: 'DRAFT_INVALID', detail: 'SCHEMA_INVALID' });
    const relay = await relayKeyFile(dir, 'relay-key');
    await cli([
      '--dir',
      dir,
      'relay',
      'add',
      '--key',
      relay.file,
      '--url',
      'https://relay.wacap.example',
    ]);
    const draftBefore = await readFile(join(dir, 'draft.json'), 'utf8');
    const wrong = await cli(['--dir', dir, '--json', 'publish'], {
      ROGATORY_PASSPHRASE: 'not the passphrase at all',
    });
    expect(wrong.code).toBe(5);
    expect(errorOf(wrong)).toMatchObject({
      code: 'PASSPHRASE_INVALID',
      detail: 'PASSPHRASE_INVALID',
    });
    expect(wrong.out).not.toContain('not the passphrase at all');
    expect(await editionsOf(dir)).toEqual([]);
    expect(await readFile(join(dir, 'draft.json'), 'utf8')).toBe(draftBefore);
  });

  it('refuses a skipped edition, a forked edition, a foreign edition and a stale draft', async () => {
    const { dir } = await populated('forks', 'wacap');
    expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);
    // A backup taken now: edition 1 and a draft based on it.
    const backup = join(tmp.path, 'forks-backup');
    await cp(dir, backup, { recursive: true });
    expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);
    const gh = await memberFile(tmp.path, 'gh-ago-forks@wacap');
    await cli([
      '--dir',
      dir,
      'authority',
      'add',
      '--from',
      gh.file,
      '--name',
      'Attorney-General',
      '--country',
      'GH',
      '--competences',
      'mla',
      '--languages',
      'en',
    ]);
    expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);

    // Stale draft: the backup's draft (based on v1) put back after v2 and v3 were published.
    await cp(join(dir, 'draft.json'), join(tmp.path, 'forks-draft-v3.json'));
    await cp(join(backup, 'draft.json'), join(dir, 'draft.json'));
    const stale = await cli(['--dir', dir, '--json', 'publish']);
    expect(stale.code).toBe(7);
    expect(errorOf(stale).code).toBe('DRAFT_STALE');
    expect(await editionsOf(dir)).toEqual(['000001.json', '000002.json', '000003.json']);
    await cp(join(tmp.path, 'forks-draft-v3.json'), join(dir, 'draft.json'));

    // Fork: the backup publishes its own edition 2; put in the main folder, edition 3 no longer follows.
    const ng = await memberFile(tmp.path, 'ng-agf-forks@wacap');
    await cli([
      '--dir',
      backup,
      'authority',
      'add',
      '--from',
      ng.file,
      '--name',
      'Nigeria',
      '--country',
      'NG',
      '--competences',
      'mla',
      '--languages',
      'en',
    ]);
    expect((await cli(['--dir', backup, 'publish'])).code).toBe(0);
    const forkedV2 = join(backup, 'editions', '000002.json');
    const checkFork = await cli(['--dir', dir, '--json', 'verify', forkedV2]);
    expect(checkFork.code).toBe(2);
    expect(errorOf(checkFork)).toMatchObject({
      code: 'VERIFICATION_FAILED',
      detail: 'MANIFEST_CHAIN_BROKEN',
    });
    const ownV2 = await readFile(join(dir, 'editions', '000002.json'), 'utf8');
    await cp(forkedV2, join(dir, 'editions', '000002.json'));
    const forked = await cli(['--dir', dir, '--json', 'publish']);
    expect(forked.code).toBe(2);
    expect(errorOf(forked)).toMatchObject({
      code: 'EDITION_CHAIN_BROKEN',
      detail: 'MANIFEST_CHAIN_BROKEN',
    });
    expect(errorOf(forked).message).toContain('editions/000003.json');
    expect(errorOf(await cli(['--dir', dir, '--json', 'verify'])).code).toBe(
      'EDITION_CHAIN_BROKEN',
    );
    await writeFile(join(dir, 'editions', '000002.json'), ownV2);

    // Skip: edition 3 renamed to 4, so 3 is missing.
    await rename(join(dir, 'editions', '000003.json'), join(dir, 'editions', '000004.json'));
    const skipped = await cli(['--dir', dir, '--json', 'publish']);
    expect(errorOf(skipped).code).toBe('EDITION_CHAIN_BROKEN');
    expect(errorOf(skipped).message).toContain('000004.json');
    expect(await editionsOf(dir)).toEqual(['000001.json', '000002.json', '000004.json']);
    await rename(join(dir, 'editions', '000004.json'), join(dir, 'editions', '000003.json'));

    // Foreign: another network's edition (another root) in the chain.
    const { dir: other } = await populated('forks-other', 'casc');
    await cli(['--dir', other, 'publish']);
    await cp(join(other, 'editions', '000001.json'), join(dir, 'editions', '000004.json'));
    const foreign = await cli(['--dir', dir, '--json', 'publish']);
    expect(errorOf(foreign)).toMatchObject({
      code: 'EDITION_CHAIN_BROKEN',
      detail: 'TRUST_CHAIN_BROKEN',
    });
  });
});

describe('anchors and peers', () => {
  it('imports an anchor only with the fingerprint read out of band; --via needs a direct peer', async () => {
    const wacap = await secretariat('anchors-wacap', 'wacap');
    const casc = await secretariat('anchors-casc', 'casc');
    const hub = await secretariat('anchors-global', 'global');
    const exportTo = async (dir: string, file: string) => {
      const run = await cli(['--dir', dir, '--json', 'anchor', 'export']);
      await writeFile(file, run.out);
      return run.json<{ fingerprint: string; root: KeyRef }>();
    };
    const cascAnchor = await exportTo(casc, join(tmp.path, 'casc-anchor.json'));
    const hubAnchor = await exportTo(hub, join(tmp.path, 'hub-anchor.json'));
    const draftBefore = await readFile(join(wacap, 'draft.json'), 'utf8');

    const wrong = await cli([
      '--dir',
      wacap,
      '--json',
      'peer',
      'add',
      join(tmp.path, 'casc-anchor.json'),
      '--fingerprint',
      hubAnchor.fingerprint,
    ]);
    expect(wrong.code).toBe(2);
    expect(errorOf(wrong).code).toBe('FINGERPRINT_MISMATCH');
    // A file whose root was swapped but which still carries the genuine fingerprint text.
    const swapped = join(tmp.path, 'swapped-anchor.json');
    await writeFile(
      swapped,
      JSON.stringify({
        type: 'rogatory-anchor',
        network: 'casc',
        root: hubAnchor.root,
        fingerprint: cascAnchor.fingerprint,
      }),
    );
    const tampered = await cli([
      '--dir',
      wacap,
      '--json',
      'peer',
      'add',
      swapped,
      '--fingerprint',
      cascAnchor.fingerprint,
    ]);
    expect(errorOf(tampered).code).toBe('FINGERPRINT_MISMATCH');
    // CASC's genuine anchor relabelled as another network: the fingerprint binds the network id too.
    const relabelled = join(tmp.path, 'relabelled-anchor.json');
    await writeFile(
      relabelled,
      JSON.stringify({
        type: 'rogatory-anchor',
        network: 'glcjn',
        root: cascAnchor.root,
        fingerprint: cascAnchor.fingerprint,
      }),
    );
    const relabel = await cli([
      '--dir',
      wacap,
      '--json',
      'peer',
      'add',
      relabelled,
      '--fingerprint',
      cascAnchor.fingerprint,
    ]);
    expect(errorOf(relabel).code).toBe('FINGERPRINT_MISMATCH');
    const viaUnknown = await cli([
      '--dir',
      wacap,
      '--json',
      'peer',
      'add',
      join(tmp.path, 'casc-anchor.json'),
      '--fingerprint',
      cascAnchor.fingerprint,
      '--via',
      'global',
    ]);
    expect(errorOf(viaUnknown).code).toBe('INPUT_INVALID');
    expect(await readFile(join(wacap, 'draft.json'), 'utf8')).toBe(draftBefore);
    const badFile = await cli([
      '--dir',
      wacap,
      '--json',
      'peer',
      'add',
      join(wacap, 'draft.json'),
      '--fingerprint',
      cascAnchor.fingerprint,
    ]);
    expect(errorOf(badFile).code).toBe('INPUT_INVALID');
    expect(errorOf(badFile).message).toContain('draft.json');

    // Read over the phone: spaces dropped, upper case.
    const hubAdded = await cli([
      '--dir',
      wacap,
      '--json',
      'peer',
      'add',
      join(tmp.path, 'hub-anchor.json'),
      '--fingerprint',
      hubAnchor.fingerprint.replace(/ /g, '').toUpperCase(),
    ]);
    expect(hubAdded.code, hubAdded.out).toBe(0);
    const viaHub = await cli([
      '--dir',
      wacap,
      '--json',
      'peer',
      'add',
      join(tmp.path, 'casc-anchor.json'),
      '--fingerprint',
      cascAnchor.fingerprint,
      '--via',
      'global',
    ]);
    expect(viaHub.json()).toMatchObject({ network: 'casc', via: 'global', root: cascAnchor.root });
    const again = await cli([
      '--dir',
      wacap,
      '--json',
      'peer',
      'add',
      join(tmp.path, 'casc-anchor.json'),
      '--fingerprint',
      cascAnchor.fingerprint,
    ]);
    expect(errorOf(again).code).toBe('MEMBER_EXISTS');
    expect((await cli(['--dir', wacap, '--json', 'diff'])).json()).toMatchObject({
      peers: { added: ['global', 'casc'] },
    });
  });

  it('verify checks a peer edition against the anchor this network lists', async () => {
    const { dir: wacap } = await populated('verify-wacap', 'wacap');
    const { dir: casc } = await populated('verify-casc', 'casc');
    const { dir: glcjn } = await populated('verify-glcjn', 'glcjn');
    await cli(['--dir', casc, 'publish']);
    await cli(['--dir', glcjn, 'publish']);
    const anchorFile = join(tmp.path, 'verify-casc-anchor.json');
    const anchor = await cli(['--dir', casc, '--json', 'anchor', 'export']);
    await writeFile(anchorFile, anchor.out);
    await cli([
      '--dir',
      wacap,
      'peer',
      'add',
      anchorFile,
      '--fingerprint',
      anchor.json<{ fingerprint: string }>().fingerprint,
    ]);
    const cascEdition = join(casc, 'editions', '000001.json');
    const ok = await cli(['--dir', wacap, '--json', 'verify', cascEdition]);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.json()).toMatchObject({
      network: 'casc',
      version: 1,
      verifiedUnder: 'anchor',
      inChain: null,
    });
    expect((await cli(['--dir', wacap, 'verify', cascEdition])).out).toContain('anchor of casc');

    const forged = JSON.parse(await readFile(cascEdition, 'utf8')) as Manifest;
    (forged.body.authorities[0] as { name: string }).name = 'Someone else';
    const forgedFile = join(tmp.path, 'forged.json');
    await writeFile(forgedFile, JSON.stringify(forged));
    const bad = await cli(['--dir', wacap, '--json', 'verify', forgedFile]);
    expect(bad.code).toBe(2);
    expect(errorOf(bad)).toMatchObject({
      code: 'VERIFICATION_FAILED',
      detail: 'SIGNATURE_INVALID',
    });
    const unknown = await cli([
      '--dir',
      wacap,
      '--json',
      'verify',
      join(glcjn, 'editions', '000001.json'),
    ]);
    expect(errorOf(unknown)).toMatchObject({
      code: 'VERIFICATION_FAILED',
      detail: 'TRUST_CHAIN_BROKEN',
    });
  });
});

describe('revoke', () => {
  it('revokes every key of a member, or one key, in the next edition; the trust store then refuses them', async () => {
    const { dir, sn, poc } = await populated('revoke', 'wacap');
    expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);
    const at = new Date(NOW + 500).toISOString();
    const r = await cli([
      '--dir',
      dir,
      '--json',
      'revoke',
      'sn-moj-revoke@wacap',
      '--reason',
      'key-compromise',
      '--at',
      at,
    ]);
    expect(r.code, r.out).toBe(0);
    const revoked = r.json<{ kid: string; reason: string; revokedAt: number }[]>();
    expect(revoked.map((e) => e.kid)).toContain(sn.identity.kid);
    expect(revoked).toHaveLength(2);
    expect(revoked.every((e) => e.revokedAt === NOW + 500 && e.reason === 'key-compromise')).toBe(
      true,
    );
    const byKid = await cli([
      '--dir',
      dir,
      '--json',
      'revoke',
      poc.encryptionKid,
      '--reason',
      'superseded',
    ]);
    expect(byKid.json()).toEqual([
      { kid: poc.encryptionKid, reason: 'superseded', revokedAt: NOW },
    ]);

    expect(
      errorOf(
        await cli(['--dir', dir, '--json', 'revoke', sn.identity.kid, '--reason', 'superseded']),
      ).code,
    ).toBe('ALREADY_REVOKED');
    const unknown = await cli([
      '--dir',
      dir,
      '--json',
      'revoke',
      'nobody@wacap',
      '--reason',
      'superseded',
    ]);
    expect(unknown.code).toBe(6);
    expect(errorOf(unknown).code).toBe('MEMBER_NOT_FOUND');
    expect(
      errorOf(await cli(['--dir', dir, '--json', 'revoke', poc.identity.kid, '--reason', 'bored']))
        .code,
    ).toBe('INPUT_INVALID');
    expect(
      errorOf(
        await cli([
          '--dir',
          dir,
          '--json',
          'revoke',
          poc.identity.kid,
          '--reason',
          'superseded',
          '--at',
          'yesterday',
        ]),
      ).code,
    ).toBe('INPUT_INVALID');

    const diff = await cli(['--dir', dir, '--json', 'diff']);
    expect(
      diff
        .json<{ revoked: { kid: string }[] }>()
        .revoked.map((e) => e.kid)
        .sort(),
    ).toEqual([...revoked.map((e) => e.kid), poc.encryptionKid].sort());
    expect((await cli(['--dir', dir, 'diff'])).out).toContain(
      `! revoked key ${sn.identity.kid} (key-compromise)`,
    );
    expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);

    const config = JSON.parse(await readFile(join(dir, 'network.json'), 'utf8')) as {
      root: KeyRef;
    };
    const trust = new TrustStore({ pinned: [{ network: 'wacap', root: config.root }] });
    trust.addManifest(await edition(dir, 1));
    trust.addManifest(await edition(dir, 2));
    expect(trust.resolveSigningKey('sn-moj-revoke@wacap', sn.identity.kid, NOW + 499).key.kid).toBe(
      sn.identity.kid,
    );
    expect(() =>
      trust.resolveSigningKey('sn-moj-revoke@wacap', sn.identity.kid, NOW + 500),
    ).toThrow(/KEY_REVOKED/);
    expect(trust.encryptionKeysFor('sn-moj-revoke@wacap', NOW + 500)).toEqual([]);
    expect(trust.encryptionKeysFor('poc-sn-revoke@wacap', NOW)).toEqual([]);

    // Admitted again with new keys: remove, then add; the revoked keys cannot come back.
    const removed = await cli(['--dir', dir, '--json', 'remove', 'sn-moj-revoke@wacap']);
    expect(removed.json()).toEqual({ address: 'sn-moj-revoke@wacap', role: 'authority' });
    expect(errorOf(await cli(['--dir', dir, '--json', 'remove', 'sn-moj-revoke@wacap'])).code).toBe(
      'MEMBER_NOT_FOUND',
    );
    const readd = [
      '--name',
      'Ministry of Justice',
      '--country',
      'SN',
      '--competences',
      'mla',
      '--languages',
      'fr',
    ];
    const revokedAgain = await cli([
      '--dir',
      dir,
      '--json',
      'authority',
      'add',
      '--from',
      sn.file,
      ...readd,
    ]);
    expect(errorOf(revokedAgain).code).toBe('MEMBER_EXISTS');
    const fresh = await memberFile(tmp.path, 'sn-moj-revoke@wacap');
    expect(
      (await cli(['--dir', dir, 'authority', 'add', '--from', fresh.file, ...readd])).code,
    ).toBe(0);
    const changed = await cli(['--dir', dir, '--json', 'diff']);
    expect(changed.json()).toMatchObject({
      authorities: {
        added: [],
        removed: [],
        changed: [
          {
            name: 'sn-moj-revoke@wacap',
            fields: ['competences', 'encryptionKeys', 'key', 'languages'],
          },
        ],
      },
      revoked: [],
    });
  });
});

describe('error catalogue', () => {
  it('documents every code with its exit code in the README', async () => {
    const readme = await readFile(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    for (const [code, { exit }] of Object.entries(NETWORK_ERRORS)) {
      expect(readme).toMatch(new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${exit}\\s*\\|`));
    }
  });

  it('usage errors exit 1 without a stack', async () => {
    const run = await cli(['frobnicate']);
    expect(run.code).toBe(1);
    expect(run.err).toContain('unknown command');
  });
});
