import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayClient, type MailboxItem } from '@rogatory/client';
import {
  CONTEXTS,
  parseSealedDossier,
  ready,
  sign,
  signManifest,
  verifyEncryptionKeyCert,
  verifyEnvelope,
  verifyKeyRotation,
  type Envelope,
  type KeyRotation,
  type Manifest,
  type TrustStore,
} from '@rogatory/protocol';
import { terminateHashWorker } from '@rogatory/protocol/node';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { startTestRelays, type TestNetworkOfRelays } from '@rogatory/relay/testing';
import { AuthorityNode, isNodeError, type Actor } from '../src/index.js';
import {
  PASSPHRASE,
  makeNode,
  mlaRequest,
  randomFile,
  stripAttachmentRefs,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';
import { TestLog, startFakeTrustRelay, type FakeTrustRelay } from './support/trust-log.js';

const SN = 'sn-moj@wacap';
const NG = 'ng-agf@wacap';
const GH = 'gh-ago@wacap';
const HOUR = 3600_000;

function nextEdition(
  world: TestWorld,
  previous: Manifest,
  patch: Partial<Manifest['body']> = {},
): Manifest {
  const { type: _t, version: _v, previous: _p, ...body } = previous.body;
  return signManifest(
    { ...body, issuedAt: Date.now() - 500, ...patch },
    world.networks['wacap']!.root,
    previous,
  );
}

async function sealedEnvelope(fx: NodeFixture, actor: Actor, id: string, dir: string) {
  await fx.node.exportBundle(actor, id, dir, { sealed: true });
  const bundle = JSON.parse(await readFile(join(dir, 'bundle.json'), 'utf8')) as {
    envelope: Envelope;
  };
  return bundle.envelope;
}

describe('identity rotation on a node: no gap, switch without restart', () => {
  let relay: FakeTrustRelay;
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let n = 0;

  beforeAll(async () => {
    await ready();
    relay = await startFakeTrustRelay();
    world = buildTestWorld({ now: Date.now(), relayUrl: () => relay.url });
    tmp = await tempDir();
  });
  afterAll(async () => {
    await relay.close();
    await terminateHashWorker();
    await tmp.remove();
  });

  const witness = () => ({
    name: world.networks['global']!.relay.id,
    key: world.networks['global']!.relay.key,
  });

  async function setup(clock: () => number) {
    const dir = join(tmp.path, `node-${n++}`);
    const wacap = world.networks['wacap']!;
    const log = new TestLog('wacap', wacap.root);
    log.append('manifest', wacap.manifest);
    relay.chains.set('wacap', [log.publish([witness()])]);
    const fx = await makeNode({ world, address: SN, dir, relayUrl: relay.url, clock });
    await fx.node.syncTrust();
    return { fx, log, wacap, dir };
  }

  /** A receiver's view: the edition and rotation as the log carries them. */
  function receiverTrust(rotation: unknown, v2: Manifest): TrustStore {
    const trust = world.trustFor('wacap');
    trust.addKeyRotation(rotation);
    trust.addManifest(v2);
    return trust;
  }

  it('signs with the old key until the edition lists the new one and effectiveAt has come, then switches by itself', async () => {
    let skew = 0;
    const clock = () => Date.now() + skew;
    const { fx, log, wacap, dir } = await setup(clock);
    const officer = fx.user('officer', 'officer');
    const approver = fx.user('approver', 'approver');
    const oldKid = world.authority(SN).identityRef.kid;
    const effectiveAt = Date.now() + HOUR;

    const rotated = await fx.node.rotateIdentityKey({ passphrase: PASSPHRASE, effectiveAt });
    expect(rotated.oldKid).toBe(oldKid);
    expect(rotated.effectiveAt).toBe(effectiveAt);
    // What the secretariat checks: signed by the listed key, possession proof, certificate by the new key.
    const rotation = verifyKeyRotation(rotated.rotation, world.authority(SN).identityRef);
    expect(rotation.body.newKey.notBefore).toBe(effectiveAt);
    verifyEncryptionKeyCert(rotated.certificate, rotation.body.newKey);
    expect((await fx.node.keys()).filter((k) => k.kind === 'identity')).toMatchObject([
      { kid: oldKid, state: 'current', listed: true },
      { kid: rotated.newKid, state: 'pending', listed: false },
    ]);
    await expect(
      fx.node.rotateIdentityKey({ passphrase: PASSPHRASE, effectiveAt }),
    ).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await expect(fx.node.rotateEncryptionKey({ passphrase: PASSPHRASE })).rejects.toMatchObject({
      code: 'INVALID_STATE',
    });

    // The secretariat publishes the rotation and an edition listing the new key, before effectiveAt.
    const v2 = nextEdition(world, wacap.manifest, {
      authorities: wacap.manifest.body.authorities.map((a) =>
        a.address === SN
          ? { ...a, key: rotation.body.newKey, encryptionKeys: [rotated.certificate] }
          : a,
      ),
    });
    log.append('rotation', rotated.rotation);
    log.append('manifest', v2);
    relay.chains.get('wacap')!.push(log.publish([witness()]));
    const report = await fx.node.syncTrust();
    expect(report.networks.find((x) => x.network === 'wacap')?.outcome).toBe('applied');
    expect((await fx.node.keys()).find((k) => k.kid === rotated.newKid)).toMatchObject({
      state: 'pending',
      listed: true,
    });

    // Before effectiveAt: still the old key, and receivers that hold the edition accept it.
    const receiver = receiverTrust(rotated.rotation, v2);
    const first = await fx.node.compose(officer, {
      content: stripAttachmentRefs(mlaRequest(world, SN, NG, { handlingCode: 'none' })),
    });
    fx.node.submitForApproval(officer, first);
    await fx.node.approve(approver, first);
    const before = await sealedEnvelope(fx, approver, first, join(dir, 'export-1'));
    expect(before.signature.kid).toBe(oldKid);
    expect(() =>
      verifyEnvelope(before, { trust: receiver, now: Date.now(), checkExpiry: false }),
    ).not.toThrow();
    expect(fx.node.status().identityKid).toBe(oldKid);

    // effectiveAt comes: the next signature is by the new key, with no restart.
    skew = HOUR + 1000;
    const second = await fx.node.compose(officer, {
      content: stripAttachmentRefs(mlaRequest(world, SN, NG, { handlingCode: 'none' })),
    });
    fx.node.submitForApproval(officer, second);
    await fx.node.approve(approver, second);
    const after = await sealedEnvelope(fx, approver, second, join(dir, 'export-2'));
    expect(after.signature.kid).toBe(rotated.newKid);
    expect(() =>
      verifyEnvelope(after, { trust: receiver, now: clock(), checkExpiry: false }),
    ).not.toThrow();
    // The old key would have been refused then: switching was needed.
    expect(() => receiver.resolveSigningKey(SN, oldKid, after.body.createdAt)).toThrow(
      /KEY_EXPIRED/,
    );
    expect(fx.node.status()).toMatchObject({ identityKid: rotated.newKid, listedInManifest: true });
    expect((await fx.node.keys()).filter((k) => k.kind === 'identity')).toMatchObject([
      { kid: rotated.newKid, state: 'current', listed: true },
      { kid: oldKid, state: 'retired', listed: false },
    ]);
    expect(
      fx.node
        .auditEntries(fx.admin)
        .filter((e) => e.action.startsWith('keys.'))
        .map((e) => e.action),
    ).toEqual(['keys.rotate-identity', 'keys.identity-switch']);
    await fx.node.close();

    // node.json holds the switch: reopened, the node signs with the new key at once.
    const reopened = await AuthorityNode.open({ dir, passphrase: PASSPHRASE, clock });
    try {
      expect(reopened.status().identityKid).toBe(rotated.newKid);
      expect((await reopened.keys()).find((k) => k.state === 'pending')).toBeUndefined();
    } finally {
      await reopened.close();
    }
  });

  it('keeps the old key when no edition confirms the rotation, even after effectiveAt', async () => {
    let skew = 0;
    const { fx } = await setup(() => Date.now() + skew);
    const rotated = await fx.node.rotateIdentityKey({ passphrase: PASSPHRASE });
    expect(rotated.effectiveAt).toBeGreaterThan(Date.now() + 6 * 24 * HOUR);
    skew = 8 * 24 * HOUR;
    await fx.node.syncTrust();
    expect(fx.node.status().identityKid).toBe(rotated.oldKid);
    expect((await fx.node.keys()).find((k) => k.kid === rotated.newKid)?.state).toBe('pending');
    await fx.node.close();
  });

  it('refuses a rotation with a wrong passphrase, or an effectiveAt in the past or beyond 30 days: nothing changes', async () => {
    const { fx, dir } = await setup(Date.now);
    const before = await readFile(join(dir, 'node.json'), 'utf8');
    const err = await fx.node
      .rotateIdentityKey({ passphrase: 'not the passphrase' })
      .catch((e: unknown) => e);
    expect(isNodeError(err, 'PASSPHRASE_INVALID')).toBe(true);
    await expect(
      fx.node.rotateEncryptionKey({ passphrase: 'not the passphrase' }),
    ).rejects.toMatchObject({ code: 'PASSPHRASE_INVALID' });
    await expect(
      fx.node.rotateIdentityKey({ passphrase: PASSPHRASE, effectiveAt: Date.now() - 1 }),
    ).rejects.toMatchObject({ code: 'INPUT_INVALID' });
    await expect(
      fx.node.rotateIdentityKey({
        passphrase: PASSPHRASE,
        effectiveAt: Date.now() + 31 * 24 * HOUR,
      }),
    ).rejects.toMatchObject({ code: 'INPUT_INVALID' });
    expect(await readFile(join(dir, 'node.json'), 'utf8')).toBe(before);
    expect((await fx.node.keys()).filter((k) => k.state === 'pending')).toEqual([]);
    await fx.node.close();
  });

  const badRotations: [string, string, (ctx: { rotation: KeyRotation; log: TestLog }) => void][] = [
    [
      'signed by another key than the one it rotates',
      'KEY_WRONG_ROLE',
      ({ rotation, log }) =>
        log.append(
          'rotation',
          sign(CONTEXTS.keyRotation, rotation.body, world.authority(NG).identity),
        ),
    ],
    [
      'by a key its network revoked',
      'KEY_REVOKED',
      ({ rotation, log }) => {
        const wacap = world.networks['wacap']!;
        log.append(
          'manifest',
          nextEdition(world, wacap.manifest, {
            revoked: [
              {
                kid: rotation.body.oldKid,
                revokedAt: Date.now() - 1000,
                reason: 'key-compromise',
              },
            ],
          }),
        );
        log.append('rotation', rotation);
      },
    ],
  ];

  it.each(badRotations)(
    'refuses a rotation %s (%s): nothing of the publication applies, the node keeps its key',
    async (_what, code, make) => {
      const { fx } = await setup(Date.now);
      const rotated = await fx.node.rotateIdentityKey({ passphrase: PASSPHRASE });
      const log = new TestLog('wacap', world.networks['wacap']!.root);
      log.append('manifest', world.networks['wacap']!.manifest);
      const first = log.publish([witness()]);
      make({ rotation: rotated.rotation, log });
      relay.chains.set('wacap', [first, log.publish([witness()])]);
      const report = await fx.node.syncTrust();
      expect(report.networks.find((x) => x.network === 'wacap')).toMatchObject({
        outcome: 'refused',
        code,
      });
      expect(fx.node.trustStatus().networks.find((x) => x.network === 'wacap')?.edition).toBe(1);
      expect(fx.node.status().identityKid).toBe(rotated.oldKid);
      expect((await fx.node.keys()).find((k) => k.kid === rotated.newKid)?.state).toBe('pending');
      await fx.node.close();
    },
  );
});

describe('encryption rotation and revocation with relays', () => {
  let net: TestNetworkOfRelays;
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let sn: NodeFixture;
  let ng: NodeFixture;
  let gh: NodeFixture;
  let log: TestLog;
  let edition: Manifest;
  let files: { path: string }[];

  beforeAll(async () => {
    net = await startTestRelays({ backend: { kind: 'embedded' } });
    world = net.world;
    tmp = await tempDir();
    edition = world.networks['wacap']!.manifest;
    log = new TestLog('wacap', world.networks['wacap']!.root);
    log.append('manifest', edition);
    await push(log.publish([]));
    sn = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn') });
    ng = await makeNode({ world, address: NG, dir: join(tmp.path, 'ng') });
    gh = await makeNode({ world, address: GH, dir: join(tmp.path, 'gh') });
    files = [await randomFile(tmp.path, 'a.pdf', 20_000)];
  }, 120_000);

  afterAll(async () => {
    for (const fx of [sn, ng, gh]) await fx.node.close();
    await net.stop();
    await terminateHashWorker();
    await tmp.remove();
  });

  async function push(publication: unknown): Promise<void> {
    const res = await fetch(`${net.relays['wacap']!.url}/v1/trust/publications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(publication),
    });
    expect(res.status).toBe(200);
  }

  async function publish(patch: Partial<Manifest['body']>): Promise<void> {
    edition = nextEdition(world, edition, patch);
    log.append('manifest', edition);
    await push(log.publish([]));
    for (const fx of [sn, ng, gh]) {
      const report = await fx.node.syncTrust();
      expect(report.networks.find((x) => x.network === 'wacap')?.outcome).toBe('applied');
    }
  }

  const users = new Map<NodeFixture, { officer: Actor; approver: Actor }>();
  function actors(fx: NodeFixture) {
    if (!users.has(fx))
      users.set(fx, {
        officer: fx.user('officer', 'officer', ['restricted']),
        approver: fx.user('approver', 'approver', ['restricted']),
      });
    return users.get(fx)!;
  }

  async function send(from: NodeFixture, fromAddress: string, to: string): Promise<string> {
    const { officer, approver } = actors(from);
    const id = await from.node.compose(officer, {
      content: mlaRequest(world, fromAddress, to),
      attachments: files.map((f) => ({ path: f.path })),
    });
    from.node.submitForApproval(officer, id);
    const envelopeId = await from.node.approve(approver, id);
    expect((await from.node.flushOutbox()).sent).toEqual([id]);
    return envelopeId;
  }

  /** The key a pending envelope's dossier was sealed to for `to` (read at the relay, not acked). */
  async function wrapKid(to: string, envelopeId: string): Promise<string> {
    const client = new RelayClient({
      baseUrl: net.relays['wacap']!.url,
      address: to,
      identity: world.authority(to).identity,
      relayId: 'relay@wacap',
    });
    const items: MailboxItem[] = await client.readMailbox(0, 100);
    const item = items.find((i) => i.kind === 'envelope' && i.envelope.body.id === envelopeId);
    if (!item || item.kind !== 'envelope') throw new Error('envelope not in the mailbox');
    const chunks: Uint8Array[] = [];
    for await (const c of client.getChunk(item.envelope.body.dossier.id)) chunks.push(c);
    const sealed = parseSealedDossier(Buffer.concat(chunks));
    return sealed.wraps.find((w) => w.to === to)!.kid;
  }

  async function received(fx: NodeFixture, envelopeId: string) {
    const report = await fx.node.syncOnce();
    const item = report.items.find(
      (i) => 'envelopeId' in i.outcome && i.outcome.envelopeId === envelopeId,
    );
    return item?.outcome;
  }

  it('rotates the encryption key: senders seal to it once an edition lists it, the old dossiers stay readable', async () => {
    const oldKid = world.authority(SN).encryption.kid;
    const before = await send(ng, NG, SN);
    expect(await wrapKid(SN, before)).toBe(oldKid);
    const first = await received(sn, before);
    expect(first?.kind).toBe('received');

    // Rotated by another process of the node (the CLI beside `serve`): the open node takes it up.
    const cli = await AuthorityNode.open({ dir: sn.dir, passphrase: PASSPHRASE });
    const rotated = await cli
      .rotateEncryptionKey({ passphrase: PASSPHRASE })
      .finally(() => cli.close());
    verifyEncryptionKeyCert(rotated.certificate, world.authority(SN).identityRef);
    expect(rotated.certificate.body.subject).toBe(SN);
    expect((await sn.node.keys()).filter((k) => k.kind === 'encryption')).toMatchObject([
      { kid: oldKid, state: 'current', listed: true },
      { kid: rotated.kid, state: 'pending', listed: false },
    ]);
    // Not listed yet: senders still seal to the old key.
    const pendingPeriod = await send(ng, NG, SN);
    expect(await wrapKid(SN, pendingPeriod)).toBe(oldKid);

    await publish({
      authorities: edition.body.authorities.map((a) =>
        a.address === SN ? { ...a, encryptionKeys: [rotated.certificate, ...a.encryptionKeys] } : a,
      ),
    });
    expect((await sn.node.keys()).find((k) => k.kid === rotated.kid)).toMatchObject({
      state: 'current',
      listed: true,
    });
    const after = await send(ng, NG, SN);
    expect(await wrapKid(SN, after)).toBe(rotated.kid);

    await sn.node.syncOnce();
    const { officer } = actors(sn);
    const inbox = sn.node.inbox(officer);
    for (const envelopeId of [before, pendingPeriod, after]) {
      const row = inbox.find((d) => d.envelopeId === envelopeId)!;
      expect(row.status).not.toBe('quarantined');
      expect(sn.node.open(officer, row.id).content.kind).toBe('request');
    }
    expect(
      sn.node
        .auditEntries(sn.admin)
        .some((e) => e.action === 'keys.rotate-encryption' && e.detail === rotated.kid),
    ).toBe(true);
  }, 120_000);

  it('after a revocation: older dossiers are marked, new ones quarantined KEY_REVOKED, nothing sealed to the revoked authority (compose and approve)', async () => {
    const ghKid = world.authority(GH).identityRef.kid;
    const older = await send(gh, GH, SN);
    expect((await received(sn, older))?.kind).toBe('received');
    // Sent before the relay learns of the revocation, received after the node did.
    const late = await send(gh, GH, SN);
    const { officer, approver } = actors(sn);
    const draft = await sn.node.compose(officer, {
      content: stripAttachmentRefs(mlaRequest(world, SN, GH)),
    });
    sn.node.submitForApproval(officer, draft);

    const revokedAt = Date.now() - 100;
    await publish({ revoked: [{ kid: ghKid, revokedAt, reason: 'key-compromise' }] });

    const outcome = await received(sn, late);
    expect(outcome).toMatchObject({ kind: 'quarantined', code: 'KEY_REVOKED' });
    expect(sn.node.quarantine(sn.admin).some((q) => q.code === 'KEY_REVOKED')).toBe(true);

    const row = sn.node.inbox(officer).find((d) => d.envelopeId === older)!;
    const mark = { kid: ghKid, revokedAt, reason: 'key-compromise' };
    expect(sn.node.show(officer, row.id).signerRevoked).toEqual(mark);
    const opened = sn.node.open(officer, row.id);
    expect(opened.summary.signerRevoked).toEqual(mark);
    expect(opened.content.kind).toBe('request');
    const fromNg = sn.node.inbox(officer).find((d) => d.counterparts?.includes(NG))!;
    expect(sn.node.show(officer, fromNg.id).signerRevoked).toBeUndefined();

    await expect(sn.node.approve(approver, draft)).rejects.toMatchObject({
      code: 'RECIPIENT_REVOKED',
    });
    expect(sn.node.show(officer, draft).status).toBe('awaiting-approval');
    await expect(
      sn.node.compose(officer, { content: stripAttachmentRefs(mlaRequest(world, SN, GH)) }),
    ).rejects.toMatchObject({ code: 'RECIPIENT_REVOKED' });
  }, 120_000);
});
