/**
 * Load helpers of the relay and Redis scenarios (relay-sigkill, redis-kill,
 * sentinel-failover): a world with more authorities in wacap, a planned load
 * of sealed envelopes, chunk uploads, a submitting pool that records every
 * outcome in a Ledger, and the senders' retries of what was not accepted.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { isRelayClientError, type RelayClient } from '@rogatory/client';
import type { Envelope } from '@rogatory/protocol';
import {
  DEFAULT_WORLD,
  DIRECT_PEERING_WORLD,
  buildTestWorld,
  sealTestDossier,
  type NetworkSpec,
  type TestWorld,
} from '@rogatory/protocol/testing';
import { inPool, nodeClient, smallAttachment } from '@rogatory/relay/testing/helpers';
import type { Ledger } from './accounting.js';

/** Extra wacap authorities: more mailboxes, more senders. */
const EXTRA_WACAP = [
  { local: 'ci-mj', name: "Ministry of Justice of Côte d'Ivoire (test)", country: 'CI' },
  { local: 'ml-mj', name: 'Ministry of Justice of Mali (test)', country: 'ML' },
];

export const WACAP = ['sn-moj@wacap', 'ng-agf@wacap', 'gh-ago@wacap', 'ci-mj@wacap', 'ml-mj@wacap'];
export const CASC = ['kz-gpo@casc', 'ge-pog@casc'];

function specs(base: readonly NetworkSpec[]): NetworkSpec[] {
  return base.map((spec) =>
    spec.network === 'wacap'
      ? { ...spec, authorities: [...spec.authorities, ...EXTRA_WACAP] }
      : spec,
  );
}

/** The test world; `direct` makes wacap and casc peers without the global hub. */
export function makeWorld(relayUrl: (network: string) => string, direct = false): TestWorld {
  return buildTestWorld({
    now: Date.now(),
    specs: specs(direct ? DIRECT_PEERING_WORLD : DEFAULT_WORLD),
    relayUrl,
  });
}

export interface Planned {
  readonly envelope: Envelope;
  readonly sealed: Uint8Array;
}

export type Attachment = Awaited<ReturnType<typeof smallAttachment>>;

/**
 * `total` envelopes from the wacap senders in turn, each to one or (every
 * third) two recipients among `recipients` other than the sender.
 */
export async function planLoad(
  world: TestWorld,
  total: number,
  recipients: readonly string[] = WACAP,
): Promise<{ planned: Planned[]; attachment: Attachment }> {
  const attachment = await smallAttachment();
  const planned: Planned[] = [];
  const now = Date.now();
  for (let i = 0; i < total; i++) {
    const from = WACAP[i % WACAP.length]!;
    const others = recipients.filter((a) => a !== from);
    const to =
      i % 3 === 0
        ? [others[i % others.length]!, others[(i + 1) % others.length]!]
        : [others[(i * 7) % others.length]!];
    const r = sealTestDossier(world, {
      from,
      to,
      attachments: [attachment.manifest],
      createdAt: now,
    });
    planned.push({ envelope: r.envelope, sealed: r.sealed });
  }
  return { planned, attachment };
}

/** Clients of `addresses` at `url`: `retries` 0 for the load (an acceptance is known exactly). */
export function clientsFor(
  world: TestWorld,
  url: string,
  addresses: readonly string[],
  retries: number,
): Map<string, RelayClient> {
  return new Map(addresses.map((a) => [a, nodeClient(world, url, a, retries)] as const));
}

/** Every sender uploads the attachment it lists and the sealed dossiers of its envelopes. */
export async function uploadAll(
  planned: readonly Planned[],
  attachment: Attachment,
  senders: ReadonlyMap<string, RelayClient>,
  signal: AbortSignal,
): Promise<void> {
  for (const sender of senders.values())
    for (const c of attachment.chunks) await sender.putChunk(c.id, c.bytes, c.bytes.length);
  await inPool(planned, 8, async (p) => {
    signal.throwIfAborted();
    await senders
      .get(p.envelope.body.sender)!
      .putChunk(p.envelope.body.dossier.id, p.sealed, p.sealed.length);
  });
}

/** One submission's outcome: accepted, or refused with a code; `startedAt` is when it was sent (ms since the epoch). */
export interface Answer {
  readonly accepted: boolean;
  readonly code?: string;
  readonly startedAt: number;
}

export interface LoadOutcome {
  /** How many of `planned` were tried (the rest stayed for later when `stop` said so). */
  readonly attempted: number;
  /** Refusals by code (UNAVAILABLE, NETWORK ...), and their times (ms since the epoch). */
  readonly refusals: Map<string, number>;
  readonly refusalTimes: number[];
}

/**
 * Submit `planned` with `concurrency` in flight through `senders` (no
 * retries), recording every attempt in `ledger`: an answer is an
 * acceptance; NETWORK or TIMEOUT is cut off (maybe committed); any other
 * code is a refusal (nothing stored). `afterEach` runs after each answer
 * (e.g. to inject the fault); once `stop()` is true no new submission starts.
 */
export async function submitLoad(options: {
  planned: readonly Planned[];
  senders: ReadonlyMap<string, RelayClient>;
  ledger: Ledger;
  concurrency: number;
  signal: AbortSignal;
  afterEach?: (outcome: Answer) => void;
  stop?: () => boolean;
}): Promise<LoadOutcome> {
  const { planned, senders, ledger } = options;
  const refusals = new Map<string, number>();
  const refusalTimes: number[] = [];
  let next = 0;
  const stopped = (): boolean => options.stop?.() ?? false;
  await inPool(
    Array.from({ length: options.concurrency }, (_, i) => i),
    options.concurrency,
    async () => {
      while (!stopped() && next < planned.length) {
        options.signal.throwIfAborted();
        const p = planned[next++]!;
        const id = p.envelope.body.id;
        ledger.send(p.envelope);
        let code: string | undefined;
        const startedAt = Date.now();
        try {
          await senders.get(p.envelope.body.sender)!.submit(p.envelope);
          ledger.accept(id);
        } catch (err) {
          code = isRelayClientError(err) ? err.code : 'THROWN';
          if (code === 'NETWORK' || code === 'TIMEOUT') ledger.cutOff(id);
          refusals.set(code, (refusals.get(code) ?? 0) + 1);
          refusalTimes.push(Date.now());
        }
        options.afterEach?.(
          code === undefined ? { accepted: true, startedAt } : { accepted: false, code, startedAt },
        );
      }
    },
  );
  return { attempted: next, refusals, refusalTimes };
}

/**
 * The senders retry everything sent but not accepted (same envelope, same
 * id: the relay deduplicates) until all are accepted or `timeoutMs` is spent.
 * Returns how many retries were answered and how many attempts failed.
 */
export async function retryUnaccepted(options: {
  ledger: Ledger;
  senders: ReadonlyMap<string, RelayClient>;
  timeoutMs: number;
  signal: AbortSignal;
  /** Called after each retry: accepted, or the refusal's code. */
  onAnswer?: (outcome: Answer) => void;
}): Promise<{ accepted: number; failures: number; left: number }> {
  const { ledger, senders } = options;
  const end = Date.now() + options.timeoutMs;
  let accepted = 0;
  let failures = 0;
  for (;;) {
    const ids = ledger.unaccepted();
    if (ids.length === 0 || Date.now() > end) return { accepted, failures, left: ids.length };
    await inPool(ids, 8, async (id) => {
      options.signal.throwIfAborted();
      const envelope = ledger.envelopeOf(id)!;
      const startedAt = Date.now();
      try {
        await senders.get(envelope.body.sender)!.submit(envelope);
        ledger.accept(id);
        accepted++;
        options.onAnswer?.({ accepted: true, startedAt });
      } catch (err) {
        failures++;
        options.onAnswer?.({
          accepted: false,
          code: isRelayClientError(err) ? err.code : 'THROWN',
          startedAt,
        });
      }
    });
    if (ledger.unaccepted().length > 0) await new Promise((r) => setTimeout(r, 250));
  }
}

export const redisInstalled = (): boolean =>
  spawnSync(process.env['REDIS_SERVER'] ?? 'redis-server', ['--version']).status === 0;

/**
 * A redis-server this scenario owns (unlike startRedis of test-services, its
 * data folder outlives it): kill -9 and restart on the same folder and port.
 */
export class OwnRedis {
  private child: ChildProcess | undefined;
  private output = '';
  private static readonly all = new Set<OwnRedis>();
  private static hooked = false;

  constructor(
    readonly port: number,
    readonly dir: string,
    readonly args: readonly string[],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${String(this.port)}`;
  }

  get alive(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  get log(): string {
    return this.output;
  }

  async start(timeoutMs = 20_000): Promise<void> {
    if (!OwnRedis.hooked) {
      OwnRedis.hooked = true;
      process.once('exit', () => {
        for (const r of OwnRedis.all) r.killNow();
      });
    }
    OwnRedis.all.add(this);
    const child = spawn(
      process.env['REDIS_SERVER'] ?? 'redis-server',
      [
        ...['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir],
        ...['--save', '', '--daemonize', 'no'],
        ...this.args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString('utf8')).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    this.child = child;
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (!this.alive) throw new Error(`redis-server exited:\n${this.output}`);
      if (await this.ping()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    this.killNow();
    throw new Error(`redis-server not ready within ${String(timeoutMs)} ms:\n${this.output}`);
  }

  /** One PING: true once redis-server accepts commands (not while loading its AOF). */
  async ping(): Promise<boolean> {
    const { connect } = await import('node:net');
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: this.port });
      let reply = '';
      const done = (ok: boolean): void => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(2000, () => done(false));
      socket.once('error', () => done(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.on('data', (data) => {
        reply += data.toString('latin1');
        if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
      });
    });
  }

  /** kill -9, synchronously. */
  killNow(): void {
    if (this.alive) this.child!.kill('SIGKILL');
  }

  /** SIGSTOP (connections stay open, nothing is answered) or SIGCONT. */
  pause(paused: boolean): void {
    if (this.alive) this.child!.kill(paused ? 'SIGSTOP' : 'SIGCONT');
  }

  /** kill -9 and wait until the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }
}

/** Percentiles and totals of refusal times: seconds between the first and the last refusal. */
export function refusalWindowSeconds(times: readonly number[]): number {
  if (times.length === 0) return 0;
  return Math.round((Math.max(...times) - Math.min(...times)) / 100) / 10;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
