import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KDF_LIMITS, TrustStore, ready, type KeyRef, type Manifest } from '@rogatory/protocol';
import { terminateHashWorker } from '@rogatory/protocol/node';
import { initNode, type InitNodeResult } from '@rogatory/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from './support.js';

const run = promisify(execFile);
const RELAY_BIN = join(
  import.meta.dirname,
  '..',
  'node_modules',
  '@rogatory',
  'relay',
  'bin',
  'rogatory-relay.js',
);

let tmp: { path: string; remove: () => Promise<void> };
beforeAll(async () => {
  await ready();
  tmp = await tempDir();
});
afterAll(async () => {
  await terminateHashWorker();
  await tmp.remove();
});

interface Anchor {
  network: string;
  root: KeyRef;
  fingerprint: string;
}

/**
 * Two secretariats, WACAP and CASC, as they would work: each creates its
 * network, they exchange anchors (comparing fingerprints), each admits a
 * relay (key from the real `rogatory-relay keygen`), publishes, admits an
 * authority and a PoC whose keys come from the node's real `initNode`, and
 * publishes again. The protocol's TrustStore then loads both chains from
 * either side and resolves every member, encryption keys included.
 */
describe('two secretariats, end to end', () => {
  it('WACAP and CASC publish chains that each side trusts through the exchanged anchors', async () => {
    const now = Date.now();
    const clock = () => Date.now();
    const dirs = {
      wacap: join(tmp.path, 'wacap-secretariat'),
      casc: join(tmp.path, 'casc-secretariat'),
    };
    const anchors: Record<string, Anchor> = {};
    for (const [network, dir] of Object.entries(dirs)) {
      const init = await cli(
        ['--dir', dir, '--json', 'init', '--network', network, '--kdf', 'interactive'],
        {},
        clock,
      );
      expect(init.code, init.out).toBe(0);
      const exported = await cli(['--dir', dir, '--json', 'anchor', 'export'], {}, clock);
      await writeFile(join(tmp.path, `${network}-anchor.json`), exported.out);
      anchors[network] = exported.json<Anchor>();
      expect(anchors[network]).toEqual(init.json());
    }

    // Anchor exchange: the file travels by mail, the fingerprint is read over the phone.
    for (const [self, other] of [
      ['wacap', 'casc'],
      ['casc', 'wacap'],
    ] as const) {
      const peer = await cli(
        [
          '--dir',
          dirs[self],
          '--json',
          'peer',
          'add',
          join(tmp.path, `${other}-anchor.json`),
          '--fingerprint',
          anchors[other]!.fingerprint,
        ],
        {},
        clock,
      );
      expect(peer.code, peer.out).toBe(0);
    }

    // Relays: keys from the relay's own keygen command (a process each; both at once, they are slow to start).
    const relayKeys = await Promise.all(
      (['wacap', 'casc'] as const).map(async (network) => {
        const { stdout } = await run(
          process.execPath,
          [RELAY_BIN, 'keygen', '-o', join(tmp.path, `relay-${network}.sealed.json`)],
          {
            env: { ...process.env, ROGATORY_RELAY_PASSPHRASE: 'relay passphrase for the test' },
          },
        );
        const refFile = join(tmp.path, `relay-${network}.keyref.json`);
        await writeFile(refFile, stdout);
        return { network, refFile };
      }),
    );
    for (const { network, refFile } of relayKeys) {
      const added = await cli(
        [
          '--dir',
          dirs[network],
          'relay',
          'add',
          '--key',
          refFile,
          '--url',
          `https://relay.${network}.example`,
        ],
        {},
        clock,
      );
      expect(added.code, added.err).toBe(0);
      const published = await cli(
        ['--dir', dirs[network], 'publish', '--valid-days', '30'],
        {},
        clock,
      );
      expect(published.code, published.err).toBe(0);
    }

    const editionFile = (network: 'wacap' | 'casc', version: number) =>
      join(dirs[network], 'editions', `${String(version).padStart(6, '0')}.json`);
    const readEdition = async (network: 'wacap' | 'casc', version: number) =>
      JSON.parse(await readFile(editionFile(network, version), 'utf8')) as Manifest;

    // Members: keys made by the node's initNode (what `rogatory init --json` prints), against edition 1.
    const members = [
      {
        address: 'sn-moj@wacap',
        kind: 'authority',
        name: 'Ministry of Justice of Senegal',
        country: 'SN',
      },
      { address: 'poc-sn@wacap', kind: 'poc', name: 'Point of contact Senegal', country: 'SN' },
      {
        address: 'kz-gpo@casc',
        kind: 'authority',
        name: 'General Prosecutor of Kazakhstan',
        country: 'KZ',
      },
      { address: 'poc-kz@casc', kind: 'poc', name: 'Point of contact Kazakhstan', country: 'KZ' },
    ] as const;
    const inits: Record<string, InitNodeResult> = {};
    for (const m of members) {
      const network = m.address.split('@')[1] as 'wacap' | 'casc';
      const other = network === 'wacap' ? 'casc' : 'wacap';
      const result = await initNode({
        dir: join(tmp.path, 'nodes', m.address),
        address: m.address,
        relayUrl: `https://relay.${network}.example`,
        relayId: `relay@${network}`,
        passphrase: 'node passphrase for the test',
        pinnedRoot: anchors[network]!.root,
        manifests: [await readEdition(network, 1), await readEdition(other, 1)],
        kdf: KDF_LIMITS.interactive,
      });
      expect(result.listedInManifest).toBe(false);
      inits[m.address] = result;
      const file = join(tmp.path, `${m.address}.init.json`);
      await writeFile(file, JSON.stringify(result, null, 2));
      const args =
        m.kind === 'authority'
          ? [
              'authority',
              'add',
              '--from',
              file,
              '--name',
              m.name,
              '--country',
              m.country,
              '--competences',
              'mla,extradition,confiscation',
              '--languages',
              'en,ru,fr',
            ]
          : ['poc', 'add', '--from', file, '--name', m.name, '--country', m.country];
      const added = await cli(['--dir', dirs[network], ...args], {}, clock);
      expect(added.code, added.err).toBe(0);
    }
    for (const network of ['wacap', 'casc'] as const) {
      const diff = await cli(['--dir', dirs[network], '--json', 'diff'], {}, clock);
      expect(diff.json()).toMatchObject({
        from: 'v1',
        to: 'draft',
        authorities: {
          added: [
            members.find((m) => m.kind === 'authority' && m.address.endsWith(network))!.address,
          ],
        },
        pocs: {
          added: [members.find((m) => m.kind === 'poc' && m.address.endsWith(network))!.address],
        },
      });
      const published = await cli(
        ['--dir', dirs[network], '--json', 'publish', '--valid-days', '30'],
        {},
        clock,
      );
      expect(published.code, published.err).toBe(0);
      expect(published.json()).toMatchObject({ version: 2 });
      const verified = await cli(['--dir', dirs[network], '--json', 'verify'], {}, clock);
      expect(verified.json()).toMatchObject({
        editions: 2,
        last: { authorities: 1, pocs: 1, relays: 1, peers: 1 },
      });
    }

    // Each side: pinned own root, both chains in order, every member resolved.
    for (const [self, other] of [
      ['wacap', 'casc'],
      ['casc', 'wacap'],
    ] as const) {
      const trust = new TrustStore({ pinned: [{ network: self, root: anchors[self]!.root }] });
      for (const network of [self, other]) {
        expect(trust.addManifest(await readEdition(network, 1), { now: clock() })).toBe(true);
        expect(trust.addManifest(await readEdition(network, 2), { now: clock() })).toBe(true);
      }
      expect(trust.rootOf(other)).toEqual(anchors[other]!.root);
      for (const m of members) {
        const init = inits[m.address]!;
        const resolved = trust.resolveSigningKey(m.address, init.identity.kid, clock(), [m.kind]);
        expect(resolved.key).toEqual(init.identity);
        expect(trust.encryptionKeysFor(m.address, clock()).map((k) => k.kid)).toEqual([
          init.encryptionCertificate.body.key.kid,
        ]);
      }
      expect(trust.authority('kz-gpo@casc')?.competences).toEqual([
        'mla',
        'extradition',
        'confiscation',
      ]);
      expect(trust.poc('poc-sn@wacap')?.name).toBe('Point of contact Senegal');
    }

    // A peer's edition verifies in the other secretariat under the anchor it imported.
    const cross = await cli(
      ['--dir', dirs.wacap, '--json', 'verify', editionFile('casc', 2)],
      {},
      clock,
    );
    expect(cross.json()).toMatchObject({ network: 'casc', version: 2, verifiedUnder: 'anchor' });
    expect(now).toBeLessThanOrEqual(clock());
  }, 300_000);
});

describe('the rogatory-network executable', () => {
  it('runs init, status and anchor export in fresh processes (libsodium loaded by the CLI itself)', async () => {
    const bin = join(import.meta.dirname, '..', 'bin', 'rogatory-network.js');
    const dir = join(tmp.path, 'bin-secretariat');
    const env = { ...process.env, ROGATORY_PASSPHRASE: 'a passphrase for the executable test' };
    const init = await run(
      process.execPath,
      [bin, '--dir', dir, '--json', 'init', '--network', 'seajust', '--kdf', 'interactive'],
      { env },
    );
    const anchor = JSON.parse(init.stdout) as Anchor;
    const status = await run(process.execPath, [bin, '--dir', dir, '--json', 'status'], { env });
    expect(JSON.parse(status.stdout)).toMatchObject({
      network: 'seajust',
      editions: 0,
      fingerprint: anchor.fingerprint,
      pendingChanges: false,
    });
    const exported = await run(process.execPath, [bin, '--dir', dir, 'anchor', 'export'], { env });
    expect(exported.stdout).toContain(anchor.fingerprint);
    const failed = await run(
      process.execPath,
      [bin, '--dir', dir, '--json', 'revoke', 'nobody@seajust', '--reason', 'superseded'],
      { env },
    ).then(
      () => ({ code: 0, stdout: '' }),
      (err: unknown) => err as { code: number; stdout: string },
    );
    expect(failed.code).toBe(6);
    expect(JSON.parse(failed.stdout)).toMatchObject({ error: { code: 'MEMBER_NOT_FOUND' } });
  }, 120_000);
});
