/**
 * redis-kill: a relay on the Redis backend (redis-server with AOF, chunks in
 * a folder) under load; redis-server is killed with SIGKILL once ~40 % of the
 * load was accepted and restarted on the same folder and port after a
 * pause, while the senders keep submitting; the relay reconnects. Run twice:
 * `appendfsync everysec` and `appendfsync always` (the production setting of
 * infra/compose.production.yaml). Every envelope acknowledged to a sender
 * and missing after the restart is counted: for everysec in
 * measured (`lostAcknowledgedEverysec`), for always in `lost`, which must
 * be 0 (the table's counts are the production setting's).
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ready } from '@rogatory/protocol';
import { RelayProcess, writeRelayFiles } from '@rogatory/relay/testing/process';
import { freePort } from '@rogatory/test-services';
import { Ledger, drainMailboxes } from '../accounting.js';
import {
  OwnRedis,
  WACAP,
  clientsFor,
  makeWorld,
  planLoad,
  redisInstalled,
  refusalWindowSeconds,
  retryUnaccepted,
  sleep,
  submitLoad,
  uploadAll,
} from '../load.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario.js';

const KILL_AT = 0.4;
const IN_FLIGHT = 12;
/** How long redis-server stays down before it is restarted. */
const DOWN_MS = 1000;

type Fsync = 'everysec' | 'always';

interface Run {
  readonly result: ScenarioResult;
  readonly measured: Record<string, number>;
}

async function runOnce(context: ScenarioContext, fsync: Fsync, total: number): Promise<Run> {
  const { signal, log } = context;
  const dir = join(context.dir, fsync);
  await mkdir(join(dir, 'redis'), { recursive: true });
  const redis = new OwnRedis(await freePort(), join(dir, 'redis'), [
    ...['--appendonly', 'yes', '--appendfsync', fsync, '--maxmemory-policy', 'noeviction'],
  ]);
  const port = await freePort();
  const url = `http://127.0.0.1:${String(port)}`;
  const world = makeWorld((n) => (n === 'wacap' ? url : 'http://127.0.0.1:9'));
  const processes: RelayProcess[] = [];
  const killAll = (): void => {
    processes.forEach((p) => p.killNow());
    redis.killNow();
  };
  signal.addEventListener('abort', killAll);
  try {
    await redis.start();
    const files = await writeRelayFiles({
      dir,
      world,
      network: 'wacap',
      port,
      backend: {
        kind: 'redis',
        url: redis.url,
        prefix: `faults-${randomBytes(4).toString('hex')}`,
      },
    });
    const starting = RelayProcess.start(files, url).then((p) => {
      processes.push(p);
      return p;
    });
    const { planned, attachment } = await planLoad(world, total);
    const relay = await starting;
    const strict = clientsFor(world, url, WACAP, 0);
    const patient = clientsFor(world, url, WACAP, 3);
    await uploadAll(planned, attachment, patient, signal);
    log(`${fsync}: ${String(total)} envelopes uploaded; load starts`);

    const ledger = new Ledger();
    const killAfter = Math.round(total * KILL_AT);
    let killedAt = 0;
    let restarted: Promise<void> | undefined;
    let acceptedAtKill = 0;
    const load = await submitLoad({
      planned,
      senders: strict,
      ledger,
      concurrency: IN_FLIGHT,
      signal,
      afterEach: () => {
        if (killedAt === 0 && ledger.progress.accepted >= killAfter) {
          killedAt = Date.now();
          redis.killNow();
          acceptedAtKill = ledger.progress.accepted;
          log(`${fsync}: redis-server SIGKILLed after ${String(acceptedAtKill)} acceptances`);
          restarted = (async () => {
            await sleep(DOWN_MS);
            await redis.start();
            log(`${fsync}: redis-server restarted on the same folder`);
          })();
        }
      },
    });
    await restarted;
    if (killedAt === 0) throw new Error('the load ended before the kill');
    // The relay reconnects: /readyz answers 200 again.
    const end = Date.now() + 30_000;
    while (!(await relay.ready())) {
      if (Date.now() > end || !relay.alive)
        throw new Error(`relay did not recover after the Redis restart:\n${relay.log}`);
      await sleep(100);
    }
    const recoverySeconds = (Date.now() - killedAt) / 1000;
    const retried = await retryUnaccepted({ ledger, senders: patient, timeoutMs: 60_000, signal });
    await drainMailboxes({
      world,
      clients: patient,
      ledger,
      timeoutMs: context.quick ? 20_000 : 60_000,
      signal,
    });
    await relay.stop();
    const lost = ledger.result().lost;
    const refused = [...load.refusals.values()].reduce((a, n) => a + n, 0);
    log(`${fsync}: ${String(lost)} acknowledged deliveries missing after the restart`);
    return {
      result: ledger.result(),
      measured: {
        [`${fsync}.acceptedAtKill`]: acceptedAtKill,
        [`${fsync}.refusedDuringOutage`]: refused,
        [`${fsync}.refusalWindowSeconds`]: refusalWindowSeconds(load.refusalTimes),
        [`${fsync}.recoverySeconds`]: Math.round(recoverySeconds * 10) / 10,
        [`${fsync}.retriedAccepted`]: retried.accepted,
        [`${fsync}.lostAcknowledged`]: lost,
      },
    };
  } finally {
    signal.removeEventListener('abort', killAll);
    await Promise.all(processes.map((p) => p.kill()));
    await redis.kill();
  }
}

export const redisKill: Scenario = {
  name: 'redis-kill',
  title: 'redis-server (AOF) SIGKILLed under load and restarted, appendfsync everysec and always',
  budgetSeconds: { quick: 90, full: 480 },
  skip: () => (redisInstalled() ? undefined : 'redis-server is not installed'),
  async run(context) {
    await ready();
    const total = context.quick ? 200 : 3000;
    const everysec = await runOnce(context, 'everysec', total);
    const always = await runOnce(context, 'always', total);
    const lostEverysec = everysec.result.lost;
    const notes = [
      `appendfsync everysec lost ${String(lostEverysec)} acknowledged envelope deliveries, always lost ${String(always.result.lost)} (counts above are the production setting, always)`,
      'a SIGKILL of redis-server leaves its AOF writes in the kernel page cache, so everysec loses nothing here; it can lose up to ~1 s of acknowledged writes when the host itself fails (power cut, kernel panic), which this test cannot simulate: production keeps appendfsync always (infra/compose.production.yaml)',
    ];
    if (
      everysec.result.duplicated > 0 ||
      everysec.result.evidencesReceived < everysec.result.evidencesOwed
    )
      notes.push(
        `everysec also had ${String(everysec.result.duplicated)} duplicates and ${String(everysec.result.evidencesOwed - everysec.result.evidencesReceived)} missing evidences`,
      );
    return {
      ...always.result,
      measured: {
        lostAcknowledgedEverysec: lostEverysec,
        lostAcknowledgedAlways: always.result.lost,
        ...everysec.measured,
        ...always.measured,
        ...(always.result.measured ?? {}),
      },
      notes: [...notes, ...(always.result.notes ?? [])],
    };
  },
};
