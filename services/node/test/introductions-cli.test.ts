import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signIntroduction, toBase64url } from '@rogatory/protocol';
import { terminateHashWorker } from '@rogatory/protocol/node';
import { testSeed, type TestWorld } from '@rogatory/protocol/testing';
import { startTestRelays, type TestNetworkOfRelays } from '@rogatory/relay/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/program.js';
import type { CliIO } from '../src/cli/io.js';
import { PASSPHRASE, PASSWORD, tempDir } from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const GH = 'gh-ago@wacap';
const POC_SN = 'poc-sn@wacap';

interface Run {
  code: number;
  out: string;
  err: string;
  json: () => unknown;
}

describe('rogatory introduce (CLI)', () => {
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

  /** `rogatory init` (with `--poc` for a PoC address) with the test world's seeds, and two users. */
  async function initNodeFor(address: string, poc: boolean): Promise<{ dir: string; init: Run }> {
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
    const seed = poc ? `${network}/poc` : `${address}/identity`;
    await writeFile(
      keys,
      JSON.stringify({
        identitySeed: toBase64url(testSeed(seed)),
        encryptionSeed: toBase64url(
          testSeed(poc ? `${network}/poc/encryption/1` : `${address}/encryption/1`),
        ),
      }),
    );
    const init = await cli([
      '--dir',
      dir,
      '--json',
      'init',
      ...(poc ? ['--poc'] : []),
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
    if (init.code !== 0) return { dir, init };
    for (const [name, role] of [
      ['officer', 'officer'],
      ['approver', 'approver'],
    ]) {
      const added = await cli(
        ['--dir', dir, '--user', 'admin', 'user', 'add', name!, '--role', role!],
        { ROGATORY_NEW_PASSWORD: PASSWORD },
      );
      expect(added.code).toBe(0);
    }
    return { dir, init };
  }

  it('init --poc, request, list, issue with four eyes, export, and the outcome at the requester', async () => {
    // An authority address is no point of contact (exit 1, nothing created).
    const wrong = await initNodeFor(SN, true);
    expect(wrong.init.code).toBe(1);
    expect(wrong.init.json()).toMatchObject({ error: { code: 'INPUT_INVALID' } });

    const poc = await initNodeFor(POC_SN, true);
    expect(poc.init.code).toBe(0);
    // What `rogatory-network poc add --from` reads: identity and encryptionCertificate, as the manifest lists them.
    const entry = world.networks['wacap']!.manifest.body.pocs.find((p) => p.address === POC_SN)!;
    expect(poc.init.json()).toMatchObject({
      address: POC_SN,
      role: 'poc',
      listedInManifest: true,
      identity: { kid: entry.key.kid },
      encryptionCertificate: { body: { subject: POC_SN } },
    });
    const sn = (await initNodeFor(SN, false)).dir;
    const pocDir = poc.dir;
    const as = (dir: string, user: string, ...args: string[]) =>
      cli(['--dir', dir, '--user', user, '--json', ...args]);

    // The requesting officer drafts; exit 1 for a bad type, 8 for a recipient that is no PoC.
    expect(
      (
        await as(
          sn,
          'officer',
          'introduce',
          'request',
          '--to',
          POC_SN,
          '--country',
          'GH',
          '--type',
          'bribe',
          '--language',
          'en',
        )
      ).code,
    ).toBe(1);
    const notPoc = await as(
      sn,
      'officer',
      'introduce',
      'request',
      '--to',
      GH,
      '--country',
      'GH',
      '--type',
      'mla',
      '--language',
      'en',
    );
    expect(notPoc.code).toBe(8);
    expect(notPoc.json()).toMatchObject({ error: { code: 'RECIPIENT_UNKNOWN' } });
    const requested = await as(
      sn,
      'officer',
      'introduce',
      'request',
      '--to',
      POC_SN,
      '--country',
      'gh',
      '--type',
      'mla',
      '--language',
      'en,fr',
      '--note',
      'bank records',
      '--case-ref',
      'CLI-INTRO-1',
      '--submit',
    );
    expect(requested.code).toBe(0);
    const { id: requestId } = requested.json() as { id: string };
    expect(requested.json()).toMatchObject({ status: 'awaiting-approval' });
    expect((await as(sn, 'officer', 'approve', requestId)).code).toBe(3);
    expect((await as(sn, 'approver', 'approve', requestId)).code).toBe(0);
    const pending = await as(sn, 'officer', 'introduce', 'status', requestId);
    expect(pending.json()).toMatchObject({
      requests: [{ id: requestId, outcome: 'pending', poc: POC_SN }],
    });

    // The PoC pulls and lists it.
    let entries: { id: string; state: string; requester: string; country: string }[] = [];
    for (let i = 0; i < 100 && entries.length === 0; i++) {
      expect((await cli(['--dir', pocDir, 'sync', '--once'])).code).toBe(0);
      entries = (
        (await as(pocDir, 'officer', 'introduce', 'list', '--state', 'open')).json() as {
          entries: typeof entries;
        }
      ).entries;
    }
    expect(entries).toEqual([
      expect.objectContaining({ state: 'open', requester: SN, country: 'GH' }),
    ]);
    const caseId = entries[0]!.id;
    const text = await cli(['--dir', pocDir, '--user', 'officer', 'introduce', 'list']);
    expect(text.out).toContain(caseId);
    expect(text.out).toContain('open');

    // An authority's node cannot issue (exit 7); a bad decline reason is exit 1.
    expect((await as(sn, 'officer', 'introduce', 'issue', caseId, '--authority', GH)).code).toBe(7);
    expect(
      (await as(pocDir, 'officer', 'introduce', 'decline', caseId, '--reason', 'nope')).code,
    ).toBe(1);

    const issued = await as(
      pocDir,
      'officer',
      'introduce',
      'issue',
      caseId,
      '--authority',
      GH,
      '--valid-days',
      '30',
    );
    expect(issued.code).toBe(0);
    const { dossierId } = issued.json() as { dossierId: string };
    expect(issued.json()).toMatchObject({
      introduction: { body: { issuer: POC_SN, subject: GH, audience: SN, competences: ['mla'] } },
    });
    const out = join(tmp.path, 'introductions.json');
    const before = await as(pocDir, 'officer', 'introduce', 'export', '--out', out);
    expect(before.json()).toMatchObject({ count: 0 });
    // Four eyes: the officer who issued it cannot approve; an approver sends it.
    expect((await as(pocDir, 'officer', 'approve', dossierId)).code).toBe(3);
    expect((await as(pocDir, 'approver', 'approve', dossierId)).code).toBe(0);
    const after = await as(pocDir, 'officer', 'introduce', 'export', '--out', out);
    expect(after.json()).toMatchObject({ count: 1 });
    const exported = JSON.parse(await readFile(out, 'utf8')) as { introductions: unknown[] };
    expect(exported.introductions).toHaveLength(1);
    expect(() => world.trustFor('wacap').addIntroduction(exported.introductions[0])).not.toThrow();

    // The requester pulls the answer; status and directory show it.
    let outcome:
      | { outcome: string; answeredBy: string | null; introductions: { subject: string }[] }
      | undefined;
    for (let i = 0; i < 100 && (outcome === undefined || outcome.outcome === 'pending'); i++) {
      expect((await cli(['--dir', sn, 'sync', '--once'])).code).toBe(0);
      outcome = (
        (await as(sn, 'officer', 'introduce', 'status', requestId)).json() as {
          requests: (typeof outcome)[];
        }
      ).requests[0];
    }
    expect(outcome).toMatchObject({
      outcome: 'introduced',
      answeredBy: POC_SN,
      introductions: [{ subject: GH }],
    });
    const dir = await as(sn, 'officer', 'directory', '--text', 'gh-ago');
    expect(dir.json()).toMatchObject({
      entries: [
        {
          address: GH,
          vouchedBy: [{ kind: 'manifest' }, { kind: 'introduction', issuer: POC_SN }],
        },
      ],
    });
    const dirText = await cli(['--dir', sn, '--user', 'officer', 'directory', '--text', 'gh-ago']);
    expect(dirText.out).toContain(`introduced by ${POC_SN}`);
    const statusText = await cli(['--dir', sn, '--user', 'officer', 'introduce', 'status']);
    expect(statusText.out).toContain(`${GH} introduced by ${POC_SN}`);

    // A second request is referred across networks; once referred it cannot be declined (exit 7).
    const second = await as(
      sn,
      'officer',
      'introduce',
      'request',
      '--to',
      POC_SN,
      '--country',
      'KZ',
      '--type',
      'extradition',
      '--language',
      'ru',
      '--case-ref',
      'CLI-INTRO-2',
      '--submit',
    );
    expect((await as(sn, 'approver', 'approve', (second.json() as { id: string }).id)).code).toBe(
      0,
    );
    let open2: { id: string } | undefined;
    for (let i = 0; i < 100 && open2 === undefined; i++) {
      expect((await cli(['--dir', pocDir, 'sync', '--once'])).code).toBe(0);
      open2 = (
        (await as(pocDir, 'officer', 'introduce', 'list', '--state', 'open')).json() as {
          entries: { id: string }[];
        }
      ).entries[0];
    }
    expect((await as(pocDir, 'officer', 'introduce', 'refer', open2!.id, '--to', SN)).code).toBe(8);
    const referred = await as(
      pocDir,
      'officer',
      'introduce',
      'refer',
      open2!.id,
      '--to',
      'poc-kz@casc',
      '--remarks',
      'Kazakh authority sought',
    );
    expect(referred.code).toBe(0);
    expect(
      (await as(pocDir, 'officer', 'introduce', 'list', '--state', 'referred')).json(),
    ).toMatchObject({
      entries: [
        {
          id: open2!.id,
          state: 'referred',
          answer: { outcome: 'referred', to: 'poc-kz@casc', dossierStatus: 'awaiting-approval' },
        },
      ],
    });
    const late = await as(
      pocDir,
      'officer',
      'introduce',
      'decline',
      open2!.id,
      '--reason',
      'other',
    );
    expect(late.code).toBe(7);
    expect(late.json()).toMatchObject({ error: { code: 'INVALID_STATE' } });

    // A forged introduction given directly: exit 2, its code, nothing kept.
    const ng = world.authority('ng-agf@wacap');
    const now = Date.now();
    const byAuthority = signIntroduction(
      {
        issuer: ng.address,
        subject: GH,
        subjectKey: world.authority(GH).identityRef,
        audience: SN,
        competences: ['extradition'],
        note: '',
        issuedAt: now - 1000,
        validUntil: now + 86_400_000,
      },
      ng.identity,
    );
    const file = join(tmp.path, 'by-authority.json');
    await writeFile(file, JSON.stringify(byAuthority));
    const refused = await as(sn, 'officer', 'introduce', 'receive', file);
    expect(refused.code).toBe(2);
    expect(refused.json()).toMatchObject({
      error: { code: 'VERIFICATION_FAILED', detail: 'KEY_WRONG_ROLE' },
    });
    const still = await as(sn, 'officer', 'directory', '--text', 'gh-ago');
    expect(
      (still.json() as { entries: { vouchedBy: unknown[] }[] }).entries[0]!.vouchedBy,
    ).toHaveLength(2);
  }, 180_000);
});
