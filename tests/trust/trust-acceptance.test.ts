/**
 * Acceptance of issue 10 ("trust that real networks can run"), with every
 * party a separate process started from its real executable:
 *
 *   rogatory-network  three secretariats: WACAP, CASC and the global hub
 *   rogatory-relay    relay@wacap, relay@global, relay@casc (keygen, start), and
 *                     relay2@wacap, a second wacap relay started by the fork step
 *   rogatory          authority nodes and points of contact (init, serve)
 *
 * The steps run in order (one `it` each) and share the state below; a
 * failing step prints the last command-line runs and the output of every
 * process, and the steps after it fail at once (/work/trust-design.md,
 * D1-D6). The points of contact run as nodes from the PoC step on; the
 * introduction, key rotation and revocation steps drive them through the
 * REST API, with the CLI where an operator uses it (keys rotate-encryption,
 * trust sync, directory).
 *
 * Topology: wacap and casc peer with the hub directly and with each other
 * via the hub (`peer add --via global`), so a dossier from Senegal to
 * Kazakhstan goes relay@wacap -> relay@global -> relay@casc.
 *
 * ROGATORY_E2E_KEEP=1 keeps the temporary folder (secretariats, relay and
 * node folders, one log per process).
 */
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  logOrigin,
  parseNote,
  publicKeyOf,
  ready,
  verifyCheckpoint,
  verifyCosignature,
  type KeyRef,
} from '@rogatory/protocol';
import { buildTestWorld, exampleContentFor } from '@rogatory/protocol/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Harness,
  NodeApi,
  answers200,
  freePort,
  waitFor,
  type Proc,
  type RunOptions,
} from './harness.js';

// ------------------------------------------------------------------ the cast

const NETWORKS = ['wacap', 'global', 'casc'] as const;
type Network = (typeof NETWORKS)[number];
/** Peers of each network: [peer, via] (via null: direct). */
const PEERS: Readonly<Record<Network, readonly (readonly [Network, Network | null])[]>> = {
  wacap: [
    ['global', null],
    ['casc', 'global'],
  ],
  global: [
    ['wacap', null],
    ['casc', null],
  ],
  casc: [
    ['global', null],
    ['wacap', 'global'],
  ],
};

interface Member {
  readonly address: string;
  readonly kind: 'authority' | 'poc';
  readonly name: string;
  readonly country: string;
  /** Runs as a node (`rogatory serve`) in this test. */
  readonly serve: boolean;
}
const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';
/** Admitted now, revoked by a later step. */
const ML = 'ml-moj@wacap';
const POC_SN = 'poc-sn@wacap';
const POC_KZ = 'poc-kz@casc';
const MEMBERS: readonly Member[] = [
  {
    address: SN,
    kind: 'authority',
    name: 'Ministry of Justice of Senegal',
    country: 'SN',
    serve: true,
  },
  {
    address: KZ,
    kind: 'authority',
    name: "General Prosecutor's Office of Kazakhstan",
    country: 'KZ',
    serve: true,
  },
  {
    address: ML,
    kind: 'authority',
    name: 'Ministry of Justice of Mali',
    country: 'ML',
    serve: true,
  },
  { address: POC_SN, kind: 'poc', name: 'Point of contact Senegal', country: 'SN', serve: false },
  {
    address: POC_KZ,
    kind: 'poc',
    name: 'Point of contact Kazakhstan',
    country: 'KZ',
    serve: false,
  },
];
const networkOf = (address: string): Network => address.split('@')[1] as Network;

const secret = (): string => randomBytes(18).toString('base64url');
const SECRETARIAT_PASSPHRASE: Record<Network, string> = {
  wacap: secret(),
  global: secret(),
  casc: secret(),
};
const RELAY_PASSPHRASE = secret();
const NODE_PASSPHRASE = secret();
/** Bearer token of the nodes' GET /metrics (at least 32 characters). */
const METRICS_TOKEN = randomBytes(32).toString('base64url');
const ADMIN = { username: 'admin', password: secret() };
const USERS = {
  [SN]: {
    officer: { username: 'amadou.diallo', password: secret() },
    approver: { username: 'fatou.ndiaye', password: secret() },
  },
  [KZ]: {
    officer: { username: 'aigerim.sadykova', password: secret() },
    approver: { username: 'nursultan.abenov', password: secret() },
  },
  [ML]: {
    officer: { username: 'mariam.traore', password: secret() },
    approver: { username: 'oumar.keita', password: secret() },
  },
  [POC_SN]: {
    officer: { username: 'awa.sarr', password: secret() },
    approver: { username: 'ibrahima.fall', password: secret() },
  },
  [POC_KZ]: {
    officer: { username: 'dana.omarova', password: secret() },
    approver: { username: 'yerlan.suleimenov', password: secret() },
  },
} as const;

// ------------------------------------------------------------------ shared state

interface Anchor {
  readonly network: string;
  readonly root: { kid: string };
  readonly fingerprint: string;
}
interface RunningNode {
  readonly proc: Proc;
  readonly api: NodeApi;
}

let h: Harness;
const anchors = new Map<Network, Anchor>();
const relayUrls = new Map<Network, string>();
const relays = new Map<Network, Proc>();
const nodes = new Map<string, RunningNode>();
/** Latest published edition number per network. */
const editions = new Map<Network, number>();
const inits = new Map<string, { identity: { kid: string }; encryptionKid: string }>();
/** Size of each network's log as last pushed to its relay. */
const logSizes = new Map<Network, number>();
/** The witnesses of each network's log: the relays of its direct peers. */
const DIRECT_WITNESSES: Readonly<Record<Network, string[]>> = {
  wacap: ['relay@global'],
  global: ['relay@casc', 'relay@wacap'],
  casc: ['relay@global'],
};

/** `rogatory-network push --json` (services/network/src/push.ts). */
interface PushResult {
  readonly relay: string;
  readonly network: string;
  readonly relaySize: number;
  readonly size: number;
  readonly pushed: {
    readonly file: string;
    readonly size: number;
    readonly edition: number | null;
    readonly cosigners: string[];
  }[];
}
/** One row of a relay's GET /v1/trust/networks. */
interface RelayNetwork {
  readonly network: string;
  readonly size: number;
  readonly edition: number;
  readonly rootHash: string;
}
/** The trust part of a node's GET /api/v1/status. */
interface NodeStatusView {
  readonly trust: {
    readonly networks: {
      network: string;
      edition: number | null;
      logSize: number;
      forkAlarm: boolean;
    }[];
    readonly openAlarms: number;
    readonly forksTotal: number;
  };
}
/** `rogatory trust status --json`. */
interface TrustStatusView {
  readonly quorum: number;
  readonly pollSeconds: number;
  readonly openAlarms: number;
  readonly forksTotal: number;
  readonly networks: {
    network: string;
    edition: number | null;
    logEdition: number | null;
    logSize: number;
    cosigners: string[];
    alarms: { code: string }[];
  }[];
}
const dossier = { requestId: '', envelopeId: '', receivedId: '', attachmentSha256: '' };
/** The dossier sent in the introduced case (sealed to Kazakhstan's first encryption key). */
const second = { requestId: '', receivedId: '', caseId: '' };
/** The introduction: Senegal's request, its entry at poc-sn@wacap and at poc-kz@casc. */
const intro = { requestId: '', pocSnEntryId: '', pocKzEntryId: '' };
/** GET /api/v1/directory. */
interface DirectoryView {
  readonly entries: {
    address: string;
    role: string;
    network: string;
    vouchedBy: { kind: string; network: string; issuer?: string }[];
  }[];
}
interface Introduced {
  readonly issuer: string;
  readonly subject: string;
  readonly audience: string;
}
/** GET /api/v1/introductions. */
interface IntroductionsView {
  readonly requests: {
    id: string;
    poc: string;
    outcome: string;
    answeredBy: string | null;
    code: string | null;
    introductions: Introduced[];
  }[];
  readonly inbox: {
    id: string;
    role: string;
    state: string;
    requester: string;
    from: string;
    country: string;
    answer: { outcome: string; to: string | null } | null;
  }[];
  readonly introducedTo: {
    requester: string;
    poc: string;
    code: string | null;
    introductions: Introduced[];
  }[];
}

const secretariatDir = (n: Network): string => h.path('secretariats', n);
const anchorFile = (n: Network): string => h.path('anchors', `${n}.json`);
const rootFile = (n: Network): string => h.path('anchors', `${n}-root.json`);
const editionFile = (n: Network, version = editions.get(n) ?? 0): string =>
  join(secretariatDir(n), 'editions', `${String(version).padStart(6, '0')}.json`);
const relayDir = (n: Network): string => h.path('relays', n);
/** relay2@wacap: a second wacap relay, listed in wacap's manifest, started by the fork step. */
const RELAY2 = 'relay2@wacap';
const relay2Dir = (): string => h.path('relays', 'wacap2');
let relay2Url = '';
const nodeDir = (address: string): string => h.path('nodes', address);

/** `rogatory-network --dir <secretariat> --json ...` with the secretariat's passphrase. */
const secretariat = (n: Network, args: readonly string[], options: RunOptions = {}) =>
  h.run('network', ['--dir', secretariatDir(n), '--json', ...args], {
    ...options,
    env: { ROGATORY_PASSPHRASE: SECRETARIAT_PASSPHRASE[n], ...options.env },
  });

/** `rogatory --dir <node> --json ...` with the node passphrase and the admin's password. */
const nodeCli = (address: string, args: readonly string[], options: RunOptions = {}) =>
  h.run('node', ['--dir', nodeDir(address), '--json', ...args], {
    ...options,
    env: {
      ROGATORY_PASSPHRASE: NODE_PASSPHRASE,
      ROGATORY_PASSWORD: ADMIN.password,
      ...options.env,
    },
  });

/** Run one function per network (or member) at once: independent folders, independent processes. */
const each = <T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> =>
  Promise.all(items.map(fn));

/** Like `each`, at most `limit` at a time (node inits: Argon2id and tsx start-up on 2 shared cores). */
async function pool<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: Math.min(limit, queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }),
  );
}

function node(address: string): RunningNode {
  const n = nodes.get(address);
  if (!n) throw new Error(`${address} is not running`);
  return n;
}

/**
 * Write a relay's relay.json and start it. The editions it starts from are files (own network
 * first); from the publications step on, new editions arrive as publications (pushed by the
 * secretariat, peers' chains fetched every second).
 */
async function startRelay(o: {
  id: string;
  network: Network;
  dir: string;
  url: string;
  /** The own network's edition file to start from (default: the latest published). */
  ownEdition?: string;
}): Promise<Proc> {
  const config = {
    relay: { id: o.id, host: '127.0.0.1', port: Number(new URL(o.url).port) },
    identity: { keyFile: './relay-key.json', passphraseEnv: 'ROGATORY_RELAY_PASSPHRASE' },
    trust: {
      rootFile: rootFile(o.network),
      manifestFiles: [
        o.ownEdition ?? editionFile(o.network),
        ...PEERS[o.network].map(([peer]) => editionFile(peer)),
      ],
      pollSeconds: 1,
    },
    // Every process of this test reaches the relays from 127.0.0.1, one source address for the
    // per-address limit of the trust routes (default 600 a minute): nodes and relays polling
    // every second would share it.
    limits: { trustPerMinute: 6000 },
    sessionSecretEnv: 'ROGATORY_RELAY_SESSION_SECRET',
    backend: { kind: 'embedded', dataDir: './data' },
    logLevel: 'warn',
  };
  await writeFile(join(o.dir, 'relay.json'), `${JSON.stringify(config, null, 2)}\n`);
  return h.start(o.id, 'relay', ['start', '--config', join(o.dir, 'relay.json')], {
    env: {
      ROGATORY_RELAY_PASSPHRASE: RELAY_PASSPHRASE,
      ROGATORY_RELAY_SESSION_SECRET: randomBytes(32).toString('hex'),
    },
  });
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${String(res.status)}`);
  return (await res.json()) as T;
}

/** The relay keys as `rogatory-relay keygen` printed them (the witnesses of the test). */
async function relayKeys(): Promise<{ id: string; key: KeyRef }[]> {
  const keys = await each(NETWORKS, async (n) => ({
    id: `relay@${n}`,
    key: JSON.parse(await readFile(join(relayDir(n), 'relay-keyref.json'), 'utf8')) as KeyRef,
  }));
  keys.push({
    id: RELAY2,
    key: JSON.parse(await readFile(join(relay2Dir(), 'relay-keyref.json'), 'utf8')) as KeyRef,
  });
  return keys;
}

/**
 * A network's chain as a relay serves it (GET /v1/trust/publications/<network>?after=0): each
 * checkpoint verified with the network's root, and the relays whose cosignature line verifies.
 */
async function servedChain(
  relayUrl: string,
  network: Network,
): Promise<{ checkpoint: { size: number }; cosigners: string[] }[]> {
  const { publications } = await getJson<{ publications: { checkpoint: string }[] }>(
    `${relayUrl}/v1/trust/publications/${network}?after=0`,
  );
  const root = anchors.get(network)!.root as KeyRef;
  const witnesses = await relayKeys();
  return publications.map((p) => {
    const { checkpoint } = verifyCheckpoint(p.checkpoint, {
      name: logOrigin(network),
      publicKey: publicKeyOf(root),
    });
    const note = parseNote(p.checkpoint);
    const cosigners = witnesses
      .filter((w) =>
        note.signatures.some(
          (sig) =>
            verifyCosignature(note.text, sig, { name: w.id, publicKey: publicKeyOf(w.key) }) !==
            null,
        ),
      )
      .map((w) => w.id);
    return { checkpoint, cosigners };
  });
}

/** The test world's MLA example, with the parties as the manifests list them (one attachment). */
function mlaContent(from: string, to: string, caseReference: string) {
  const example = exampleContentFor('mla', SN, KZ, buildTestWorld({ now: Date.now() }));
  if (example.kind !== 'request') throw new Error('the example is not a request');
  const party = (address: string) => {
    const m = MEMBERS.find((x) => x.address === address)!;
    return { address, name: m.name, country: m.country };
  };
  return {
    ...example,
    header: {
      ...example.header,
      caseReference,
      requestingAuthority: party(from),
      requestedAuthority: party(to),
    },
  };
}

/** node.json gains trust: { quorum: 1, pollSeconds } (set before `serve`). */
async function setNodeTrust(address: string, pollSeconds: number): Promise<void> {
  const file = join(nodeDir(address), 'node.json');
  const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  await writeFile(
    file,
    `${JSON.stringify({ ...config, trust: { quorum: 1, pollSeconds } }, null, 2)}\n`,
  );
}

/**
 * `rogatory serve` for a node: waits for its URL, logs the admin in, checks it is listed; with
 * `addUsers` creates its officer and approver (first start), else logs them in (a restart).
 */
async function serveNode(
  address: string,
  o: { addUsers: boolean; name?: string },
): Promise<RunningNode> {
  const proc = h.start(
    o.name ?? address,
    'node',
    ['--dir', nodeDir(address), '--json', 'serve', '--port', '0'],
    {
      env: { ROGATORY_PASSPHRASE: NODE_PASSPHRASE, ROGATORY_NODE_METRICS_TOKEN: METRICS_TOKEN },
    },
  );
  const match = await proc.waitForOutput(/"url":\s*"(http:\/\/[^"]+)"/, 90_000);
  const api = new NodeApi(match[1]!);
  const running = { proc, api };
  nodes.set(address, running);
  await api.login(ADMIN.username, ADMIN.password);
  const status = await api.call<{
    address: string;
    listedInManifest: boolean;
    trustedNetworks: string[];
  }>(ADMIN.username, 'GET', '/status');
  expect(status).toMatchObject({ address, listedInManifest: true });
  expect([...status.trustedNetworks].sort()).toEqual(['casc', 'global', 'wacap']);
  const users = USERS[address as keyof typeof USERS];
  for (const [role, user] of [
    ['officer', users.officer],
    ['approver', users.approver],
  ] as const) {
    if (o.addUsers)
      await api.call(ADMIN.username, 'POST', '/users', {
        ...user,
        role,
        clearances: ['restricted'],
      });
    await api.login(user.username, user.password);
  }
  return running;
}

// ------------------------------------------------------------------ steps

let broken: string | undefined;

/** One step: fails at once if an earlier one failed; on failure the error carries the harness report. */
function step(name: string, fn: () => Promise<void>, timeoutMs: number): void {
  it(
    name,
    async () => {
      if (broken !== undefined) throw new Error(`not run: the earlier step "${broken}" failed`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          fn(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              reject(new Error(`step timed out after ${String(timeoutMs / 1000)} s`));
            }, timeoutMs);
          }),
        ]);
      } catch (err) {
        broken = name;
        const report = h.report();
        if (err instanceof Error) {
          err.message = `${err.message}\n\n${report}`;
          throw err;
        }
        throw new Error(`${String(err)}\n\n${report}`);
      } finally {
        clearTimeout(timer);
      }
    },
    timeoutMs + 20_000,
  );
}

beforeAll(async () => {
  await ready();
  h = await Harness.create('rogatory-trust-e2e-');
  for (const d of ['secretariats', 'anchors', 'relays', 'nodes', 'inits'])
    await mkdir(h.path(d), { recursive: true });
});

afterAll(async () => {
  await h.shutdown();
}, 60_000);

describe('issue 10 acceptance: three networks, relays and nodes as separate processes', () => {
  step(
    'three secretariats create WACAP, CASC and the global hub (rogatory-network init, anchor export)',
    async () => {
      await each(NETWORKS, async (n) => {
        const init = await secretariat(n, ['init', '--network', n, '--kdf', 'interactive']);
        const created = init.json<Anchor>();
        // The anchor a secretariat sends to its peers, from `anchor export` (the file travels by mail).
        const exported = await secretariat(n, ['anchor', 'export']);
        const anchor = exported.json<Anchor>();
        expect(anchor).toEqual(created);
        expect(anchor.network).toBe(n);
        expect(anchor.fingerprint).toMatch(/^[0-9a-f]{4}( [0-9a-f]{4})+$/);
        anchors.set(n, anchor);
        await writeFile(anchorFile(n), exported.stdout);
        await writeFile(rootFile(n), `${JSON.stringify(anchor.root, null, 2)}\n`);
      });
      expect(new Set([...anchors.values()].map((a) => a.root.kid)).size).toBe(3);
    },
    90_000,
  );

  step(
    'anchors are exchanged with compared fingerprints: wacap and casc peer with global directly and with each other via global (peer add --via)',
    async () => {
      await each(NETWORKS, async (n) => {
        // One secretariat folder at a time: its draft is rewritten by each command.
        for (const [peer, via] of PEERS[n]) {
          const added = await secretariat(n, [
            'peer',
            'add',
            anchorFile(peer),
            '--fingerprint',
            anchors.get(peer)!.fingerprint,
            ...(via === null ? [] : ['--via', via]),
          ]);
          expect(added.json()).toMatchObject({ network: peer, via });
        }
      });
    },
    90_000,
  );

  step(
    'each network lists its relay (rogatory-relay keygen, relay add) and publishes edition 1',
    async () => {
      for (const n of NETWORKS) relayUrls.set(n, `http://127.0.0.1:${String(await freePort())}`);
      relay2Url = `http://127.0.0.1:${String(await freePort())}`;
      // relay2@wacap: a second wacap relay, listed after the first (relays and nodes ask the
      // first listed one), started only by the fork step with a forked publication.
      const keys: { n: Network; id: string; dir: string; url: string }[] = [
        ...NETWORKS.map((n) => ({ n, id: `relay@${n}`, dir: relayDir(n), url: relayUrls.get(n)! })),
        { n: 'wacap', id: RELAY2, dir: relay2Dir(), url: relay2Url },
      ];
      await each(keys, async (k) => {
        await mkdir(k.dir, { recursive: true });
        const keygen = await h.run('relay', ['keygen', '-o', join(k.dir, 'relay-key.json')], {
          env: { ROGATORY_RELAY_PASSPHRASE: RELAY_PASSPHRASE },
        });
        await writeFile(join(k.dir, 'relay-keyref.json'), keygen.stdout);
      });
      await each(NETWORKS, async (n) => {
        for (const k of keys.filter((x) => x.n === n))
          await secretariat(n, [
            'relay',
            'add',
            '--key',
            join(k.dir, 'relay-keyref.json'),
            '--url',
            k.url,
            ...(k.id === `relay@${n}` ? [] : ['--id', k.id]),
          ]);
        const published = await secretariat(n, ['publish', '--valid-days', '30']);
        expect(published.json()).toMatchObject({ version: 1 });
        editions.set(n, 1);
      });
    },
    120_000,
  );

  step(
    'authorities and PoCs make their keys (rogatory init), are admitted (authority add, poc add) and edition 2 is published',
    async () => {
      // Every node is created against the editions 1 (the own network's first): not listed yet.
      await pool(MEMBERS, 2, async (m) => {
        const n = networkOf(m.address);
        const init = await nodeCli(m.address, [
          'init',
          '--address',
          m.address,
          '--relay-url',
          relayUrls.get(n)!,
          '--relay-id',
          `relay@${n}`,
          ...(m.kind === 'poc' ? ['--poc'] : []),
          '--root',
          rootFile(n),
          '--manifest',
          editionFile(n),
          ...NETWORKS.filter((other) => other !== n).map((other) => editionFile(other)),
          '--admin',
          ADMIN.username,
          '--kdf',
          'interactive',
        ]);
        const result = init.json<{
          address: string;
          role: string;
          listedInManifest: boolean;
          identity: { kid: string };
          encryptionCertificate: { body: { key: { kid: string } } };
        }>();
        expect(result).toMatchObject({
          address: m.address,
          role: m.kind,
          listedInManifest: false,
        });
        inits.set(m.address, {
          identity: result.identity,
          encryptionKid: result.encryptionCertificate.body.key.kid,
        });
        await writeFile(h.path('inits', `${m.address}.json`), init.stdout);
      });
      // The secretariats admit them (the init output travels to the secretariat) and publish.
      await each(['wacap', 'casc'] as const, async (n) => {
        for (const m of MEMBERS.filter((x) => networkOf(x.address) === n)) {
          const from = h.path('inits', `${m.address}.json`);
          const args =
            m.kind === 'authority'
              ? [
                  'authority',
                  'add',
                  '--from',
                  from,
                  '--name',
                  m.name,
                  '--country',
                  m.country,
                  '--competences',
                  'mla,extradition,confiscation',
                  '--languages',
                  'en,fr,ru',
                ]
              : ['poc', 'add', '--from', from, '--name', m.name, '--country', m.country];
          await secretariat(n, args);
        }
        const published = await secretariat(n, ['publish', '--valid-days', '30']);
        expect(published.json()).toMatchObject({ version: 2 });
        editions.set(n, 2);
      });
      for (const n of ['wacap', 'casc'] as const) {
        const edition = JSON.parse(await readFile(editionFile(n), 'utf8')) as {
          body: {
            version: number;
            authorities: { address: string; key: { kid: string } }[];
            pocs: { address: string; key: { kid: string } }[];
          };
        };
        const members = MEMBERS.filter((m) => networkOf(m.address) === n);
        expect(edition.body.version).toBe(2);
        expect(
          [...edition.body.authorities, ...edition.body.pocs].map((a) => [a.address, a.key.kid]),
        ).toEqual(
          expect.arrayContaining(
            members.map((m) => [m.address, inits.get(m.address)!.identity.kid]),
          ),
        );
      }
    },
    200_000,
  );

  step(
    'relay@wacap, relay@global and relay@casc start from the published editions (rogatory-relay start)',
    async () => {
      await each(NETWORKS, async (n) => {
        relays.set(
          n,
          await startRelay({
            id: `relay@${n}`,
            network: n,
            dir: relayDir(n),
            url: relayUrls.get(n)!,
          }),
        );
      });
      await each(NETWORKS, (n) =>
        waitFor(
          `relay@${n} /readyz`,
          async () => {
            const relay = relays.get(n)!;
            if (!relay.alive) throw new Error(`relay@${n} exited:\n${relay.output}`);
            return (await answers200(`${relayUrls.get(n)!}/readyz`)) ? true : undefined;
          },
          90_000,
          250,
        ),
      );
    },
    110_000,
  );

  step(
    'the nodes of Senegal and Kazakhstan start (rogatory serve) with the editions 2 in their trust folders; officers and approvers are added',
    async () => {
      await each(
        MEMBERS.filter((m) => m.serve),
        async (m) => {
          // The editions 2 are copied into the node's trust folder by hand here: the relays get
          // no publication before the publications step, from which on the node pulls them from
          // its relay every second (trust.pollSeconds 1) and checks a second source.
          for (const n of NETWORKS)
            await writeFile(
              join(nodeDir(m.address), 'trust', `${n}.json`),
              await readFile(editionFile(n)),
            );
          // ml-moj@wacap's node polls the trust logs once, at start, and not again in this test:
          // it stays on the edition before its revocation (as the holder of a compromised key
          // would), so that what refuses its submission is the relay.
          await setNodeTrust(m.address, m.address === ML ? 86_400 : 1);
          await serveNode(m.address, { addUsers: true });
        },
      );
    },
    120_000,
  );

  step(
    'a Senegalese officer drafts an MLA request to the Kazakh prosecutor with an attachment; an approver (four eyes) sends it',
    async () => {
      const sn = node(SN);
      const users = USERS[SN];
      // The content of the test world's MLA example, with the parties as the manifests list them.
      const example = exampleContentFor('mla', SN, KZ, buildTestWorld({ now: Date.now() }));
      if (example.kind !== 'request') throw new Error('the example is not a request');
      const party = (address: string) => {
        const m = MEMBERS.find((x) => x.address === address)!;
        return { address, name: m.name, country: m.country };
      };
      const content = {
        ...example,
        header: {
          ...example.header,
          caseReference: 'SN-PRD-2026-0042',
          requestingAuthority: party(SN),
          requestedAuthority: party(KZ),
        },
      };
      const attachment = h.path('bank-records.pdf');
      const bytes = Buffer.concat([Buffer.from('%PDF-1.7\n% e2e\n'), randomBytes(300_000)]);
      await writeFile(attachment, bytes);
      dossier.attachmentSha256 = createHash('sha256').update(bytes).digest('hex');
      const draft = await sn.api.call<{ id: string }>(users.officer.username, 'POST', '/dossiers', {
        content,
        attachments: [{ path: attachment, mediaType: 'application/pdf' }],
      });
      dossier.requestId = draft.id;
      await sn.api.call(users.officer.username, 'POST', `/dossiers/${draft.id}/submit`);
      await expect(
        sn.api.call(users.officer.username, 'POST', `/dossiers/${draft.id}/approve`),
      ).rejects.toMatchObject({ code: 'NOT_AUTHORISED' });
      const approved = await sn.api.call<{ envelopeId: string; status: string }>(
        users.approver.username,
        'POST',
        `/dossiers/${draft.id}/approve`,
      );
      expect(approved.status).toBe('approved');
      dossier.envelopeId = approved.envelopeId;
    },
    60_000,
  );

  step(
    'the dossier crosses relay@wacap -> relay@global -> relay@casc and is delivered: the evidences come back to Senegal',
    async () => {
      const sn = node(SN);
      const officer = USERS[SN].officer.username;
      await waitFor(
        'SubmissionAcceptance, RelayAcceptance x2 and Delivery at the sender',
        async () => {
          const details = await sn.api.call<{
            status: string;
            evidences: { kind: string; issuer: string }[];
          }>(officer, 'GET', `/dossiers/${dossier.requestId}`);
          const has = (kind: string, issuer: string) =>
            details.evidences.some((e) => e.kind === kind && e.issuer === issuer);
          return has('submission-acceptance', 'relay@wacap') &&
            has('relay-acceptance', 'relay@global') &&
            has('relay-acceptance', 'relay@casc') &&
            has('delivery', KZ)
            ? details
            : undefined;
        },
        90_000,
        300,
      );
      const details = await sn.api.call<{ status: string }>(
        officer,
        'GET',
        `/dossiers/${dossier.requestId}`,
      );
      expect(details.status).toBe('delivered');
    },
    100_000,
  );

  step(
    'the Kazakh prosecutor finds it in the inbox and opens it (sender verified, attachment intact); the Retrieval evidence reaches Senegal',
    async () => {
      const kz = node(KZ);
      const officer = USERS[KZ].officer.username;
      const received = await waitFor(
        `the request in ${KZ}'s inbox`,
        async () => {
          const list = await kz.api.call<{
            dossiers: { id: string; envelopeId: string | null; status: string }[];
          }>(officer, 'GET', '/dossiers?direction=in');
          return list.dossiers.find((d) => d.envelopeId === dossier.envelopeId);
        },
        60_000,
        300,
      );
      expect(received.status).toBe('received');
      dossier.receivedId = received.id;
      const opened = await kz.api.call<{
        content: { kind: string; header: { caseReference: string } };
        attachments: { sha256: string; size: number }[];
        signed?: { sender: string; recipients: string[] };
      }>(officer, 'POST', `/dossiers/${received.id}/open`);
      expect(opened.signed).toMatchObject({ sender: SN, recipients: expect.arrayContaining([KZ]) });
      expect(opened.content.kind).toBe('request');
      expect(opened.content.header.caseReference).toBe('SN-PRD-2026-0042');
      expect(opened.attachments.map((a) => a.sha256)).toEqual([dossier.attachmentSha256]);
      const sn = node(SN);
      await waitFor(
        'the Retrieval evidence at the sender',
        async () => {
          const details = await sn.api.call<{ evidences: { kind: string; issuer: string }[] }>(
            USERS[SN].officer.username,
            'GET',
            `/dossiers/${dossier.requestId}`,
          );
          return details.evidences.some((e) => e.kind === 'retrieval' && e.issuer === KZ)
            ? true
            : undefined;
        },
        60_000,
        300,
      );
      const chain = await sn.api.call<{ chain?: { ordered: string[] }; error?: string }>(
        USERS[SN].officer.username,
        'GET',
        `/dossiers/${dossier.requestId}/evidences`,
      );
      expect(chain.error).toBeUndefined();
      expect(chain.chain?.ordered.length).toBeGreaterThanOrEqual(5);
    },
    90_000,
  );

  // ---------------------------------------------------------------- trust (issue 10)
  // Paths: secretariats/<net>, relays/<net>, nodes/<address>, inits/<address>.json in the
  // harness folder.

  /*
   * D1/D2/D3. The editions 1 and 2 above are already in each secretariat's log.db, one
   * publication each: `rogatory-network push --relay <own relay>` gives them to the relay, which
   * collects the cosignatures of its direct peers' relays; the peer relays fetch each other's
   * chains on their own (trust.pollSeconds 1). From here the relays take new editions live.
   */
  step(
    'publications reach the relays without copying files: each secretariat pushes its chain, peer relays cosign',
    async () => {
      await each(NETWORKS, async (n) => {
        const result = (
          await secretariat(n, ['push', '--relay', relayUrls.get(n)!])
        ).json<PushResult>();
        expect(result).toMatchObject({ network: n, relaySize: 0 });
        // One publication per edition published so far, each acknowledged.
        expect(result.pushed).toHaveLength(editions.get(n)!);
        const last = result.pushed.at(-1)!;
        expect(last).toMatchObject({ size: result.size, edition: editions.get(n) });
        expect(last.cosigners).toEqual(expect.arrayContaining(DIRECT_WITNESSES[n]));
        logSizes.set(n, result.size);
      });
      // The hub holds all three chains: its own pushed, the others fetched from their relays.
      const held = await waitFor(
        'relay@global to hold the three chains',
        async () => {
          const { networks } = await getJson<{ networks: RelayNetwork[] }>(
            `${relayUrls.get('global')!}/v1/trust/networks`,
          );
          return NETWORKS.every(
            (n) => networks.find((x) => x.network === n)?.size === logSizes.get(n),
          )
            ? networks
            : undefined;
        },
        30_000,
        250,
      );
      // The same tree as the network's own relay holds, and the edition published last.
      for (const n of NETWORKS) {
        const own = await getJson<{ networks: RelayNetwork[] }>(
          `${relayUrls.get(n)!}/v1/trust/networks`,
        );
        const mine = own.networks.find((x) => x.network === n);
        expect(mine).toMatchObject({ size: logSizes.get(n), edition: editions.get(n) });
        expect(held.find((x) => x.network === n)).toEqual(mine);
      }
      // A peer reached via the hub: relay@wacap fetched casc's chain (and relay@casc wacap's)
      // through relay@global, with the witness cosignature lines kept.
      for (const [at, of] of [
        ['wacap', 'casc'],
        ['casc', 'wacap'],
      ] as const)
        await waitFor(
          `relay@${at} to serve ${of}'s chain cosigned by ${DIRECT_WITNESSES[of].join(', ')}`,
          async () => {
            const chain = await servedChain(relayUrls.get(at)!, of);
            const newest = chain.at(-1);
            if (newest === undefined || newest.checkpoint.size !== logSizes.get(of))
              return undefined;
            return DIRECT_WITNESSES[of].every((w) => newest.cosigners.includes(w))
              ? true
              : undefined;
          },
          30_000,
          250,
        );
    },
    90_000,
  );

  /*
   * D4. The nodes run with trust: { quorum: 1, pollSeconds: 1 } in node.json (set before `serve`):
   * they pull each trusted network's publications from their relay, with the quorum of witness
   * cosignatures on the newest checkpoint, and check a second source (another relay of that
   * network, when the manifest lists one). `rogatory trust status` runs beside `serve`.
   */
  step(
    'nodes pick up the editions as publications, with the witnesses quorum (trust.quorum 1, trust.pollSeconds 1)',
    async () => {
      await each([SN, KZ], async (address) => {
        const { api } = node(address);
        const status = await waitFor(
          `${address} to hold every network's log (GET /api/v1/status)`,
          async () => {
            const s = await api.call<NodeStatusView>(ADMIN.username, 'GET', '/status');
            return NETWORKS.every(
              (n) => s.trust.networks.find((x) => x.network === n)?.logSize === logSizes.get(n),
            )
              ? s
              : undefined;
          },
          45_000,
          300,
        );
        expect(status.trust.openAlarms).toBe(0);
        for (const n of NETWORKS)
          expect(status.trust.networks.find((x) => x.network === n)).toEqual({
            network: n,
            edition: editions.get(n),
            logSize: logSizes.get(n),
            forkAlarm: false,
          });
        const trust = (await nodeCli(address, ['trust', 'status'])).json<TrustStatusView>();
        expect(trust).toMatchObject({ quorum: 1, pollSeconds: 1, openAlarms: 0, forksTotal: 0 });
        for (const n of NETWORKS) {
          const t = trust.networks.find((x) => x.network === n);
          expect(t).toMatchObject({
            edition: editions.get(n),
            logEdition: editions.get(n),
            logSize: logSizes.get(n),
            alarms: [],
          });
          expect(t?.cosigners).toEqual(expect.arrayContaining(DIRECT_WITNESSES[n]));
        }
      });
    },
    90_000,
  );

  /*
   * D5. poc-sn@wacap and poc-kz@casc were made by `rogatory init --poc` above and admitted by
   * `rogatory-network poc add --from` in edition 2 (published, then pushed by the publications
   * step): they run as nodes (`rogatory serve`) with an officer and an approver each.
   */
  step(
    'the PoCs run as nodes (rogatory init --poc) and can be written to',
    async () => {
      await each([POC_SN, POC_KZ], async (address) => {
        for (const n of NETWORKS)
          await writeFile(
            join(nodeDir(address), 'trust', `${n}.json`),
            await readFile(editionFile(n)),
          );
        await setNodeTrust(address, 1);
        await serveNode(address, { addUsers: true });
      });
      // Senegal's directory lists both PoCs, each vouched by its network's edition.
      const { entries } = await node(SN).api.call<DirectoryView>(
        USERS[SN].officer.username,
        'GET',
        '/directory?text=contact',
      );
      for (const poc of [POC_SN, POC_KZ])
        expect(entries.find((e) => e.address === poc)).toMatchObject({
          role: 'poc',
          network: networkOf(poc),
        });
    },
    120_000,
  );

  /*
   * D5. An introduction request is a sealed dossier like any other (content kind
   * introduction-request): officer drafts, approver sends (four eyes).
   */
  step(
    'Senegal asks the WACAP PoC for a competent authority in Kazakhstan (introduce request)',
    async () => {
      const sn = node(SN);
      const users = USERS[SN];
      const draft = await sn.api.call<{ id: string; status: string }>(
        users.officer.username,
        'POST',
        '/introductions/requests',
        {
          to: POC_SN,
          country: 'KZ',
          requestType: 'mla',
          languages: ['en'],
          note: 'bank records',
          caseReference: 'SN-PRD-2026-0042',
          submit: true,
        },
      );
      expect(draft.status).toBe('awaiting-approval');
      await expect(
        sn.api.call(users.officer.username, 'POST', `/dossiers/${draft.id}/approve`),
      ).rejects.toMatchObject({ code: 'NOT_AUTHORISED' });
      await sn.api.call(users.approver.username, 'POST', `/dossiers/${draft.id}/approve`);
      intro.requestId = draft.id;
      const poc = node(POC_SN);
      const entry = await waitFor(
        `the introduction request in ${POC_SN}'s list`,
        async () =>
          (
            await poc.api.call<IntroductionsView>(
              USERS[POC_SN].officer.username,
              'GET',
              '/introductions',
            )
          ).inbox.find((e) => e.requester === SN && e.state === 'open'),
        60_000,
        300,
      );
      expect(entry).toMatchObject({
        role: 'poc',
        from: SN,
        country: 'KZ',
        requestType: 'mla',
        caseReference: 'SN-PRD-2026-0042',
      });
      intro.pocSnEntryId = entry.id;
      const status = await sn.api.call<IntroductionsView>(
        users.officer.username,
        'GET',
        '/introductions',
      );
      expect(status.requests.find((r) => r.id === draft.id)).toMatchObject({
        poc: POC_SN,
        outcome: 'pending',
      });
    },
    90_000,
  );

  /*
   * D4/D5. The WACAP PoC finds the Kazakh authority in the directory (vouched by the casc
   * edition), and refers the request to the CASC PoC: the referral crosses relay@wacap ->
   * relay@global -> relay@casc.
   */
  step(
    'the WACAP PoC searches the directory and refers the request to the CASC PoC (introduce refer)',
    async () => {
      const poc = node(POC_SN);
      const users = USERS[POC_SN];
      const { entries } = await poc.api.call<DirectoryView>(
        users.officer.username,
        'GET',
        '/directory?country=KZ&type=mla&language=en',
      );
      expect(entries.find((e) => e.address === KZ)).toMatchObject({
        role: 'authority',
        network: 'casc',
        vouchedBy: [expect.objectContaining({ kind: 'manifest', network: 'casc' })],
      });
      // A referral goes to a point of contact only: the authority itself is refused, nothing sent.
      const refused = await poc.api
        .call(users.officer.username, 'POST', `/introductions/${intro.pocSnEntryId}/refer`, {
          to: KZ,
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(refused).toMatchObject({ code: 'RECIPIENT_UNKNOWN' });
      const referral = await poc.api.call<{ dossierId: string }>(
        users.officer.username,
        'POST',
        `/introductions/${intro.pocSnEntryId}/refer`,
        { to: POC_KZ, remarks: 'Kazakh competent authority for MLA sought' },
      );
      await poc.api.call(
        users.approver.username,
        'POST',
        `/dossiers/${referral.dossierId}/approve`,
      );
      const pocKz = node(POC_KZ);
      const entry = await waitFor(
        `the referral in ${POC_KZ}'s list`,
        async () =>
          (
            await pocKz.api.call<IntroductionsView>(
              USERS[POC_KZ].officer.username,
              'GET',
              '/introductions',
            )
          ).inbox.find((e) => e.requester === SN && e.state === 'open'),
        60_000,
        300,
      );
      expect(entry).toMatchObject({ role: 'referee', from: POC_SN, country: 'KZ' });
      intro.pocKzEntryId = entry.id;
      const mine = await poc.api.call<IntroductionsView>(
        users.officer.username,
        'GET',
        '/introductions',
      );
      expect(mine.inbox.find((e) => e.id === intro.pocSnEntryId)).toMatchObject({
        state: 'referred',
        answer: { outcome: 'referred', to: POC_KZ },
      });
    },
    90_000,
  );

  /*
   * D5. The CASC PoC signs an Introduction (subject kz-gpo@casc, audience sn-moj@wacap) in an
   * introduction-answer to Senegal, with a copy to Kazakhstan. Senegal's directory then lists the
   * Kazakh prosecutor "introduced by poc-kz@casc"; Kazakhstan sees it was introduced. A tampered
   * copy given out of band is refused with its code.
   */
  step(
    'the CASC PoC introduces the Kazakh prosecutor; both sides see the introduction (introduce issue, directory)',
    async () => {
      const pocKz = node(POC_KZ);
      const users = USERS[POC_KZ];
      const issued = await pocKz.api.call<{
        dossierId: string;
        introduction: { body: { issuer: string; subject: string; audience: string } };
      }>(users.officer.username, 'POST', `/introductions/${intro.pocKzEntryId}/issue`, {
        authority: KZ,
        note: 'central authority for MLA',
      });
      expect(issued.introduction.body).toMatchObject({
        issuer: POC_KZ,
        subject: KZ,
        audience: SN,
      });
      // Not exported before it is approved (four eyes).
      const before = await pocKz.api.call<{ introductions: unknown[] }>(
        users.officer.username,
        'GET',
        '/introductions/export',
      );
      expect(before.introductions).toHaveLength(0);
      await pocKz.api.call(
        users.approver.username,
        'POST',
        `/dossiers/${issued.dossierId}/approve`,
      );
      const exported = await pocKz.api.call<{ introductions: unknown[] }>(
        users.officer.username,
        'GET',
        '/introductions/export',
      );
      expect(exported.introductions).toEqual([issued.introduction]);

      const sn = node(SN);
      const officer = USERS[SN].officer.username;
      const view = await waitFor(
        `the introduction at ${SN}`,
        async () => {
          const v = (
            await sn.api.call<IntroductionsView>(officer, 'GET', '/introductions')
          ).requests.find((r) => r.id === intro.requestId);
          return v && v.outcome !== 'pending' ? v : undefined;
        },
        60_000,
        300,
      );
      expect(view).toMatchObject({ outcome: 'introduced', answeredBy: POC_KZ, code: null });
      expect(view.introductions).toEqual([
        expect.objectContaining({ issuer: POC_KZ, subject: KZ, audience: SN }),
      ]);
      const { entries } = await sn.api.call<DirectoryView>(officer, 'GET', '/directory?country=KZ');
      expect(entries.find((e) => e.address === KZ)?.vouchedBy).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ kind: 'introduction', issuer: POC_KZ, network: 'casc' }),
        ]),
      );
      // The CLI shows the same (rogatory directory, beside serve).
      const cli = (
        await nodeCli(SN, ['--user', officer, 'directory', '--country', 'KZ'], {
          env: { ROGATORY_PASSWORD: USERS[SN].officer.password },
        })
      ).stdout;
      expect(cli).toContain('introduction');
      expect(cli).toContain(POC_KZ);

      const kz = node(KZ);
      const copy = await waitFor(
        `the copy of the introduction at ${KZ}`,
        async () =>
          (
            await kz.api.call<IntroductionsView>(
              USERS[KZ].officer.username,
              'GET',
              '/introductions',
            )
          ).introducedTo.find((x) => x.requester === SN),
        60_000,
        300,
      );
      expect(copy).toMatchObject({ poc: POC_KZ, code: null });
      expect(copy.introductions).toEqual([
        expect.objectContaining({ issuer: POC_KZ, subject: KZ, audience: SN }),
      ]);

      // Negative: the introduction with its audience changed no longer verifies.
      const forged = structuredClone(issued.introduction);
      forged.body.audience = ML;
      const refused = await sn.api
        .call(officer, 'POST', '/introductions/receive', { introduction: forged })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(refused).toMatchObject({ code: 'VERIFICATION_FAILED' });
    },
    90_000,
  );

  /*
   * The MLA request in its introduced case: sent, opened, answered (full execution, four eyes),
   * and Senegal sees the request executed.
   */
  step(
    'a dossier goes through on the introduction (the MLA request above, now in its introduced case)',
    async () => {
      const sn = node(SN);
      const kz = node(KZ);
      const attachment = h.path('bank-records-2.pdf');
      await writeFile(attachment, Buffer.from('%PDF-1.7\n% e2e introduced case\n'));
      // The introduction request opened a case of its own under the same case reference as the
      // first request; the MLA request goes into that introduced case, named by its id.
      const { caseId } = await sn.api.call<{ caseId: string }>(
        USERS[SN].officer.username,
        'GET',
        `/dossiers/${intro.requestId}`,
      );
      second.caseId = caseId;
      const draft = await sn.api.call<{ id: string }>(
        USERS[SN].officer.username,
        'POST',
        '/dossiers',
        {
          content: mlaContent(SN, KZ, 'SN-PRD-2026-0042'),
          attachments: [{ path: attachment, mediaType: 'application/pdf' }],
          caseId,
        },
      );
      expect(
        (
          await sn.api.call<{ caseId: string }>(
            USERS[SN].officer.username,
            'GET',
            `/dossiers/${draft.id}`,
          )
        ).caseId,
      ).toBe(caseId);
      await sn.api.call(USERS[SN].officer.username, 'POST', `/dossiers/${draft.id}/submit`);
      const approved = await sn.api.call<{ envelopeId: string }>(
        USERS[SN].approver.username,
        'POST',
        `/dossiers/${draft.id}/approve`,
      );
      second.requestId = draft.id;
      const received = await waitFor(
        `the second request in ${KZ}'s inbox`,
        async () =>
          (
            await kz.api.call<{ dossiers: { id: string; envelopeId: string | null }[] }>(
              USERS[KZ].officer.username,
              'GET',
              '/dossiers?direction=in',
            )
          ).dossiers.find((d) => d.envelopeId === approved.envelopeId),
        60_000,
        300,
      );
      second.receivedId = received.id;
      const opened = await kz.api.call<{ content: { header: { caseReference: string } } }>(
        USERS[KZ].officer.username,
        'POST',
        `/dossiers/${received.id}/open`,
      );
      expect(opened.content.header.caseReference).toBe('SN-PRD-2026-0042');
      const answer = await kz.api.call<{ id: string }>(
        USERS[KZ].officer.username,
        'POST',
        `/dossiers/${received.id}/reply`,
        {
          content: {
            answerType: 'full-execution',
            language: 'en',
            execution: {
              results: [
                {
                  description: 'Certified bank records of the account obtained from the bank.',
                  executedOn: '2026-01-10',
                },
              ],
            },
          },
        },
      );
      await kz.api.call(USERS[KZ].officer.username, 'POST', `/dossiers/${answer.id}/submit`);
      await kz.api.call(USERS[KZ].approver.username, 'POST', `/dossiers/${answer.id}/approve`);
      await waitFor(
        `the request executed at ${SN}`,
        async () =>
          (
            await sn.api.call<{ status: string }>(
              USERS[SN].officer.username,
              'GET',
              `/dossiers/${draft.id}`,
            )
          ).status === 'executed'
            ? true
            : undefined,
        60_000,
        300,
      );
    },
    90_000,
  );

  /*
   * D6. kz-gpo@casc's operator stops `serve` (the CLI and the served node would otherwise hold
   * different key sets), rotates the encryption key, and starts it again; casc lists the new
   * certificate (authority update --cert), publishes and pushes. Once Senegal holds that edition,
   * its next dossier is sealed to the new key (the key wrap of the sealed dossier, from a sealed
   * export bundle); Kazakhstan opens both the dossier sealed to the old key and the new one.
   */
  step(
    'the Kazakh prosecutor rotates its encryption key: the next dossier uses the new key, the old one stays readable',
    async () => {
      const certFile = h.path('kz-enc-2.json');
      await node(KZ).proc.stop();
      const rotated = (await nodeCli(KZ, ['keys', 'rotate-encryption', '--out', certFile])).json<{
        kid: string;
      }>();
      const oldKid = inits.get(KZ)!.encryptionKid;
      expect(rotated.kid).not.toBe(oldKid);
      const [kz] = await Promise.all([
        serveNode(KZ, { addUsers: false, name: `${KZ} (restarted)` }),
        (async () => {
          await secretariat('casc', ['authority', 'update', KZ, '--cert', certFile]);
          const published = await secretariat('casc', ['publish', '--valid-days', '30']);
          const version = editions.get('casc')! + 1;
          expect(published.json()).toMatchObject({ version });
          editions.set('casc', version);
          const pushed = (
            await secretariat('casc', ['push', '--relay', relayUrls.get('casc')!])
          ).json<PushResult>();
          expect(pushed.pushed.at(-1)).toMatchObject({ edition: version });
          expect(pushed.pushed.at(-1)!.cosigners).toEqual(
            expect.arrayContaining(DIRECT_WITNESSES.casc),
          );
          logSizes.set('casc', pushed.size);
        })(),
      ]);
      const sn = node(SN);
      await waitFor(
        `${SN} to hold casc edition ${String(editions.get('casc'))}`,
        async () => {
          const s = await sn.api.call<NodeStatusView>(ADMIN.username, 'GET', '/status');
          return s.trust.networks.find((x) => x.network === 'casc')?.edition ===
            editions.get('casc')
            ? true
            : undefined;
        },
        30_000,
        300,
      );
      const attachment = h.path('bank-records-3.pdf');
      await writeFile(attachment, Buffer.from('%PDF-1.7\n% e2e after rotation\n'));
      const draft = await sn.api.call<{ id: string }>(
        USERS[SN].officer.username,
        'POST',
        '/dossiers',
        {
          content: mlaContent(SN, KZ, 'SN-PRD-2026-0042'),
          attachments: [{ path: attachment, mediaType: 'application/pdf' }],
          caseId: second.caseId,
        },
      );
      await sn.api.call(USERS[SN].officer.username, 'POST', `/dossiers/${draft.id}/submit`);
      const approved = await sn.api.call<{ envelopeId: string }>(
        USERS[SN].approver.username,
        'POST',
        `/dossiers/${draft.id}/approve`,
      );
      const wrapKid = async (id: string): Promise<string | undefined> => {
        const dir = h.path('exports', id);
        await sn.api.call(USERS[SN].officer.username, 'POST', `/dossiers/${id}/export`, {
          dir,
          sealed: true,
        });
        const bundle = JSON.parse(await readFile(join(dir, 'bundle.json'), 'utf8')) as {
          sealed: string;
        };
        const sealed = JSON.parse(Buffer.from(bundle.sealed, 'base64url').toString('utf8')) as {
          wraps: { to: string; kid: string }[];
        };
        return sealed.wraps.find((w) => w.to === KZ)?.kid;
      };
      expect(await wrapKid(draft.id)).toBe(rotated.kid);
      expect(await wrapKid(second.requestId)).toBe(oldKid);

      const officer = USERS[KZ].officer.username;
      const received = await waitFor(
        `the dossier sealed to the new key in ${KZ}'s inbox`,
        async () =>
          (
            await kz.api.call<{ dossiers: { id: string; envelopeId: string | null }[] }>(
              officer,
              'GET',
              '/dossiers?direction=in',
            )
          ).dossiers.find((d) => d.envelopeId === approved.envelopeId),
        60_000,
        300,
      );
      for (const id of [received.id, second.receivedId, dossier.receivedId]) {
        const opened = await kz.api.call<{ content: { header: { caseReference: string } } }>(
          officer,
          'POST',
          `/dossiers/${id}/open`,
        );
        expect(opened.content.header.caseReference).toBe('SN-PRD-2026-0042');
      }
      // Once Kazakhstan holds the edition, `rogatory keys list` shows the new key current and
      // listed, the old one kept (what was sealed to it stays readable).
      await waitFor(
        `${KZ} to hold casc edition ${String(editions.get('casc'))}`,
        async () => {
          const s = await kz.api.call<NodeStatusView>(ADMIN.username, 'GET', '/status');
          return s.trust.networks.find((x) => x.network === 'casc')?.edition ===
            editions.get('casc')
            ? true
            : undefined;
        },
        30_000,
        300,
      );
      const { keys } = (await nodeCli(KZ, ['keys', 'list'])).json<{
        keys: { kind: string; kid: string; state: string; listed: boolean }[];
      }>();
      expect(keys.find((k) => k.kid === rotated.kid)).toMatchObject({
        kind: 'encryption',
        state: 'current',
        listed: true,
      });
      expect(keys.some((k) => k.kid === oldKid)).toBe(true);
    },
    150_000,
  );

  /*
   * D6. ml-moj@wacap (admitted in edition 2, served, its trust polled only at start) sends
   * Kazakhstan a request, received; then another while kz-gpo@casc's node is stopped (it waits
   * in the mailbox at relay@casc); a third draft awaits approval. Then wacap revokes Mali,
   * publishes and pushes; relay@wacap applies the edition live (no restart) and refuses the
   * submission (SENDER_REVOKED, the relay API's code for a revoked sender key); Senegal, once it
   * holds the edition, refuses to seal to it (RECIPIENT_REVOKED); Kazakhstan, given the edition
   * (trust sync) and started again, quarantines the waiting dossier (KEY_REVOKED) and marks the
   * one received before (signerRevoked).
   */
  step(
    'a revoked authority is refused: relay@wacap refuses its submissions, Senegal stops sealing to it, Kazakhstan quarantines its new dossiers and marks the older ones',
    async () => {
      const ml = node(ML);
      const mlUsers = USERS[ML];
      const attachment = h.path('ml-records.pdf');
      await writeFile(attachment, Buffer.from('%PDF-1.7\n% ml e2e\n'));
      const revocation = editions.get('wacap')! + 1;
      /** Mali drafts, submits and (another user) approves a request to Kazakhstan. */
      const mlSends = async (
        caseReference: string,
      ): Promise<{ id: string; envelopeId: string }> => {
        const draft = await ml.api.call<{ id: string }>(
          mlUsers.officer.username,
          'POST',
          '/dossiers',
          {
            content: mlaContent(ML, KZ, caseReference),
            attachments: [{ path: attachment, mediaType: 'application/pdf' }],
          },
        );
        await ml.api.call(mlUsers.officer.username, 'POST', `/dossiers/${draft.id}/submit`);
        const sent = await ml.api.call<{ envelopeId: string }>(
          mlUsers.approver.username,
          'POST',
          `/dossiers/${draft.id}/approve`,
        );
        return { id: draft.id, envelopeId: sent.envelopeId };
      };
      // Before the revocation: a dossier from Mali that Kazakhstan receives (marked later) ...
      const older = await mlSends('ML-PG-2026-0005');
      const olderAtKz = await waitFor(
        `Mali's first request in ${KZ}'s inbox`,
        async () =>
          (
            await node(KZ).api.call<{ dossiers: { id: string; envelopeId: string | null }[] }>(
              USERS[KZ].officer.username,
              'GET',
              '/dossiers?direction=in',
            )
          ).dossiers.find((d) => d.envelopeId === older.envelopeId),
        60_000,
        300,
      );
      // ... and one accepted by the relays while Kazakhstan's node is stopped: it waits in
      // kz-gpo@casc's mailbox at relay@casc until after the revocation.
      await node(KZ).proc.stop();
      const late = await mlSends('ML-PG-2026-0006');
      await waitFor(
        `relay@casc to accept Mali's second request`,
        async () => {
          const d = await ml.api.call<{ evidences: { kind: string; issuer: string }[] }>(
            mlUsers.officer.username,
            'GET',
            `/dossiers/${late.id}`,
          );
          return d.evidences.some((e) => e.kind === 'relay-acceptance' && e.issuer === 'relay@casc')
            ? true
            : undefined;
        },
        60_000,
        300,
      );
      const [draftId] = await Promise.all([
        (async () => {
          // Mali drafts a request to Kazakhstan; it awaits approval while wacap revokes Mali.
          const draft = await ml.api.call<{ id: string }>(
            mlUsers.officer.username,
            'POST',
            '/dossiers',
            {
              content: mlaContent(ML, KZ, 'ML-PG-2026-0007'),
              attachments: [{ path: attachment, mediaType: 'application/pdf' }],
            },
          );
          await ml.api.call(mlUsers.officer.username, 'POST', `/dossiers/${draft.id}/submit`);
          return draft.id;
        })(),
        (async () => {
          const revoked = (
            await secretariat('wacap', ['revoke', ML, '--reason', 'key-compromise'])
          ).json<{ kid: string }[]>();
          expect(revoked.map((r) => r.kid)).toContain(inits.get(ML)!.identity.kid);
          const published = await secretariat('wacap', ['publish', '--valid-days', '30']);
          expect(published.json()).toMatchObject({ version: revocation });
          editions.set('wacap', revocation);
        })(),
      ]);
      const pushed = (
        await secretariat('wacap', ['push', '--relay', relayUrls.get('wacap')!])
      ).json<PushResult>();
      expect(pushed.pushed.at(-1)).toMatchObject({ edition: revocation });
      expect(pushed.pushed.at(-1)!.cosigners).toEqual(
        expect.arrayContaining(DIRECT_WITNESSES.wacap),
      );
      logSizes.set('wacap', pushed.size);
      const { networks } = await getJson<{ networks: RelayNetwork[] }>(
        `${relayUrls.get('wacap')!}/v1/trust/networks`,
      );
      expect(networks.find((x) => x.network === 'wacap')?.edition).toBe(revocation);
      expect(relays.get('wacap')!.alive).toBe(true);

      // The node of Mali, still on the edition before, approves and sends: relay@wacap refuses
      // the submission (relay API code SENDER_REVOKED for a revoked sender key); the node keeps
      // it as a failed submission.
      const approved = await ml.api.call<{ status: string }>(
        mlUsers.approver.username,
        'POST',
        `/dossiers/${draftId}/approve`,
      );
      expect(approved.status).toBe('approved');
      const failed = await waitFor(
        'the refused submission at the node of Mali',
        async () => {
          const d = await ml.api.call<{
            status: string;
            evidences: { kind: string }[];
            queued: { kind: string; state: string; lastError: string | null }[];
          }>(mlUsers.officer.username, 'GET', `/dossiers/${draftId}`);
          return d.queued.some((q) => q.kind === 'submission' && q.state === 'failed')
            ? d
            : undefined;
        },
        30_000,
        300,
      );
      expect(failed.queued.find((q) => q.kind === 'submission')?.lastError).toBe('SENDER_REVOKED');
      expect(failed.evidences.some((e) => e.kind === 'submission-acceptance')).toBe(false);

      // Senegal takes the edition from relay@wacap, then refuses to seal to the revoked authority.
      const sn = node(SN);
      await waitFor(
        `${SN} to hold wacap edition ${String(revocation)}`,
        async () => {
          const s = await sn.api.call<NodeStatusView>(ADMIN.username, 'GET', '/status');
          return s.trust.networks.find((x) => x.network === 'wacap')?.edition === revocation
            ? true
            : undefined;
        },
        30_000,
        300,
      );
      const refused = await sn.api
        .call(USERS[SN].officer.username, 'POST', '/dossiers', {
          content: mlaContent(SN, ML, 'SN-PRD-2026-0043'),
          attachments: [{ path: attachment, mediaType: 'application/pdf' }],
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(refused).toMatchObject({ status: 422, code: 'RECIPIENT_REVOKED' });

      // Kazakhstan takes the edition (rogatory trust sync, node stopped), then starts: the dossier
      // waiting in its mailbox, from the revoked key, is quarantined (KEY_REVOKED); the one
      // received before is kept, marked as signed by a since-revoked key.
      await waitFor(
        `relay@casc to hold wacap edition ${String(revocation)}`,
        async () => {
          const { networks } = await getJson<{ networks: RelayNetwork[] }>(
            `${relayUrls.get('casc')!}/v1/trust/networks`,
          );
          return networks.find((x) => x.network === 'wacap')?.edition === revocation
            ? true
            : undefined;
        },
        30_000,
        300,
      );
      await nodeCli(KZ, ['trust', 'sync']);
      const kz = await serveNode(KZ, { addUsers: false, name: `${KZ} (after the revocation)` });
      const quarantined = await waitFor(
        `Mali's second request quarantined at ${KZ}`,
        async () =>
          (
            await kz.api.call<{
              quarantine: { envelopeId: string | null; sender: string; code: string }[];
            }>(ADMIN.username, 'GET', '/quarantine')
          ).quarantine.find((q) => q.envelopeId === late.envelopeId),
        60_000,
        300,
      );
      expect(quarantined).toMatchObject({ sender: ML, code: 'KEY_REVOKED' });
      const marked = await kz.api.call<{
        status: string;
        signerRevoked?: { kid: string; reason: string };
      }>(USERS[KZ].officer.username, 'GET', `/dossiers/${olderAtKz.id}`);
      expect(marked.signerRevoked).toMatchObject({
        kid: inits.get(ML)!.identity.kid,
        reason: 'key-compromise',
      });
    },
    200_000,
  );

  /*
   * D4. A fork made with the genuine root key, as a compromised secretariat would: a copy of the
   * wacap folder publishes another edition at the same log size. The genuine one goes to
   * relay@wacap (cosigned by relay@global), the forked one to relay2@wacap (listed in wacap's
   * manifest since edition 1, never given the genuine publication; relay@global refuses to
   * cosign it). sn-moj@wacap follows wacap's log through relay@wacap and checks it against the
   * other listed wacap relay, relay2@wacap: two trees of one size.
   */
  step(
    'a relay serving a forked wacap log is detected by a node (rogatory trust status: LOG_FORK_DETECTED)',
    async () => {
      const sn = node(SN);
      const kz = node(KZ);
      const before = editions.get('wacap')!;
      const fork = h.path('secretariats', 'wacap-fork');
      await cp(secretariatDir('wacap'), fork, { recursive: true });
      const relay2 = await startRelay({
        id: RELAY2,
        network: 'wacap',
        dir: relay2Dir(),
        url: relay2Url,
        // The shared history: the edition both folders hold.
        ownEdition: editionFile('wacap', before),
      });
      const [genuine, forked] = await Promise.all([
        secretariat('wacap', ['publish', '--valid-days', '30']),
        h.run('network', ['--dir', fork, '--json', 'publish', '--valid-days', '29'], {
          env: { ROGATORY_PASSPHRASE: SECRETARIAT_PASSPHRASE.wacap },
        }),
      ]);
      const g = genuine.json<{ version: number; hash: string }>();
      const f = forked.json<{ version: number; hash: string }>();
      expect(g.version).toBe(before + 1);
      expect(f.version).toBe(before + 1);
      expect(f.hash).not.toBe(g.hash);
      editions.set('wacap', g.version);
      const pushed = (
        await secretariat('wacap', ['push', '--relay', relayUrls.get('wacap')!])
      ).json<PushResult>();
      expect(pushed.pushed.at(-1)!.cosigners).toEqual(
        expect.arrayContaining(DIRECT_WITNESSES.wacap),
      );
      logSizes.set('wacap', pushed.size);
      // Both sides of the fork hold the genuine edition first, so the fork is the only change.
      for (const { api } of [sn, kz])
        await waitFor(
          'the genuine wacap edition at the nodes',
          async () => {
            const s = await api.call<NodeStatusView>(ADMIN.username, 'GET', '/status');
            return s.trust.networks.find((x) => x.network === 'wacap')?.logSize ===
              logSizes.get('wacap')
              ? true
              : undefined;
          },
          30_000,
          300,
        );

      await waitFor(
        `${RELAY2} /readyz`,
        async () => {
          if (!relay2.alive) throw new Error(`${RELAY2} exited:\n${relay2.output}`);
          return (await answers200(`${relay2Url}/readyz`)) ? true : undefined;
        },
        60_000,
        250,
      );
      const forkPush = (
        await h.run('network', ['--dir', fork, '--json', 'push', '--relay', relay2Url])
      ).json<PushResult>();
      expect(forkPush.size).toBe(logSizes.get('wacap'));
      // The witness that cosigned the genuine tree refuses the forked one.
      expect(forkPush.pushed.at(-1)!.cosigners).not.toContain('relay@global');

      const alarmed = await waitFor(
        `${SN} to raise the fork alarm for wacap (GET /api/v1/status)`,
        async () => {
          const s = await sn.api.call<NodeStatusView>(ADMIN.username, 'GET', '/status');
          return s.trust.networks.find((x) => x.network === 'wacap')?.forkAlarm ? s : undefined;
        },
        30_000,
        300,
      );
      expect(alarmed.trust).toMatchObject({ openAlarms: 1, forksTotal: 1 });
      // Nothing more of wacap is applied: a further genuine edition reaches relay@wacap and
      // kz-gpo@casc (meanwhile Senegal's alarm is read), while Senegal's sync answers "fork"
      // and keeps what it held.
      const [next] = await Promise.all([
        (async () => {
          await secretariat('wacap', ['publish', '--valid-days', '30']);
          editions.set('wacap', g.version + 1);
          const further = (
            await secretariat('wacap', ['push', '--relay', relayUrls.get('wacap')!])
          ).json<PushResult>();
          await waitFor(
            `${KZ} to hold wacap edition ${String(g.version + 1)}`,
            async () => {
              const s = await kz.api.call<NodeStatusView>(ADMIN.username, 'GET', '/status');
              const w = s.trust.networks.find((x) => x.network === 'wacap');
              return w?.logSize === further.size && !w.forkAlarm ? true : undefined;
            },
            30_000,
            300,
          );
          return further;
        })(),
        (async () => {
          const metrics = await fetch(`${sn.api.url}/metrics`, {
            headers: { authorization: `Bearer ${METRICS_TOKEN}` },
            signal: AbortSignal.timeout(10_000),
          });
          expect(metrics.status).toBe(200);
          const text = await metrics.text();
          expect(text).toMatch(/^rogatory_node_trust_forks_total(\{\})? 1$/m);
          expect(text).toMatch(/^rogatory_node_trust_fork_alarm\{network="wacap"\} 1$/m);
          const status = await nodeCli(SN, ['trust', 'status'], { expectCode: 2 });
          const wacap = status.json<TrustStatusView>().networks.find((x) => x.network === 'wacap');
          expect(wacap?.alarms).toEqual([expect.objectContaining({ code: 'LOG_FORK_DETECTED' })]);
          expect(wacap).toMatchObject({ edition: g.version, logSize: logSizes.get('wacap') });
        })(),
      ]);
      const synced = (await nodeCli(SN, ['trust', 'sync'], { expectCode: 2 })).json<{
        networks: { network: string; outcome: string; code?: string }[];
      }>();
      expect(synced.networks.find((x) => x.network === 'wacap')).toMatchObject({
        outcome: 'fork',
        code: 'LOG_FORK_DETECTED',
      });
      const after = await sn.api.call<NodeStatusView>(ADMIN.username, 'GET', '/status');
      expect(after.trust.networks.find((x) => x.network === 'wacap')).toMatchObject({
        edition: g.version,
        logSize: logSizes.get('wacap'),
        forkAlarm: true,
      });
      expect(next.size).toBeGreaterThan(logSizes.get('wacap')!);
    },
    150_000,
  );
});
