/**
 * A protocol walk-through with real keys and real cryptography, no network:
 * two networks and a hub, an MLA request with a scanned-warrant attachment
 * sealed in Senegal for Kazakhstan, verified and opened there, the evidence
 * chain checked, and what a relay can and cannot see. Run: pnpm demo
 */
import { randomBytes } from 'node:crypto';
import { decryptAttachment, encryptAttachment, terminateHashWorker } from '../src/node/index.js';
import {
  canonicalBytes,
  envelopeHash,
  isProtocolError,
  issueEvidence,
  openDossier,
  ready,
  verifyEnvelope,
  verifyEvidenceChain,
  type AttachmentManifest,
} from '../src/index.js';
import { buildTestWorld, sealTestDossier } from '../src/testing/index.js';

const step = (n: number, text: string) => console.log(`\n[${n}] ${text}`);
const detail = (text: string) => console.log(`    ${text}`);

await ready();
const now = Date.now();
const world = buildTestWorld({ now });
const sn = world.authority('sn-moj@wacap');
const kz = world.authority('kz-gpo@casc');

step(1, 'Networks, roots and manifests (keys from fixed test seeds)');
for (const net of Object.values(world.networks)) {
  const m = net.manifest.body;
  detail(
    `${m.network}: root ${net.root.kid}, relay ${m.relays[0]!.id}, ${m.authorities.length} authorities, peers ${m.peers.map((p) => p.network + (p.via ? ` via ${p.via}` : '')).join(', ')}`,
  );
}

step(
  2,
  'Encrypting two attachments in 1 MiB chunks (streamed; chunk = object named by its SHA-256)',
);
const store = new Map<string, Uint8Array>();
const manifests: AttachmentManifest[] = [];
for (const [name, size] of [
  ['warrant-scan.pdf', 3 * 1024 * 1024 + 12_345],
  ['bank-records.csv', 200_000],
] as const) {
  const plain = randomBytes(size);
  const run = encryptAttachment([plain], {
    name,
    mediaType: name.endsWith('.pdf') ? 'application/pdf' : 'text/csv',
  });
  for await (const chunk of run.chunks) store.set(chunk.id, chunk.bytes);
  const manifest = run.manifest();
  manifests.push(manifest);
  detail(
    `${name}: ${size} bytes -> ${manifest.chunks.length} chunk(s), first ${manifest.chunks[0]!.slice(0, 16)}...`,
  );
}

step(
  3,
  `Sealing an MLA request ${sn.address} -> ${kz.address} (sign, then encrypt; key wrapped for recipient and sender archive)`,
);
const sealed = sealTestDossier(world, {
  from: sn.address,
  to: [kz.address],
  type: 'mla',
  attachments: manifests,
});
store.set(sealed.envelope.body.dossier.id, sealed.sealed);
detail(
  `envelope ${sealed.envelope.body.id}, ${sealed.envelope.body.chunks.length} attachment chunks, ${sealed.envelope.body.totalSize} bytes in all`,
);
const relayView = new TextDecoder().decode(canonicalBytes(sealed.envelope));
detail(
  `a relay sees: sender, recipients, times, sizes, chunk ids; request type or names? ${/mla|EXAMPLE|warrant/.test(relayView) ? 'YES (bug!)' : 'no'}`,
);

step(4, 'The wacap relay verifies the envelope against the wacap manifest');
const senderKey = verifyEnvelope(sealed.envelope, { trust: world.trustFor('wacap'), now });
detail(
  `signed by ${senderKey.address} key ${senderKey.key.kid}; envelope hash ${envelopeHash(sealed.envelope).slice(0, 16)}...`,
);
const wacapRelay = world.networks['wacap']!.relay;
const cascRelay = world.networks['casc']!.relay;
const globalRelay = world.networks['global']!.relay;
const evidences = [
  issueEvidence({
    kind: 'submission-acceptance',
    envelope: sealed.envelope,
    issuer: wacapRelay.id,
    key: wacapRelay.key,
    issuedAt: now + 10,
  }),
];
detail(`evidence: submission-acceptance by ${wacapRelay.id}`);
evidences.push(
  issueEvidence({
    kind: 'relay-acceptance',
    envelope: sealed.envelope,
    issuer: globalRelay.id,
    key: globalRelay.key,
    issuedAt: now + 20,
    recipient: kz.address,
  }),
);
detail(`evidence: relay-acceptance by ${globalRelay.id} (transit hub)`);
evidences.push(
  issueEvidence({
    kind: 'relay-acceptance',
    envelope: sealed.envelope,
    issuer: cascRelay.id,
    key: cascRelay.key,
    issuedAt: now + 30,
    recipient: kz.address,
  }),
);
detail(`evidence: relay-acceptance by ${cascRelay.id}`);

step(
  5,
  `${kz.address} opens the dossier (trust: pinned casc root -> anchor of wacap -> wacap manifest -> sender key)`,
);
const casc = world.trustFor('casc');
const opened = openDossier({
  envelope: sealed.envelope,
  sealed: sealed.sealed,
  reader: { address: kz.address, encryptionKeys: [kz.encryption] },
  trust: casc,
});
const content = opened.dossier.body.content;
detail(
  `verified: ${content.kind} ${content.kind === 'request' ? content.requestType : content.kind === 'answer' ? content.answerType : ''}, case ${content.kind === 'request' ? content.header.caseReference : '-'}`,
);
evidences.push(
  issueEvidence({
    kind: 'delivery',
    envelope: sealed.envelope,
    issuer: kz.address,
    key: kz.identity,
    issuedAt: now + 40,
    recipient: kz.address,
  }),
);
detail('evidence: delivery');
for (const manifest of opened.dossier.body.attachments) {
  let bytes = 0;
  for await (const piece of decryptAttachment(
    manifest,
    manifest.chunks.map((id) => store.get(id)!),
  ))
    bytes += piece.length;
  detail(`attachment ${manifest.name}: ${bytes} bytes decrypted, SHA-256 verified`);
}
evidences.push(
  issueEvidence({
    kind: 'retrieval',
    envelope: sealed.envelope,
    issuer: kz.address,
    key: kz.identity,
    issuedAt: now + 50,
    recipient: kz.address,
  }),
);
detail('evidence: retrieval');

step(6, 'Verifying and ordering the evidence chain (as the sender would, offline)');
const chain = verifyEvidenceChain(
  sealed.envelope,
  [...evidences].reverse(),
  world.trustFor('wacap'),
);
for (const e of chain.ordered) detail(`${e.body.kind.padEnd(22)} by ${e.body.issuer}`);
detail(`state of ${kz.address}: ${chain.recipients.get(kz.address)}`);

step(7, 'What others get');
const ge = world.authority('ge-pog@casc');
try {
  openDossier({
    envelope: sealed.envelope,
    sealed: sealed.sealed,
    reader: { address: ge.address, encryptionKeys: [ge.encryption] },
    trust: casc,
  });
} catch (err) {
  detail(
    `${ge.address}: ${isProtocolError(err) ? err.code : 'error'} (not addressed, distinct from tampering)`,
  );
}
const tampered = Uint8Array.from(store.get(manifests[0]!.chunks[1]!)!);
tampered[100]! ^= 1;
try {
  const chunks = manifests[0]!.chunks.map((id, i) => (i === 1 ? tampered : store.get(id)!));
  for await (const piece of decryptAttachment(manifests[0]!, chunks))
    detail(`released ${piece.length} bytes before the bad chunk`);
} catch (err) {
  detail(`a flipped bit in chunk 1: ${isProtocolError(err) ? err.code : 'error'}`);
}
await terminateHashWorker();
console.log('\nDone. Everything above used the real protocol code; see docs/protocol.md.');
