import { join } from 'node:path';
import { RelayClient } from '@rogatory/client';
import {
  KDF_LIMITS,
  hashOf,
  sealDossier,
  signIntroduction,
  toBase64url,
  type Introduction,
  type KeyRef,
  type SigningKeyPair,
} from '@rogatory/protocol';
import { terminateHashWorker } from '@rogatory/protocol/node';
import type { TestWorld } from '@rogatory/protocol/testing';
import { startTestRelays, type TestNetworkOfRelays } from '@rogatory/relay/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import {
  API_PREFIX,
  AuthorityNode,
  buildNodeApi,
  initNode,
  isNodeError,
  type Actor,
} from '../src/index.js';
import {
  PASSPHRASE,
  PASSWORD,
  eventually,
  makeNode,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const GH = 'gh-ago@wacap';
const KZ = 'kz-gpo@casc';
const POC_SN = 'poc-sn@wacap';
const POC_KZ = 'poc-kz@casc';
const DAY = 24 * 3600 * 1000;

/** A point of contact's node (`rogatory init --poc`) with the test world's PoC keys. */
async function makePocNode(world: TestWorld, network: string, dir: string): Promise<NodeFixture> {
  const net = world.networks[network]!;
  const result = await initNode({
    dir,
    address: net.poc.address,
    role: 'poc',
    relayUrl: net.relay.url,
    relayId: net.relay.id,
    passphrase: PASSPHRASE,
    pinnedRoot: net.rootRef,
    manifests: [
      net.manifest,
      ...net.manifest.body.peers.map((p) => world.networks[p.network]!.manifest),
    ],
    kdf: KDF_LIMITS.interactive,
    importKeys: { identity: net.poc.key, encryption: net.poc.encryption },
    admin: { username: 'admin', password: PASSWORD },
  });
  expect(result).toMatchObject({ role: 'poc', listedInManifest: true });
  const node = await AuthorityNode.open({
    dir,
    passphrase: PASSPHRASE,
    relay: { retry: { retries: 1, baseMs: 20, maxMs: 100 }, timeoutMs: 10_000 },
  });
  const admin = node.login('admin', PASSWORD);
  return {
    node,
    dir,
    admin,
    user(username, role, clearances = []) {
      node.addUser(admin, { username, password: PASSWORD, role, clearances });
      return node.login(username, PASSWORD);
    },
  };
}

/** Sync the nodes, in order, until `fn` returns a value (relays forward across networks on their own time). */
async function until<T>(
  what: string,
  nodes: readonly NodeFixture[],
  fn: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  return eventually(
    what,
    async () => {
      for (const n of nodes) await n.node.syncOnce();
      return fn();
    },
    100,
    50,
  );
}

function code(detail: string) {
  return (e: unknown) => isNodeError(e, 'VERIFICATION_FAILED') && e.detail === detail;
}

describe('introductions: the point-of-contact workflow between nodes (wacap and casc)', () => {
  let net: TestNetworkOfRelays;
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let sn: NodeFixture;
  let gh: NodeFixture;
  let kz: NodeFixture;
  let pocSn: NodeFixture;
  let pocKz: NodeFixture;
  const u: Record<string, Actor> = {};

  beforeAll(async () => {
    net = await startTestRelays({ backend: { kind: 'embedded' } });
    world = net.world;
    tmp = await tempDir();
    sn = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn') });
    gh = await makeNode({ world, address: GH, dir: join(tmp.path, 'gh') });
    kz = await makeNode({ world, address: KZ, dir: join(tmp.path, 'kz') });
    pocSn = await makePocNode(world, 'wacap', join(tmp.path, 'poc-sn'));
    pocKz = await makePocNode(world, 'casc', join(tmp.path, 'poc-kz'));
    u['snOfficer'] = sn.user('amadou', 'officer');
    u['snApprover'] = sn.user('fatou', 'approver');
    u['ghOfficer'] = gh.user('kwame', 'officer');
    u['kzOfficer'] = kz.user('aigerim', 'officer');
    u['pocSnOfficer'] = pocSn.user('awa', 'officer');
    u['pocSnApprover'] = pocSn.user('moussa', 'approver');
    u['pocKzOfficer'] = pocKz.user('dana', 'officer');
    u['pocKzApprover'] = pocKz.user('erlan', 'approver');
  }, 120_000);

  afterAll(async () => {
    for (const f of [sn, gh, kz, pocSn, pocKz]) await f.node.close();
    await net.stop();
    await terminateHashWorker();
    await tmp.remove();
  });

  /** An officer's request, approved by a second person and sent; returns its dossier id. */
  async function askPoc(patch: { country: string; caseReference: string }): Promise<string> {
    const id = sn.node.requestIntroduction(u['snOfficer']!, {
      to: POC_SN,
      country: patch.country,
      requestType: 'mla',
      languages: ['en', 'fr'],
      note: 'bank records',
      caseReference: patch.caseReference,
    });
    expect(sn.node.show(u['snOfficer']!, id).status).toBe('draft');
    sn.node.submitForApproval(u['snOfficer']!, id);
    await sn.node.approve(u['snApprover']!, id);
    return id;
  }

  it('same network: the PoC introduces gh-ago to sn-moj; four eyes on both sides; both see it; the directory lists it', async () => {
    expect(pocSn.node.isPointOfContact()).toBe(true);
    expect(pocSn.node.status().listedInManifest).toBe(true);
    expect(sn.node.isPointOfContact()).toBe(false);
    const requestId = await askPoc({ country: 'GH', caseReference: 'SN-INTRO-1' });
    expect(sn.node.introductionStatus(u['snOfficer']!, requestId)[0]).toMatchObject({
      poc: POC_SN,
      country: 'GH',
      requestType: 'mla',
      outcome: 'pending',
    });

    const open = await until('the request at the PoC', [sn, pocSn], () =>
      pocSn.node
        .introductionInbox(u['pocSnOfficer']!)
        .find((e) => e.caseReference === 'SN-INTRO-1'),
    );
    expect(open).toMatchObject({
      role: 'poc',
      state: 'open',
      requester: SN,
      from: SN,
      country: 'GH',
      requestType: 'mla',
      languages: ['en', 'fr'],
      note: 'bank records',
      answer: null,
    });

    // An authority not in any manifest cannot be introduced; nothing changes.
    expect(() =>
      pocSn.node.issueIntroduction(u['pocSnOfficer']!, open.id, { authority: 'xx-none@wacap' }),
    ).toThrow(expect.objectContaining({ code: 'RECIPIENT_UNKNOWN' }));
    expect(
      pocSn.node.introductionInbox(u['pocSnOfficer']!).find((e) => e.id === open.id)?.state,
    ).toBe('open');

    const issued = pocSn.node.issueIntroduction(u['pocSnOfficer']!, open.id, { authority: GH });
    expect(issued.introduction.body).toMatchObject({
      issuer: POC_SN,
      subject: GH,
      audience: SN,
      competences: ['mla'],
    });
    const after = pocSn.node.introductionInbox(u['pocSnOfficer']!).find((e) => e.id === open.id)!;
    expect(after.state).toBe('introduced');
    expect(after.answer).toMatchObject({
      outcome: 'introduced',
      subject: GH,
      dossierStatus: 'awaiting-approval',
    });
    // Answered once: a second answer is refused.
    expect(() =>
      pocSn.node.declineIntroduction(u['pocSnOfficer']!, open.id, { reason: 'other' }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_STATE' }));
    // Nothing is exported before an approver signs the answer off, and the drafter cannot.
    expect(pocSn.node.exportIntroductions(u['pocSnOfficer']!).introductions).toEqual([]);
    const pocSnApprover2 = pocSn.user('awa2', 'approver');
    const selfIssue = await askPoc({ country: 'NG', caseReference: 'SN-INTRO-4EYES' });
    const selfOpen = await until('the second request at the PoC', [sn, pocSn], () =>
      pocSn.node
        .introductionInbox(pocSnApprover2)
        .find((e) => e.caseReference === 'SN-INTRO-4EYES'),
    );
    const selfAnswer = pocSn.node.issueIntroduction(pocSnApprover2, selfOpen.id, {
      authority: 'ng-agf@wacap',
    });
    await expect(pocSn.node.approve(pocSnApprover2, selfAnswer.dossierId)).rejects.toSatisfy((e) =>
      isNodeError(e, 'FOUR_EYES_VIOLATION'),
    );
    expect(sn.node.introductionStatus(u['snOfficer']!, selfIssue)[0]?.outcome).toBe('pending');
    // An approver returns that answer: the request is open again and answered anew; the
    // returned introduction is never exported.
    pocSn.node.returnToDraft(u['pocSnApprover']!, selfAnswer.dossierId);
    expect(
      pocSn.node.introductionInbox(pocSnApprover2).find((e) => e.id === selfOpen.id),
    ).toMatchObject({ state: 'open', answer: { dossierStatus: 'draft' } });
    const redone = pocSn.node.declineIntroduction(pocSnApprover2, selfOpen.id, {
      reason: 'insufficient-information',
    });
    expect(
      pocSn.node.introductionInbox(pocSnApprover2).find((e) => e.id === selfOpen.id),
    ).toMatchObject({ state: 'declined', answer: { dossierId: redone.dossierId } });

    await pocSn.node.approve(u['pocSnApprover']!, issued.dossierId);
    const exported = pocSn.node.exportIntroductions(u['pocSnOfficer']!).introductions;
    expect(exported.map((i) => hashOf(i))).toEqual([hashOf(issued.introduction)]);
    // What `rogatory-network log add` checks: a PoC of wacap under the key edition 1 lists.
    expect(() => world.trustFor('wacap').addIntroduction(exported[0])).not.toThrow();

    const outcome = await until('the answer at sn-moj', [pocSn, sn], () => {
      const v = sn.node.introductionStatus(u['snOfficer']!, requestId)[0];
      return v?.outcome === 'pending' ? undefined : v;
    });
    expect(outcome).toMatchObject({
      outcome: 'introduced',
      answeredBy: POC_SN,
      code: null,
      introductions: [{ issuer: POC_SN, subject: GH, audience: SN, competences: ['mla'] }],
    });
    // The directory: gh-ago vouched for by its manifest and introduced by the PoC.
    const entry = sn.node.directory(u['snOfficer']!, { text: 'gh-ago' })[0];
    expect(entry?.vouchedBy).toEqual([
      { kind: 'manifest', network: 'wacap', edition: 1 },
      expect.objectContaining({ kind: 'introduction', issuer: POC_SN, network: 'wacap' }),
    ]);

    // The introduced authority gets its copy.
    const copy = await until(
      'the copy at gh-ago',
      [pocSn, gh],
      () => gh.node.introductionsOfSelf(u['ghOfficer']!)[0],
    );
    expect(copy).toMatchObject({
      requester: SN,
      poc: POC_SN,
      state: 'introduced',
      introductions: [{ subject: GH, audience: SN }],
    });
  }, 120_000);

  it('across networks: the wacap PoC refers to the casc PoC, who introduces kz-gpo; both sides see it', async () => {
    const requestId = await askPoc({ country: 'KZ', caseReference: 'SN-INTRO-KZ' });
    const open = await until('the request at poc-sn', [sn, pocSn], () =>
      pocSn.node
        .introductionInbox(u['pocSnOfficer']!)
        .find((e) => e.caseReference === 'SN-INTRO-KZ'),
    );
    // A referral stays between networks, and goes to a point of contact.
    expect(() =>
      pocSn.node.referIntroduction(u['pocSnOfficer']!, open.id, { to: 'poc-sn@wacap' }),
    ).toThrow(expect.objectContaining({ code: 'INPUT_INVALID' }));
    expect(() => pocSn.node.referIntroduction(u['pocSnOfficer']!, open.id, { to: KZ })).toThrow(
      expect.objectContaining({ code: 'RECIPIENT_UNKNOWN' }),
    );
    const referral = pocSn.node.referIntroduction(u['pocSnOfficer']!, open.id, {
      to: POC_KZ,
      remarks: 'Kazakh competent authority sought',
    });
    expect(
      pocSn.node.introductionInbox(u['pocSnOfficer']!).find((e) => e.id === open.id),
    ).toMatchObject({ state: 'referred', answer: { outcome: 'referred', to: POC_KZ } });
    await pocSn.node.approve(u['pocSnApprover']!, referral.dossierId);

    const referred = await until(
      'the referral at poc-kz',
      [pocSn, pocKz],
      () => pocKz.node.introductionInbox(u['pocKzOfficer']!)[0],
    );
    expect(referred).toMatchObject({
      role: 'referee',
      state: 'open',
      requester: SN,
      from: POC_SN,
      country: 'KZ',
      requestType: 'mla',
      caseReference: 'SN-INTRO-KZ',
    });
    // A referee does not refer again.
    expect(() =>
      pocKz.node.referIntroduction(u['pocKzOfficer']!, referred.id, { to: POC_SN }),
    ).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));

    const issued = pocKz.node.issueIntroduction(u['pocKzOfficer']!, referred.id, {
      authority: KZ,
      note: 'handles MLA in English',
    });
    expect(issued.introduction.body).toMatchObject({ issuer: POC_KZ, subject: KZ, audience: SN });
    await pocKz.node.approve(u['pocKzApprover']!, issued.dossierId);

    const outcome = await until('the answer at sn-moj', [pocKz, sn], () => {
      const v = sn.node.introductionStatus(u['snOfficer']!, requestId)[0];
      return v?.outcome === 'pending' ? undefined : v;
    });
    expect(outcome).toMatchObject({
      outcome: 'introduced',
      answeredBy: POC_KZ,
      introductions: [{ issuer: POC_KZ, subject: KZ, audience: SN }],
    });
    const entry = sn.node.directory(u['snOfficer']!, { country: 'KZ' })[0];
    expect(entry?.address).toBe(KZ);
    expect(entry?.vouchedBy).toContainEqual(
      expect.objectContaining({ kind: 'introduction', issuer: POC_KZ, network: 'casc' }),
    );
    const copy = await until(
      'the copy at kz-gpo',
      [pocKz, kz],
      () => kz.node.introductionsOfSelf(u['kzOfficer']!)[0],
    );
    expect(copy).toMatchObject({ requester: SN, poc: POC_KZ, state: 'introduced' });

    // After a restart the stored introduction is back in the directory.
    await sn.node.close();
    sn = { ...sn, node: await AuthorityNode.open({ dir: sn.dir, passphrase: PASSPHRASE }) };
    u['snOfficer'] = sn.node.login('amadou', PASSWORD);
    u['snApprover'] = sn.node.login('fatou', PASSWORD);
    expect(sn.node.directory(u['snOfficer'], { country: 'KZ' })[0]?.vouchedBy).toContainEqual(
      expect.objectContaining({ kind: 'introduction', issuer: POC_KZ }),
    );
  }, 120_000);

  it('a PoC declines: the officer sees the reason', async () => {
    const requestId = await askPoc({ country: 'FR', caseReference: 'SN-INTRO-FR' });
    const open = await until('the request at poc-sn', [sn, pocSn], () =>
      pocSn.node
        .introductionInbox(u['pocSnOfficer']!)
        .find((e) => e.caseReference === 'SN-INTRO-FR'),
    );
    expect(() =>
      pocSn.node.declineIntroduction(u['pocSnOfficer']!, open.id, { reason: 'because' }),
    ).toThrow(expect.objectContaining({ code: 'INPUT_INVALID' }));
    const declined = pocSn.node.declineIntroduction(u['pocSnOfficer']!, open.id, {
      reason: 'country-not-covered',
      note: 'France is not in a peered network',
    });
    await pocSn.node.approve(u['pocSnApprover']!, declined.dossierId);
    const outcome = await until('the decline at sn-moj', [pocSn, sn], () => {
      const v = sn.node.introductionStatus(u['snOfficer']!, requestId)[0];
      return v?.outcome === 'pending' ? undefined : v;
    });
    expect(outcome).toMatchObject({
      outcome: 'declined',
      answeredBy: POC_SN,
      reason: 'country-not-covered',
      text: 'France is not in a peered network',
      introductions: [],
    });
  }, 120_000);

  it('REST: GET /introductions, POST requests, issue, refer, decline, export and receive', async () => {
    const apps = {
      sn: await buildNodeApi({ node: sn.node, logger: false }),
      poc: await buildNodeApi({ node: pocSn.node, logger: false }),
    };
    try {
      const session = async (app: FastifyInstance, username: string) => {
        const res = await app.inject({
          method: 'POST',
          url: `${API_PREFIX}/login`,
          payload: { username, password: PASSWORD },
        });
        expect(res.statusCode).toBe(200);
        const headers = { authorization: `Bearer ${res.json<{ token: string }>().token}` };
        return {
          get: (url: string) => app.inject({ method: 'GET', url: `${API_PREFIX}${url}`, headers }),
          post: (url: string, payload: object) =>
            app.inject({ method: 'POST', url: `${API_PREFIX}${url}`, headers, payload }),
        };
      };
      const snOfficer = await session(apps.sn, 'amadou');
      const snApprover = await session(apps.sn, 'fatou');
      const pocOfficer = await session(apps.poc, 'awa');
      const pocApprover = await session(apps.poc, 'moussa');

      // Schema and node refusals: 400 for a bad body, 422 for a recipient that is no PoC.
      const bad = await snOfficer.post('/introductions/requests', {
        to: POC_SN,
        country: 'GH',
        requestType: 'bribery',
        languages: ['en'],
      });
      expect(bad.statusCode).toBe(400);
      const notPoc = await snOfficer.post('/introductions/requests', {
        to: GH,
        country: 'GH',
        requestType: 'mla',
        languages: ['en'],
      });
      expect(notPoc.json()).toMatchObject({ error: { code: 'RECIPIENT_UNKNOWN' } });

      const created = await snOfficer.post('/introductions/requests', {
        to: POC_SN,
        country: 'NG',
        requestType: 'extradition',
        languages: ['en'],
        caseReference: 'SN-INTRO-REST',
        submit: true,
      });
      expect(created.statusCode).toBe(201);
      const { id } = created.json<{ id: string }>();
      expect((await snApprover.post(`/dossiers/${id}/approve`, {})).statusCode).toBe(200);

      type Overview = {
        requests: { id: string; outcome: string; answeredBy: string | null }[];
        inbox: { id: string; state: string; caseReference: string | null }[];
      };
      const open = await until('the REST request at the PoC', [sn, pocSn], async () => {
        const o = (await pocOfficer.get('/introductions')).json<Overview>();
        return o.inbox.find((e) => e.caseReference === 'SN-INTRO-REST');
      });
      expect(open.state).toBe('open');
      expect(
        (await pocOfficer.post(`/introductions/${open.id}/refer`, { to: POC_SN })).json(),
      ).toMatchObject({ error: { code: 'INPUT_INVALID' } });
      expect(
        (await pocOfficer.post('/introductions/i-0123456789abcdef/decline', { reason: 'other' }))
          .statusCode,
      ).toBe(404);
      const issued = await pocOfficer.post(`/introductions/${open.id}/issue`, {
        authority: 'ng-agf@wacap',
        validDays: 10,
      });
      expect(issued.statusCode).toBe(201);
      const { dossierId } = issued.json<{ dossierId: string }>();
      expect((await pocOfficer.post(`/dossiers/${dossierId}/approve`, {})).statusCode).toBe(403);
      expect((await pocApprover.post(`/dossiers/${dossierId}/approve`, {})).statusCode).toBe(200);
      const exported = (await pocOfficer.get('/introductions/export')).json<{
        introductions: Introduction[];
      }>();
      expect(exported.introductions.map((i) => i.body.subject)).toContain('ng-agf@wacap');

      const answered = await until('the REST answer at sn-moj', [pocSn, sn], async () => {
        const o = (await snOfficer.get('/introductions')).json<Overview>();
        const r = o.requests.find((q) => q.id === id);
        return r?.outcome === 'pending' ? undefined : r;
      });
      expect(answered).toMatchObject({ outcome: 'introduced', answeredBy: POC_SN });
      const dir = (await snOfficer.get('/directory?text=ng-agf')).json<{
        entries: { vouchedBy: { kind: string; issuer?: string }[] }[];
      }>();
      expect(dir.entries[0]?.vouchedBy).toContainEqual(
        expect.objectContaining({ kind: 'introduction', issuer: POC_SN }),
      );

      // An introduction given directly: 422 with the refusal code when forged.
      const forged = {
        ...exported.introductions[0]!,
        body: { ...exported.introductions[0]!.body, note: 'x' },
      };
      const refused = await snOfficer.post('/introductions/receive', { introduction: forged });
      expect(refused.statusCode).toBe(422);
      expect(refused.json()).toMatchObject({
        error: { code: 'VERIFICATION_FAILED', detail: 'SIGNATURE_INVALID' },
      });
    } finally {
      await apps.sn.close();
      await apps.poc.close();
    }
  }, 120_000);

  describe('refusals: nothing is stored', () => {
    function introduction(
      overrides: Partial<Introduction['body']> = {},
      key = world.networks['casc']!.poc.key,
    ): Introduction {
      const now = Date.now();
      const kzEntry = world.authority(KZ);
      return signIntroduction(
        {
          issuer: POC_KZ,
          subject: KZ,
          subjectKey: kzEntry.identityRef,
          audience: GH,
          competences: ['extradition'],
          note: '',
          issuedAt: now - DAY,
          validUntil: now + DAY,
          ...overrides,
        },
        key,
      );
    }

    it('accepts a genuine one given directly (the baseline the refusals differ from)', () => {
      expect(gh.node.directory(u['ghOfficer']!, { text: 'kz-gpo' })[0]?.vouchedBy).toEqual([
        { kind: 'manifest', network: 'casc', edition: 1 },
      ]);
      const intro = introduction({ audience: 'wacap' });
      expect(gh.node.receiveIntroduction(u['ghOfficer']!, intro)).toMatchObject({
        issuer: POC_KZ,
        subject: KZ,
        audience: 'wacap',
      });
      expect(gh.node.directory(u['ghOfficer']!, { text: 'kz-gpo' })[0]?.vouchedBy).toContainEqual(
        expect.objectContaining({ kind: 'introduction', issuer: POC_KZ }),
      );
    });

    it('forged (changed after signing): SIGNATURE_INVALID', () => {
      const before = gh.node.directory(u['ghOfficer']!, { text: 'kz-gpo' })[0]?.vouchedBy.length;
      const intro = introduction();
      const forged = { ...intro, body: { ...intro.body, competences: ['mla', 'extradition'] } };
      expect(() => gh.node.receiveIntroduction(u['ghOfficer']!, forged)).toThrow(
        expect.toSatisfy(code('SIGNATURE_INVALID')),
      );
      expect(gh.node.directory(u['ghOfficer']!, { text: 'kz-gpo' })[0]?.vouchedBy.length).toBe(
        before,
      );
    });

    it('expired: INTRODUCTION_EXPIRED', () => {
      const now = Date.now();
      const intro = introduction({ issuedAt: now - 3 * DAY, validUntil: now - DAY });
      expect(() => gh.node.receiveIntroduction(u['ghOfficer']!, intro)).toThrow(
        expect.toSatisfy(code('INTRODUCTION_EXPIRED')),
      );
    });

    it('by an authority, not a PoC: KEY_WRONG_ROLE', () => {
      const ng = world.authority('ng-agf@wacap');
      const intro = introduction({ issuer: ng.address }, ng.identity);
      expect(() => gh.node.receiveIntroduction(u['ghOfficer']!, intro)).toThrow(
        expect.toSatisfy(code('KEY_WRONG_ROLE')),
      );
    });

    it('signed by a key the PoC does not hold: KEY_UNKNOWN', () => {
      const intro = introduction({}, world.authority(KZ).identity);
      expect(() => gh.node.receiveIntroduction(u['ghOfficer']!, intro)).toThrow(
        expect.toSatisfy(code('KEY_UNKNOWN')),
      );
    });

    it('for another audience: INTRODUCTION_NOT_ADDRESSED; of an unknown subject: SUBJECT_UNKNOWN', () => {
      expect(() =>
        gh.node.receiveIntroduction(u['ghOfficer']!, introduction({ audience: SN })),
      ).toThrow(expect.toSatisfy(code('INTRODUCTION_NOT_ADDRESSED')));
      expect(() =>
        gh.node.receiveIntroduction(u['ghOfficer']!, introduction({ subject: 'xx-none@casc' })),
      ).toThrow(expect.toSatisfy(code('SUBJECT_UNKNOWN')));
      expect(() => gh.node.receiveIntroduction(u['ghOfficer']!, { body: {} })).toThrow(
        expect.toSatisfy(code('SCHEMA_INVALID')),
      );
    });

    /** Send sn-moj an introduction-answer sealed by `from` (a PoC or an authority of the test world) through the relays. */
    async function answerToSn(
      from: { address: string; identity: SigningKeyPair; encryptionRef: KeyRef },
      answerTo: string,
      intros: Introduction[],
    ): Promise<string> {
      const sealed = sealDossier({
        sender: { address: from.address, identity: from.identity, archiveKey: from.encryptionRef },
        recipients: [{ address: SN, encryptionKey: world.authority(SN).encryptionRef }],
        content: {
          kind: 'introduction-answer',
          from: from.address,
          to: SN,
          answerTo,
          requester: SN,
          outcome: 'introduced',
          introductions: intros,
        },
        attachments: [],
        createdAt: Date.now(),
        expiresAt: Date.now() + DAY,
      });
      const network = from.address.split('@')[1]!;
      const client = new RelayClient({
        baseUrl: net.relays[network]!.url,
        address: from.address,
        identity: from.identity,
        relayId: `relay@${network}`,
        retry: { retries: 1, baseMs: 10 },
      });
      await client.putChunk(sealed.envelope.body.dossier.id, sealed.sealed, sealed.sealed.length);
      await client.submit(sealed.envelope);
      return sealed.envelope.body.id;
    }

    it('carried in answer dossiers: by a non-PoC, expired, or answering no request of ours — the outcome is refused with the code, nothing kept', async () => {
      const officer = u['snOfficer']!;
      // A request of sn-moj still waiting for its answer.
      const requestId = await askPoc({ country: 'GE', caseReference: 'SN-INTRO-HOSTILE' });
      const envelopeId = sn.node.introductionStatus(officer, requestId)[0]!.envelopeId!;
      const before = sn.node.directory(officer, { text: 'kz-gpo' })[0]!.vouchedBy.length;
      const outcome = async (what: string) =>
        until(what, [sn], () => {
          const v = sn.node.introductionStatus(officer, requestId)[0];
          return v?.outcome === 'pending' ? undefined : v;
        });

      // An authority answers with an introduction it signed itself.
      const ng = world.authority('ng-agf@wacap');
      const now = Date.now();
      await answerToSn(
        { address: ng.address, identity: ng.identity, encryptionRef: ng.encryptionRef },
        envelopeId,
        [introduction({ issuer: ng.address, audience: SN }, ng.identity)],
      );
      expect(await outcome('the refused answer')).toMatchObject({
        outcome: 'refused',
        answeredBy: ng.address,
        code: 'KEY_WRONG_ROLE',
        introductions: [],
      });

      // The genuine casc PoC, but an expired introduction.
      const poc = world.networks['casc']!.poc;
      const pocParty = { address: POC_KZ, identity: poc.key, encryptionRef: poc.encryptionRef };
      await answerToSn(pocParty, envelopeId, [
        introduction({ audience: SN, issuedAt: now - 3 * DAY, validUntil: now - DAY }),
      ]);
      await until('the expired answer', [sn], () =>
        sn.node.introductionStatus(officer, requestId)[0]?.answeredBy === POC_KZ ? true : undefined,
      );
      expect(sn.node.introductionStatus(officer, requestId)[0]).toMatchObject({
        outcome: 'refused',
        code: 'INTRODUCTION_EXPIRED',
      });

      // A valid introduction answering a request sn-moj never sent.
      const unsolicited = await answerToSn(pocParty, toBase64url(new Uint8Array(16).fill(7)), [
        introduction({ audience: SN }),
      ]);
      await until('the unsolicited answer', [sn], () =>
        sn.node.list(officer, { direction: 'in' }).find((d) => d.envelopeId === unsolicited)
          ? true
          : undefined,
      );
      expect(sn.node.directory(officer, { text: 'kz-gpo' })[0]!.vouchedBy.length).toBe(before);
      expect(
        sn.node
          .auditEntries(sn.admin)
          .filter((e) => e.action === 'introduction.refused' && e.actor === 'system')
          .map((e) => e.detail),
      ).toEqual(['KEY_WRONG_ROLE', 'INTRODUCTION_EXPIRED', 'INTRODUCTION_UNSOLICITED']);
    }, 120_000);

    it('the refusals left only the manifest and the genuine introduction', () => {
      const kzEntry = gh.node.directory(u['ghOfficer']!, { text: 'kz-gpo' })[0]!;
      expect(kzEntry.vouchedBy).toHaveLength(2);
      expect(kzEntry.competences).toEqual(expect.arrayContaining(['extradition']));
      // And an authority's node has no PoC work: issuing is refused.
      expect(() =>
        gh.node.issueIntroduction(u['ghOfficer']!, 'i-0000000000000000', { authority: KZ }),
      ).toThrow(expect.objectContaining({ code: 'INVALID_STATE' }));
    });
  });
});
