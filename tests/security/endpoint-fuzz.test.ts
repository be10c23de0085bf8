/**
 * Issue 14 item 6, fourth point: 10,000 fuzzed requests across every relay
 * endpoint and 10,000 across every node REST endpoint, both routes lists
 * read from the apps' route tables (a new route is fuzzed without a change
 * here), seeded (ROGATORY_SECURITY_FUZZ_SEED replays or explores; _COUNT
 * scales), at most 8 in flight. The relay runs as its own process (the real
 * CLI) on each backend; the node's API runs in this process. Afterwards:
 * no 5xx but a typed UNAVAILABLE, every refusal with an error code, the
 * relay process alive with bounded memory, health answered, and a real
 * dossier goes node -> relay -> recipient.
 *
 * Valid node sessions ride along on half the requests, so the fuzz reaches
 * past authentication; signed relay-to-relay calls and WebSocket frames
 * are fuzzed in depth by services/relay/test/fuzz.test.ts.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthorityNode, buildNodeApi, initNode, type Actor } from '@rogatory/node';
import { KDF_LIMITS, ready, toHex } from '@rogatory/protocol';
import { buildTestWorld, exampleContentFor, type TestWorld } from '@rogatory/protocol/testing';
import { startTestRelays } from '@rogatory/relay/testing';
import { nodeClient, sealAndUpload, waitFor } from '@rogatory/relay/testing/helpers';
import {
  RelayProcess,
  writeRelayFiles,
  type ProcessBackend,
} from '@rogatory/relay/testing/process';
import { freePort, startRedis, type RedisServer } from '@rogatory/test-services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzRoutes, parseRoutes, rssOf, type FuzzReport, type Route } from './route-fuzz.js';
import { loginToken, raw, redisInstalled } from './support.js';

const SEED = process.env['ROGATORY_SECURITY_FUZZ_SEED'] ?? 'security-fuzz-2026';
const COUNT = Number(process.env['ROGATORY_SECURITY_FUZZ_COUNT'] ?? 10_000);
const CONCURRENCY = 8;
/** Bounds on a loaded machine, not timings: the run takes seconds when the machine is idle. */
const FUZZ_TIMEOUT_MS = 300_000;
const MIB = 1024 * 1024;
const SN = 'sn-moj@wacap';
const NG = 'ng-agf@wacap';
const GH = 'gh-ago@wacap';
const PASSPHRASE = 'correct horse battery staple';
const PASSWORD = 'a long enough password';
/** Rate limits out of the fuzz's way, so that it reaches the checks behind them. */
const OPEN_LIMITS = {
  requestsPerMinute: 1_000_000,
  badTokensPerMinute: 1_000_000,
  loginPerMinute: 1_000_000,
  submitPerMinute: 1_000_000,
  trustPerMinute: 1_000_000,
};
const RELAY_KEYS = [
  'envelope',
  'recipients',
  'inline',
  'seqs',
  'ids',
  'id',
  'bytes',
  'address',
  'challenge',
  'body',
  'signature',
  'kid',
  'value',
  'type',
  'relay',
  'issuedAt',
  'items',
  'evidence',
  'envelopes',
  'evidences',
  'network',
  'edition',
  'after',
  'limit',
  'hops',
  'sender',
  'expiresAt',
];

function words(extra: readonly string[]): string[] {
  return [
    SN,
    NG,
    GH,
    'kz-gpo@casc',
    'relay@wacap',
    'relay@global',
    'wacap',
    'casc',
    'nobody@nowhere',
    'a'.repeat(64),
    toHex(new Uint8Array(32)),
    '0',
    '1',
    ...extra,
  ];
}

function summary(report: FuzzReport): string {
  const statuses = [...report.statuses].map(([s, n]) => `${String(s)}:${String(n)}`).join(' ');
  const codes = [...report.codes].map(([c, n]) => `${c}:${String(n)}`).join(' ');
  return `${String(report.total)} requests over ${String(report.perRoute.size)} routes; statuses ${statuses}; codes ${codes}`;
}

/** The relay's route table, from an app started in this process for the purpose. */
async function relayRoutes(): Promise<Route[]> {
  const net = await startTestRelays({ backend: { kind: 'embedded' }, networks: ['wacap'] });
  try {
    return parseRoutes(net.relays['wacap']!.running.app.printRoutes({ commonPrefix: false }));
  } finally {
    await net.stop();
  }
}

/** Property names and enum members of the node's OpenAPI document. */
function schemaWords(doc: unknown): { keys: string[]; enums: string[] } {
  const keys = new Set<string>();
  const enums = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (k === 'properties' && x !== null && typeof x === 'object')
          for (const p of Object.keys(x)) keys.add(p);
        if (k === 'enum' && Array.isArray(x))
          for (const e of x) if (typeof e === 'string') enums.add(e);
        if (k === 'const' && typeof x === 'string') enums.add(x);
        walk(x);
      }
    }
  };
  walk(doc);
  return { keys: [...keys], enums: [...enums] };
}

const backends: {
  name: string;
  available: boolean;
  start(): Promise<{ backend: ProcessBackend; redis?: RedisServer }>;
}[] = [
  {
    name: 'embedded backend',
    available: true,
    start: () => Promise.resolve({ backend: { kind: 'embedded' } }),
  },
  {
    name: 'Redis backend',
    available: redisInstalled,
    async start() {
      const redis = await startRedis();
      return {
        backend: {
          kind: 'redis',
          url: redis.url,
          prefix: `fuzz-${toHex(crypto.getRandomValues(new Uint8Array(6)))}`,
        },
        redis,
      };
    },
  },
];

let routesOfRelay: Route[];
beforeAll(async () => {
  await ready();
  routesOfRelay = await relayRoutes();
}, 120_000);

for (const choice of backends) {
  describe.runIf(choice.available)(
    `endpoint fuzz, relay process and node API, ${choice.name}`,
    () => {
      let dir: string;
      let world: TestWorld;
      let relay: RelayProcess | undefined;
      let redis: RedisServer | undefined;
      let url: string;
      let node: AuthorityNode | undefined;
      let api: Awaited<ReturnType<typeof buildNodeApi>> | undefined;

      beforeAll(async () => {
        dir = await mkdtemp(join(tmpdir(), 'rogatory-security-fuzz-'));
        const port = await freePort();
        url = `http://127.0.0.1:${String(port)}`;
        world = buildTestWorld({
          now: Date.now(),
          relayUrl: (n) => (n === 'wacap' ? url : 'http://127.0.0.1:9'),
        });
        const started = await choice.start();
        redis = started.redis;
        const relayDir = join(dir, 'relay');
        await mkdir(relayDir);
        const files = await writeRelayFiles({
          dir: relayDir,
          world,
          network: 'wacap',
          port,
          backend: started.backend,
          limits: OPEN_LIMITS,
        });
        relay = await RelayProcess.start(files, url);
      }, 120_000);

      afterAll(async () => {
        await api?.close();
        await node?.close();
        await relay?.stop();
        await redis?.stop();
        await rm(dir, { recursive: true, force: true });
      });

      /** A real dossier from SN to NG through the relay, read and acked by NG. */
      const roundTrip = async (): Promise<void> => {
        const sn = nodeClient(world, url, SN);
        const ng = nodeClient(world, url, NG);
        const p = await sealAndUpload(world, sn, { from: SN, to: [NG] });
        await sn.submit(p.envelope);
        const item = await waitFor('the dossier in the mailbox', async () =>
          (await ng.readMailbox(0, 1000)).find(
            (i) => i.kind === 'envelope' && i.envelope.body.id === p.envelope.body.id,
          ),
        );
        expect(await ng.getChunkBytes(p.envelope.body.dossier.id)).toEqual(p.sealed);
        await ng.ack([item.seq]);
      };

      it(
        `${String(COUNT)} fuzzed requests over every relay route leave the relay process serving`,
        async () => {
          expect(routesOfRelay.length).toBeGreaterThanOrEqual(20);
          const tokens = [
            await loginToken(url, SN, world.authority(SN).identity),
            await loginToken(url, NG, world.authority(NG).identity),
            await loginToken(url, GH, world.authority(GH).identity),
          ];
          await roundTrip();
          const pid = relay!.child.pid!;
          const rssBefore = await rssOf(pid);
          const report = await fuzzRoutes({
            base: url,
            routes: routesOfRelay,
            count: COUNT,
            concurrency: CONCURRENCY,
            seed: `${SEED}/relay/${choice.name}`,
            context: { tokens, keys: RELAY_KEYS, words: words([]) },
          });
          console.log(`relay fuzz (${choice.name}, seed ${SEED}): ${summary(report)}`);
          expect(report.violations.slice(0, 20)).toEqual([]);
          expect(report.total).toBe(COUNT);
          for (const r of routesOfRelay)
            expect(report.perRoute.get(`${r.method} ${r.url}`), r.url).toBeGreaterThan(0);
          // Refusals happened past the front door too.
          expect(report.statuses.get(200) ?? 0).toBeGreaterThan(0);
          expect(report.codes.size).toBeGreaterThanOrEqual(5);

          expect(relay!.alive).toBe(true);
          expect((await raw(`${url}/healthz`)).status).toBe(200);
          expect((await raw(`${url}/readyz`)).status).toBe(200);
          await roundTrip();
          const rssAfter = await rssOf(pid);
          if (rssBefore !== undefined && rssAfter !== undefined)
            expect(rssAfter, `RSS ${String(rssBefore)} -> ${String(rssAfter)}`).toBeLessThan(
              rssBefore + 256 * MIB,
            );
          expect(relay!.alive).toBe(true);
        },
        FUZZ_TIMEOUT_MS,
      );

      // The node's own storage does not depend on the relay's backend: its API is fuzzed once.
      it.runIf(choice.name === 'embedded backend')(
        `${String(COUNT)} fuzzed requests over every node API route leave the node serving`,
        async () => {
          const net = world.networks['wacap']!;
          const nodeDir = join(dir, 'node');
          const files = join(dir, 'files');
          await mkdir(files);
          await initNode({
            dir: nodeDir,
            address: SN,
            relayUrl: url,
            relayId: net.relay.id,
            passphrase: PASSPHRASE,
            pinnedRoot: net.rootRef,
            manifests: [
              net.manifest,
              ...net.manifest.body.peers.map((p) => world.networks[p.network]!.manifest),
            ],
            kdf: KDF_LIMITS.interactive,
            importKeys: {
              identity: world.authority(SN).identity,
              encryption: world.authority(SN).encryption,
            },
            admin: { username: 'admin', password: PASSWORD },
          });
          node = await AuthorityNode.open({
            dir: nodeDir,
            passphrase: PASSPHRASE,
            relay: { retry: { retries: 1, baseMs: 20, maxMs: 100 }, timeoutMs: 10_000 },
          });
          const admin = node.login('admin', PASSWORD);
          node.addUser(admin, {
            username: 'fuzz-officer',
            password: PASSWORD,
            role: 'officer',
            clearances: ['restricted'],
          });
          node.addUser(admin, {
            username: 'fuzz-approver',
            password: PASSWORD,
            role: 'approver',
            clearances: ['restricted'],
          });
          const metricsToken = toHex(crypto.getRandomValues(new Uint8Array(16)));
          api = await buildNodeApi({
            node,
            logger: false,
            fileRoot: files,
            metricsToken,
            limits: { badTokensPerMinute: 1_000_000 },
          });
          const base = await api.listen({ host: '127.0.0.1', port: 0 });
          const routes = parseRoutes(api.printRoutes({ commonPrefix: false }));
          expect(routes.length).toBeGreaterThanOrEqual(30);
          const login = async (username: string): Promise<string> => {
            const r = await raw(`${base}/api/v1/login`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ username, password: PASSWORD }),
            });
            expect(r.status).toBe(200);
            return (JSON.parse(r.text) as { token: string }).token;
          };
          const tokens = [
            await login('admin'),
            await login('fuzz-officer'),
            await login('fuzz-approver'),
            metricsToken,
          ];
          const doc = JSON.parse((await raw(`${base}/openapi.json`)).text) as unknown;
          const schema = schemaWords(doc);
          expect(schema.keys.length).toBeGreaterThan(10);

          const rssBefore = process.memoryUsage().rss;
          const report = await fuzzRoutes({
            base,
            routes,
            count: COUNT,
            concurrency: CONCURRENCY,
            seed: `${SEED}/node/${choice.name}`,
            context: {
              tokens,
              keys: schema.keys,
              words: words(schema.enums),
              // Logging out would end the sessions the fuzz rides on.
              noValidToken: (r) => r.url.endsWith('/logout'),
            },
          });
          console.log(`node API fuzz (seed ${SEED}): ${summary(report)}`);
          expect(report.violations.slice(0, 20)).toEqual([]);
          expect(report.total).toBe(COUNT);
          for (const r of routes)
            expect(report.perRoute.get(`${r.method} ${r.url}`), r.url).toBeGreaterThan(0);
          expect(report.statuses.get(200) ?? 0).toBeGreaterThan(0);
          expect(report.codes.size).toBeGreaterThanOrEqual(5);
          expect(process.memoryUsage().rss).toBeLessThan(rssBefore + 512 * MIB);

          // Still serving: status through the API, and a dossier drafted, approved, sent and received.
          const status = await raw(`${base}/api/v1/status`, {
            headers: { authorization: `Bearer ${await login('admin')}` },
          });
          expect(status.status).toBe(200);
          const officer: Actor = node.login('fuzz-officer', PASSWORD);
          const approver: Actor = node.login('fuzz-approver', PASSWORD);
          const content = exampleContentFor('mla', SN, NG, world);
          if (content.kind !== 'request' || content.requestType !== 'mla')
            throw new Error('not mla');
          const id = await node.compose(officer, {
            content: {
              ...content,
              mla: {
                ...content.mla,
                measures: content.mla.measures.map(({ attachments: _a, ...m }) => m),
              },
            },
            newCase: true,
          });
          node.submitForApproval(officer, id);
          const envelopeId = await node.approve(approver, id);
          await node.syncOnce();
          const ng = nodeClient(world, url, NG);
          const item = await waitFor("the node's dossier at the recipient", async () =>
            (await ng.readMailbox(0, 1000)).find(
              (i) => i.kind === 'envelope' && i.envelope.body.id === envelopeId,
            ),
          );
          await ng.ack([item.seq]);
          expect(relay!.alive).toBe(true);
        },
        FUZZ_TIMEOUT_MS,
      );
    },
  );
}

describe('the route fuzzer (positive control)', () => {
  it('reports a 5xx, an untyped 503 and a refusal without a code, and covers every route', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      req.resume();
      req.on('end', () => {
        if (path === '/boom') res.writeHead(500).end('{"error":{"code":"INTERNAL"}}');
        else if (path === '/busy') res.writeHead(503).end('busy');
        else if (path === '/bare') res.writeHead(400).end('no');
        else res.writeHead(404).end('{"error":{"code":"NOT_FOUND"}}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const routes = parseRoutes(
        ['├── /boom (GET)', '├── /busy (POST)', '├── /bare (GET)', '└── /fine (GET, HEAD)'].join(
          '\n',
        ),
      );
      expect(routes.map((r) => `${r.method} ${r.url}`)).toEqual([
        'GET /boom',
        'POST /busy',
        'GET /bare',
        'GET /fine',
      ]);
      const report = await fuzzRoutes({
        base: `http://127.0.0.1:${String(port)}`,
        routes,
        count: 200,
        concurrency: 4,
        seed: 'control',
        context: { tokens: ['t'], keys: ['a'], words: ['w'] },
      });
      expect(report.total).toBe(200);
      for (const r of routes) expect(report.perRoute.get(`${r.method} ${r.url}`)).toBe(50);
      expect(report.violations.some((v) => v.includes(': 500 INTERNAL'))).toBe(true);
      expect(report.violations.some((v) => v.includes(': 503 (no code)'))).toBe(true);
      expect(report.violations.some((v) => v.includes('400 without an error code'))).toBe(true);
      // A route answering in shape is not reported (a plain Node server's own 431 to an
      // oversized request line is, rightly: the relay and node answer those in shape).
      expect(
        report.violations.filter((v) => v.startsWith('GET /fine') && !v.includes(': 431 ')),
      ).toEqual([]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
