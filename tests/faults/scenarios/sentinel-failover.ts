/**
 * sentinel-failover: relay@wacap runs on Redis behind Sentinel (a primary,
 * two replicas, three sentinels, each its own redis-server process) with
 * `replicasToAck: 1`; relay@casc (embedded) is its direct peer. wacap senders
 * submit to wacap and casc recipients; once ~40 % of the load was accepted,
 * the replica the Sentinels prefer (replica-priority) is paused (SIGSTOP:
 * connected, answering nothing) and a second later the primary is killed
 * with SIGKILL; the paused replica resumes and is the one promoted. That is
 * the worst case of asynchronous replication: had the relay acknowledged
 * what only the other replica held (WAIT 1 alone), it would be lost now.
 * The relay waits for every online replica, so the relay refuses while one
 * lags, and nothing acknowledged to a sender, nor any evidence it stored,
 * is lost. The relay follows the new primary (ioredis sentinel) and BullMQ
 * keeps forwarding to casc. Measured: seconds without an acceptance and the
 * refusals meanwhile.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ready } from '@rogatory/protocol';
import { RelayProcess, writeRelayFiles } from '@rogatory/relay/testing/process';
import { freePort } from '@rogatory/test-services';
import { Ledger, drainMailboxes } from '../accounting.js';
import {
  CASC,
  OwnRedis,
  WACAP,
  type Answer,
  clientsFor,
  makeWorld,
  planLoad,
  redisInstalled,
  retryUnaccepted,
  sleep,
  submitLoad,
  uploadAll,
} from '../load.js';
import type { Scenario } from '../scenario.js';

const NAME = 'rogatory-faults';
const KILL_AT = 0.4;
/** How long the preferred replica lags (paused) before the primary is killed, and after. */
const LAG_BEFORE_KILL_MS = 1000;
const LAG_AFTER_KILL_MS = 300;
const IN_FLIGHT = 12;

/** Where the RESP value starting at `at` ends, or -1 if `text` does not hold all of it yet. */
function respEnd(text: string, at: number): number {
  const eol = text.indexOf('\r\n', at);
  if (eol < 0) return -1;
  const head = text[at];
  const n = Number(text.slice(at + 1, eol));
  if (head === '$') return n < 0 ? eol + 2 : text.length >= eol + 2 + n + 2 ? eol + 2 + n + 2 : -1;
  if (head === '*') {
    let pos = eol + 2;
    for (let i = 0; i < n; i++) {
      pos = respEnd(text, pos);
      if (pos < 0) return -1;
    }
    return pos;
  }
  return eol + 2;
}

/** One command over a raw socket (no client library in this package): the raw reply, '' on error. */
async function command(port: number, ...args: string[]): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (text: string): void => {
      socket.destroy();
      resolve(text);
    };
    socket.setTimeout(2000, () => done(''));
    socket.once('error', () => done(''));
    socket.once('connect', () =>
      socket.write(
        `*${String(args.length)}\r\n${args.map((a) => `$${String(Buffer.byteLength(a))}\r\n${a}\r\n`).join('')}`,
      ),
    );
    socket.on('data', (d) => {
      reply += d.toString('latin1');
      if (respEnd(reply, 0) > 0) done(reply);
    });
  });
}

async function waitUntil(
  what: string,
  ms: number,
  signal: AbortSignal,
  check: () => Promise<boolean>,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    signal.throwIfAborted();
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const round1 = (n: number): number => Math.round(n * 10) / 10;

export const sentinelFailover: Scenario = {
  name: 'sentinel-failover',
  title:
    'Redis primary SIGKILLed behind Sentinel just after the preferred replica lagged (replicasToAck 1), relays follow the new primary',
  budgetSeconds: { quick: 100, full: 480 },
  skip: () => (redisInstalled() ? undefined : 'redis-server is not installed'),
  async run(context) {
    const { signal, log } = context;
    await ready();
    const total = context.quick ? 300 : 3000;
    const redisArgs = ['--appendonly', 'yes', '--appendfsync', 'always'];
    const servers: OwnRedis[] = [];
    const sentinels: { port: number; child: ChildProcess }[] = [];
    const relays: RelayProcess[] = [];
    const killAll = (): void => {
      relays.forEach((r) => r.killNow());
      servers.forEach((s) => s.killNow());
      sentinels.forEach((s) => s.child.kill('SIGKILL'));
    };
    signal.addEventListener('abort', killAll);
    const exitHook = (): void => killAll();
    process.once('exit', exitHook);
    try {
      // The Redis set: a primary and two replicas, then three sentinels (quorum 2).
      for (let i = 0; i < 3; i++) {
        const dir = join(context.dir, `redis-${String(i)}`);
        await mkdir(dir, { recursive: true });
        const port = await freePort();
        // The Sentinels promote the replica of lowest replica-priority: the first, which will lag.
        const args =
          i === 0
            ? redisArgs
            : [
                ...redisArgs,
                ...['--replicaof', '127.0.0.1', String(servers[0]!.port)],
                ...['--replica-priority', i === 1 ? '10' : '100'],
              ];
        const server = new OwnRedis(port, dir, args);
        servers.push(server);
        await server.start();
      }
      const primary = servers[0]!;
      const preferred = servers[1]!;
      for (let i = 0; i < 3; i++) {
        const port = await freePort();
        const conf = join(context.dir, `sentinel-${String(i)}.conf`);
        await writeFile(
          conf,
          [
            `port ${String(port)}`,
            'bind 127.0.0.1',
            `dir ${context.dir}`,
            `sentinel monitor ${NAME} 127.0.0.1 ${String(primary.port)} 2`,
            `sentinel down-after-milliseconds ${NAME} 1000`,
            `sentinel failover-timeout ${NAME} 10000`,
            `sentinel parallel-syncs ${NAME} 1`,
            '',
          ].join('\n'),
        );
        const child = spawn(process.env['REDIS_SERVER'] ?? 'redis-server', [conf, '--sentinel'], {
          stdio: 'ignore',
        });
        sentinels.push({ port, child });
      }
      for (const s of sentinels)
        await waitUntil('a sentinel watching the primary', 20_000, signal, async () =>
          (await command(s.port, 'SENTINEL', 'get-master-addr-by-name', NAME)).includes(
            String(primary.port),
          ),
        );
      for (const r of servers.slice(1))
        await waitUntil('the replicas in sync', 20_000, signal, async () =>
          (await command(r.port, 'INFO', 'replication')).includes('master_link_status:up'),
        );
      log('primary, 2 replicas and 3 sentinels up');

      // Two relays: wacap on the Sentinel set, casc (embedded) its direct peer.
      const wacapPort = await freePort();
      const cascPort = await freePort();
      const urls: Record<string, string> = {
        wacap: `http://127.0.0.1:${String(wacapPort)}`,
        casc: `http://127.0.0.1:${String(cascPort)}`,
      };
      const world = makeWorld((n) => urls[n] ?? 'http://127.0.0.1:9', true);
      const wacapDir = join(context.dir, 'wacap');
      const cascDir = join(context.dir, 'casc');
      await mkdir(wacapDir, { recursive: true });
      await mkdir(cascDir, { recursive: true });
      const wacapFiles = await writeRelayFiles({
        dir: wacapDir,
        world,
        network: 'wacap',
        port: wacapPort,
        backend: { kind: 'redis', url: primary.url, prefix: 'x' },
      });
      // Point the backend at the sentinels instead of one Redis.
      const config = JSON.parse(await readFile(wacapFiles.configFile, 'utf8')) as {
        backend: { redis: Record<string, unknown> };
      };
      config.backend.redis = {
        sentinel: {
          sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
          name: NAME,
        },
        replicasToAck: 1,
        prefix: `faults-${randomBytes(4).toString('hex')}`,
      };
      await writeFile(wacapFiles.configFile, JSON.stringify(config, null, 2));
      const cascFiles = await writeRelayFiles({
        dir: cascDir,
        world,
        network: 'casc',
        port: cascPort,
        backend: { kind: 'embedded' },
      });
      const starting = Promise.all([
        RelayProcess.start(wacapFiles, urls['wacap']!).then((p) => (relays.push(p), p)),
        RelayProcess.start(cascFiles, urls['casc']!).then((p) => (relays.push(p), p)),
      ]);
      const { planned, attachment } = await planLoad(world, total, [...WACAP, ...CASC]);
      const [wacap] = await starting;

      const strict = clientsFor(world, urls['wacap']!, WACAP, 0);
      const patient = clientsFor(world, urls['wacap']!, WACAP, 3);
      const readers = new Map([...patient, ...clientsFor(world, urls['casc']!, CASC, 3)]);
      await uploadAll(planned, attachment, patient, signal);
      log(`${String(total)} envelopes uploaded; load starts`);

      const ledger = new Ledger();
      // Each casc recipient's relay owes the sender a RelayAcceptance, on top of its Delivery.
      for (const p of planned)
        for (const r of p.envelope.body.recipients)
          if (r.endsWith('@casc')) ledger.owe(p.envelope.body.id, ['relay-acceptance'], r);
      const killAfter = Math.round(total * KILL_AT);
      let killedAt = 0;
      let laggingSince = 0;
      let refusedWhileLagging = 0;
      let acceptedWhileLagging = 0;
      let firstAcceptAfterKill = 0;
      const refusedAfterKill = new Map<string, number>();
      let lastAcceptBeforeRecovery = 0;
      const onAnswer = (o: Answer): void => {
        // Sent while the preferred replica lagged and the primary still lived (answered whenever).
        if (
          laggingSince > 0 &&
          o.startedAt >= laggingSince &&
          (killedAt === 0 || o.startedAt < killedAt)
        ) {
          if (o.accepted) acceptedWhileLagging += 1;
          else refusedWhileLagging += 1;
        }
        if (killedAt === 0) {
          if (laggingSince === 0 && o.accepted && ledger.progress.accepted >= killAfter) {
            laggingSince = Date.now();
            preferred.pause(true);
            log(`preferred replica paused after ${String(ledger.progress.accepted)} acceptances`);
            setTimeout(() => {
              killedAt = Date.now();
              primary.killNow();
              log('primary SIGKILLed');
              setTimeout(() => preferred.pause(false), LAG_AFTER_KILL_MS);
            }, LAG_BEFORE_KILL_MS);
          }
          return;
        }
        // Unavailable until a submission sent after the kill is accepted.
        if (o.accepted && o.startedAt > killedAt && firstAcceptAfterKill === 0)
          firstAcceptAfterKill = Date.now();
        if (o.accepted && o.startedAt <= killedAt) lastAcceptBeforeRecovery = Date.now();
        if (!o.accepted && o.code)
          refusedAfterKill.set(o.code, (refusedAfterKill.get(o.code) ?? 0) + 1);
      };
      // Owed evidences are declared only for accepted envelopes: the ledger ignores the rest.
      const load = await submitLoad({
        planned,
        senders: strict,
        ledger,
        concurrency: IN_FLIGHT,
        signal,
        afterEach: onAnswer,
      });
      // The load may end while the replica lags: the kill is still to come.
      while (laggingSince > 0 && killedAt === 0) await sleep(50);
      if (killedAt === 0) throw new Error('the load ended before the primary was killed');
      const retried = await retryUnaccepted({
        ledger,
        senders: patient,
        timeoutMs: 90_000,
        signal,
        onAnswer,
      });
      const promotedReplica = async (): Promise<string> => {
        for (const r of servers.slice(1))
          if ((await command(r.port, 'INFO', 'replication')).includes('role:master'))
            return String(r.port);
        return '';
      };
      // The load may be over before the Sentinels are (the relay acknowledged everything).
      await waitUntil(
        'a replica promoted',
        30_000,
        signal,
        async () => (await promotedReplica()) !== '',
      ).catch(() => undefined);
      const promoted = await promotedReplica();
      const laggingPromoted = promoted === String(preferred.port);
      log(
        `failover: first acceptance ${round1((firstAcceptAfterKill - killedAt) / 1000)} s after the kill; draining`,
      );
      await drainMailboxes({
        world,
        clients: readers,
        ledger,
        timeoutMs: context.quick ? 20_000 : 60_000,
        signal,
      });
      await Promise.all(relays.map((r) => r.stop()));
      // Warnings of relay@wacap that explain evidences that never came back (its log keeps the last 8 kB).
      const droppedReturned = wacap.log.split('peer returned an invalid evidence').length - 1;
      const refusedTotal = [...refusedAfterKill.values()].reduce((a, n) => a + n, 0);
      return ledger.result({
        measured: {
          unavailableSeconds:
            firstAcceptAfterKill > 0 ? round1((firstAcceptAfterKill - killedAt) / 1000) : -1,
          refusedDuringFailover: refusedTotal,
          inFlightAcceptedAfterKill: lastAcceptBeforeRecovery > 0,
          refusalCodes:
            [...refusedAfterKill].map(([c, n]) => `${c}:${String(n)}`).join(' ') || 'none',
          replicaPromoted: promoted !== '',
          laggingReplicaPromoted: laggingPromoted,
          acceptedWhileLagging,
          refusedWhileLagging,
          retriedAccepted: retried.accepted,
          cutOffInFlight: load.refusals.get('NETWORK') ?? 0,
          returnedEvidenceDropped: droppedReturned,
        },
        notes: [
          ...(droppedReturned > 0
            ? [
                `relay@wacap dropped ${String(droppedReturned)} evidences returned by relay@casc (RelayAcceptance): writing them to the sender's mailbox failed during the failover, and RelayCore.routeReturned (services/relay/src/relay-core.ts) logs that as 'peer returned an invalid evidence' and completes the forward instead of retrying it`,
              ]
            : []),
          ...(ledger.result().lost === 0
            ? []
            : ['acknowledged envelopes were lost in the failover: see lost and the discrepancies']),
          `the replica the Sentinels promoted ${laggingPromoted ? 'was' : 'was not'} the one paused for ${String(LAG_BEFORE_KILL_MS)} ms before the kill: while it lagged the relay acknowledged ${String(acceptedWhileLagging)} submissions and refused ${String(refusedWhileLagging)} (every online replica must confirm a write)`,
          `after the primary's SIGKILL the relay refused ${String(refusedTotal)} submissions (${[...refusedAfterKill.keys()].join(', ') || 'none'}) until a replica was promoted; senders retried them with the same envelope id`,
          'envelopes to casc accepted before the failover were forwarded by BullMQ from the new primary (a WAIT for every online replica kept every acknowledged envelope and evidence on the promoted one)',
        ],
      });
    } finally {
      signal.removeEventListener('abort', killAll);
      process.removeListener('exit', exitHook);
      await Promise.all(relays.map((r) => r.kill()));
      for (const s of sentinels) s.child.kill('SIGKILL');
      await Promise.all(servers.map((s) => s.kill()));
    }
  },
};
