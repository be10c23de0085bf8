import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  generateSigningKeyPair,
  issueEvidence,
  sealDossier,
  type Envelope,
  type SealedResult,
} from '@rogatory/protocol';
import { terminateHashWorker } from '@rogatory/protocol/node';
import { sealTestDossier, testSeed, type TestWorld } from '@rogatory/protocol/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AuthorityNode,
  buildNodeApi,
  isNodeError,
  type Actor,
  type SyncEvent,
} from '../src/index.js';
import {
  PASSPHRASE,
  PASSWORD,
  eventually,
  makeNode,
  mlaRequest,
  offlineWorld,
  stripAttachmentRefs,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';
import { HostileRelay, endless } from './support/hostile-relay.js';

const GH = 'gh-ago@wacap';
const NG = 'ng-agf@wacap';
const SN = 'sn-moj@wacap';

/**
 * The node's own relay turned hostile (or lying for a peer on the path):
 * it serves forged, re-addressed and replayed items, bytes that are not the
 * chunks they claim to be, evidences about other envelopes, and endless or
 * oversized answers. The node stores only what it verified, acks only what
 * it stored or deliberately refused, stays responsive, and tells the
 * operator (status and audit, never content).
 */
describe('a hostile relay against a node', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let relay: HostileRelay;
  let gh: NodeFixture;
  let officer: Actor;
  let n = 0;

  beforeAll(async () => {
    world = await offlineWorld();
    tmp = await tempDir();
  });

  afterAll(async () => {
    await terminateHashWorker();
    await tmp.remove();
  });

  beforeEach(async () => {
    relay = await HostileRelay.start('relay@wacap', world.networks['wacap']!.relay.key);
    gh = await makeNode({
      world,
      address: GH,
      dir: join(tmp.path, `gh-${n++}`),
      relayUrl: relay.url,
    });
    officer = gh.user('officer', 'officer', ['restricted']);
  });

  afterEach(async () => {
    await gh.node.close();
    await relay.close();
  });

  function seal(options: { to?: string; from?: string; envelopeId?: string } = {}): SealedResult {
    const from = options.from ?? NG;
    const to = options.to ?? GH;
    return sealTestDossier(world, {
      from,
      to: [to],
      createdAt: Date.now(),
      content: stripAttachmentRefs(mlaRequest(world, from, to)),
      ...(options.envelopeId === undefined ? {} : { envelopeId: options.envelopeId }),
    });
  }

  /** Put an envelope in the mailbox with its sealed dossier served intact. */
  function serve(sealed: SealedResult, envelope: Envelope = sealed.envelope): number {
    relay.chunks.set(envelope.body.dossier.id, sealed.sealed);
    return relay.push({ kind: 'envelope', envelope });
  }

  const incidents = (): string[] =>
    gh.node
      .auditEntries(gh.admin)
      .filter((e) => e.action === 'relay.misbehaviour')
      .map((e) => e.detail ?? '');

  const stored = (envelopeId: string) =>
    gh.node.list(officer).filter((d) => d.envelopeId === envelopeId);

  it('a forged envelope is refused before any download: not stored, no evidence, acked, shown to the operator; the genuine one with the same id is still received', async () => {
    const genuine = seal();
    // The relay extends the envelope's lifetime: the sender's signature no longer covers it.
    const forged: Envelope = {
      ...genuine.envelope,
      body: { ...genuine.envelope.body, expiresAt: genuine.envelope.body.expiresAt + 86_400_000 },
    };
    const seq = serve(genuine, forged);

    const report = await gh.node.syncOnce();
    expect(report.items).toEqual([
      { seq, outcome: { kind: 'refused', envelopeId: forged.body.id, code: 'SIGNATURE_INVALID' } },
    ]);
    expect(relay.chunkGets).toEqual([]);
    expect(relay.acked).toEqual([seq]);
    expect(relay.posted).toEqual([]);
    expect(gh.node.list(officer)).toEqual([]);
    expect(gh.node.quarantine(gh.admin)).toEqual([]);
    expect(gh.node.status().relayIncidents).toMatchObject({
      total: 1,
      last: { code: 'SIGNATURE_INVALID' },
    });
    expect(incidents()).toEqual(['SIGNATURE_INVALID']);
    expect(
      gh.node.auditEntries(gh.admin).find((e) => e.action === 'relay.misbehaviour'),
    ).toMatchObject({
      actor: 'system',
      target: `seq:${seq}`,
    });
    // The operator sees it through the API too.
    const app = await buildNodeApi({ node: gh.node });
    try {
      const login = await app.inject({
        method: 'POST',
        url: '/api/v1/login',
        payload: { username: 'officer', password: PASSWORD },
      });
      const status = await app.inject({
        method: 'GET',
        url: '/api/v1/status',
        headers: { authorization: `Bearer ${login.json<{ token: string }>().token}` },
      });
      expect(status.json()).toMatchObject({
        relayIncidents: { total: 1, last: { code: 'SIGNATURE_INVALID', at: expect.any(Number) } },
      });
    } finally {
      await app.close();
    }

    // A forger cannot make the node drop the genuine envelope by claiming its id first.
    const next = serve(genuine);
    const after = await gh.node.syncOnce();
    expect(after.items).toEqual([
      {
        seq: next,
        outcome: expect.objectContaining({
          kind: 'received',
          envelopeId: genuine.envelope.body.id,
        }),
      },
    ]);
    expect(stored(genuine.envelope.body.id)).toHaveLength(1);
    await eventually('the delivery evidence', () => (relay.posted.length > 0 ? true : undefined));
    expect(relay.posted.map((e) => [e.body.kind, e.body.envelopeId])).toEqual([
      ['delivery', genuine.envelope.body.id],
    ]);
  });

  it('an envelope from a sender this node cannot resolve yet (the relay may hold a newer manifest) is downloaded and quarantined, never dropped, with no evidence; a verifying envelope under its id supersedes it', async () => {
    // A key of ng-agf@wacap that this node's manifest does not list: e.g. one admitted after its last manifest update.
    const newKey = generateSigningKeyPair(testSeed(`hostile/new-key/${n}`));
    const sealed = sealDossier({
      sender: { address: NG, identity: newKey, archiveKey: world.authority(NG).encryptionRef },
      recipients: [{ address: GH, encryptionKey: world.authority(GH).encryptionRef }],
      content: stripAttachmentRefs(mlaRequest(world, NG, GH)),
      createdAt: Date.now(),
      expiresAt: Date.now() + 86_400_000,
    });
    const seq = serve(sealed);
    const report = await gh.node.syncOnce();
    expect(report.items).toMatchObject([
      {
        seq,
        outcome: { kind: 'quarantined', envelopeId: sealed.envelope.body.id, code: 'KEY_UNKNOWN' },
      },
    ]);
    expect(relay.chunkGets).toEqual([sealed.envelope.body.dossier.id]);
    expect(relay.acked).toEqual([seq]);
    expect(gh.node.quarantine(gh.admin)).toHaveLength(1);
    // Nothing is signed about an envelope nobody is accountable for yet.
    await gh.node.flushOutbox();
    expect(relay.posted).toEqual([]);

    // Were it a forgery under a genuine envelope's id, the genuine one still gets in.
    const genuine = seal({ envelopeId: sealed.envelope.body.id });
    const genuineSeq = serve(genuine);
    const second = await gh.node.syncOnce();
    expect(second.items).toMatchObject([
      { seq: genuineSeq, outcome: { kind: 'received', envelopeId: genuine.envelope.body.id } },
    ]);
    expect(gh.node.quarantine(gh.admin)).toEqual([]);
    expect(stored(genuine.envelope.body.id)).toHaveLength(1);
    // An unverifiable envelope never displaces one that verified.
    const third = serve(sealed);
    expect((await gh.node.syncOnce()).items).toEqual([
      {
        seq: third,
        outcome: { kind: 'refused', envelopeId: sealed.envelope.body.id, code: 'REPLAY' },
      },
    ]);
  });

  it('an envelope addressed to someone else (re-addressed by the relay) is refused as NOT_ADDRESSED without being downloaded or quarantined', async () => {
    const other = seal({ to: SN });
    const seq = serve(other);
    const report = await gh.node.syncOnce();
    expect(report.items).toEqual([
      {
        seq,
        outcome: { kind: 'refused', envelopeId: other.envelope.body.id, code: 'NOT_ADDRESSED' },
      },
    ]);
    expect(relay.chunkGets).toEqual([]);
    expect(relay.acked).toEqual([seq]);
    expect(gh.node.quarantine(gh.admin)).toEqual([]);
    expect(relay.posted).toEqual([]);
    expect(gh.node.status().relayIncidents.total).toBe(1);
  });

  it('bytes that do not hash to their chunk id: nothing stored, not acked, shown; received once the relay serves the right bytes', async () => {
    const genuine = seal();
    const seq = serve(genuine);
    relay.chunks.set(genuine.envelope.body.dossier.id, randomBytes(genuine.sealed.length));
    const err = await gh.node.syncOnce().catch((e: unknown) => e);
    expect(isNodeError(err, 'DOWNLOAD_FAILED')).toBe(true);
    expect((err as { detail?: string }).detail).toBe('CHUNK_HASH_MISMATCH');
    expect(relay.acked).toEqual([]);
    expect(gh.node.list(officer)).toEqual([]);
    expect(gh.node.status()).toMatchObject({
      mailboxCursor: 0,
      relayIncidents: { total: 1, last: { code: 'CHUNK_HASH_MISMATCH' } },
    });

    relay.chunks.set(genuine.envelope.body.dossier.id, genuine.sealed);
    const report = await gh.node.syncOnce();
    expect(report.items.map((i) => [i.seq, i.outcome.kind])).toEqual([[seq, 'received']]);
    expect(relay.acked).toEqual([seq]);
  });

  it('an endless chunk body is cut at the size the envelope names: DOWNLOAD_FAILED, not acked, and the node answers on', async () => {
    const genuine = seal();
    serve(genuine);
    relay.chunks.set(
      genuine.envelope.body.dossier.id,
      endless(randomBytes(64 * 1024), 'application/octet-stream'),
    );
    const err = await gh.node.syncOnce().catch((e: unknown) => e);
    expect(isNodeError(err, 'DOWNLOAD_FAILED')).toBe(true);
    expect(relay.acked).toEqual([]);
    expect(gh.node.list(officer)).toEqual([]);
    expect(gh.node.status().relayIncidents.last?.code).toBe('CHUNK_HASH_MISMATCH');
  });

  it('an endless mailbox page is cut at the response limit: a typed error, nothing stored or acked, the incident shown', async () => {
    serve(seal());
    relay.mailboxResponder = endless(
      `{"items":[${'{"seq":1,"kind":"evidence","evidence":{}},'.repeat(1000)}`,
      'application/json',
    );
    const err = await gh.node.syncOnce().catch((e: unknown) => e);
    expect(isNodeError(err, 'RELAY_REJECTED')).toBe(true);
    expect((err as { detail?: string }).detail).toBe('BAD_RESPONSE');
    expect(relay.acked).toEqual([]);
    expect(gh.node.status().relayIncidents).toMatchObject({
      total: 1,
      last: { code: 'BAD_RESPONSE' },
    });
  });

  it('a mailbox page with more items than asked for is refused whole: nothing stored, nothing acked', async () => {
    const genuine = seal();
    relay.chunks.set(genuine.envelope.body.dossier.id, genuine.sealed);
    for (let i = 0; i < 60; i++) relay.push({ kind: 'envelope', envelope: genuine.envelope });
    relay.mailboxResponder = (res) => {
      const text = JSON.stringify({ items: relay.items });
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    const err = await gh.node.syncOnce().catch((e: unknown) => e);
    expect(isNodeError(err, 'RELAY_REJECTED')).toBe(true);
    expect(relay.acked).toEqual([]);
    expect(relay.chunkGets).toEqual([]);
    expect(gh.node.list(officer)).toEqual([]);
    expect(gh.node.status().relayIncidents.total).toBe(1);
  });

  it('an evidence about an envelope the node never sent is ignored, acked and shown', async () => {
    const theirs = seal({ from: SN, to: NG });
    const aboutOther = issueEvidence({
      kind: 'delivery',
      envelope: theirs.envelope,
      issuer: NG,
      key: world.authority(NG).identity,
      issuedAt: Date.now(),
      recipient: NG,
    });
    const a = relay.push({ kind: 'evidence', evidence: aboutOther });
    const report = await gh.node.syncOnce();
    expect(report.items).toEqual([
      { seq: a, outcome: { kind: 'ignored', reason: 'UNKNOWN_ENVELOPE' } },
    ]);
    expect(relay.acked).toEqual([a]);
    expect(gh.node.status().relayIncidents).toMatchObject({
      total: 1,
      last: { code: 'UNKNOWN_ENVELOPE' },
    });
    expect(incidents()).toEqual(['UNKNOWN_ENVELOPE']);
  });

  it('a quota refusal from the relay is temporary: the dossier stays queued and goes once the relay has room', async () => {
    const approver = gh.user('approver', 'approver', ['restricted']);
    const id = await gh.node.compose(officer, {
      content: stripAttachmentRefs(mlaRequest(world, GH, NG)),
    });
    gh.node.submitForApproval(officer, id);
    await gh.node.approve(approver, id);
    relay.quotaRefusals = 1;
    const first = await gh.node.flushOutbox();
    expect(first.sent).toEqual([]);
    expect(gh.node.status().outbox).toMatchObject({ pending: 1, failed: 0 });
    expect((await gh.node.flushOutbox()).sent).toEqual([id]);
    expect(relay.submitted).toHaveLength(1);
  });

  it('an evidence bound to another envelope, relabelled with the id of one the node sent, is ignored and shown; the genuine one moves the status', async () => {
    const approver = gh.user('approver', 'approver', ['restricted']);
    const id = await gh.node.compose(officer, {
      content: stripAttachmentRefs(mlaRequest(world, GH, NG)),
    });
    gh.node.submitForApproval(officer, id);
    const envelopeId = await gh.node.approve(approver, id);
    expect((await gh.node.flushOutbox()).sent).toEqual([id]);
    const sent = gh.node.evidences(officer, id).envelope!;

    const ng = world.authority(NG);
    const other = seal({ from: SN, to: NG });
    const genuineOther = issueEvidence({
      kind: 'delivery',
      envelope: other.envelope,
      issuer: NG,
      key: ng.identity,
      issuedAt: Date.now(),
      recipient: NG,
    });
    const relabelled = {
      ...genuineOther,
      body: { ...genuineOther.body, envelopeId },
    };
    const bad = relay.push({ kind: 'evidence', evidence: relabelled });
    const first = await gh.node.syncOnce();
    expect(first.items).toEqual([
      { seq: bad, outcome: { kind: 'ignored', reason: 'EVIDENCE_MISMATCH' } },
    ]);
    expect(relay.acked).toEqual([bad]);
    expect(gh.node.show(officer, id).status).toBe('sent');
    expect(gh.node.status().relayIncidents).toMatchObject({
      total: 1,
      last: { code: 'EVIDENCE_MISMATCH' },
    });

    const delivery = issueEvidence({
      kind: 'delivery',
      envelope: sent,
      issuer: NG,
      key: ng.identity,
      issuedAt: Date.now(),
      recipient: NG,
    });
    const good = relay.push({ kind: 'evidence', evidence: delivery });
    const second = await gh.node.syncOnce();
    expect(second.items).toEqual([
      { seq: good, outcome: expect.objectContaining({ kind: 'evidence', status: 'delivered' }) },
    ]);
    expect(gh.node.status().relayIncidents.total).toBe(1);
  });

  it('replays: an item stored and acked, served again (same session, and after a restart), is recognised, re-acked, and stored or evidenced once', async () => {
    const genuine = seal();
    relay.keepAcked = true;
    const seq = serve(genuine);
    expect((await gh.node.syncOnce()).items.map((i) => i.outcome.kind)).toEqual(['received']);
    await eventually('the delivery evidence', () => (relay.posted.length > 0 ? true : undefined));

    // The relay ignores the ack and serves it again from the start of the mailbox.
    relay.items = relay.items.map((i) => ({ ...i, seq: i.seq + 100 }));
    const again = await gh.node.syncOnce();
    expect(again.items).toEqual([
      { seq: seq + 100, outcome: { kind: 'duplicate', envelopeId: genuine.envelope.body.id } },
    ]);

    await gh.node.close();
    gh = {
      ...gh,
      node: await AuthorityNode.open({
        dir: gh.dir,
        passphrase: PASSPHRASE,
        relay: { retry: { retries: 1, baseMs: 20, maxMs: 100 }, timeoutMs: 10_000 },
      }),
    };
    officer = gh.node.login('officer', PASSWORD);
    gh = { ...gh, admin: gh.node.login('admin', PASSWORD) };
    relay.items = relay.items.map((i) => ({ ...i, seq: i.seq + 100 }));
    const afterRestart = await gh.node.syncOnce();
    expect(afterRestart.items.map((i) => i.outcome.kind)).toEqual(['duplicate']);
    expect(stored(genuine.envelope.body.id)).toHaveLength(1);
    expect(relay.posted).toHaveLength(1);
    expect(relay.acked).toEqual([seq, seq + 100, seq + 200]);
    expect(gh.node.status().relayIncidents.total).toBe(0);
  });

  it('another envelope under an id already stored is refused as REPLAY, never taken for the stored one', async () => {
    const first = seal();
    serve(first);
    await gh.node.syncOnce();
    const second = seal({ envelopeId: first.envelope.body.id });
    const seq = serve(second);
    const report = await gh.node.syncOnce();
    expect(report.items).toEqual([
      { seq, outcome: { kind: 'refused', envelopeId: first.envelope.body.id, code: 'REPLAY' } },
    ]);
    expect(relay.acked).toContain(seq);
    expect(gh.node.status().relayIncidents.last?.code).toBe('REPLAY');
  });

  it('live sync: a malformed item is acked and shown (as syncOnce does), so that it cannot hold the cursor back; the items after it are stored', async () => {
    const genuine = seal();
    const bad = relay.push({ kind: 'envelope', envelope: { body: { id: 'not an envelope' } } });
    const good = serve(genuine);
    const events: SyncEvent[] = [];
    gh.node.startSync((e) => events.push(e));
    await eventually('the genuine dossier', () =>
      gh.node.inbox(officer).find((d) => d.envelopeId === genuine.envelope.body.id),
    );
    await eventually('both items acked and the cursor past them', () =>
      gh.node.status().mailboxCursor === good ? true : undefined,
    );
    await gh.node.stopSync();
    expect(relay.acked).toEqual(expect.arrayContaining([bad, good]));
    expect(relay.items).toEqual([]);
    expect(events).toContainEqual({ type: 'error', code: 'BAD_RESPONSE' });
    expect(gh.node.status().relayIncidents).toMatchObject({
      total: 1,
      last: { code: 'BAD_RESPONSE' },
    });
    expect(
      gh.node
        .auditEntries(gh.admin)
        .filter((e) => e.action === 'relay.misbehaviour')
        .map((e) => e.target),
    ).toEqual([`seq:${bad}`]);
  });

  it('an oversized WebSocket frame drops the socket and is shown; the live sync reconnects and receives on', async () => {
    let served = false;
    relay.onSubscribe = (ws) => {
      served = true;
      relay.onSubscribe = undefined;
      ws.send('x'.repeat(16 * 1024 * 1024 + 128 * 1024));
    };
    const genuine = seal();
    serve(genuine);
    const events: SyncEvent[] = [];
    gh.node.startSync((e) => events.push(e));
    const received = await eventually('the dossier after the reconnection', () =>
      gh.node.inbox(officer).find((d) => d.envelopeId === genuine.envelope.body.id),
    );
    expect(served).toBe(true);
    expect(received.status).toBe('received');
    expect(relay.connections).toBeGreaterThanOrEqual(2);
    expect(events).toContainEqual({ type: 'error', code: 'BAD_RESPONSE' });
    expect(gh.node.status().relayIncidents).toMatchObject({
      total: 1,
      last: { code: 'BAD_RESPONSE' },
    });
    await gh.node.stopSync();
  });
});
