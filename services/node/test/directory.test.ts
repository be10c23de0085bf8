import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ready,
  signIntroduction,
  signManifest,
  type DossierContent,
  type Introduction,
} from '@rogatory/protocol';
import { DEFAULT_WORLD, buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorityNode, isNodeError, type Actor } from '../src/index.js';
import {
  PASSPHRASE,
  PASSWORD,
  makeNode,
  mlaRequest,
  randomFile,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';
const GE = 'ge-pog@casc';

describe('directory, request warnings and revoked recipients (no relay needed)', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let n: NodeFixture;
  let officer: Actor;
  let files: { path: string }[];
  const now = Date.now();

  beforeAll(async () => {
    await ready();
    // kz-gpo handles extradition only; every other authority handles all four types.
    world = buildTestWorld({
      now,
      relayUrl: () => 'http://127.0.0.1:9',
      specs: DEFAULT_WORLD.map((spec) => ({
        ...spec,
        authorities: spec.authorities.map((a) =>
          `${a.local}@${spec.network}` === KZ ? { ...a, competences: ['extradition' as const] } : a,
        ),
      })),
    });
    tmp = await tempDir();
    n = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn') });
    officer = n.user('officer', 'officer', ['restricted']);
    files = [await randomFile(tmp.path, 'a.pdf', 100), await randomFile(tmp.path, 'b.pdf', 100)];
  });
  afterAll(async () => {
    await n.node.close();
    await tmp.remove();
  });

  const withLanguage = (content: DossierContent, language: string): DossierContent =>
    content.kind === 'request' ? { ...content, header: { ...content.header, language } } : content;

  it('lists every authority and point of contact of the trusted manifests, vouched by their edition', () => {
    const all = n.node.directory(officer);
    expect(all.map((e) => e.address).sort()).toEqual(
      [
        SN,
        'ng-agf@wacap',
        'gh-ago@wacap',
        KZ,
        GE,
        world.networks['wacap']!.poc.address,
        world.networks['casc']!.poc.address,
        world.networks['global']!.poc.address,
      ].sort(),
    );
    const kz = all.find((e) => e.address === KZ)!;
    expect(kz).toMatchObject({
      role: 'authority',
      name: 'General Prosecutor of Kazakhstan (test)',
      country: 'KZ',
      network: 'casc',
      competences: ['extradition'],
      languages: ['en', 'fr'],
      vouchedBy: [{ kind: 'manifest', network: 'casc', edition: 1 }],
    });
    expect(all.find((e) => e.address === world.networks['casc']!.poc.address)?.role).toBe('poc');
  });

  it('filters by country, network, request type, language and text', () => {
    const addresses = (f: Parameters<AuthorityNode['directory']>[1]) =>
      n.node
        .directory(officer, f)
        .map((e) => e.address)
        .sort();
    expect(addresses({ country: 'kz' })).toEqual([KZ, world.networks['casc']!.poc.address].sort());
    expect(addresses({ network: 'casc', type: 'mla' })).toEqual([GE]);
    expect(addresses({ language: 'fr-BE', network: 'wacap' })).toEqual(
      [SN, 'ng-agf@wacap', 'gh-ago@wacap'].sort(),
    );
    expect(addresses({ language: 'de' })).toEqual([]);
    expect(addresses({ text: 'GHANA' })).toEqual(['gh-ago@wacap']);
  });

  it('shows introductions meant for this node, with who vouched for them and until when', () => {
    const casc = world.networks['casc']!;
    const intro = (audience: string, subject: string, validUntil = now + 86_400_000) =>
      signIntroduction(
        {
          issuer: casc.poc.address,
          subject,
          subjectKey: world.authority(KZ).identityRef,
          audience,
          competences: ['mla'],
          note: '',
          issuedAt: now - 1000,
          validUntil,
        },
        casc.poc.key,
      );
    const list: Introduction[] = [
      intro(SN, KZ),
      intro('ng-agf@wacap', GE),
      intro('wacap', 'xx-new@casc'),
      intro(SN, 'yy-old@casc', now - 10),
    ];
    const entries = n.node.directory(officer, {}, { listIntroductions: () => list });
    const kz = entries.find((e) => e.address === KZ)!;
    expect(kz.vouchedBy).toEqual([
      { kind: 'manifest', network: 'casc', edition: 1 },
      {
        kind: 'introduction',
        issuer: casc.poc.address,
        network: 'casc',
        validUntil: now + 86_400_000,
      },
    ]);
    expect(kz.competences).toEqual(['extradition', 'mla']);
    expect(entries.find((e) => e.address === GE)!.vouchedBy).toHaveLength(1);
    expect(entries.find((e) => e.address === 'xx-new@casc')).toMatchObject({
      role: 'authority',
      name: null,
      country: null,
      competences: ['mla'],
    });
    expect(entries.find((e) => e.address === 'yy-old@casc')).toBeUndefined();
  });

  it('warns (never refuses) about a request type or language the recipient does not list', async () => {
    const id = await n.node.compose(officer, {
      content: withLanguage(mlaRequest(world, SN, KZ, { caseReference: 'W-1' }), 'de'),
      attachments: files.map((f) => ({ path: f.path })),
    });
    expect(n.node.warnings(officer, id).map((w) => [w.code, w.recipient, w.value])).toEqual([
      ['COMPETENCE_NOT_LISTED', KZ, 'mla'],
      ['LANGUAGE_NOT_LISTED', KZ, 'de'],
    ]);
    n.node.submitForApproval(officer, id);
    expect(n.node.warnings(officer, id)).toHaveLength(2);

    const fine = await n.node.compose(officer, {
      content: withLanguage(mlaRequest(world, SN, GE, { caseReference: 'W-2' }), 'fr-BE'),
      attachments: files.map((f) => ({ path: f.path })),
    });
    expect(n.node.warnings(officer, fine)).toEqual([]);
  });

  it('refuses to seal to an authority whose identity key its network revoked (RECIPIENT_REVOKED)', async () => {
    const casc = world.networks['casc']!;
    const kz = world.authority(KZ);
    const { type: _t, version: _v, previous: _p, ...rest } = casc.manifest.body;
    const v2 = signManifest(
      {
        ...rest,
        issuedAt: now,
        revoked: [{ kid: kz.identity.kid, revokedAt: now - 60_000, reason: 'key-compromise' }],
      },
      casc.root,
      casc.manifest,
    );
    // The node learns the edition (as a publication would bring it) and is reopened.
    await n.node.close();
    await writeFile(join(n.dir, 'trust', 'casc.json'), JSON.stringify(v2));
    const node = await AuthorityNode.open({ dir: n.dir, passphrase: PASSPHRASE });
    n = { ...n, node };
    officer = node.login('officer', PASSWORD);
    const err = await node
      .compose(officer, {
        content: mlaRequest(world, SN, KZ, { caseReference: 'R-1' }),
        attachments: files.map((f) => ({ path: f.path })),
      })
      .catch((e: unknown) => e);
    expect(isNodeError(err, 'RECIPIENT_REVOKED')).toBe(true);
    expect(isNodeError(err) && err.detail).toBe('KEY_REVOKED');
    // Another authority of the same network is not affected.
    await expect(
      node.compose(officer, {
        content: mlaRequest(world, SN, GE, { caseReference: 'R-2' }),
        attachments: files.map((f) => ({ path: f.path })),
      }),
    ).resolves.toMatch(/./);
  });
});
