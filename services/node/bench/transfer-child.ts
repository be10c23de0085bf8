/**
 * One process of bench-transfer: a relay (wacap's or casc's), the sending
 * node (sn-moj@wacap) or the receiving node (kz-gpo@casc). bench-transfer
 * bundles this file to plain JavaScript and forks it, so that what it
 * measures is the process's own memory, not the tsx loader's.
 *
 * argv[2] is a JSON `ChildSpec`. Every process rebuilds the same test world
 * from the shared `now` and relay ports (deterministic keys), so nothing
 * secret crosses the IPC channel. Messages, parent -> child: `go` (sender:
 * compose, approve, upload and submit), `stop`; child -> parent: `ready`,
 * `sent` (sender), `done` (recipient), `error`, and `peak` at the end with
 * the peak of `process.memoryUsage().rss`, sampled every 50 ms, over the
 * transfer (from the parent's `mark`, sent just before `go`, to `stop`) and
 * over the process's whole life (including start-up, where unlocking the
 * keyring and checking passwords run Argon2id with 64 MiB).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KDF_LIMITS, TrustStore, primitives, ready, type DossierContent } from '@rogatory/protocol';
import { terminateHashWorker, useNativeCrypto } from '@rogatory/protocol/node';
import {
  buildTestWorld,
  DEFAULT_WORLD,
  exampleContentFor,
  type TestWorld,
} from '@rogatory/protocol/testing';
// Each role loads only its own code (bench-transfer bundles with code
// splitting): a relay process does not carry the node, nor a node the relay,
// as in a deployment.
import type { RunningRelay } from '@rogatory/relay';
import type { Actor, AuthorityNode, SyncEvent } from '../src/index.js';

export type Backend =
  | { readonly kind: 'embedded' }
  | {
      readonly kind: 'redis';
      readonly url: string;
      readonly prefix: string;
      readonly s3: { endPoint: string; port: number; accessKey: string; secretKey: string };
    };

type NodeSpec = Extract<ChildSpec, { role: 'sender' | 'recipient' }>;

export type ChildSpec =
  | {
      readonly role: 'relay';
      readonly network: 'wacap' | 'casc';
      readonly now: number;
      readonly ports: { readonly wacap: number; readonly casc: number };
      readonly dir: string;
      readonly backend: Backend;
    }
  | {
      readonly role: 'sender' | 'recipient';
      readonly now: number;
      readonly ports: { readonly wacap: number; readonly casc: number };
      readonly dir: string;
      /** Sender: the file to attach. Recipient: where to save the attachment. */
      readonly file: string;
    };

export type ChildMessage =
  | { readonly type: 'ready'; readonly rssMB: number; readonly crypto: string }
  | { readonly type: 'sent'; readonly phases: Record<string, number> }
  | {
      readonly type: 'done';
      readonly at: number;
      readonly phases: Record<string, number>;
      readonly bytes: number;
    }
  | { readonly type: 'verified'; readonly sha256: string }
  | { readonly type: 'error'; readonly message: string }
  | {
      readonly type: 'peak';
      readonly peakRssMB: number;
      readonly transferPeakRssMB: number | null;
      readonly transferCpuMs: number | null;
    };

export const SENDER = 'sn-moj@wacap';
export const RECIPIENT = 'kz-gpo@casc';
const PASSPHRASE = 'bench passphrase, never a real one';
const PASSWORD = 'a long enough bench password';
const MiB = 1024 * 1024;

const spec = JSON.parse(process.argv[2] ?? '{}') as ChildSpec;
const send = (m: ChildMessage): void => {
  process.send?.(m);
};
const mb = (bytes: number): number => Math.round((bytes / MiB) * 10) / 10;
/** Wall clock with sub-millisecond resolution, comparable across processes of one machine. */
const wall = (): number => performance.timeOrigin + performance.now();

let peak = process.memoryUsage().rss;
/** Peak since the parent's `mark` (sent just before the transfer starts), or undefined before it. */
let transferPeak: number | undefined;
/** CPU time (user + system, all threads) at the mark. */
let cpuAtMark: NodeJS.CpuUsage | undefined;
/** CPU time from the mark to the recipient's `done` (the transfer), ms; set when `cpu` arrives. */
let transferCpuMs: number | null = null;
const sample = (): void => {
  const rss = process.memoryUsage().rss;
  if (rss > peak) peak = rss;
  if (transferPeak !== undefined && rss > transferPeak) transferPeak = rss;
};
const sampler = setInterval(sample, 50);

function fail(err: unknown): void {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  const detail =
    typeof err === 'object' && err !== null && 'detail' in err ? String(err.detail) : '';
  send({
    type: 'error',
    message:
      `${spec.role}: ${code} ${detail} ${err instanceof Error ? err.message : 'failed'}`.trim(),
  });
}

/** wacap and casc peer directly: the path is exactly relayA -> relayB. */
function world(): TestWorld {
  const pick = (n: string) => DEFAULT_WORLD.find((s) => s.network === n)!;
  return buildTestWorld({
    now: spec.now,
    specs: [
      { ...pick('wacap'), peers: [{ network: 'casc', via: null }] },
      { ...pick('casc'), peers: [{ network: 'wacap', via: null }] },
    ],
    relayUrl: (n) => `http://127.0.0.1:${n === 'wacap' ? spec.ports.wacap : spec.ports.casc}`,
  });
}

async function runRelay(
  s: Extract<ChildSpec, { role: 'relay' }>,
  w: TestWorld,
): Promise<() => Promise<void>> {
  const { openEmbeddedBackend, openRedisBackend, startRelay } = await import('@rogatory/relay');
  const { FsBlobStore, S3BlobStore } = await import('@rogatory/storage');
  // As the relay CLI does at start-up (the node does it in AuthorityNode.open).
  useNativeCrypto();
  const net = w.networks[s.network]!;
  const trust = new TrustStore({ pinned: [{ network: s.network, root: net.rootRef }] });
  trust.addManifest(net.manifest);
  for (const peer of net.manifest.body.peers) trust.addManifest(w.networks[peer.network]!.manifest);
  const b = s.backend;
  await mkdir(s.dir, { recursive: true });
  const stores =
    b.kind === 'embedded'
      ? {
          backend: await openEmbeddedBackend({ file: join(s.dir, 'relay.db') }),
          blobs: await FsBlobStore.open({ dir: join(s.dir, 'chunks') }),
        }
      : {
          backend: await openRedisBackend({ url: b.url, prefix: `${b.prefix}-${s.network}` }),
          blobs: await S3BlobStore.open({
            ...b.s3,
            useSSL: false,
            bucket: `${b.prefix}-${s.network}`,
            prefix: 'chunks',
          }),
        };
  const running: RunningRelay = await startRelay(
    {
      relayId: net.relay.id,
      key: net.relay.key,
      trust,
      ...stores,
      sessionSecret: new Uint8Array(32).fill(s.network === 'wacap' ? 1 : 2),
      logger: false,
      forwarding: { backoff: { baseMs: 50, maxMs: 1000, jitter: 0.5 } },
    },
    { host: '127.0.0.1', port: s.ports[s.network] },
  );
  return () => running.stop();
}

async function openNode(w: TestWorld, address: string, dir: string): Promise<AuthorityNode> {
  const { AuthorityNode, initNode } = await import('../src/index.js');
  const network = address.split('@')[1]!;
  const net = w.networks[network]!;
  const authority = w.authority(address);
  await initNode({
    dir,
    address,
    relayUrl: net.relay.url,
    relayId: net.relay.id,
    passphrase: PASSPHRASE,
    pinnedRoot: net.rootRef,
    manifests: [
      net.manifest,
      ...net.manifest.body.peers.map((p) => w.networks[p.network]!.manifest),
    ],
    kdf: KDF_LIMITS.interactive,
    importKeys: { identity: authority.identity, encryption: authority.encryption },
    admin: { username: 'admin', password: PASSWORD },
  });
  return AuthorityNode.open({ dir, passphrase: PASSPHRASE, relay: { timeoutMs: 120_000 } });
}

function user(node: AuthorityNode, username: string, role: 'officer' | 'approver'): Actor {
  node.addUser(node.login('admin', PASSWORD), {
    username,
    password: PASSWORD,
    role,
    clearances: ['restricted'],
  });
  return node.login(username, PASSWORD);
}

/** The example MLA request, its measures referring to the one attachment (index 0) only. */
function content(w: TestWorld): DossierContent {
  const c = exampleContentFor('mla', SENDER, RECIPIENT, w);
  if (c.kind !== 'request' || c.requestType !== 'mla') throw new Error('not an MLA request');
  return {
    ...c,
    mla: {
      ...c.mla,
      measures: c.mla.measures.map(({ attachments, ...m }) => {
        const kept = (attachments ?? []).filter((a) => a.attachment === 0);
        return kept.length > 0 ? { ...m, attachments: kept } : m;
      }),
    },
  };
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const piece of createReadStream(path, { highWaterMark: MiB }))
    hash.update(piece as Buffer);
  return hash.digest('hex');
}

async function runSender(s: NodeSpec, w: TestWorld): Promise<() => Promise<void>> {
  const node = await openNode(w, SENDER, s.dir);
  const officer = user(node, 'drafter', 'officer');
  const approver = user(node, 'approver', 'approver');
  process.on('message', (m: { type?: string }) => {
    if (m.type !== 'go') return;
    void (async () => {
      const t0 = wall();
      const id = await node.compose(officer, {
        content: content(w),
        attachments: [{ path: s.file }],
      });
      const t1 = wall();
      node.submitForApproval(officer, id);
      await node.approve(approver, id);
      const t2 = wall();
      const report = await node.flushOutbox();
      const t3 = wall();
      if (report.sent.length !== 1)
        throw new Error(`not sent: ${report.errors.map((e) => e.code).join(',')}`);
      send({
        type: 'sent',
        phases: { composeMs: t1 - t0, approveMs: t2 - t1, uploadSubmitMs: t3 - t2 },
      });
    })().catch(fail);
  });
  return async () => {
    await node.close();
    await terminateHashWorker();
  };
}

async function runRecipient(s: NodeSpec, w: TestWorld): Promise<() => Promise<void>> {
  const node = await openNode(w, RECIPIENT, s.dir);
  const officer = user(node, 'reader', 'officer');
  let handled = false;
  const onEvent = (e: SyncEvent): void => {
    if (e.type === 'error') fail(new Error(`sync error ${e.code} ${e.detail ?? ''}`));
    if (e.type !== 'item' || handled) return;
    if (e.outcome.kind === 'quarantined') {
      fail(new Error(`quarantined: ${e.outcome.code}`));
      return;
    }
    if (e.outcome.kind !== 'received') return;
    handled = true;
    const dossierId = e.outcome.dossierId;
    void (async () => {
      const t0 = wall();
      const opened = node.open(officer, dossierId);
      const saved = await node.saveAttachments(officer, dossierId, s.file);
      const t1 = wall();
      if (opened.attachments.length !== 1 || saved.length !== 1)
        throw new Error('expected one attachment');
      send({
        type: 'done',
        at: t1,
        phases: { receivedAt: t0, openSaveMs: t1 - t0 },
        bytes: saved[0]!.size,
      });
      // The bench's own check, after the clock stopped: SHA-256 of the plaintext file.
      send({ type: 'verified', sha256: await sha256Of(saved[0]!.path) });
    })().catch(fail);
  };
  node.startSync(onEvent);
  return async () => {
    await node.close();
    await terminateHashWorker();
  };
}

try {
  await ready();
  const w = world();
  const stop =
    spec.role === 'relay'
      ? await runRelay(spec, w)
      : spec.role === 'sender'
        ? await runSender(spec, w)
        : await runRecipient(spec, w);
  let stopping = false;
  const finish = (): void => {
    if (stopping) return;
    stopping = true;
    sample();
    stop()
      .catch(fail)
      .finally(() => {
        sample();
        clearInterval(sampler);
        send({
          type: 'peak',
          peakRssMB: mb(peak),
          transferPeakRssMB: transferPeak === undefined ? null : mb(transferPeak),
          transferCpuMs,
        });
        if (process.connected) process.disconnect();
        process.exit(0);
      });
  };
  process.on('message', (m: { type?: string }) => {
    if (m.type === 'stop') finish();
    if (m.type === 'mark') {
      transferPeak = process.memoryUsage().rss;
      cpuAtMark = process.cpuUsage();
    }
    if (m.type === 'cpu' && cpuAtMark !== undefined) {
      const used = process.cpuUsage(cpuAtMark);
      transferCpuMs = Math.round((used.user + used.system) / 1000);
    }
  });
  // The parent went away: end as well.
  process.on('disconnect', () => {
    if (!stopping) process.exit(1);
  });
  sample();
  send({ type: 'ready', rssMB: mb(process.memoryUsage().rss), crypto: primitives().name });
} catch (err) {
  fail(err);
  process.exit(1);
}
