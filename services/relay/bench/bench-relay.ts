/**
 * Relay benchmark: `pnpm bench:relay [--json] [--quick] [--only embedded,embeddedSingleCommit,redis,redisScaleOut,crossNetwork,crossNetworkViaHub,baseline]`.
 *
 * Delivered envelopes per second (submitted with POST /v1/envelopes,
 * accepted, and seen by the recipient's mailbox WebSocket) in a closed loop,
 * and submit-to-receipt latency at a fixed offered rate in an open loop, for
 * the embedded backend, the Redis backend (one relay instance; `redisScaleOut`:
 * two instances of the relay, in two processes sharing one Redis and one chunk
 * directory, each node keeping its mailbox on one and submitting through both
 * in turn), and across networks: `crossNetwork`
 * is two relays on Redis, wacap -> casc, whose networks federate directly;
 * `crossNetworkViaHub` the same traffic through the global hub (wacap ->
 * global -> casc, three relays, the hub's RelayAcceptance travelling back as
 * a forwarded evidence). `embeddedSingleCommit` (only when named in --only)
 * is the embedded backend with each write committing on its own instead of
 * one transaction and fsync per event-loop turn, so the ratio
 * `embeddedSingleCommitVsEmbedded` says what the group commit is worth.
 * The baseline is a bare
 * Fastify 5 route taking the same envelope bytes from the same HTTP client
 * at the same concurrency, measured in the same run.
 *
 * Set-up: the servers under test run in child processes
 * (bench/relay-process.ts, one per relay), the load generator (nodes using
 * RelayClient) in this process, redis-server in its own; all share the
 * machine's cores. Dossiers are sealed in worker threads before any timing.
 * Rate limits of the relays are raised (submitPerMinute and
 * requestsPerMinute 1e9) so that they measure capacity, not policy.
 *
 * With --json, stdout carries exactly one JSON object; logs go to stderr.
 * Besides the headline figures it holds `setup` and `details`: per section,
 * the closed and open loop in full (lost envelopes, error codes,
 * submit-to-acceptance latency), CPU ms per delivered envelope of each relay
 * process, of the load generator and of redis-server, how busy the machine
 * was and how much of that was other processes (`machine.otherPct`: the
 * figures are only comparable between runs on an equally quiet machine),
 * event-loop delays during the open loop, the relays' own counters
 * (GET /metrics), and for cross-network traffic how many of the evidences
 * owed to the senders reached their mailboxes.
 *
 * Other flags: --concurrency N (closed loop, default 64), --rate N (open
 * loop, default 500/s), --cross-procs 1|3 (the cross-network relays all
 * in one process, or one process each: the default), --forward-concurrency N (relay
 * forwarding workers, default: the relay's own), --profile DIR (write
 * V8 CPU profiles of the server processes to DIR).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { encodeEnvelope, ready } from '@rogatory/protocol';
import { useNativeCrypto } from '@rogatory/protocol/node';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { startRedis, type RedisServer } from '@rogatory/test-services';
import {
  BenchNode,
  ReceiptTracker,
  baselineLoop,
  closedLoop,
  openLoop,
  percentile,
  type RunFigures,
} from './load.js';
import {
  ServerProcess,
  machineWindow,
  redisCommandStats,
  redisCpuMs,
  type MachineLoad,
} from './servers.js';
import {
  jobs,
  makeAttachments,
  sealAll,
  type Attachments,
  type SealJob,
  type SealedDossier,
} from './workload.js';

// ----------------------------------------------------------------- options

const SECTIONS = [
  'baseline',
  'embedded',
  'embeddedSingleCommit',
  'redis',
  'redisScaleOut',
  'crossNetwork',
  'crossNetworkViaHub',
] as const;
const CROSS_SECTIONS = ['crossNetwork', 'crossNetworkViaHub'] as const;
type Section = (typeof SECTIONS)[number];
/**
 * Run only when named in --only: the embedded backend with each write
 * committed on its own, to measure what its group commit is worth.
 */
const OPT_IN_SECTIONS: readonly Section[] = ['embeddedSingleCommit'];
/** Sections with delivery figures, in the order they are reported. */
const REPORTED_SECTIONS = [
  'embedded',
  'embeddedSingleCommit',
  'redis',
  'redisScaleOut',
  ...CROSS_SECTIONS,
] as const;

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: bench-relay [--json] [--quick] [--only ${SECTIONS.join(',')}] [--concurrency N] [--rate N] [--cross-procs 1|3] [--forward-concurrency N] [--profile DIR]\n`,
  );
  process.exit(2);
}

function parseArgs(argv: readonly string[]) {
  const o = {
    json: false,
    quick: false,
    only: new Set<Section>(SECTIONS.filter((s) => !OPT_IN_SECTIONS.includes(s))),
    concurrency: 64,
    rate: 500,
    crossProcs: 3,
    forwardConcurrency: undefined as number | undefined,
    profileDir: undefined as string | undefined,
  };
  const int = (name: string, value: string | undefined, min: number, max: number): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      usage(`${name} takes an integer in ${min}..${max}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') o.json = true;
    else if (a === '--quick') o.quick = true;
    else if (a === '--only') {
      const names = (argv[++i] ?? '').split(',').filter((s) => s !== '');
      for (const n of names)
        if (!(SECTIONS as readonly string[]).includes(n)) usage(`unknown section ${n}`);
      if (names.length === 0) usage('--only takes a list of sections');
      o.only = new Set(names as Section[]);
    } else if (a === '--concurrency') o.concurrency = int(a, argv[++i], 1, 1024);
    else if (a === '--rate') o.rate = int(a, argv[++i], 1, 100_000);
    else if (a === '--cross-procs') {
      o.crossProcs = int(a, argv[++i], 1, 3);
      if (o.crossProcs === 2) usage('--cross-procs is 1 or 3');
    } else if (a === '--forward-concurrency') o.forwardConcurrency = int(a, argv[++i], 1, 256);
    else if (a === '--profile') o.profileDir = argv[++i] ?? usage('--profile takes a directory');
    else usage(`unknown argument ${a}`);
  }
  // Ratios need the baseline: it is cheap, so it runs whenever a node-facing section does.
  if (o.only.has('embedded') || o.only.has('redis')) o.only.add('baseline');
  if (o.only.has('embeddedSingleCommit')) o.only.add('embedded').add('baseline');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
// In --json mode stdout carries the one JSON object only: anything else goes to stderr.
const out = process.stdout.write.bind(process.stdout);
console.log = console.error;
const log = (message: string): void => {
  process.stderr.write(`[bench-relay] ${message}\n`);
};

const COUNTS = opts.quick
  ? { warm: 100, closed: 600, openSeconds: 2 }
  : { warm: 300, closed: 5000, openSeconds: 10 };
const OPEN = Math.round(opts.rate * COUNTS.openSeconds);
const LIMITS = { submitPerMinute: 1e9, requestsPerMinute: 1e9 };

// ------------------------------------------------------------------ figures

interface SectionFigures {
  readonly deliveredPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

interface SectionDetails {
  readonly closed: ReturnType<typeof summarize> & {
    readonly relayCpuMsPerEnvelope: number;
    readonly relayCpuMsPerEnvelopeByProcess: Record<string, number>;
    readonly clientCpuMsPerEnvelope: number;
    readonly redisCpuMsPerEnvelope: number | null;
    /** Redis commands per delivered envelope (scripts' inner commands included), by command, then in all. */
    readonly redisCommandsPerEnvelope: Record<string, number> | null;
    readonly machine: MachineLoad | null;
  };
  readonly open: ReturnType<typeof summarize> & {
    readonly offeredPerSec: number;
    readonly scheduleLagP99Ms: number;
    /** Event-loop delay during the open loop: of each relay process, and of this (load generator) process. */
    readonly relayEventLoopDelay: Record<string, { p99Ms: number; maxMs: number }>;
    readonly generatorEventLoopDelay: { p99Ms: number; maxMs: number };
  };
  readonly evidencesAckedBySenders: number;
  readonly evidencesExpectedBySenders: number;
  readonly relayCounters: Record<string, Record<string, number>>;
  readonly duplicatePushes: number;
}

const r1 = (x: number): number => Math.round(x * 10) / 10;
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

function summarize(f: RunFigures) {
  return {
    submitted: f.submitted,
    accepted: f.accepted,
    delivered: f.delivered,
    lost: f.lost,
    errors: f.errors,
    elapsedMs: r1(f.elapsedMs),
    deliveredPerSec: f.elapsedMs > 0 ? r1((f.delivered / f.elapsedMs) * 1000) : 0,
    p50Ms: r1(percentile(f.latenciesMs, 50)),
    p99Ms: r1(percentile(f.latenciesMs, 99)),
    acceptP50Ms: r1(percentile(f.acceptLatenciesMs, 50)),
    acceptP99Ms: r1(percentile(f.acceptLatenciesMs, 99)),
    maxMs: r1(f.latenciesMs.at(-1) ?? Number.NaN),
  };
}

/**
 * Calls per envelope of each command between two INFO commandstats (the
 * ones above 0.01), most called first, and `total`. (The bench's own INFO
 * calls are left out.)
 */
function commandsPerEnvelope(
  before: Record<string, { calls: number }>,
  after: Record<string, { calls: number }>,
  n: number,
): Record<string, number> {
  const perEnvelope: [string, number][] = [];
  let total = 0;
  for (const [name, { calls }] of Object.entries(after)) {
    if (name === 'info') continue;
    const delta = calls - (before[name]?.calls ?? 0);
    total += delta;
    if (delta / n >= 0.01) perEnvelope.push([name, r3(delta / n)]);
  }
  perEnvelope.sort((a, b) => b[1] - a[1]);
  return { ...Object.fromEntries(perEnvelope), total: r3(total / n) };
}

// ----------------------------------------------------------------- sections

const INTRA_PAIRS: SealJob[] = [
  { from: 'sn-moj@wacap', to: 'ng-agf@wacap' },
  { from: 'ng-agf@wacap', to: 'gh-ago@wacap' },
  { from: 'gh-ago@wacap', to: 'sn-moj@wacap' },
];
const CROSS_PAIRS: SealJob[] = [
  { from: 'sn-moj@wacap', to: 'kz-gpo@casc' },
  { from: 'ng-agf@wacap', to: 'ge-pog@casc' },
  { from: 'gh-ago@wacap', to: 'kz-gpo@casc' },
  { from: 'sn-moj@wacap', to: 'ge-pog@casc' },
  { from: 'ng-agf@wacap', to: 'kz-gpo@casc' },
  { from: 'gh-ago@wacap', to: 'ge-pog@casc' },
];

interface ItemSet {
  readonly warm: readonly SealedDossier[];
  readonly closed: readonly SealedDossier[];
  readonly open: readonly SealedDossier[];
}

function split(all: readonly SealedDossier[]): ItemSet {
  return {
    warm: all.slice(0, COUNTS.warm),
    closed: all.slice(COUNTS.warm, COUNTS.warm + COUNTS.closed),
    open: all.slice(COUNTS.warm + COUNTS.closed),
  };
}

const monotonicUs = (): string => String(process.hrtime.bigint() / 1000n);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const profileArgs = (): string[] =>
  opts.profileDir ? ['--cpu-prof', '--cpu-prof-dir', opts.profileDir] : [];

interface BaselineFigures {
  readonly perSec: number;
  readonly failed: number;
  readonly serverCpuMsPerRequest: number;
  readonly clientCpuMsPerRequest: number;
  readonly machine: MachineLoad | null;
}

async function runBaseline(items: readonly SealedDossier[]): Promise<BaselineFigures> {
  const server = await ServerProcess.start({ mode: 'baseline' }, profileArgs());
  try {
    const url = server.urls['baseline']!;
    const bodies = items.map((i) => encodeEnvelope(i.envelope));
    await baselineLoop({
      url,
      bodies: bodies.slice(0, COUNTS.warm),
      concurrency: opts.concurrency,
    });
    await server.cpuMs();
    const clientBefore = process.cpuUsage();
    const window = machineWindow();
    const run = await baselineLoop({
      url,
      bodies: bodies.slice(COUNTS.warm),
      concurrency: opts.concurrency,
    });
    const client = process.cpuUsage(clientBefore);
    const serverCpu = await server.cpuMs();
    const machine = window(serverCpu + (client.user + client.system) / 1000);
    const n = Math.max(1, run.completed);
    return {
      perSec: r1((run.completed / run.elapsedMs) * 1000),
      failed: run.failed,
      serverCpuMsPerRequest: r3(serverCpu / n),
      clientCpuMsPerRequest: r3((client.user + client.system) / 1000 / n),
      machine: machine ?? null,
    };
  } finally {
    await server.stop();
  }
}

/** The relays' own counters (GET /metrics): envelopes in and out, evidences, refusals, queue depths. */
async function relayCounters(
  urls: Readonly<Record<string, string>>,
): Promise<Record<string, Record<string, number>>> {
  const result: Record<string, Record<string, number>> = {};
  for (const [network, url] of Object.entries(urls)) {
    const counters: Record<string, number> = {};
    try {
      const text = await (await fetch(new URL('/metrics', url))).text();
      for (const line of text.split('\n')) {
        const m =
          /^rogatory_relay_(envelopes_in_total|envelopes_out_total|evidences_total|rejected_requests_total|queue_depth|peer_up)(\{[^}]*\})? ([\d.e+-]+)$/.exec(
            line,
          );
        if (m) counters[`${m[1]!}${(m[2] ?? '').replace(/"/g, '')}`] = Number(m[3]);
      }
    } catch {
      counters['unavailable'] = 1;
    }
    result[network] = counters;
  }
  return result;
}

/**
 * One relay section: start the relays, log the nodes in, upload every chunk,
 * open the mailboxes, warm up, then the closed loop and the open loop.
 */
async function runRelays(options: {
  name: string;
  world: TestWorld;
  servers: ServerProcess[];
  /** Relay URL of each network. */
  urls: Readonly<Record<string, string>>;
  items: ItemSet;
  attachments: Attachments;
  redisUrl?: string;
  /** Relays an envelope passes after the sender's (each returns a RelayAcceptance to the sender). */
  hopsAfterFirst?: number;
  /**
   * Several instances of one network's relay (scale-out): node k keeps its
   * mailbox on instance k mod n, and every node submits through all of
   * them in turn, as behind a load balancer.
   */
  instanceUrls?: readonly string[];
}): Promise<{ figures: SectionFigures; details: SectionDetails }> {
  const { world, items, servers } = options;
  const tracker = new ReceiptTracker();
  const all = [...items.warm, ...items.closed, ...items.open];
  const senderAddresses = [...new Set(all.map((i) => i.from))];
  const recipientAddresses = [...new Set(all.map((i) => i.to))];
  const nodes = new Map<string, BenchNode>();
  const instances = options.instanceUrls ?? [];
  for (const address of [...senderAddresses, ...recipientAddresses]) {
    if (nodes.has(address)) continue;
    const url =
      instances.length > 0
        ? instances[nodes.size % instances.length]!
        : options.urls[address.split('@')[1]!]!;
    nodes.set(address, new BenchNode(address, world, url, tracker, instances));
  }
  // Processes named by their networks; a second instance of the same networks gets `#2`.
  const processNames: string[] = [];
  for (const s of servers) {
    const base = Object.keys(s.urls).join('+');
    let name = base;
    for (let k = 2; processNames.includes(name); k++) name = `${base}#${k}`;
    processNames.push(name);
  }
  try {
    log(`${options.name}: logging in ${nodes.size} nodes, uploading ${all.length} dossiers`);
    await Promise.all([...nodes.values()].map((n) => n.login()));
    await Promise.all(
      senderAddresses.map((address) => {
        const mine = all.filter((i) => i.from === address);
        return nodes
          .get(address)!
          .client.uploadChunks(
            [
              ...options.attachments.chunks,
              ...mine.map((i) => ({ id: i.envelope.body.dossier.id, bytes: i.sealed })),
            ],
            { concurrency: 16 },
          );
      }),
    );
    // Every node reads its mailbox: recipients get envelopes, senders the evidences coming back (acked too).
    await Promise.all([...nodes.values()].map((n) => n.openMailbox()));

    log(`${options.name}: warm-up (${items.warm.length})`);
    await closedLoop({ items: items.warm, concurrency: opts.concurrency, tracker, senders: nodes });
    await sleep(500);

    log(
      `${options.name}: closed loop, ${items.closed.length} envelopes, ${opts.concurrency} in flight`,
    );
    for (const s of servers) await s.cpuMs();
    const redisBefore = options.redisUrl ? await redisCpuMs(options.redisUrl) : undefined;
    const commandsBefore = options.redisUrl ? await redisCommandStats(options.redisUrl) : undefined;
    const clientBefore = process.cpuUsage();
    const window = machineWindow();
    const closedFrom = monotonicUs();
    const closed = await closedLoop({
      items: items.closed,
      concurrency: opts.concurrency,
      tracker,
      senders: nodes,
    });
    if (opts.profileDir)
      log(
        `${options.name}: closed loop ran in the monotonic-clock window ${closedFrom}..${monotonicUs()} us (CPU profile timestamps)`,
      );
    const client = process.cpuUsage(clientBefore);
    const relayCpuEach: number[] = [];
    for (const s of servers) relayCpuEach.push(await s.cpuMs());
    const relayCpu = relayCpuEach.reduce((a, b) => a + b, 0);
    const redisCpu =
      options.redisUrl && redisBefore !== undefined
        ? (await redisCpuMs(options.redisUrl)) - redisBefore
        : undefined;
    const n = Math.max(1, closed.delivered);
    const commands =
      options.redisUrl && commandsBefore !== undefined
        ? commandsPerEnvelope(commandsBefore, await redisCommandStats(options.redisUrl), n)
        : null;
    const machine = window(relayCpu + (client.user + client.system) / 1000 + (redisCpu ?? 0));
    // Let forwarding of evidences back to the senders finish before the latency run.
    await sleep(opts.quick ? 500 : 1500);

    log(`${options.name}: open loop, ${items.open.length} envelopes at ${opts.rate}/s offered`);
    for (const s of servers) await s.stats();
    const generatorDelay = monitorEventLoopDelay({ resolution: 10 });
    generatorDelay.enable();
    const openFrom = monotonicUs();
    const open = await openLoop({
      items: items.open,
      ratePerSec: opts.rate,
      tracker,
      senders: nodes,
    });
    generatorDelay.disable();
    const relayDelay: Record<string, { p99Ms: number; maxMs: number }> = {};
    for (const [i, s] of servers.entries()) {
      const st = await s.stats();
      relayDelay[processNames[i]!] = {
        p99Ms: r1(st.loopDelayP99Ms),
        maxMs: r1(st.loopDelayMaxMs),
      };
    }
    if (opts.profileDir)
      log(
        `${options.name}: open loop ran in the monotonic-clock window ${openFrom}..${monotonicUs()} us (CPU profile timestamps)`,
      );
    const counters = await relayCounters(
      instances.length > 0
        ? Object.fromEntries(instances.map((url, i) => [processNames[i] ?? `instance${i}`, url]))
        : options.urls,
    );
    const closedSummary = summarize(closed);
    const openSummary = summarize(open);
    const evidences = senderAddresses.reduce((sum, a) => sum + nodes.get(a)!.evidencesReceived, 0);
    // Each relay after the sender's returns a RelayAcceptance per recipient; it travels back to the sender's mailbox.
    const expectedEvidences = all.reduce(
      (sum, i) =>
        sum + (i.from.split('@')[1] === i.to.split('@')[1] ? 0 : (options.hopsAfterFirst ?? 0)),
      0,
    );
    log(
      `${options.name}: ${closedSummary.deliveredPerSec}/s delivered (closed loop), p50 ${openSummary.p50Ms} ms, p99 ${openSummary.p99Ms} ms at ${opts.rate}/s offered`,
    );
    return {
      figures: {
        deliveredPerSec: closedSummary.deliveredPerSec,
        p50Ms: openSummary.p50Ms,
        p99Ms: openSummary.p99Ms,
      },
      details: {
        closed: {
          ...closedSummary,
          relayCpuMsPerEnvelope: r3(relayCpu / n),
          relayCpuMsPerEnvelopeByProcess: Object.fromEntries(
            servers.map((_, i) => [processNames[i]!, r3(relayCpuEach[i]! / n)]),
          ),
          clientCpuMsPerEnvelope: r3((client.user + client.system) / 1000 / n),
          redisCpuMsPerEnvelope: redisCpu === undefined ? null : r3(redisCpu / n),
          redisCommandsPerEnvelope: commands,
          machine: machine ?? null,
        },
        open: {
          ...openSummary,
          offeredPerSec: opts.rate,
          scheduleLagP99Ms: r1(percentile(open.lagMs, 99)),
          relayEventLoopDelay: relayDelay,
          generatorEventLoopDelay: {
            p99Ms: r1(generatorDelay.percentile(99) / 1e6),
            maxMs: r1(generatorDelay.max / 1e6),
          },
        },
        evidencesAckedBySenders: evidences,
        evidencesExpectedBySenders: expectedEvidences,
        relayCounters: counters,
        duplicatePushes: tracker.duplicates,
      },
    };
  } finally {
    await Promise.allSettled([...nodes.values()].map((n) => n.close()));
  }
}

// --------------------------------------------------------------------- main

await ready();
// The nodes of the load generator sign and hash as the relays do (relay-process.ts): natively compiled libsodium.
const cryptoImpl = useNativeCrypto();
const now = Date.now();
const world = buildTestWorld({ now });
const attachments = await makeAttachments();
const perSet = COUNTS.warm + COUNTS.closed + OPEN;
const needIntra =
  opts.only.has('embedded') ||
  opts.only.has('redis') ||
  opts.only.has('redisScaleOut') ||
  opts.only.has('baseline');
const needCross = CROSS_SECTIONS.some((name) => opts.only.has(name));
const sealStart = performance.now();
const [intra, cross] = await Promise.all([
  needIntra
    ? sealAll({ now, createdAt: now, attachments, jobs: jobs(INTRA_PAIRS, perSet), threads: 2 })
    : Promise.resolve([]),
  needCross
    ? sealAll({ now, createdAt: now, attachments, jobs: jobs(CROSS_PAIRS, perSet), threads: 2 })
    : Promise.resolve([]),
]);
log(
  `sealed ${intra.length + cross.length} dossiers in ${((performance.now() - sealStart) / 1000).toFixed(1)} s (not timed)`,
);

const results: Partial<Record<Section, { figures: SectionFigures; details: SectionDetails }>> = {};
let baseline: BaselineFigures | undefined;
let redis: RedisServer | undefined;
const started: ServerProcess[] = [];
const spawnServers = async (
  ...specs: Parameters<typeof ServerProcess.start>[0][]
): Promise<ServerProcess[]> => {
  const list: ServerProcess[] = [];
  for (const spec of specs) {
    const s = await ServerProcess.start(spec, profileArgs());
    started.push(s);
    list.push(s);
  }
  return list;
};
const relaySpec = (
  backend: { kind: 'embedded'; groupCommit?: boolean } | { kind: 'redis'; url: string },
  networks: string[],
  peering: 'hub' | 'direct' = 'hub',
) => ({
  mode: 'relays' as const,
  backend,
  networks,
  peering,
  now,
  limits: LIMITS,
  ...(opts.forwardConcurrency === undefined
    ? {}
    : { forwardingConcurrency: opts.forwardConcurrency }),
});
const stopAll = async (list: ServerProcess[]): Promise<void> => {
  await Promise.allSettled(list.map((s) => s.stop()));
};

let failed = false;
try {
  const anySet = intra.length > 0 ? intra : cross;
  if (opts.only.has('baseline')) {
    log(`baseline: bare Fastify 5 POST, ${COUNTS.closed} requests, ${opts.concurrency} in flight`);
    baseline = await runBaseline(anySet.slice(0, COUNTS.warm + COUNTS.closed));
    log(`baseline: ${baseline.perSec}/s`);
  }
  // The embedded backend as deployed, and (opt-in) with each write committed alone.
  for (const [name, groupCommit] of [
    ['embedded', true],
    ['embeddedSingleCommit', false],
  ] as const) {
    if (!opts.only.has(name)) continue;
    const servers = await spawnServers(relaySpec({ kind: 'embedded', groupCommit }, ['wacap']));
    try {
      results[name] = await runRelays({
        name,
        world,
        servers,
        urls: servers[0]!.urls,
        items: split(intra),
        attachments,
      });
    } finally {
      await stopAll(servers);
    }
  }
  if (opts.only.has('redis') || opts.only.has('redisScaleOut') || needCross)
    redis = await startRedis();
  if (opts.only.has('redis') && redis) {
    const servers = await spawnServers(relaySpec({ kind: 'redis', url: redis.url }, ['wacap']));
    try {
      results.redis = await runRelays({
        name: 'redis',
        world,
        servers,
        urls: servers[0]!.urls,
        items: split(intra),
        attachments,
        redisUrl: redis.url,
      });
    } finally {
      await stopAll(servers);
    }
  }
  if (opts.only.has('redisScaleOut') && redis) {
    // Two instances of wacap's relay sharing one Redis and one chunk directory (issue 3, item 8).
    const backend = { kind: 'redis' as const, url: redis.url };
    const [first] = await spawnServers(relaySpec(backend, ['wacap']));
    const servers = [first!];
    try {
      if (first?.shared === undefined)
        throw new Error('the relay process did not say where its stores are');
      servers.push(
        ...(await spawnServers({ ...relaySpec(backend, ['wacap']), shared: first.shared })),
      );
      results.redisScaleOut = await runRelays({
        name: 'redisScaleOut',
        world,
        servers,
        urls: first.urls,
        items: split(intra),
        attachments,
        redisUrl: redis.url,
        instanceUrls: servers.map((s) => s.urls['wacap']!),
      });
    } finally {
      // The second instance first: the first owns the shared chunk directory and removes it when it stops.
      for (const server of [...servers].reverse()) await server.stop();
    }
  }
  for (const name of CROSS_SECTIONS) {
    if (!opts.only.has(name) || !redis) continue;
    const backend = { kind: 'redis' as const, url: redis.url };
    const viaHub = name === 'crossNetworkViaHub';
    const networks = viaHub ? ['wacap', 'global', 'casc'] : ['wacap', 'casc'];
    const peering = viaHub ? ('hub' as const) : ('direct' as const);
    const servers =
      opts.crossProcs === 1
        ? await spawnServers(relaySpec(backend, networks, peering))
        : await spawnServers(...networks.map((n) => relaySpec(backend, [n], peering)));
    try {
      const urls: Record<string, string> = Object.assign(
        {},
        ...servers.map((s) => s.urls),
      ) as Record<string, string>;
      for (const s of servers) await s.setPeerUrls(urls);
      results[name] = await runRelays({
        name,
        world,
        servers,
        urls,
        items: split(cross),
        attachments,
        redisUrl: redis.url,
        hopsAfterFirst: networks.length - 1,
      });
    } finally {
      await stopAll(servers);
    }
  }
} catch (err) {
  failed = true;
  process.stderr.write(
    `bench-relay failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
} finally {
  await stopAll(started);
  await redis?.stop();
}
if (failed) process.exit(1);

const ratio = (a: number | undefined, b: number | undefined): number | null =>
  a !== undefined && b !== undefined && b > 0 ? r3(a / b) : null;
const result = {
  baselinePerSec: baseline?.perSec ?? null,
  embedded: results.embedded?.figures ?? null,
  embeddedSingleCommit: results.embeddedSingleCommit?.figures ?? null,
  redis: results.redis?.figures ?? null,
  redisScaleOut: results.redisScaleOut?.figures ?? null,
  crossNetwork: results.crossNetwork?.figures ?? null,
  crossNetworkViaHub: results.crossNetworkViaHub?.figures ?? null,
  ratios: {
    embeddedVsBaseline: ratio(results.embedded?.figures.deliveredPerSec, baseline?.perSec),
    embeddedSingleCommitVsEmbedded: ratio(
      results.embeddedSingleCommit?.figures.deliveredPerSec,
      results.embedded?.figures.deliveredPerSec,
    ),
    redisVsBaseline: ratio(results.redis?.figures.deliveredPerSec, baseline?.perSec),
    redisScaleOutVsRedis: ratio(
      results.redisScaleOut?.figures.deliveredPerSec,
      results.redis?.figures.deliveredPerSec,
    ),
    crossNetworkVsRedis: ratio(
      results.crossNetwork?.figures.deliveredPerSec,
      results.redis?.figures.deliveredPerSec,
    ),
    crossNetworkViaHubVsRedis: ratio(
      results.crossNetworkViaHub?.figures.deliveredPerSec,
      results.redis?.figures.deliveredPerSec,
    ),
  },
  setup: {
    mode: opts.quick ? 'quick' : 'full',
    cores: (await import('node:os')).availableParallelism(),
    closedLoop: { envelopes: COUNTS.closed, warmUp: COUNTS.warm, concurrency: opts.concurrency },
    openLoop: { offeredPerSec: opts.rate, seconds: COUNTS.openSeconds, envelopes: OPEN },
    relayLimits: LIMITS,
    forwardingConcurrency: opts.forwardConcurrency ?? 'relay default',
    crypto: cryptoImpl,
    processes:
      `relays in child processes (${opts.crossProcs === 1 ? 'cross-network: all in one' : 'one per relay'}), ` +
      'load generator (RelayClient nodes) in the parent, redis-server separate; all on the same cores',
    nodes:
      'wacap: sn-moj -> ng-agf -> gh-ago -> sn-moj; cross: the three wacap authorities -> kz-gpo, ge-pog @casc, directly (crossNetwork) or via relay@global (crossNetworkViaHub); every node acks its mailbox in batches',
    dossier: `sealed test MLA request (~${intra[0]?.sealed.length ?? cross[0]?.sealed.length ?? 0} bytes) + 2 shared tiny attachments`,
  },
  details: {
    baseline: baseline ?? null,
    embedded: results.embedded?.details ?? null,
    embeddedSingleCommit: results.embeddedSingleCommit?.details ?? null,
    redis: results.redis?.details ?? null,
    redisScaleOut: results.redisScaleOut?.details ?? null,
    crossNetwork: results.crossNetwork?.details ?? null,
    crossNetworkViaHub: results.crossNetworkViaHub?.details ?? null,
  },
};

if (opts.json) {
  out(`${JSON.stringify(result)}\n`);
} else {
  const load = (m: MachineLoad | null | undefined): string =>
    m ? `${m.busyPct}% (${m.otherPct}%)` : '-';
  const rows: string[][] = [
    [
      'section',
      'delivered/s',
      'p50 ms',
      'p99 ms',
      'vs',
      'server CPU ms/env',
      'client CPU ms/env',
      'redis CPU ms/env',
      'redis cmds/env',
      'machine busy (others)',
    ],
  ];
  rows.push([
    'baseline',
    String(result.baselinePerSec ?? '-'),
    '',
    '',
    'bare Fastify POST',
    String(baseline?.serverCpuMsPerRequest ?? '-'),
    String(baseline?.clientCpuMsPerRequest ?? '-'),
    '',
    '',
    load(baseline?.machine),
  ]);
  const vsOf: Record<string, string> = {
    embedded: `${result.ratios.embeddedVsBaseline ?? '-'} x baseline`,
    embeddedSingleCommit: `${result.ratios.embeddedSingleCommitVsEmbedded ?? '-'} x embedded`,
    redis: `${result.ratios.redisVsBaseline ?? '-'} x baseline`,
    redisScaleOut: `${result.ratios.redisScaleOutVsRedis ?? '-'} x redis`,
    crossNetwork: `${result.ratios.crossNetworkVsRedis ?? '-'} x redis`,
    crossNetworkViaHub: `${result.ratios.crossNetworkViaHubVsRedis ?? '-'} x redis`,
  };
  for (const name of REPORTED_SECTIONS) {
    const f = results[name];
    if (!f) continue;
    const vs = vsOf[name]!;
    const c = f.details.closed;
    rows.push([
      name,
      String(f.figures.deliveredPerSec),
      String(f.figures.p50Ms),
      String(f.figures.p99Ms),
      vs,
      String(c.relayCpuMsPerEnvelope),
      String(c.clientCpuMsPerEnvelope),
      String(c.redisCpuMsPerEnvelope ?? '-'),
      String(c.redisCommandsPerEnvelope?.['total'] ?? '-'),
      load(c.machine),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  out(
    `relay benchmark (${result.setup.mode}): closed loop ${COUNTS.closed} envelopes, ${opts.concurrency} in flight; latency at ${opts.rate}/s offered for ${COUNTS.openSeconds} s; rate limits raised to 1e9/min\n`,
  );
  for (const r of rows)
    out(
      `${r.map((cell, i) => (i === 0 || i === 4 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')}\n`,
    );
  for (const name of REPORTED_SECTIONS) {
    const d = results[name]?.details;
    if (!d) continue;
    const problems = {
      closedLost: d.closed.lost,
      openLost: d.open.lost,
      closedErrors: d.closed.errors,
      openErrors: d.open.errors,
      duplicates: d.duplicatePushes,
    };
    const loops = Object.entries(d.open.relayEventLoopDelay)
      .map(([relay, v]) => `${relay} ${v.p99Ms}`)
      .join(', ');
    out(
      `${name}: closed loop p50 ${d.closed.p50Ms} ms p99 ${d.closed.p99Ms} ms; open loop: max ${d.open.maxMs} ms, ` +
        `submit-to-acceptance p50 ${d.open.acceptP50Ms} ms p99 ${d.open.acceptP99Ms} ms, ` +
        `event-loop delay p99 (ms) relays ${loops}, load generator ${d.open.generatorEventLoopDelay.p99Ms}, ` +
        `schedule lag p99 ${d.open.scheduleLagP99Ms} ms\n`,
    );
    if (d.evidencesExpectedBySenders > 0)
      out(
        `${name}: evidences back at the senders: ${d.evidencesAckedBySenders} of ${d.evidencesExpectedBySenders} expected\n`,
      );
    out(`${name}: ${JSON.stringify(problems)}\n`);
  }
}
