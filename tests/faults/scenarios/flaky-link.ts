import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlakyProxy, type FlakyProxyStats, type LinkFaults } from '@rogatory/test-services';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario.js';
import type { NodeChildMessage, NodeChildSpec } from '../support/node-child.js';
import { faultWorld, FaultRelay, NET_A, NET_B, settle, stopAll } from '../support/relays.js';
import { RssSampler } from '../support/rss.js';
import { Tally } from '../support/tally.js';

const MiB = 1024 * 1024;
const SENDER = 'sn-moj@wacap';
const RECIPIENT = 'kz-gpo@casc';
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CHILD = fileURLToPath(new URL('../support/node-child.ts', import.meta.url));
/** As deployed (infra/compose.production.yaml): two malloc arenas. */
const DEPLOYMENT_ENV = { MALLOC_ARENA_MAX: '2' } as const;

/** A file of `bytes` random bytes written in 1 MiB pieces (never all in memory); its SHA-256. */
async function randomFile(path: string, bytes: number): Promise<string> {
  const out = createWriteStream(path);
  const hash = createHash('sha256');
  const piece = Buffer.alloc(MiB);
  for (let done = 0; done < bytes; done += MiB) {
    const part = piece.subarray(0, Math.min(MiB, bytes - done));
    randomFillSync(part);
    hash.update(part);
    if (!out.write(part)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return hash.digest('hex');
}

/** One node process and the messages it sent. */
class NodeChild {
  readonly messages: NodeChildMessage[] = [];
  private tail = '';
  readonly exited: Promise<unknown>;

  constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: NodeChildMessage) => this.messages.push(m));
    const keep = (d: Buffer): void => {
      this.tail = (this.tail + d.toString('utf8')).slice(-4000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.exited = once(proc, 'exit');
  }

  static start(spec: NodeChildSpec): NodeChild {
    return new NodeChild(
      fork(CHILD, [JSON.stringify(spec)], {
        cwd: ROOT,
        execArgv: ['--import', 'tsx'],
        env: { ...process.env, ...DEPLOYMENT_ENV },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      }),
    );
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  find<T extends NodeChildMessage['type']>(
    type: T,
  ): Extract<NodeChildMessage, { type: T }> | undefined {
    return this.messages.find((m): m is Extract<NodeChildMessage, { type: T }> => m.type === type);
  }

  /** The error it reported, or its output if it died without one. */
  failure(): string | undefined {
    const e = this.find('error');
    if (e) return e.message;
    return this.alive ? undefined : `exited: ${this.tail.slice(-600)}`;
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.proc.send({ type: 'stop' });
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.alive) this.proc.kill('SIGKILL');
  }
}

/**
 * The link's faults for a transfer of `bytes`: latency and jitter, some
 * refused connections, every connection reset after an eighth of the
 * transfer and stalled once after a tenth. On top, {@link outage} cuts the
 * link entirely for a few seconds halfway through.
 */
function flaky(bytes: number, stallMs: number): LinkFaults {
  return {
    latencyMs: 2,
    jitterMs: 4,
    refuseRate: 0.05,
    resetAfterBytes: Math.max(4 * MiB, Math.floor(bytes / 8)),
    stallAfterBytes: Math.max(2 * MiB, Math.floor(bytes / 10)),
    stallMs,
  };
}

/** Halfway through (by bytes through `proxy` in `direction`): reset every connection and refuse new ones for `ms`. */
async function outage(
  proxy: FlakyProxy,
  direction: 'bytesUp' | 'bytesDown',
  at: number,
  ms: number,
  normal: LinkFaults,
  signal: AbortSignal,
  done: () => boolean,
): Promise<boolean> {
  const reached = await settle(() => done() || proxy.stats()[direction] >= at, {
    ms: 30 * 60_000,
    signal,
    intervalMs: 50,
  });
  if (!reached || done()) return false;
  proxy.set({ ...normal, refuseRate: 1 });
  proxy.resetAll();
  await new Promise((r) => setTimeout(r, ms));
  proxy.set(normal);
  return true;
}

/**
 * A 500 MB attachment (quick: 32 MB) from a node of wacap to a node of casc,
 * through FlakyProxy links: sender -> wacap's relay, wacap's relay -> casc's
 * relay, casc's relay -> recipient. Latency, refused connections, resets,
 * a stall per connection, and a full outage of each link halfway through.
 * The transfer must resume from the chunks already present and complete,
 * byte for byte; the RSS of the four processes is sampled every second.
 */
export const flakyLink: Scenario = {
  name: 'flaky-link',
  title: 'a large attachment across flaky links (latency, resets, stalls, outages)',
  budgetSeconds: { quick: 240, full: 1500 },
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const bytes = (ctx.quick ? 32 : 500) * MiB;
    const stallMs = ctx.quick ? 2_000 : 4_000;
    const outageMs = ctx.quick ? 3_000 : 6_000;
    const transferMs = (ctx.quick ? 180 : 1_300) * 1000;
    const world = await faultWorld();
    const faults = flaky(bytes, stallMs);
    const proxies: FlakyProxy[] = [];
    const children: NodeChild[] = [];
    let relayA: FaultRelay | undefined;
    let relayB: FaultRelay | undefined;
    let sampler: RssSampler | undefined;
    let finished = false;
    try {
      const file = join(ctx.dir, 'attachment.bin');
      const sha256 = await randomFile(file, bytes);
      ctx.log(`flaky-link: ${String(bytes / MiB)} MiB attachment written`);
      const target = (network: string) => ({ host: '127.0.0.1', port: world.ports[network]! });
      const senderLink = await FlakyProxy.start({ target: target(NET_A), faults, seed: 11 });
      const peerLink = await FlakyProxy.start({ target: target(NET_B), faults, seed: 12 });
      const recipientLink = await FlakyProxy.start({ target: target(NET_B), faults, seed: 13 });
      proxies.push(senderLink, peerLink, recipientLink);
      const forwarding = { backoffBaseMs: 200, backoffMaxMs: 2_000, jitter: 0.5 };
      relayA = await FaultRelay.create({
        world,
        network: NET_A,
        dir: ctx.dir,
        patch: { forwarding, peerUrls: { [NET_B]: peerLink.url() } },
        env: DEPLOYMENT_ENV,
      });
      relayB = await FaultRelay.create({
        world,
        network: NET_B,
        dir: ctx.dir,
        patch: { forwarding },
        env: DEPLOYMENT_ENV,
      });
      await Promise.all([relayA.start(), relayB.start()]);
      const spec = (role: 'sender' | 'recipient'): NodeChildSpec => ({
        role,
        address: role === 'sender' ? SENDER : RECIPIENT,
        peer: role === 'sender' ? RECIPIENT : SENDER,
        now: world.world.now,
        ports: world.ports,
        relayUrl: (role === 'sender' ? senderLink : recipientLink).url(),
        dir: join(ctx.dir, role),
        ...(role === 'sender' ? { file } : {}),
        timeoutMs: transferMs,
      });
      await mkdir(join(ctx.dir, 'sender'), { recursive: true });
      await mkdir(join(ctx.dir, 'recipient'), { recursive: true });
      const sender = NodeChild.start(spec('sender'));
      const recipient = NodeChild.start(spec('recipient'));
      children.push(sender, recipient);
      const up = await settle(
        () =>
          (sender.find('ready') !== undefined && recipient.find('ready') !== undefined) ||
          sender.failure() !== undefined ||
          recipient.failure() !== undefined,
        { ms: 120_000, signal: ctx.signal },
      );
      const early = sender.failure() ?? recipient.failure();
      if (!up || early !== undefined)
        throw new Error(`a node did not start: ${early ?? 'timeout'}`);

      sampler = new RssSampler(() => ({
        sender: sender.proc.pid,
        recipient: recipient.proc.pid,
        relayA: relayA?.pid,
        relayB: relayB?.pid,
      }));
      const started = Date.now();
      sender.proc.send({ type: 'go' });
      ctx.log('flaky-link: transfer started');
      const over = () => finished || sender.failure() !== undefined;
      // One outage per link, halfway through its share of the bytes.
      const outages = Promise.all([
        outage(senderLink, 'bytesUp', bytes / 2, outageMs, faults, ctx.signal, over),
        outage(peerLink, 'bytesUp', bytes / 2, outageMs, faults, ctx.signal, over),
        outage(recipientLink, 'bytesDown', bytes / 2, outageMs, faults, ctx.signal, over),
      ]);
      const completed = await settle(
        () =>
          (recipient.find('received') !== undefined && sender.find('evidence') !== undefined) ||
          sender.failure() !== undefined ||
          recipient.failure() !== undefined,
        { ms: transferMs, signal: ctx.signal, intervalMs: 250 },
      );
      finished = true;
      const seconds = Math.round((Date.now() - started) / 100) / 10;
      const rss = sampler.stop();
      const outagesDone = await outages;
      const failure = sender.failure() ?? recipient.failure();

      const tally = new Tally();
      const sent = sender.find('sent');
      const received = recipient.find('received');
      if (sent) {
        tally.sent(sent.envelope);
        tally.accepted(sent.envelope.body.id);
        tally.ledger.owe(sent.envelope.body.id, ['relay-acceptance'], RECIPIENT);
      }
      if (received) tally.delivered(RECIPIENT, received.envelope, received.seq);
      for (const ev of sender.find('evidence')?.evidences ?? [])
        if (ev.body.kind !== 'submission-acceptance') tally.evidence(SENDER, ev);
      const intact = received !== undefined && received.sha256 === sha256;
      if (received && !intact) throw new Error('the received attachment differs from the one sent');

      const stats: Record<string, FlakyProxyStats> = {
        senderLink: senderLink.stats(),
        peerLink: peerLink.stats(),
        recipientLink: recipientLink.stats(),
      };
      const ratio = (n: number) => Math.round((n / bytes) * 100) / 100;
      const growth = Object.keys(rss.peak).map((k) => ({
        name: k,
        start: rss.start[k] ?? 0,
        peak: rss.peak[k] ?? 0,
      }));
      const worst = growth.reduce(
        (a, b) => (b.peak - b.start > a.peak - a.start ? b : a),
        growth[0] ?? { name: 'none', start: 0, peak: 0 },
      );
      // Flat: no process grew by more than a fixed 256 MiB, whatever the attachment size.
      const rssFlat = growth.every((g) => g.peak - g.start < 256);
      const measured: Record<string, number | string | boolean> = {
        attachmentMB: bytes / MiB,
        seconds,
        intact,
        rssStartMB: worst.start,
        rssPeakMB: worst.peak,
        rssPeakProcess: worst.name,
        rssFlat,
        rssSamples: sampler.samples,
        outages: outagesDone.filter(Boolean).length,
        submitFlushes: sent?.flushes ?? 0,
        failedFlushes: sender.messages.filter((m) => m.type === 'attempt').length,
        recipientSyncFailures: received?.syncFailures ?? 0,
        uploadBytesRatio: ratio(stats['senderLink']!.bytesUp),
        forwardBytesRatio: ratio(stats['peerLink']!.bytesUp),
        downloadBytesRatio: ratio(stats['recipientLink']!.bytesDown),
      };
      for (const g of growth) {
        measured[`${g.name}RssStartMB`] = g.start;
        measured[`${g.name}RssPeakMB`] = g.peak;
      }
      for (const [name, s] of Object.entries(stats)) {
        measured[`${name}Resets`] = s.resets;
        measured[`${name}Stalls`] = s.stalls;
        measured[`${name}Refused`] = s.refused;
      }
      const notes = [
        completed && failure === undefined
          ? `The ${String(bytes / MiB)} MiB attachment crossed three flaky links (each: latency, 5 % refused connections, a reset per connection after ${String(Math.round(faults.resetAfterBytes! / MiB))} MiB, a ${String(stallMs / 1000)} s stall per connection, and a ${String(outageMs / 1000)} s outage halfway) in ${String(seconds)} s and arrived intact (SHA-256 equal).`
          : `The transfer did NOT complete: ${failure ?? 'timed out'}.`,
        `Bytes through each link per attachment byte: upload ${String(measured['uploadBytesRatio'])}, relay to relay ${String(measured['forwardBytesRatio'])}, download ${String(measured['downloadBytesRatio'])}; near 1 means every retry resumed from the chunks already present instead of starting over.`,
        `RSS (MiB, start -> peak, sampled every second): ${growth.map((g) => `${g.name} ${String(g.start)} -> ${String(g.peak)}`).join(', ')}; ${rssFlat ? 'flat: no process grew by 256 MiB' : 'NOT flat: a process grew by 256 MiB or more'}.`,
      ];
      return tally.result({ measured, notes });
    } finally {
      finished = true;
      sampler?.stop();
      await Promise.allSettled(children.map((c) => c.stop()));
      for (const c of children) c.kill();
      await stopAll([relayA, relayB]);
      await Promise.allSettled(proxies.map((p) => p.close()));
    }
  },
};
