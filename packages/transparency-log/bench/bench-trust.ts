/**
 * Trust benchmark: `pnpm bench:trust [--json] [--quick]`.
 *
 * Fills a durable transparency log (temporary directory) with 1,000,000
 * entries (--quick: 100,000) in batches of 1,000, as a secretariat or relay
 * publishing many statements at once would, then measures:
 * - appendPerSec: entries a second during that fill (WAL, synchronous=FULL,
 *   one transaction per batch); appendSinglePerSec: one entry a transaction;
 * - inclusionVerifyPerSec / consistencyVerifyPerSec: verification of proofs
 *   the log served for random leaves and sizes (proof generation is timed
 *   apart, as inclusionProofPerSec / consistencyProofPerSec);
 * - manifest10kVerifyMs: a manifest of 10,000 authorities added to a fresh
 *   TrustStore (`addManifest`, which runs `verifyManifest`: schema, root
 *   signature, 10,000 encryption-key certificates), plus its log entry's
 *   inclusion under a checkpoint cosigned by two witnesses (quorum 2).
 *   verifyManifestMs is `verifyManifest` alone.
 * Targets (issue 10): append ≥ 5,000/s, inclusion verify ≥ 20,000/s,
 * 10k-authority manifest ≤ 2,000 ms. The process uses natively compiled
 * libsodium, as relays and nodes do (`useNativeCrypto`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TrustStore,
  certifyEncryptionKey,
  checkpointText,
  cosign,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  keyRef,
  logEntryFor,
  logEntryLeafHash,
  primitives,
  ready,
  sha256,
  signCheckpoint,
  signManifest,
  signatureLine,
  toHex,
  utf8,
  verifyConsistency,
  verifyCosignedCheckpoint,
  verifyInclusion,
  verifyManifest,
  type AuthorityEntry,
  type LogEntry,
} from '@rogatory/protocol';
import { useNativeCrypto } from '@rogatory/protocol/node';
import { TransparencyLog } from '../src/index.js';

const args = new Set(process.argv.slice(2));
const json = args.has('--json');
const quick = args.has('--quick');
for (const a of args) {
  if (a !== '--json' && a !== '--quick') {
    process.stderr.write(`unknown argument ${a}\nusage: bench-trust [--json] [--quick]\n`);
    process.exit(2);
  }
}
const LOG_SIZE = quick ? 100_000 : 1_000_000;
const BATCH = 1_000;
const SINGLES = quick ? 50 : 200;
const PROOFS = quick ? 2_000 : 5_000;
const AUTHORITIES = 10_000;
const log = (line: string) => process.stderr.write(`${line}\n`);

await ready();
useNativeCrypto();
const now = Date.now();

/** Deterministic pseudo-random integers (xorshift), so runs are comparable. */
let state = 0x2545f491;
const rand = (n: number) => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) % n;
};
const entryAt = (i: number): LogEntry => ({
  type: 'log-entry',
  network: 'bench',
  kind: 'introduction',
  hash: toHex(sha256(utf8(`bench-entry-${i}`))),
});

const dir = mkdtempSync(join(tmpdir(), 'bench-trust-'));
try {
  const tlog = TransparencyLog.open({ path: join(dir, 'log.sqlite'), network: 'bench' });

  // ---------------------------------------------------------------- durable append
  log(`filling a log of ${LOG_SIZE} entries in batches of ${BATCH}...`);
  let t0 = performance.now();
  for (let first = 0; first < LOG_SIZE; first += BATCH)
    tlog.append(Array.from({ length: BATCH }, (_, i) => entryAt(first + i)));
  const appendPerSec = LOG_SIZE / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  for (let i = 0; i < SINGLES; i++) tlog.append([entryAt(LOG_SIZE + i)]);
  const appendSinglePerSec = SINGLES / ((performance.now() - t0) / 1000);

  // ---------------------------------------------------------------- the 10k manifest and its entry
  log(`building a manifest of ${AUTHORITIES} authorities...`);
  const validity = { notBefore: now - 86_400_000, notAfter: now + 365 * 86_400_000 };
  const root = generateSigningKeyPair();
  const rootRef = keyRef(root, validity);
  const relay = generateSigningKeyPair();
  const authorities: AuthorityEntry[] = [];
  for (let i = 0; i < AUTHORITIES; i++) {
    const address = `authority-${i}@bench`;
    const identity = generateSigningKeyPair();
    const encryptionKey = generateEncryptionKeyPair();
    authorities.push({
      address,
      name: `Authority ${i}`,
      country: 'SN',
      competences: ['mla', 'extradition'],
      languages: ['en', 'fr'],
      key: keyRef(identity, validity),
      encryptionKeys: [
        certifyEncryptionKey({ subject: address, identity, encryptionKey, ...validity }),
      ],
    });
  }
  const manifest = signManifest(
    {
      network: 'bench',
      issuedAt: now - 1000,
      validUntil: now + 30 * 86_400_000,
      root: rootRef,
      relays: [
        { id: 'relay@bench', url: 'https://relay.bench.example', key: keyRef(relay, validity) },
      ],
      pocs: [],
      authorities,
      peers: [],
      revoked: [],
    },
    root,
  );
  const { first: manifestIndex, size } = tlog.append([logEntryFor('bench', 'manifest', manifest)]);
  const checkpoint = tlog.checkpoint(size);
  const witnesses = [0, 1].map((i) => ({ name: `relay@peer-${i}`, key: generateSigningKeyPair() }));
  const note =
    signCheckpoint(checkpoint, root) +
    witnesses
      .map((w) => signatureLine(cosign(checkpointText(checkpoint), w, Math.floor(now / 1000))))
      .join('');
  const manifestProof = tlog.inclusionProof(manifestIndex, size);

  // ---------------------------------------------------------------- proofs
  log(`generating ${PROOFS} inclusion and consistency proofs on a log of ${size}...`);
  t0 = performance.now();
  const inclusions = Array.from({ length: PROOFS }, () => {
    const index = rand(size);
    return { index, leafHash: tlog.leafHash(index), proof: tlog.inclusionProof(index, size) };
  });
  const inclusionProofPerSec = PROOFS / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  const consistencies = Array.from({ length: PROOFS }, () => {
    const size1 = 1 + rand(size - 1);
    return { size1, root1: tlog.root(size1), proof: tlog.consistencyProof(size1, size) };
  });
  const consistencyProofPerSec = PROOFS / ((performance.now() - t0) / 1000);
  const rootHash = checkpoint.rootHash;

  const ROUNDS = 3;
  let inclusionVerifyPerSec = 0;
  let consistencyVerifyPerSec = 0;
  for (let r = 0; r < ROUNDS; r++) {
    t0 = performance.now();
    for (const p of inclusions)
      verifyInclusion({
        index: p.index,
        size,
        leafHash: p.leafHash,
        proof: p.proof,
        root: rootHash,
      });
    inclusionVerifyPerSec = Math.max(
      inclusionVerifyPerSec,
      PROOFS / ((performance.now() - t0) / 1000),
    );
    t0 = performance.now();
    for (const p of consistencies)
      verifyConsistency({
        size1: p.size1,
        size2: size,
        root1: p.root1,
        root2: rootHash,
        proof: p.proof,
      });
    consistencyVerifyPerSec = Math.max(
      consistencyVerifyPerSec,
      PROOFS / ((performance.now() - t0) / 1000),
    );
  }

  // ---------------------------------------------------------------- manifest verification
  log('verifying the manifest...');
  let manifest10kVerifyMs = Infinity;
  let verifyManifestMs = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    t0 = performance.now();
    verifyManifest(manifest, rootRef);
    verifyManifestMs = Math.min(verifyManifestMs, performance.now() - t0);
    t0 = performance.now();
    const trust = new TrustStore({ pinned: [{ network: 'bench', root: rootRef }] });
    trust.addManifest(manifest, { now });
    const cosigned = verifyCosignedCheckpoint({
      note,
      log: { name: tlog.origin, publicKey: root.publicKey },
      witnesses: witnesses.map((w) => ({ name: w.name, publicKey: w.key.publicKey })),
      quorum: 2,
    });
    verifyInclusion({
      index: manifestIndex,
      size: cosigned.checkpoint.size,
      leafHash: logEntryLeafHash(logEntryFor('bench', 'manifest', manifest)),
      proof: manifestProof,
      root: cosigned.checkpoint.rootHash,
    });
    manifest10kVerifyMs = Math.min(manifest10kVerifyMs, performance.now() - t0);
  }
  tlog.close();

  const figures = {
    logSize: size,
    primitives: primitives().name,
    cpus: cpus().length,
    loadavg1: Number(loadavg()[0]!.toFixed(2)),
    appendPerSec: Math.round(appendPerSec),
    appendBatch: BATCH,
    appendSinglePerSec: Math.round(appendSinglePerSec),
    inclusionVerifyPerSec: Math.round(inclusionVerifyPerSec),
    consistencyVerifyPerSec: Math.round(consistencyVerifyPerSec),
    inclusionProofPerSec: Math.round(inclusionProofPerSec),
    consistencyProofPerSec: Math.round(consistencyProofPerSec),
    manifest10kVerifyMs: Math.round(manifest10kVerifyMs),
    verifyManifestMs: Math.round(verifyManifestMs),
    targets: { appendPerSec: 5_000, inclusionVerifyPerSec: 20_000, manifest10kVerifyMs: 2_000 },
  };
  if (json) process.stdout.write(`${JSON.stringify(figures)}\n`);
  else {
    const row = (name: string, value: number | string, target = '') =>
      log(`${name.padEnd(26)} ${String(value).padStart(12)} ${target}`);
    log(
      `log of ${size} entries, ${figures.primitives}, ${figures.cpus} CPUs, load ${figures.loadavg1}`,
    );
    row('appendPerSec (batch 1000)', figures.appendPerSec, '(target ≥ 5,000)');
    row('appendSinglePerSec', figures.appendSinglePerSec);
    row('inclusionVerifyPerSec', figures.inclusionVerifyPerSec, '(target ≥ 20,000)');
    row('consistencyVerifyPerSec', figures.consistencyVerifyPerSec);
    row('inclusionProofPerSec', figures.inclusionProofPerSec);
    row('consistencyProofPerSec', figures.consistencyProofPerSec);
    row('manifest10kVerifyMs', figures.manifest10kVerifyMs, '(target ≤ 2,000)');
    row('verifyManifestMs', figures.verifyManifestMs);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
