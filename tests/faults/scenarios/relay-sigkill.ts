/**
 * relay-sigkill: several senders submit to several mailboxes; the relay
 * process is SIGKILLed once ~40 % of the load was accepted and restarted on
 * the same data. Senders retry what was not accepted with the same envelope
 * (the relay deduplicates by id); recipients read, ack and post Delivery
 * evidences, which must all reach the senders. Embedded backend; the full
 * form also runs it on Redis + s3rver.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ready } from '@rogatory/protocol';
import {
  RelayProcess,
  writeRelayFiles,
  type ProcessBackend,
} from '@rogatory/relay/testing/process';
import { freePort, startRedis, startS3 } from '@rogatory/test-services';
import { Ledger, drainMailboxes } from '../accounting.js';
import {
  WACAP,
  clientsFor,
  makeWorld,
  planLoad,
  redisInstalled,
  retryUnaccepted,
  submitLoad,
  uploadAll,
} from '../load.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario.js';

const KILL_AT = 0.4;
const IN_FLIGHT = 16;

async function runOnce(
  context: ScenarioContext,
  name: string,
  backend: ProcessBackend,
  total: number,
): Promise<{ ledger: Ledger; measured: Record<string, number>; notes: string[] }> {
  const { signal, log } = context;
  const dir = join(context.dir, name);
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${String(port)}`;
  const world = makeWorld((n) => (n === 'wacap' ? url : 'http://127.0.0.1:9'));
  const files = await writeRelayFiles({ dir, world, network: 'wacap', port, backend });
  const processes: RelayProcess[] = [];
  const killAll = (): void => processes.forEach((p) => p.killNow());
  signal.addEventListener('abort', killAll);
  try {
    // The relay boots (its own process) while this one seals the load.
    const starting = RelayProcess.start(files, url).then((p) => {
      processes.push(p);
      return p;
    });
    const { planned, attachment } = await planLoad(world, total);
    const first = await starting;
    const strict = clientsFor(world, url, WACAP, 0);
    const patient = clientsFor(world, url, WACAP, 3);
    log(`${name}: relay started, load planned`);
    await uploadAll(planned, attachment, patient, signal);
    log(`${name}: ${String(total)} envelopes planned and uploaded; load starts`);

    const ledger = new Ledger();
    const killAfter = Math.round(total * KILL_AT);
    let killed = false;
    const load = await submitLoad({
      planned,
      senders: strict,
      ledger,
      concurrency: IN_FLIGHT,
      signal,
      afterEach: () => {
        if (!killed && ledger.progress.accepted >= killAfter) {
          killed = true;
          first.killNow();
        }
      },
      stop: () => killed,
    });
    const exit = await first.exited;
    if (exit.signal !== 'SIGKILL') throw new Error(`relay ended with ${JSON.stringify(exit)}`);
    const acceptedBeforeKill = ledger.progress.accepted;
    const cutOff = load.refusals.get('NETWORK') ?? 0;
    log(`${name}: SIGKILL after ${String(acceptedBeforeKill)} acceptances; restarting`);
    const restartedAt = Date.now();
    const second = await RelayProcess.start(files, url);
    processes.push(second);
    const restartSeconds = (Date.now() - restartedAt) / 1000;
    // The rest of the load, never tried before the kill, is sent now.
    for (const p of planned.slice(load.attempted)) ledger.send(p.envelope);
    const retried = await retryUnaccepted({ ledger, senders: patient, timeoutMs: 120_000, signal });
    log(`${name}: ${String(retried.accepted)} accepted after the restart; draining mailboxes`);
    const drained = await drainMailboxes({
      world,
      clients: patient,
      ledger,
      timeoutMs: 120_000,
      signal,
    });
    await second.stop();
    const otherRefusals = [...load.refusals].filter(([c]) => c !== 'NETWORK' && c !== 'TIMEOUT');
    return {
      ledger,
      measured: {
        [`${name}.acceptedBeforeKill`]: acceptedBeforeKill,
        [`${name}.cutOffInFlight`]: cutOff + (load.refusals.get('TIMEOUT') ?? 0),
        [`${name}.acceptedAfterRestart`]: retried.accepted,
        [`${name}.restartSeconds`]: Math.round(restartSeconds * 10) / 10,
        [`${name}.drainRounds`]: drained.rounds,
      },
      notes: otherRefusals.length
        ? [
            `${name}: refusals before the kill: ${otherRefusals.map(([c, n]) => `${c} ${String(n)}`).join(', ')}`,
          ]
        : [],
    };
  } finally {
    signal.removeEventListener('abort', killAll);
    await Promise.all(processes.map((p) => p.kill()));
  }
}

function sum(results: readonly ScenarioResult[]): ScenarioResult {
  const add = (k: keyof Omit<ScenarioResult, 'measured' | 'notes'>): number =>
    results.reduce((a, r) => a + r[k], 0);
  return {
    sent: add('sent'),
    accepted: add('accepted'),
    delivered: add('delivered'),
    duplicated: add('duplicated'),
    lost: add('lost'),
    evidencesOwed: add('evidencesOwed'),
    evidencesReceived: add('evidencesReceived'),
    measured: Object.assign({}, ...results.map((r) => r.measured ?? {})),
    notes: results.flatMap((r) => r.notes ?? []),
  };
}

export const relaySigkill: Scenario = {
  name: 'relay-sigkill',
  title: 'relay process SIGKILLed at ~40 % of the load, restarted on the same data',
  budgetSeconds: { quick: 90, full: 600 },
  async run(context) {
    await ready();
    const total = context.quick ? 1000 : 10_000;
    const results: ScenarioResult[] = [];
    const embedded = await runOnce(context, 'embedded', { kind: 'embedded' }, total);
    results.push(
      embedded.ledger.result({
        measured: embedded.measured,
        notes: [
          'embedded: every envelope accepted before the kill was delivered exactly once after the restart; cut-off submissions were retried with the same id and deduplicated',
          ...embedded.notes,
        ],
      }),
    );
    if (!context.quick) {
      if (!redisInstalled()) {
        results[0] = {
          ...results[0]!,
          notes: [...(results[0]!.notes ?? []), 'redis: not run (redis-server not installed)'],
        };
      } else {
        const redis = await startRedis();
        const s3 = await startS3();
        try {
          const r = await runOnce(
            context,
            'redis',
            {
              kind: 'redis',
              url: redis.url,
              prefix: `faults-${randomBytes(4).toString('hex')}`,
              s3: {
                endPoint: s3.endPoint,
                port: s3.port,
                bucket: `faults-${randomBytes(4).toString('hex')}`,
                accessKey: s3.accessKey,
                secretKey: s3.secretKey,
              },
            },
            total,
          );
          results.push(r.ledger.result({ measured: r.measured, notes: r.notes }));
        } finally {
          await redis.stop();
          await s3.stop();
        }
      }
    }
    return sum(results);
  },
};
