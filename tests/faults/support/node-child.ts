/**
 * An authority node in a process of its own, for the flaky-link scenario
 * (its RSS is measured from outside). Run with `node --import tsx` and an
 * IPC channel; argv[2] is a JSON `NodeChildSpec`. The world is rebuilt from
 * the shared `now` and relay ports (deterministic keys): nothing secret
 * crosses the channel.
 *
 * Sender: on `go`, compose a request with `file` attached, approve it, and
 * flush the outbox until the relay accepts it (each failed flush resumes:
 * the node asks the relay which chunks it lacks), then sync until the
 * Delivery evidence is back. Recipient: sync until the dossier is received
 * (downloads resume from the chunks already stored), save the attachment,
 * hash it, delete the copy, and keep syncing (the Delivery evidence goes
 * out) until `stop`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ready, type Envelope, type Evidence } from '@rogatory/protocol';
import { terminateHashWorker } from '@rogatory/protocol/node';
import { buildTestWorld, DIRECT_PEERING_WORLD } from '@rogatory/protocol/testing';
import { draftAndApprove, openFaultNode, type FaultNode } from './nodes.js';

export interface NodeChildSpec {
  readonly role: 'sender' | 'recipient';
  readonly address: string;
  /** The other party. */
  readonly peer: string;
  readonly now: number;
  readonly ports: Readonly<Record<string, number>>;
  /** Where this node reaches its relay (a flaky proxy). */
  readonly relayUrl: string;
  readonly dir: string;
  /** Sender: the file to attach. */
  readonly file?: string;
  readonly timeoutMs: number;
}

export type NodeChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'sent'; readonly envelope: Envelope; readonly flushes: number }
  | { readonly type: 'attempt'; readonly codes: readonly string[] }
  | { readonly type: 'evidence'; readonly evidences: readonly Evidence[] }
  | {
      readonly type: 'received';
      readonly envelope: Envelope;
      readonly seq: number;
      readonly sha256: string;
      readonly bytes: number;
      readonly syncFailures: number;
    }
  | { readonly type: 'error'; readonly message: string };

const spec = JSON.parse(process.argv[2] ?? '{}') as NodeChildSpec;
const send = (m: NodeChildMessage): void => {
  process.send?.(m);
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const codeOf = (err: unknown): string =>
  typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : 'UNEXPECTED';
let stopping = false;

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const piece of createReadStream(path, { highWaterMark: 1024 * 1024 }))
    hash.update(piece as Buffer);
  return hash.digest('hex');
}

async function runSender(n: FaultNode, deadline: number): Promise<void> {
  const world = worldOf();
  await new Promise<void>((resolve) =>
    process.on('message', (m: { type?: string }) => {
      if (m.type === 'go') resolve();
    }),
  );
  const dossierId = await draftAndApprove(world, n, spec.peer, spec.dir, spec.file);
  let flushes = 0;
  for (;;) {
    if (Date.now() > deadline) throw new Error('the relay never accepted the submission');
    flushes++;
    try {
      const report = await n.node.flushOutbox();
      if (report.sent.includes(dossierId)) break;
      n.node.retryFailed();
      send({ type: 'attempt', codes: report.errors.map((e) => e.code) });
    } catch (err) {
      send({ type: 'attempt', codes: [codeOf(err)] });
    }
    await sleep(300);
  }
  send({ type: 'sent', envelope: n.node.evidences(n.officer, dossierId).envelope!, flushes });
  while (!stopping && Date.now() < deadline) {
    try {
      await n.node.syncOnce();
    } catch {
      // the link is flaky: try again
    }
    const evidences = n.node.evidences(n.officer, dossierId).evidences;
    if (evidences.some((e) => e.body.kind === 'delivery')) {
      send({ type: 'evidence', evidences });
      return;
    }
    await sleep(300);
  }
}

async function runRecipient(n: FaultNode, deadline: number): Promise<void> {
  let syncFailures = 0;
  let done = false;
  while (!stopping && Date.now() < deadline) {
    try {
      const report = await n.node.syncOnce();
      for (const item of report.items) {
        if (done || item.outcome.kind !== 'received') continue;
        done = true;
        const out = join(spec.dir, 'saved');
        await mkdir(out, { recursive: true });
        const dossierId = item.outcome.dossierId;
        const saved = await n.node.saveAttachments(n.officer, dossierId, out);
        const sha256 = await sha256Of(saved[0]!.path);
        await rm(out, { recursive: true, force: true });
        send({
          type: 'received',
          envelope: n.node.evidences(n.officer, dossierId).envelope!,
          seq: item.seq,
          sha256,
          bytes: saved[0]!.size,
          syncFailures,
        });
      }
    } catch {
      syncFailures++;
    }
    await sleep(300);
  }
}

function worldOf() {
  return buildTestWorld({
    now: spec.now,
    specs: DIRECT_PEERING_WORLD,
    relayUrl: (net) => `http://127.0.0.1:${String(spec.ports[net] ?? 9)}`,
  });
}

try {
  await ready();
  const world = worldOf();
  const node = await openFaultNode({
    world,
    address: spec.address,
    dir: join(spec.dir, 'node'),
    relayUrl: spec.relayUrl,
  });
  process.on('message', (m: { type?: string }) => {
    if (m.type === 'stop') stopping = true;
  });
  process.on('disconnect', () => {
    stopping = true;
  });
  send({ type: 'ready' });
  const deadline = Date.now() + spec.timeoutMs;
  await (spec.role === 'sender' ? runSender(node, deadline) : runRecipient(node, deadline));
  while (!stopping) await sleep(100);
  await node.node.close();
  await terminateHashWorker();
  process.exit(0);
} catch (err) {
  send({
    type: 'error',
    message: `${spec.role}: ${codeOf(err)} ${err instanceof Error ? err.message : ''}`,
  });
  process.exit(1);
}
