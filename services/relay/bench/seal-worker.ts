/**
 * Worker thread of bench-relay: seals a batch of test dossiers (sealing is
 * the protocol's cost, paid before any timing starts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ready } from '@rogatory/protocol';
import { buildTestWorld, sealTestDossier } from '@rogatory/protocol/testing';
import type { SealJob, SealedDossier } from './workload.js';

interface Input {
  readonly now: number;
  readonly createdAt: number;
  readonly attachments: Parameters<typeof sealTestDossier>[1]['attachments'];
  readonly jobs: readonly SealJob[];
}

const input = workerData as Input;
await ready();
const world = buildTestWorld({ now: input.now });
const out: SealedDossier[] = [];
const transfer: ArrayBuffer[] = [];
for (const job of input.jobs) {
  const sealed = sealTestDossier(world, {
    from: job.from,
    to: [job.to],
    attachments: input.attachments ?? [],
    createdAt: input.createdAt,
  });
  // A fresh copy: the result may be a view into a larger buffer, which could not be transferred alone.
  const bytes = new Uint8Array(sealed.sealed);
  out.push({ from: job.from, to: job.to, envelope: sealed.envelope, sealed: bytes });
  transfer.push(bytes.buffer);
}
parentPort!.postMessage(out, transfer);
