import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  CONTEXTS,
  canonicalBytes,
  decodeBundle,
  sign,
  verifyEvidenceChain,
  type FullBundle,
} from '@rogatory/protocol';
import { terminateHashWorker } from '@rogatory/protocol/node';
import type { TestWorld } from '@rogatory/protocol/testing';
import { startTestRelays, type TestNetworkOfRelays } from '@rogatory/relay/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isNodeError,
  verifyBundle,
  type Actor,
  type AuthorityNode,
  type SyncEvent,
} from '../src/index.js';
import {
  eventually,
  makeNode,
  mlaRequest,
  randomFile,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';

describe('acceptance: an MLA request from sn-moj@wacap to kz-gpo@casc and its answer, end to end', () => {
  let net: TestNetworkOfRelays;
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let sn: NodeFixture;
  let kz: NodeFixture;
  const events: { sn: SyncEvent[]; kz: SyncEvent[] } = { sn: [], kz: [] };

  beforeAll(async () => {
    net = await startTestRelays({ backend: { kind: 'embedded' } });
    world = net.world;
    tmp = await tempDir();
    sn = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn') });
    kz = await makeNode({ world, address: KZ, dir: join(tmp.path, 'kz') });
  }, 120_000);

  afterAll(async () => {
    await sn.node.close();
    await kz.node.close();
    await net.stop();
    await terminateHashWorker();
    await tmp.remove();
  });

  it('drafts, approves (four eyes), delivers across networks, opens, answers, proves every step and exports a verifiable bundle', async () => {
    const snOfficer = sn.user('amadou', 'officer', ['restricted']);
    const snApprover = sn.user('fatou', 'approver', ['restricted']);
    const kzOfficer = kz.user('aigerim', 'officer', ['restricted']);
    const kzApprover = kz.user('nursultan', 'approver', ['restricted']);

    // ---------------------------------------------------------------- draft with two attachments of a few MB
    const warrant = await randomFile(tmp.path, 'warrant.pdf', 3 * 1024 * 1024 + 17);
    const records = await randomFile(tmp.path, 'bank-records.csv', 2 * 1024 * 1024 - 5);
    const progress: number[] = [];
    const requestId = await sn.node.compose(snOfficer, {
      content: mlaRequest(world, SN, KZ, { caseReference: 'SN-PR-2026-0042' }),
      attachments: [{ path: warrant.path }, { path: records.path }],
      onProgress: (p) => progress.push(p.bytesDone),
    });
    expect(progress.length).toBeGreaterThan(2);
    expect(sn.node.show(snOfficer, requestId).status).toBe('draft');

    // Four eyes: the drafter cannot approve (not even as the role allows it), an officer never can.
    sn.node.submitForApproval(snOfficer, requestId);
    await expect(sn.node.approve(snOfficer, requestId)).rejects.toSatisfy((e) =>
      isNodeError(e, 'NOT_AUTHORISED'),
    );
    const snApprover2 = sn.user('ousmane', 'approver', ['restricted']);
    const selfDrafted = await sn.node.compose(snApprover2, {
      content: mlaRequest(world, SN, KZ, { caseReference: 'SN-PR-2026-0043' }),
      attachments: [{ path: warrant.path }, { path: records.path }],
    });
    sn.node.submitForApproval(snApprover2, selfDrafted);
    await expect(sn.node.approve(snApprover2, selfDrafted)).rejects.toSatisfy((e) =>
      isNodeError(e, 'FOUR_EYES_VIOLATION'),
    );
    expect(sn.node.show(snApprover2, selfDrafted).status).toBe('awaiting-approval');

    const envelopeId = await sn.node.approve(snApprover, requestId);
    expect(sn.node.show(snOfficer, requestId).status).toBe('approved');

    // ---------------------------------------------------------------- live sync on both nodes
    sn.node.startSync((e) => events.sn.push(e));
    kz.node.startSync((e) => events.kz.push(e));

    await eventually('the request to be sent', () =>
      sn.node.show(snOfficer, requestId).status === 'sent' ||
      sn.node.show(snOfficer, requestId).status === 'delivered'
        ? true
        : undefined,
    );
    const received = await eventually('the request at kz-gpo', () =>
      kz.node.inbox(kzOfficer).find((d) => d.envelopeId === envelopeId),
    );
    expect(received).toMatchObject({
      status: 'received',
      kind: 'request',
      type: 'mla',
      caseReference: 'SN-PR-2026-0042',
      counterparts: [SN],
      handlingCode: 'restricted',
    });
    await eventually('delivered at the sender', () =>
      sn.node.show(snOfficer, requestId).status === 'delivered' ? true : undefined,
    );

    // ---------------------------------------------------------------- the recipient opens it: Retrieval evidence, audit entry
    const opened = kz.node.open(kzOfficer, received.id);
    expect(opened.content).toEqual(sn.node.open(snOfficer, requestId).content);
    expect(opened.attachments.map((a) => [a.name, a.size])).toEqual([
      ['warrant.pdf', warrant.bytes.length],
      ['bank-records.csv', records.bytes.length],
    ]);
    const kzSaved = await kz.node.saveAttachments(kzOfficer, received.id, join(tmp.path, 'kz-out'));
    expect(await digestOf(kzSaved[0]!.path)).toBe(digest(warrant.bytes));
    expect(await digestOf(kzSaved[1]!.path)).toBe(digest(records.bytes));
    const kzAudit = kz.node.auditEntries(kz.admin, { target: received.id });
    expect(kzAudit.map((e) => e.action).filter((a) => a.startsWith('dossier.'))).toEqual([
      'dossier.receive',
      'dossier.open',
      'dossier.attachments-saved',
    ]);
    expect(kzAudit.every((e) => e.detail === null || !e.detail.includes('SN-PR'))).toBe(true);

    // ---------------------------------------------------------------- the answer: full execution with one attachment
    const hearing = await randomFile(tmp.path, 'hearing-record.pdf', 1024 * 1024 + 3);
    // inReplyTo, from and to are filled in by reply().
    const answerContent = {
      answerType: 'full-execution',
      language: 'en',
      execution: {
        results: [
          {
            description: 'Bank records obtained and certified; witness heard.',
            executedOn: '2026-01-10',
            attachments: [{ attachment: 0 }],
          },
        ],
      },
    };
    const answerId = await kz.node.reply(kzOfficer, received.id, {
      content: answerContent,
      attachments: [{ path: hearing.path }],
    });
    kz.node.submitForApproval(kzOfficer, answerId);
    await expect(kz.node.approve(kzOfficer, answerId)).rejects.toSatisfy((e) =>
      isNodeError(e, 'NOT_AUTHORISED'),
    );
    const answerEnvelopeId = await kz.node.approve(kzApprover, answerId);

    // ---------------------------------------------------------------- the sender: answer received, request executed, every evidence
    const answerAtSn = await eventually('the answer at sn-moj', () =>
      sn.node.inbox(snOfficer).find((d) => d.envelopeId === answerEnvelopeId),
    );
    expect(answerAtSn).toMatchObject({
      kind: 'answer',
      type: 'full-execution',
      caseId: sn.node.show(snOfficer, requestId).caseId,
    });
    await eventually('retrieval evidence at the sender', () =>
      sn.node.show(snOfficer, requestId).evidences.some((e) => e.kind === 'retrieval')
        ? true
        : undefined,
    );
    expect(sn.node.show(snOfficer, requestId).status).toBe('executed');
    expect(kz.node.show(kzOfficer, received.id).status).toBe('executed');

    const { envelope, evidences, chain: ownView } = sn.node.evidences(snOfficer, requestId);
    expect(ownView?.submission).toBe('accepted');
    const chain = verifyEvidenceChain(envelope!, evidences, world.trustFor('wacap'));
    expect(chain.ordered.map((e) => `${e.body.kind}:${e.body.issuer}`)).toEqual([
      'submission-acceptance:relay@wacap',
      'relay-acceptance:relay@global',
      'relay-acceptance:relay@casc',
      'delivery:kz-gpo@casc',
      'retrieval:kz-gpo@casc',
    ]);
    expect(chain.recipients.get(KZ)).toBe('retrieved');
    const statusTrail = sn.node.auditEntries(sn.admin, { target: requestId }).map((e) => e.action);
    expect(statusTrail).toEqual(
      expect.arrayContaining([
        'dossier.compose',
        'dossier.submit',
        'dossier.approve',
        'dossier.send',
        'evidence.receive',
        'dossier.status',
        'dossier.open',
      ]),
    );

    // Attachments decrypt byte-identical on the sender too (its archive copy), and the answer's.
    const snSaved = await sn.node.saveAttachments(snOfficer, requestId, join(tmp.path, 'sn-out'));
    expect(await digestOf(snSaved[0]!.path)).toBe(digest(warrant.bytes));
    expect(await digestOf(snSaved[1]!.path)).toBe(digest(records.bytes));
    const answerSaved = await sn.node.saveAttachments(
      snOfficer,
      answerAtSn.id,
      join(tmp.path, 'sn-answer'),
    );
    expect(await digestOf(answerSaved[0]!.path)).toBe(digest(hearing.bytes));
    await eventually('answer delivered at kz', () =>
      kz.node.show(kzOfficer, answerId).status === 'delivered' ? true : undefined,
    );

    // ---------------------------------------------------------------- audit logs verify; tampering is detected
    await sn.node.stopSync();
    await kz.node.stopSync();
    expect(sn.node.verifyAudit(sn.admin)).toMatchObject({ ok: true });
    expect(kz.node.verifyAudit(kz.admin)).toMatchObject({ ok: true });
    const db = new Database(join(kz.dir, 'mailbox.db'));
    try {
      const row = db
        .prepare("SELECT seq, detail FROM audit WHERE action = 'dossier.open' LIMIT 1")
        .get() as { seq: number; detail: string | null };
      db.prepare('UPDATE audit SET actor = ? WHERE seq = ?').run('someone-else', row.seq);
    } finally {
      db.close();
    }
    const tampered = kz.node.verifyAudit(kz.admin);
    expect(tampered.ok).toBe(false);
    expect(tampered.problems.map((p) => p.code)).toContain('ENTRY_ALTERED');

    // ---------------------------------------------------------------- export a bundle and verify it offline; a tampered bundle fails
    const bundleDir = await exportedBundle(sn.node, snOfficer, requestId, tmp.path, 'bundle-2');
    const report = await verifyBundle(bundleDir);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report).toMatchObject({
      ok: true,
      kind: 'full',
      proves: 'content-and-chain',
      code: null,
    });
    expect(report.checks.map((c) => c.check)).toEqual([
      'format',
      'members',
      'key-chain',
      'envelope-signature',
      'sealed-dossier',
      'content-key',
      'dossier-signature',
      'dossier-binding',
      'content',
      'attachments',
      'evidence-chain',
    ]);
    expect(report.evidence?.ordered).toHaveLength(5);
    expect(report.pinnedRoot?.kid).toBe(world.networks['wacap']!.rootRef.kid);
    expect(
      await verifyBundle(bundleDir, { expectedRootKid: world.networks['casc']!.rootRef.kid }),
    ).toMatchObject({ ok: false, code: 'TRUST_CHAIN_BROKEN' });

    // An export path that is a file, or a directory that is not empty, is refused with a typed error.
    await writeFile(join(tmp.path, 'a-file'), 'x');
    for (const path of [join(tmp.path, 'a-file'), bundleDir])
      await expect(sn.node.exportBundle(snOfficer, requestId, path)).rejects.toSatisfy(
        (e) => isNodeError(e) && e.code === 'INPUT_INVALID',
      );

    // A sealed bundle holds no plaintext and no key, and proves the chain only.
    const sealedExport = await sn.node.exportBundle(
      snOfficer,
      requestId,
      join(tmp.path, 'sealed'),
      {
        sealed: true,
      },
    );
    expect(sealedExport).toMatchObject({ kind: 'sealed', files: ['bundle.json'] });
    const sealedText = await readFile(join(sealedExport.dir, 'bundle.json'), 'utf8');
    expect(sealedText).not.toContain('contentKey');
    expect(sealedText).not.toContain('SN-PR-');
    const sealedReport = await verifyBundle(sealedExport.dir);
    expect(sealedReport).toMatchObject({ ok: true, kind: 'sealed', proves: 'chain-only' });
    expect(sealedReport.scope).toMatch(/^SEALED BUNDLE/);

    // Each tampering of a copy of the bundle is refused, with the code of the first failing check.
    const tamperedBundle = async (
      name: string,
      change: (bundle: FullBundle, dir: string) => Promise<void> | void,
    ) => {
      const dir = await exportedBundle(sn.node, snOfficer, requestId, tmp.path, `tamper-${name}`);
      const bundle = await readBundle(dir);
      await change(bundle, dir);
      await writeFile(join(dir, 'bundle.json'), `${canonicalJson(bundle)}\n`);
      const r = await verifyBundle(dir);
      expect(r.ok, name).toBe(false);
      expect(r.proves, name).toBeNull();
      return r.code;
    };
    const sender = world.authority(SN);
    // The attack: content replaced by other content re-signed with the sender's key.
    expect(
      await tamperedBundle('resigned', (b) => {
        const body = structuredClone(b.dossier.body);
        if (body.content.kind !== 'request') throw new Error('a request was exported');
        body.content.header.caseReference = 'SN-PR-2026-9999';
        b.dossier = sign(CONTEXTS.dossier, body, sender.identity);
      }),
    ).toBe('ENVELOPE_MISMATCH');
    // ... and with the content key left out, or the kind changed to hide it.
    expect(
      await tamperedBundle('no-key', (b) => {
        delete (b as Partial<FullBundle>).contentKey;
      }),
    ).toBe('SCHEMA_INVALID');
    expect(
      await tamperedBundle('as-sealed', (b) => {
        (b as { kind: string }).kind = 'sealed';
        delete (b as Partial<FullBundle>).contentKey;
      }),
    ).toBe('SCHEMA_INVALID');
    expect(
      await tamperedBundle('foreign-evidence', async (b) => {
        const other = await readBundle(
          await exportedBundle(kz.node, kzOfficer, answerId, tmp.path, 'answer'),
        );
        b.evidences.push(other.evidences[0]!);
      }),
    ).toBe('EVIDENCE_MISMATCH');
    expect(
      await tamperedBundle('manifests-reordered', (b) => {
        b.trust.manifests = [b.trust.manifests[0]!, ...b.trust.manifests.slice(1).reverse()];
      }),
    ).toBe('BUNDLE_LAYOUT_INVALID');
    expect(
      await tamperedBundle('manifests-swapped', (b) => {
        b.trust.manifests = [
          b.trust.manifests[1]!,
          b.trust.manifests[0]!,
          ...b.trust.manifests.slice(2),
        ];
      }),
    ).toBe('BUNDLE_LAYOUT_INVALID');
    expect(
      await tamperedBundle('sealed-replaced', async (b) => {
        const other = await readBundle(
          await exportedBundle(sn.node, snOfficer, answerAtSn.id, tmp.path, 'answer-sn'),
        );
        b.sealed = other.sealed;
      }),
    ).toBe('CHUNK_HASH_MISMATCH');
    expect(
      await tamperedBundle('attachment-replaced', async (b, dir) => {
        const path = join(dir, b.attachments[0]!.file);
        const bytes = await readFile(path);
        bytes[1000] = bytes[1000]! ^ 1;
        await writeFile(path, bytes);
      }),
    ).toBe('ATTACHMENT_MISMATCH');
    expect(
      await tamperedBundle('extra-member', (_b, dir) =>
        writeFile(join(dir, 'attachments', '9-extra.pdf'), 'x'),
      ),
    ).toBe('BUNDLE_LAYOUT_INVALID');
    expect(
      await tamperedBundle('extra-top-level', (_b, dir) => writeFile(join(dir, 'notes.txt'), 'x')),
    ).toBe('BUNDLE_LAYOUT_INVALID');
    expect(
      await tamperedBundle('missing-member', (b, dir) => rm(join(dir, b.attachments[1]!.file))),
    ).toBe('BUNDLE_LAYOUT_INVALID');
    expect(
      await tamperedBundle('symlink-member', async (b, dir) => {
        const path = join(dir, b.attachments[0]!.file);
        await rename(path, join(tmp.path, 'moved-out'));
        await symlink(join(tmp.path, 'moved-out'), path);
      }),
    ).toBe('BUNDLE_LAYOUT_INVALID');
    expect(
      await tamperedBundle('dot-dot', (b) => {
        b.attachments[0]!.file = 'attachments/../../outside';
      }),
    ).toBe('SCHEMA_INVALID');
    // A FIFO in place of an attachment is refused, not waited on.
    expect(
      await tamperedBundle('fifo-member', async (b, dir) => {
        const path = join(dir, b.attachments[0]!.file);
        await rm(path);
        execFileSync('mkfifo', [path]);
      }),
    ).toBe('BUNDLE_LAYOUT_INVALID');
    // bundle.json itself is never read through a link.
    const linked = await exportedBundle(sn.node, snOfficer, requestId, tmp.path, 'linked-json');
    await rename(join(linked, 'bundle.json'), join(tmp.path, 'outside.json'));
    await symlink(join(tmp.path, 'outside.json'), join(linked, 'bundle.json'));
    expect(await verifyBundle(linked)).toMatchObject({ ok: false, code: 'BUNDLE_LAYOUT_INVALID' });
  });
});

async function readBundle(dir: string): Promise<FullBundle> {
  const bundle = decodeBundle(await readFile(join(dir, 'bundle.json')));
  if (bundle.kind !== 'full') throw new Error('a full bundle was exported');
  return bundle;
}

function canonicalJson(value: unknown): string {
  return new TextDecoder().decode(canonicalBytes(value));
}

function digest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function digestOf(path: string): Promise<string> {
  return digest(await readFile(path));
}

async function exportedBundle(
  node: AuthorityNode,
  actor: Actor,
  id: string,
  base: string,
  name: string,
): Promise<string> {
  const { dir } = await node.exportBundle(actor, id, join(base, name));
  return dir;
}
