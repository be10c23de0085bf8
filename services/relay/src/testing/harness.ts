import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ready, TrustStore } from '@rogatory/protocol';
import { buildTestWorld, type NetworkSpec, type TestWorld } from '@rogatory/protocol/testing';
import { FsBlobStore, S3BlobStore, type BlobStore } from '@rogatory/storage';
import { openEmbeddedBackend } from '../backend/embedded.js';
import { openRedisBackend } from '../backend/redis.js';
import type { RelayBackend } from '../backend/types.js';
import type { RelayOptions } from '../options.js';
import { startRelay, type RunningRelay } from '../server.js';

/** A free TCP port on the loopback interface. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

export type BackendKind =
  | {
      readonly kind: 'embedded';
      /** false: each write commits on its own (bench:relay's embeddedSingleCommit section). */
      readonly groupCommit?: boolean;
    }
  | {
      readonly kind: 'redis';
      readonly url: string;
      readonly s3?: { endPoint: string; port: number; accessKey: string; secretKey: string };
    };

export interface TestRelay {
  readonly network: string;
  readonly url: string;
  readonly running: RunningRelay;
  readonly backend: RelayBackend;
  readonly blobs: BlobStore;
  stop(): Promise<void>;
}

export interface TestNetworkOfRelays {
  readonly world: TestWorld;
  readonly relays: Readonly<Record<string, TestRelay>>;
  readonly dir: string;
  /** Prefix of the relays' Redis keys (with the network appended) and S3 buckets. */
  readonly namespace: string;
  /**
   * Start one more instance of a network's relay sharing its stores' location
   * (Redis: same prefix; embedded: a new file), on `port` (default: any free one).
   */
  startInstance(
    network: string,
    overrides?: Partial<RelayOptions>,
    port?: number,
  ): Promise<TestRelay>;
  stop(): Promise<void>;
}

/**
 * Start a relay for each network of the default test world (wacap, casc and
 * the global hub) on loopback ports, on the chosen backend. For tests,
 * benchmarks and the demo.
 */
export async function startTestRelays(options: {
  backend: BackendKind;
  now?: number;
  networks?: readonly string[];
  /** The networks and their peering (default: DEFAULT_WORLD, wacap and casc federated through the global hub). */
  specs?: readonly NetworkSpec[];
  relayOptions?: Partial<RelayOptions>;
  logger?: boolean;
  /** Adjust a relay's trust store before it starts (revocations, rotations); called once per relay instance. */
  trustSetup?: (network: string, trust: TrustStore, world: TestWorld) => void;
  /**
   * The stores of relays started elsewhere (another process): these relays are
   * more instances of the same networks, sharing their Redis keys and chunk
   * directories (Redis backend without S3). The directory is left in place on stop.
   */
  shared?: { readonly namespace: string; readonly dir: string };
}): Promise<TestNetworkOfRelays> {
  await ready();
  if (
    options.shared !== undefined &&
    (options.backend.kind !== 'redis' || options.backend.s3 !== undefined)
  ) {
    throw new Error('shared stores are for the Redis backend with a chunk directory');
  }
  const networks = options.networks ?? ['wacap', 'global', 'casc'];
  const ports = new Map<string, number>();
  for (const n of networks) ports.set(n, await freeLoopbackPort());
  const world = buildTestWorld({
    now: options.now ?? Date.now(),
    relayUrl: (n) => `http://127.0.0.1:${ports.get(n) ?? 9}`,
    ...(options.specs === undefined ? {} : { specs: options.specs }),
  });
  const dir = options.shared?.dir ?? (await mkdtemp(join(tmpdir(), 'rogatory-relays-')));
  const namespace = options.shared?.namespace ?? `test-${randomBytes(6).toString('hex')}`;
  const sessionSecret = randomBytes(32);
  const relays: Record<string, TestRelay> = {};
  const extra: TestRelay[] = [];

  const open = async (
    network: string,
    instance: number,
  ): Promise<{ backend: RelayBackend; blobs: BlobStore }> => {
    const b = options.backend;
    if (b.kind === 'embedded') {
      return {
        backend: await openEmbeddedBackend({
          file: join(dir, `${network}-${instance}.db`),
          ...(b.groupCommit === undefined ? {} : { groupCommit: b.groupCommit }),
        }),
        blobs: await FsBlobStore.open({
          dir: join(dir, `${network}-${instance}-chunks`),
          workerIo: true,
        }),
      };
    }
    const blobs = b.s3
      ? await S3BlobStore.open({
          ...b.s3,
          useSSL: false,
          bucket: `${namespace}-${network}`,
          prefix: 'chunks',
        })
      : await FsBlobStore.open({ dir: join(dir, `${network}-chunks`), workerIo: true });
    return {
      backend: await openRedisBackend({ url: b.url, prefix: `${namespace}-${network}` }),
      blobs,
    };
  };

  const start = async (
    network: string,
    port: number,
    instance: number,
    overrides: Partial<RelayOptions> = {},
  ): Promise<TestRelay> => {
    const net = world.networks[network]!;
    const trust = new TrustStore({ pinned: [{ network, root: net.rootRef }] });
    trust.addManifest(net.manifest);
    for (const peer of net.manifest.body.peers)
      trust.addManifest(world.networks[peer.network]!.manifest);
    options.trustSetup?.(network, trust, world);
    const stores = await open(network, instance);
    const running = await startRelay(
      {
        relayId: net.relay.id,
        key: net.relay.key,
        trust,
        ...stores,
        sessionSecret,
        logger: options.logger ?? false,
        forwarding: { backoff: { baseMs: 50, maxMs: 1000, jitter: 0.5 } },
        trustDir: join(dir, `${network}-${instance}-trust`),
        ...options.relayOptions,
        ...overrides,
      },
      { host: '127.0.0.1', port },
    );
    return { network, url: running.url, running, ...stores, stop: () => running.stop() };
  };

  try {
    for (const n of networks) relays[n] = await start(n, ports.get(n)!, 0);
  } catch (err) {
    await Promise.allSettled(Object.values(relays).map((r) => r.stop()));
    throw err;
  }
  return {
    world,
    relays,
    dir,
    namespace,
    async startInstance(network, overrides, port = 0) {
      const r = await start(network, port, extra.length + 1, overrides);
      extra.push(r);
      return r;
    },
    async stop() {
      await Promise.allSettled([...extra, ...Object.values(relays)].map((r) => r.stop()));
      if (options.shared === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}
