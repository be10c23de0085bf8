import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, RelayClient, type Dispatcher, type MailboxItem } from '@rogatory/client';
import {
  encryptSignedDossier,
  generateEncryptionKeyPair,
  sha256,
  signEnvelope,
  toHex,
  verifyEvidence,
  type SignedDossier,
} from '@rogatory/protocol';
import { terminateHashWorker } from '@rogatory/protocol/node';
import { exampleContentFor, sealTestDossier, type TestWorld } from '@rogatory/protocol/testing';
import { startTestRelays, type TestNetworkOfRelays } from '@rogatory/relay/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNodeError, type Actor, type SyncEvent } from '../src/index.js';
import {
  FillableBlobStore,
  clientAcceptsRecipientRejection,
  eventually,
  makeNode,
  mlaRequest,
  randomFile,
  stripAttachmentRefs,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';
const GE = 'ge-pog@casc';
const GH = 'gh-ago@wacap';
const NG = 'ng-agf@wacap';

describe('bad input: typed errors, nothing half-written, nothing lost', () => {
  let net: TestNetworkOfRelays;
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let sn: NodeFixture;
  let snOfficer: Actor;
  let snApprover: Actor;
  let files: { path: string }[];
  let supportsRejection = false;

  beforeAll(async () => {
    net = await startTestRelays({ backend: { kind: 'embedded' } });
    world = net.world;
    tmp = await tempDir();
    sn = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn') });
    snOfficer = sn.user('officer', 'officer', ['restricted']);
    snApprover = sn.user('approver', 'approver', ['restricted']);
    files = [
      await randomFile(tmp.path, 'a.pdf', 2_500_000),
      await randomFile(tmp.path, 'b.pdf', 40_000),
    ];
    supportsRejection = await clientAcceptsRecipientRejection(world);
  }, 120_000);

  afterAll(async () => {
    await sn.node.close();
    await net.stop();
    await terminateHashWorker();
    await tmp.remove();
  });

  function rawClient(address: string): RelayClient {
    const network = address.split('@')[1]!;
    return new RelayClient({
      baseUrl: net.relays[network]!.url,
      address,
      identity: world.authority(address).identity,
      relayId: `relay@${network}`,
      retry: { retries: 1, baseMs: 10 },
    });
  }

  async function sendRequest(
    to: string,
    caseReference: string,
  ): Promise<{ id: string; envelopeId: string }> {
    const id = await sn.node.compose(snOfficer, {
      content: mlaRequest(world, SN, to, { caseReference }),
      attachments: files.map((f) => ({ path: f.path })),
    });
    sn.node.submitForApproval(snOfficer, id);
    const envelopeId = await sn.node.approve(snApprover, id);
    const report = await sn.node.flushOutbox();
    expect(report.sent).toEqual([id]);
    return { id, envelopeId };
  }

  async function pending(address: string, envelopeId: string): Promise<MailboxItem | undefined> {
    const items = await rawClient(address).readMailbox(0, 100);
    return items.find((i) => i.kind === 'envelope' && i.envelope.body.id === envelopeId);
  }

  async function syncError(node: NodeFixture): Promise<unknown> {
    return node.node.syncOnce().then(
      () => undefined,
      (e: unknown) => e,
    );
  }

  it('a tampered dossier is quarantined with its reason, acked, and its sender gets a signed recipient-rejection', async () => {
    const kz = await makeNode({ world, address: KZ, dir: join(tmp.path, 'kz-tamper') });
    const officer = kz.user('officer', 'officer', ['restricted']);
    const admin = kz.admin;
    // ng-agf signs a dossier, then its content is altered after signing and sealed again with a valid envelope.
    const genuine = sealTestDossier(world, {
      from: NG,
      to: [KZ],
      createdAt: Date.now(),
      content: stripAttachmentRefs(mlaRequest(world, NG, KZ)),
    });
    const altered: SignedDossier = {
      ...genuine.dossier,
      body: {
        ...genuine.dossier.body,
        content: {
          ...genuine.dossier.body.content,
          header: {
            ...(genuine.dossier.body.content as { header: object }).header,
            caseReference: 'ALTERED-AFTER-SIGNING',
          },
        } as SignedDossier['body']['content'],
      },
    };
    const sealed = encryptSignedDossier({
      dossier: altered,
      targets: [
        { to: KZ, key: world.authority(KZ).encryptionRef },
        { to: NG, key: world.authority(NG).encryptionRef },
      ],
    });
    const { type: _t, version: _v, totalSize: _s, ...body } = genuine.envelope.body;
    const envelope = signEnvelope(
      { ...body, dossier: { id: toHex(sha256(sealed)), size: sealed.length } },
      world.authority(NG).identity,
    );
    const ng = rawClient(NG);
    await ng.putChunk(envelope.body.dossier.id, sealed, sealed.length);
    await ng.submit(envelope);

    const entry = await eventually('the quarantined dossier', async () => {
      await kz.node.syncOnce();
      return kz.node.quarantine(admin).find((q) => q.envelopeId === envelope.body.id);
    });
    expect(entry).toMatchObject({ sender: NG, code: 'SIGNATURE_INVALID' });
    expect(kz.node.show(officer, entry.id)).toMatchObject({
      status: 'quarantined',
      quarantineCode: 'SIGNATURE_INVALID',
    });
    expect(() => kz.node.open(officer, entry.id)).toThrow(
      expect.objectContaining({ code: 'INVALID_STATE' }),
    );
    expect(await pending(KZ, envelope.body.id)).toBeUndefined();
    expect(
      kz.node.auditEntries(admin, { target: entry.id }).map((e) => [e.action, e.detail]),
    ).toContainEqual(['dossier.quarantine', 'SIGNATURE_INVALID']);
    expect(kz.node.show(officer, entry.id).queued.map((q) => q.kind)).toEqual(
      supportsRejection ? [] : ['recipient-rejection'],
    );
    if (!supportsRejection) {
      // Until @rogatory/client knows this evidence kind the relay is never asked: the rejection stays queued (state failed), not lost.
      expect(kz.node.show(officer, entry.id).queued[0]).toMatchObject({
        state: 'failed',
        lastError: 'MALFORMED',
      });
      await kz.node.close();
      return;
    }

    const rejection = await eventually('the recipient-rejection at the sender', async () => {
      const items = await ng.readMailbox(0, 100);
      const hit = items.find(
        (i) =>
          i.kind === 'evidence' &&
          i.evidence.body.envelopeId === envelope.body.id &&
          i.evidence.body.kind === 'recipient-rejection',
      );
      return hit?.kind === 'evidence' ? hit.evidence : undefined;
    });
    expect(rejection.body).toMatchObject({
      issuer: KZ,
      recipient: KZ,
      reason: { code: 'QUARANTINED', detail: 'SIGNATURE_INVALID' },
    });
    expect(verifyEvidence(envelope, rejection, world.trustFor('wacap')).body.kind).toBe(
      'recipient-rejection',
    );
    await kz.node.close();
  });

  it('an answer from an authority that is not party to the request neither moves its status nor joins its case', async () => {
    const { id, envelopeId } = await sendRequest(KZ, 'SPOOF-1');
    const answer = exampleContentFor('full-execution', NG, SN, world);
    if (answer.kind !== 'answer' || answer.answerType !== 'full-execution')
      throw new Error('answer expected');
    const spoof = sealTestDossier(world, {
      from: NG,
      to: [SN],
      createdAt: Date.now(),
      content: {
        ...answer,
        inReplyTo: { envelopeId, caseReference: 'SPOOF-1' },
        execution: { results: answer.execution.results.map(({ attachments: _a, ...r }) => r) },
      },
    });
    const ng = rawClient(NG);
    await ng.putChunk(spoof.envelope.body.dossier.id, spoof.sealed, spoof.sealed.length);
    await ng.submit(spoof.envelope);
    const received = await eventually('the unsolicited answer', async () => {
      await sn.node.syncOnce();
      return sn.node.inbox(snOfficer).find((d) => d.envelopeId === spoof.envelope.body.id);
    });
    const request = sn.node.show(snOfficer, id);
    expect(['sent', 'delivered']).toContain(request.status);
    expect(received.caseId).not.toBe(request.caseId);
    expect(received.handlingCode).toBe('restricted');
  });

  it('a dossier wrapped to a key the node does not hold is quarantined as NOT_ADDRESSED; the sending node marks it rejected', async () => {
    const ge = await makeNode({
      world,
      address: GE,
      dir: join(tmp.path, 'ge-wrong-key'),
      importKeys: {
        identity: world.authority(GE).identity,
        encryption: generateEncryptionKeyPair(),
      },
    });
    const { id, envelopeId } = await sendRequest(GE, 'WRONG-KEY-1');
    const entry = await eventually('quarantine at ge-pog', async () => {
      await ge.node.syncOnce();
      return ge.node.quarantine(ge.admin).find((q) => q.envelopeId === envelopeId);
    });
    expect(entry.code).toBe('NOT_ADDRESSED');
    if (!supportsRejection) {
      // See the test above: the signed rejection waits in the outbox until the client can post it.
      expect(
        ge.node.show(ge.user('reader', 'officer', ['restricted']), entry.id).queued,
      ).toMatchObject([{ kind: 'recipient-rejection', state: 'failed' }]);
      await ge.node.close();
      return;
    }
    const status = await eventually('rejected at the sender', async () => {
      await sn.node.syncOnce();
      const d = sn.node.show(snOfficer, id);
      return d.status === 'rejected' ? d : undefined;
    });
    expect(status.progress).toEqual({ [GE]: 'rejected' });
    expect(status.evidences.find((e) => e.kind === 'recipient-rejection')?.reason).toEqual({
      code: 'QUARANTINED',
      detail: 'NOT_ADDRESSED',
    });
    await ge.node.close();
  });

  it('a corrupt or missing chunk at the relay fails with DOWNLOAD_FAILED, stores nothing and leaves the item unacked; it is stored once repaired', async () => {
    const kz = await makeNode({ world, address: KZ, dir: join(tmp.path, 'kz-chunks') });
    const officer = kz.user('officer', 'officer', ['restricted']);
    const { envelopeId, id } = await sendRequest(KZ, 'CHUNK-FAULTS-1');
    const envelope = sn.node.evidences(snOfficer, id).envelope!;
    const chunkId = envelope.body.chunks[1]!.id;
    const chunkPath = join(
      net.dir,
      'casc-0-chunks',
      chunkId.slice(0, 2),
      chunkId.slice(2, 4),
      chunkId,
    );
    await eventually('the envelope at relay@casc', () => pending(KZ, envelopeId));
    const original = await readFile(chunkPath);

    const corrupted = Buffer.from(original);
    corrupted[100] = corrupted[100]! ^ 0xff;
    await writeFile(chunkPath, corrupted);
    const err = await syncError(kz);
    expect(isNodeError(err, 'DOWNLOAD_FAILED')).toBe(true);
    expect((err as { detail?: string }).detail).toBe('CHUNK_HASH_MISMATCH');
    const stored = (): unknown[] =>
      kz.node.list(officer).filter((d) => d.envelopeId === envelopeId);
    expect(stored()).toEqual([]);
    expect(await pending(KZ, envelopeId)).toBeDefined();

    await rm(chunkPath);
    const missing = await syncError(kz);
    expect(isNodeError(missing, 'DOWNLOAD_FAILED')).toBe(true);
    expect((missing as { detail?: string }).detail).toBe('CHUNK_MISSING');
    expect(stored()).toEqual([]);

    await writeFile(chunkPath, original);
    const report = await kz.node.syncOnce();
    expect(
      report.items.find(
        (i) => i.outcome.kind === 'received' && i.outcome.envelopeId === envelopeId,
      ),
    ).toBeDefined();
    expect(stored()).toHaveLength(1);
    expect(await pending(KZ, envelopeId)).toBeUndefined();
    await kz.node.close();
  });

  it('disk full while receiving: STORAGE_FULL, no row, not acked; received once space is back. Disk full while composing: no draft', async () => {
    let fillable: FillableBlobStore | undefined;
    const gh = await makeNode({
      world,
      address: GH,
      dir: join(tmp.path, 'gh-full'),
      wrapBlobStore: (inner) => {
        fillable = new FillableBlobStore(inner);
        return fillable;
      },
    });
    const officer = gh.user('officer', 'officer', ['restricted']);
    const { envelopeId } = await sendRequest(GH, 'DISK-FULL-1');
    await eventually('the envelope at relay@wacap', () => pending(GH, envelopeId));
    fillable!.full = true;
    const err = await syncError(gh);
    expect(isNodeError(err, 'STORAGE_FULL')).toBe(true);
    expect(gh.node.list(officer)).toEqual([]);
    expect(gh.node.auditEntries(gh.admin).some((e) => e.action === 'dossier.receive')).toBe(false);
    expect(await pending(GH, envelopeId)).toBeDefined();

    const composeErr = await gh.node
      .compose(officer, {
        content: mlaRequest(world, GH, SN),
        attachments: files.map((f) => ({ path: f.path })),
      })
      .catch((e: unknown) => e);
    expect(isNodeError(composeErr, 'STORAGE_FULL')).toBe(true);
    expect(gh.node.list(officer)).toEqual([]);

    // The live sync meets the same error, does not ack, and restarts the subscription with backoff until it can store the item.
    const events: SyncEvent[] = [];
    gh.node.startSync((e) => events.push(e));
    await eventually('a storage error from the live sync', () =>
      events.find((e) => e.type === 'error' && e.code === 'STORAGE_FULL'),
    );
    expect(await pending(GH, envelopeId)).toBeDefined();
    fillable!.full = false;
    const received = await eventually('the dossier after the restart', () =>
      gh.node.inbox(officer).find((d) => d.envelopeId === envelopeId),
    );
    await eventually('the delivery evidence posted', () =>
      gh.node.show(officer, received.id).queued.length === 0 ? true : undefined,
    );
    await gh.node.stopSync();
    expect(await pending(GH, envelopeId)).toBeUndefined();
    expect(
      gh.node.auditEntries(gh.admin).filter((e) => e.action === 'dossier.receive'),
    ).toHaveLength(1);
    await gh.node.close();
  });

  it('disk full in the middle of an attachment: compose fails with STORAGE_FULL once every chunk write in flight has ended, and leaves no draft', async () => {
    let fillable: FillableBlobStore | undefined;
    const gh = await makeNode({
      world,
      address: GH,
      dir: join(tmp.path, 'gh-half-full'),
      wrapBlobStore: (inner) => {
        fillable = new FillableBlobStore(inner);
        return fillable;
      },
    });
    const officer = gh.user('officer', 'officer', ['restricted']);
    const big = await randomFile(tmp.path, 'eight-chunks.bin', 8 * 1024 * 1024 - 5);
    // Chunk writes overlap with encryption: the first compose shows it.
    const id = await gh.node.compose(officer, {
      content: mlaRequest(world, GH, SN),
      attachments: [{ path: big.path }],
    });
    expect(id).toBeTruthy();
    expect(fillable!.maxInFlight).toBeGreaterThan(1);
    expect(fillable!.maxInFlight).toBeLessThanOrEqual(4);
    const drafts = gh.node.list(officer).length;

    fillable!.fullAfter = 3;
    const err = await gh.node
      .compose(officer, { content: mlaRequest(world, GH, SN), attachments: [{ path: big.path }] })
      .catch((e: unknown) => e);
    expect(isNodeError(err, 'STORAGE_FULL')).toBe(true);
    expect(fillable!.inFlight).toBe(0);
    expect(gh.node.list(officer)).toHaveLength(drafts);
    await gh.node.close();
  });

  it('offline: approval queues the dossier; the outbox retries until the relay answers, and an interrupted upload sends only the missing chunks', async () => {
    const mode = { down: true, putsLeft: Number.POSITIVE_INFINITY, puts: 0 };
    // The client's own HTTP path (an undici Agent), with refused connections injected in front of it.
    const agent = new Agent();
    const refused = () =>
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const flaky = agent.compose((dispatch) => (opts, handler) => {
      const isPut = opts.method === 'PUT';
      if (mode.down || (isPut && mode.putsLeft <= 0)) {
        queueMicrotask(() => handler.onError?.(refused()));
        return true;
      }
      if (!isPut) return dispatch(opts, handler);
      mode.putsLeft--;
      const counting: Dispatcher.DispatchHandlers = new Proxy(handler, {
        get: (target, key) =>
          key === 'onHeaders'
            ? (status: number, ...rest: [Buffer[], () => void, string]) => {
                if (status >= 200 && status < 300) mode.puts++;
                return target.onHeaders?.(status, ...rest) ?? true;
              }
            : (Reflect.get(target, key) as unknown),
      });
      return dispatch(opts, counting);
    });
    const ng = await makeNode({
      world,
      address: NG,
      dir: join(tmp.path, 'ng-offline'),
      dispatcher: flaky,
    });
    const officer = ng.user('officer', 'officer', ['restricted']);
    const approver = ng.user('approver', 'approver', ['restricted']);
    const id = await ng.node.compose(officer, {
      content: mlaRequest(world, NG, SN, { caseReference: 'OFFLINE-1' }),
      attachments: files.map((f) => ({ path: f.path })),
    });
    ng.node.submitForApproval(officer, id);
    const envelopeId = await ng.node.approve(approver, id);

    const offline = await ng.node.flushOutbox();
    expect(offline).toMatchObject({
      sent: [],
      deferred: 1,
      errors: [{ dossierId: id, code: 'NETWORK' }],
    });
    expect(ng.node.show(officer, id).status).toBe('approved');
    expect(ng.node.status().outbox.pending).toBe(1);

    mode.down = false;
    mode.putsLeft = 2;
    const interrupted = await ng.node.flushOutbox();
    expect(interrupted.deferred).toBe(1);
    const firstRun = mode.puts;
    expect(firstRun).toBe(2);

    mode.putsLeft = Number.POSITIVE_INFINITY;
    const resumed = await ng.node.flushOutbox();
    expect(resumed.sent).toEqual([id]);
    const objects = 1 + ng.node.evidences(officer, id).envelope!.body.chunks.length;
    expect(mode.puts).toBe(objects);
    expect(mode.puts - firstRun).toBeLessThan(objects);
    expect(ng.node.show(officer, id).status).toBe('sent');
    const at = await eventually('the request at sn-moj', async () => {
      await sn.node.syncOnce();
      return sn.node.inbox(snOfficer).find((d) => d.envelopeId === envelopeId);
    });
    expect(at.caseReference).toBe('OFFLINE-1');
    await ng.node.close();
    await agent.close();
  });
});
