/**
 * Child process of bench-relay: runs the servers under test in their own
 * process (their own event loop and core), so that the load generator does
 * not share an event loop with them.
 *
 * argv[2] is a JSON `ServerSpec`. Once listening, it prints one JSON line
 * on stdout (`{ "urls": { network: url } }`), then reads JSON lines on
 * stdin:
 * - `{ "peerUrls": { network: url } }`: where to reach the other networks'
 *   relays (each relay runs in a process of its own), answered `{ "ok": true }`;
 * - `{ "cpu": true }`: CPU time of this process since the last such call,
 *   and the 99th percentile and maximum of its event-loop delay meanwhile,
 *   answered `{ "cpuMs": n, "loopDelayP99Ms": n, "loopDelayMaxMs": n }`.
 * End of stdin (the parent closed it, or died) stops the servers and ends
 * the process.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { useNativeCrypto } from '@rogatory/protocol/node';
import { DIRECT_PEERING_WORLD } from '@rogatory/protocol/testing';
import Fastify from 'fastify';
import { startTestRelays, type BackendKind } from '../src/testing/harness.js';

export type ServerSpec =
  | { readonly mode: 'baseline' }
  | {
      readonly mode: 'relays';
      readonly backend: BackendKind;
      readonly networks: readonly string[];
      /** `direct`: wacap and casc federate without the hub (DIRECT_PEERING_WORLD). */
      readonly peering?: 'hub' | 'direct';
      readonly now: number;
      readonly limits: { readonly submitPerMinute: number; readonly requestsPerMinute: number };
      readonly forwardingConcurrency?: number;
      /** More instances of relays started by another process: share its stores (Redis keys, chunk directory). */
      readonly shared?: { readonly namespace: string; readonly dir: string };
    };

const spec = JSON.parse(process.argv[2] ?? '{}') as ServerSpec;
const say = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value)}\n`);
};

// Filled in later: the peers' relays are in other processes, started after this one.
const peerUrls: Record<string, string> = {};
let stop: () => Promise<void>;
if (spec.mode === 'baseline') {
  // The floor: a bare Fastify 5 route taking the same bytes, parsing nothing, answering {}.
  const app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
    done(null, body);
  });
  app.post('/v1/envelopes', (_request, reply) => reply.send({}));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  stop = () => app.close();
  say({ urls: { baseline: url } });
} else {
  // As `rogatory-relay start` does.
  useNativeCrypto();
  const net = await startTestRelays({
    backend: spec.backend,
    networks: spec.networks,
    ...(spec.peering === 'direct' ? { specs: DIRECT_PEERING_WORLD } : {}),
    ...(spec.shared === undefined ? {} : { shared: spec.shared }),
    now: spec.now,
    logger: false,
    relayOptions: {
      limits: spec.limits,
      // Every simulated node and peer relay connects from 127.0.0.1: no per-address connection limit here.
      connections: { maxPerAddress: 0 },
      peerUrls,
      ...(spec.forwardingConcurrency === undefined
        ? {}
        : {
            forwarding: {
              concurrency: spec.forwardingConcurrency,
              backoff: { baseMs: 50, maxMs: 1000, jitter: 0.5 },
            },
          }),
    },
  });
  stop = () => net.stop();
  say({
    urls: Object.fromEntries(Object.entries(net.relays).map(([n, r]) => [n, r.url])),
    shared: { namespace: net.namespace, dir: net.dir },
  });
}

let last = process.cpuUsage();
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const message = JSON.parse(line) as { peerUrls?: Record<string, string>; cpu?: boolean };
  if (message.cpu) {
    const now = process.cpuUsage();
    say({
      cpuMs: (now.user - last.user + now.system - last.system) / 1000,
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: loopDelay.max / 1e6,
    });
    last = now;
    loopDelay.reset();
  } else if (message.peerUrls) {
    Object.assign(peerUrls, message.peerUrls);
    say({ ok: true });
  }
});
lines.on('close', () => {
  stop().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(
        `relay-process: stop failed: ${err instanceof Error ? err.message : 'error'}\n`,
      );
      process.exit(1);
    },
  );
});
