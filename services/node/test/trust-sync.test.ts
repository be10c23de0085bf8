import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ready, signManifest, type Manifest } from '@rogatory/protocol';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { AuthorityNode } from '../src/index.js';
import { PASSPHRASE, makeNode, mlaRequest, randomFile, tempDir } from './support/fixtures.js';
import { TestLog, startFakeTrustRelay, type FakeTrustRelay } from './support/trust-log.js';

const HOUR = 3600_000;

describe('node trust sync (D4)', () => {
  let relay: FakeTrustRelay;
  let second: FakeTrustRelay;
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let n = 0;

  beforeAll(async () => {
    await ready();
    relay = await startFakeTrustRelay();
    second = await startFakeTrustRelay();
    const now = Date.now();
    world = buildTestWorld({
      now,
      relayUrl: (network) => (network === 'wacap' ? relay.url : second.url),
    });
    tmp = await tempDir();
  });
  afterAll(async () => {
    await relay.close();
    await second.close();
    await tmp.remove();
  });

  const witness = (network: string) => ({
    name: world.networks[network]!.relay.id,
    key: world.networks[network]!.relay.key,
  });

  /** A fresh node of sn-moj@wacap and a fresh wacap log whose first publication carries v1. */
  async function setup() {
    const dir = join(tmp.path, `node-${n++}`);
    const wacap = world.networks['wacap']!;
    const log = new TestLog('wacap', wacap.root);
    log.append('manifest', wacap.manifest);
    relay.chains.clear();
    second.chains.clear();
    relay.chains.set('wacap', [log.publish([witness('global')])]);
    const fx = await makeNode({ world, address: 'sn-moj@wacap', dir, relayUrl: relay.url });
    return { fx, log, wacap, dir };
  }

  function v2(previous: Manifest, patch: Partial<Manifest['body']> = {}): Manifest {
    const { type: _t, version: _v, previous: _p, ...body } = previous.body;
    return signManifest(
      { ...body, issuedAt: Date.now() - 500, ...patch },
      world.networks['wacap']!.root,
      previous,
    );
  }

  it('applies a new edition without restart, stores it durably, and refuses an older trust folder', async () => {
    const { fx, log, wacap, dir } = await setup();
    const first = await fx.node.syncTrust();
    expect(first.networks.find((x) => x.network === 'wacap')).toMatchObject({
      outcome: 'applied',
      size: 1,
      edition: 1,
    });
    // v2 drops gh-ago@wacap: it can no longer be written to.
    const next = v2(wacap.manifest, {
      authorities: wacap.manifest.body.authorities.filter((a) => a.address !== 'gh-ago@wacap'),
    });
    log.append('manifest', next);
    relay.chains.get('wacap')!.push(log.publish([witness('casc')]));
    const report = await fx.node.syncTrust();
    expect(report.networks.find((x) => x.network === 'wacap')).toMatchObject({
      outcome: 'applied',
      size: 2,
      edition: 2,
    });
    const status = fx.node.trustStatus().networks.find((x) => x.network === 'wacap')!;
    expect(status).toMatchObject({
      edition: 2,
      logEdition: 2,
      logSize: 2,
      cosigners: ['relay@casc'],
    });
    expect(
      fx.node
        .auditEntries(fx.admin)
        .some((e) => e.action === 'trust.edition-applied' && e.target === 'wacap'),
    ).toBe(true);
    // The live store refuses the dropped member at once: no restart.
    const officer = fx.user('officer', 'officer');
    const files = [
      await randomFile(tmp.path, `a-${n}.pdf`, 1000),
      await randomFile(tmp.path, `b-${n}.csv`, 1000),
    ];
    await expect(
      fx.node.compose(officer, {
        content: mlaRequest(world, 'sn-moj@wacap', 'gh-ago@wacap', { handlingCode: 'none' }),
        attachments: files.map((f) => ({ path: f.path })),
      }),
    ).rejects.toMatchObject({ code: 'RECIPIENT_UNKNOWN' });
    await expect(
      fx.node.compose(officer, {
        content: mlaRequest(world, 'sn-moj@wacap', 'ng-agf@wacap', { handlingCode: 'none' }),
        attachments: files.map((f) => ({ path: f.path })),
      }),
    ).resolves.toBeTypeOf('string');
    await fx.node.close();

    // An older edition in the trust folder is refused at start; the stored one is used.
    await writeFile(join(dir, 'trust', 'wacap.json'), JSON.stringify(wacap.manifest));
    const reopened = await AuthorityNode.open({ dir, passphrase: PASSPHRASE });
    try {
      expect(reopened.trustStatus().networks.find((x) => x.network === 'wacap')!.edition).toBe(2);
      const admin = reopened.login('admin', 'a long enough password');
      const refused = reopened
        .auditEntries(admin)
        .filter((e) => e.action === 'trust.manifest-refused');
      expect(refused.map((e) => e.detail)).toEqual(['MANIFEST_ROLLBACK v1 held v2']);
    } finally {
      await reopened.close();
    }
  });

  const refusals: [
    string,
    (ctx: { log: TestLog; wacap: (typeof world.networks)[string] }) => unknown,
  ][] = [
    [
      'QUORUM_NOT_MET',
      ({ log, wacap }) => (log.append('manifest', v2(wacap.manifest)), log.publish([])),
    ],
    [
      'MANIFEST_CHAIN_BROKEN',
      ({ log, wacap }) => (
        log.append('manifest', v2(v2(wacap.manifest))),
        log.publish([witness('global')])
      ),
    ],
    [
      'MANIFEST_EXPIRED',
      ({ log, wacap }) => (
        log.append(
          'manifest',
          v2(wacap.manifest, { issuedAt: Date.now() - 3 * HOUR, validUntil: Date.now() - HOUR }),
        ),
        log.publish([witness('global')])
      ),
    ],
    [
      'MANIFEST_ROLLBACK',
      ({ log, wacap }) => {
        // Another edition of version 1, signed by the root: not newer than the one held.
        const { type: _t, version: _v, previous: _p, ...body } = wacap.manifest.body;
        log.append('manifest', signManifest({ ...body, issuedAt: Date.now() - 2000 }, wacap.root));
        return log.publish([witness('global')]);
      },
    ],
    [
      'PROOF_INVALID',
      ({ log, wacap }) => {
        log.append('manifest', v2(wacap.manifest));
        log.append('manifest', v2(v2(wacap.manifest)));
        const pub = log.publish([witness('global')]);
        return {
          ...pub,
          entries: pub.entries.map((e) => ({
            ...e,
            proof: [...e.proof].reverse().map((h, i) => (i === 0 ? 'A'.repeat(43) + '=' : h)),
          })),
        };
      },
    ],
  ];

  it.each(refusals)(
    'refuses %s: the previous edition stays in force, nothing stored',
    async (code, make) => {
      const { fx, log, wacap } = await setup();
      await fx.node.syncTrust();
      const before = fx.node.trustStatus().networks.find((x) => x.network === 'wacap')!;
      relay.chains.get('wacap')!.push(make({ log, wacap }));
      const report = await fx.node.syncTrust();
      const out = report.networks.find((x) => x.network === 'wacap')!;
      expect(out.outcome).toBe('refused');
      expect(out.code).toBe(code);
      const after = fx.node.trustStatus().networks.find((x) => x.network === 'wacap')!;
      expect(after.logSize).toBe(before.logSize);
      expect(after.edition).toBe(1);
      expect(after.lastFetch.relay?.outcome).toBe(code);
      expect(
        fx.node
          .auditEntries(fx.admin)
          .filter((e) => e.action === 'trust.publication-refused')
          .map((e) => e.detail),
      ).toEqual([code]);
      await fx.node.close();
    },
  );

  it('raises the fork alarm when the second source disagrees, and refuses the network from then on', async () => {
    const { fx } = await setup();
    const casc = world.networks['casc']!;
    const a = new TestLog('casc', casc.root);
    a.append('manifest', casc.manifest);
    const b = new TestLog('casc', casc.root);
    b.append('manifest', v2ForCasc(casc.manifest));
    relay.chains.set('casc', [a.publish([witness('wacap')])]);
    second.chains.set('casc', [b.publish([witness('wacap')])]);
    const report = await fx.node.syncTrust();
    expect(report.networks.find((x) => x.network === 'casc')).toMatchObject({
      outcome: 'fork',
      code: 'LOG_FORK_DETECTED',
    });
    const status = fx.node.trustStatus();
    expect(status.openAlarms).toBe(1);
    expect(status.forksTotal).toBe(1);
    const alarm = status.networks.find((x) => x.network === 'casc')!.alarms[0]!;
    expect(alarm.noteA).not.toBe(alarm.noteB);
    expect(fx.node.status().trust.networks.find((x) => x.network === 'casc')!.forkAlarm).toBe(true);
    expect(
      fx.node
        .auditEntries(fx.admin)
        .some((e) => e.action === 'trust.fork-detected' && e.target === 'casc'),
    ).toBe(true);
    const again = await fx.node.syncTrust();
    expect(again.networks.find((x) => x.network === 'casc')).toMatchObject({
      outcome: 'fork',
      size: 0,
    });
    expect(fx.node.clearTrustAlarm(fx.admin, 'casc')).toBe(1);
    expect(fx.node.trustStatus().openAlarms).toBe(0);
    await fx.node.close();

    function v2ForCasc(m: Manifest): Manifest {
      const { type: _t, version: _v, previous: _p, ...body } = m.body;
      return signManifest({ ...body, issuedAt: Date.now() - 1000 }, casc.root);
    }
  });

  it('finds a second source that is behind consistent', async () => {
    const { fx } = await setup();
    const casc = world.networks['casc']!;
    const a = new TestLog('casc', casc.root);
    a.append('manifest', casc.manifest);
    const p1 = a.publish([witness('wacap')]);
    relay.chains.set('casc', [p1]);
    second.chains.set('casc', [p1]);
    const report = await fx.node.syncTrust();
    expect(report.networks.find((x) => x.network === 'casc')).toMatchObject({
      outcome: 'applied',
      secondSource: 'consistent',
    });
    await fx.node.close();
  });
});
