/**
 * Signing, verification, sealing and opening rates of the protocol API
 * (isomorphic libsodium path, and sign/verify again with native libsodium).
 * Used by bench-protocol.ts.
 */
import {
  CONTEXTS,
  openDossier,
  ready,
  setPrimitives,
  signBytes,
  utf8,
  verifySignature,
  type AttachmentManifest,
} from '../src/index.js';
import { nativePrimitives } from '../src/node/index.js';
import { buildTestWorld, encryptTestAttachment, sealTestDossier } from '../src/testing/index.js';

export interface SealingFigures {
  signPerSec: number;
  verifyPerSec: number;
  sealPerSec1: number;
  openPerSec1: number;
  sealPerSec10: number;
  /** The same sign and verify with natively compiled libsodium (`useNativeCrypto()`), or null where it does not load. */
  nativeSignPerSec: number | null;
  nativeVerifyPerSec: number | null;
}

/** Run `fn` repeatedly for about `ms` milliseconds (after a short warm-up); operations per second. */
function rate(fn: () => void, ms = 1000): number {
  for (let i = 0; i < 20; i++) fn();
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 10; i++) fn();
    n += 10;
    elapsed = performance.now() - start;
  }
  return Math.round((n * 1000) / elapsed);
}

export async function measureSealing(options: { ms?: number } = {}): Promise<SealingFigures> {
  await ready();
  const ms = options.ms ?? 1000;
  const now = Date.now();
  const world = buildTestWorld({ now });
  const sn = world.authority('sn-moj@wacap');
  const attachments: AttachmentManifest[] = [
    (await encryptTestAttachment(utf8('warrant'), { name: 'warrant.pdf' })).manifest,
    (await encryptTestAttachment(utf8('records'), { name: 'records.csv', mediaType: 'text/csv' }))
      .manifest,
  ];
  // A typical signed statement: an evidence-sized body.
  const body = {
    type: 'evidence',
    version: 1,
    kind: 'delivery',
    envelopeId: 'AAAAAAAAAAAAAAAAAAAAAA',
    issuedAt: now,
    issuer: sn.address,
  };
  const sig = signBytes(CONTEXTS.evidence, body, sn.identity);
  const signPerSec = rate(() => signBytes(CONTEXTS.evidence, body, sn.identity), ms);
  const verifyPerSec = rate(() => {
    verifySignature(CONTEXTS.evidence, body, sig, sn.identity.publicKey);
  }, ms);

  // Ten recipients need ten distinct authorities: a one-network world of eleven.
  const wide = buildTestWorld({
    now,
    specs: [
      {
        network: 'wacap',
        country: 'SN',
        authorities: Array.from({ length: 11 }, (_, i) => ({
          local: `a${i}`,
          name: `Authority ${i}`,
          country: 'SN',
        })),
        peers: [],
      },
    ],
  });
  const sealPerSec1 = rate(
    () => sealTestDossier(world, { from: sn.address, to: ['kz-gpo@casc'], attachments }),
    ms,
  );
  const sealed = sealTestDossier(world, { from: sn.address, to: ['kz-gpo@casc'], attachments });
  const kz = world.authority('kz-gpo@casc');
  const trust = world.trustFor('casc');
  const openPerSec1 = rate(
    () =>
      openDossier({
        envelope: sealed.envelope,
        sealed: sealed.sealed,
        reader: { address: kz.address, encryptionKeys: [kz.encryption] },
        trust,
      }),
    ms,
  );
  const tenAddresses = Array.from({ length: 10 }, (_, i) => `a${i + 1}@wacap`);
  const sealPerSec10 = rate(
    () => sealTestDossier(wide, { from: 'a0@wacap', to: tenAddresses, attachments }),
    ms,
  );
  let nativeSignPerSec: number | null = null;
  let nativeVerifyPerSec: number | null = null;
  const native = nativePrimitives();
  if (native !== null) {
    const previous = setPrimitives(native);
    try {
      nativeSignPerSec = rate(() => signBytes(CONTEXTS.evidence, body, sn.identity), ms);
      nativeVerifyPerSec = rate(() => {
        verifySignature(CONTEXTS.evidence, body, sig, sn.identity.publicKey);
      }, ms);
    } finally {
      setPrimitives(previous);
    }
  }
  return {
    signPerSec,
    verifyPerSec,
    sealPerSec1,
    openPerSec1,
    sealPerSec10,
    nativeSignPerSec,
    nativeVerifyPerSec,
  };
}
