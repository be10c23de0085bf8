/**
 * The bench's workload: pre-sealed small dossiers (sealed in worker threads
 * before any timing), with two tiny attachments shared by every dossier
 * (chunks are content-addressed, so they are uploaded once per relay).
 */
import { Worker } from 'node:worker_threads';
import { utf8, type AttachmentManifest, type Envelope } from '@rogatory/protocol';
import { encryptTestAttachment } from '@rogatory/protocol/testing';

export interface SealJob {
  readonly from: string;
  readonly to: string;
}

export interface SealedDossier {
  readonly from: string;
  readonly to: string;
  readonly envelope: Envelope;
  /** The sealed dossier object; its hash is envelope.body.dossier.id. */
  readonly sealed: Uint8Array;
}

export interface Attachments {
  readonly manifests: AttachmentManifest[];
  readonly chunks: { id: string; bytes: Uint8Array }[];
}

/** The two small attachments the example content refers to (0 and 1). */
export async function makeAttachments(): Promise<Attachments> {
  const att = [
    await encryptTestAttachment(utf8('scanned warrant (bench)'), { name: 'warrant.pdf' }),
    await encryptTestAttachment(new Uint8Array(3000), {
      name: 'records.csv',
      mediaType: 'text/csv',
      chunkSize: 1024,
    }),
  ];
  return { manifests: att.map((a) => a.manifest), chunks: att.flatMap((a) => a.chunks) };
}

/** `count` jobs spread round-robin over the sender -> recipient pairs. */
export function jobs(pairs: readonly SealJob[], count: number): SealJob[] {
  return Array.from({ length: count }, (_, i) => pairs[i % pairs.length]!);
}

/**
 * Worker threads do not inherit tsx's module hooks (Node 20): the worker
 * registers them itself, then loads the TypeScript worker module.
 */
const WORKER_BOOT = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./seal-worker.ts', import.meta.url).href)}); })
  .catch((err) => { console.error(err); process.exit(1); });`;

/** Seal every job on `threads` worker threads; results in job order. */
export async function sealAll(options: {
  now: number;
  createdAt: number;
  attachments: Attachments;
  jobs: readonly SealJob[];
  threads: number;
}): Promise<SealedDossier[]> {
  const { jobs: all, threads } = options;
  const per = Math.ceil(all.length / threads);
  const parts = Array.from({ length: threads }, (_, t) => all.slice(t * per, (t + 1) * per)).filter(
    (p) => p.length > 0,
  );
  const results = await Promise.all(
    parts.map(
      (part) =>
        new Promise<SealedDossier[]>((resolve, reject) => {
          const worker = new Worker(WORKER_BOOT, {
            eval: true,
            workerData: {
              now: options.now,
              createdAt: options.createdAt,
              attachments: options.attachments.manifests,
              jobs: part,
            },
          });
          let got: SealedDossier[] | undefined;
          worker.once('message', (m: SealedDossier[]) => {
            got = m;
          });
          worker.once('error', reject);
          worker.once('exit', (code) => {
            if (got && got.length === part.length) resolve(got);
            else reject(new Error(`seal worker exited with code ${code} before sealing its batch`));
          });
        }),
    ),
  );
  return results.flat();
}
