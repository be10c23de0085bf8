/**
 * Acceptance of issue 10 ("trust that real networks can run"), with every
 * party a separate process started from its real executable:
 *
 *   rogatory-network  three secretariats: WACAP, CASC and the global hub
 *   rogatory-relay    relay@wacap, relay@global, relay@casc (keygen, start)
 *   rogatory          authority nodes and points of contact (init, serve)
 *
 * The steps run in order (one `it` each) and share the state below; a
 * failing step prints the last command-line runs and the output of every
 * process, and the steps after it fail at once. The steps the CLIs cannot
 * run yet are `it.todo`, each with the commands it will run
 * (/work/trust-design.md, D1-D6).
 *
 * Topology: wacap and casc peer with the hub directly and with each other
 * via the hub (`peer add --via global`), so a dossier from Senegal to
 * Kazakhstan goes relay@wacap -> relay@global -> relay@casc.
 *
 * ROGATORY_E2E_KEEP=1 keeps the temporary folder (secretariats, relay and
 * node folders, one log per process).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ready } from '@rogatory/protocol';
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
/** Admitted now, revoked by a later step (it.todo). */
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
    serve: false,
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
const dossier = { requestId: '', envelopeId: '', receivedId: '', attachmentSha256: '' };

const secretariatDir = (n: Network): string => h.path('secretariats', n);
const anchorFile = (n: Network): string => h.path('anchors', `${n}.json`);
const rootFile = (n: Network): string => h.path('anchors', `${n}-root.json`);
const editionFile = (n: Network, version = editions.get(n) ?? 0): string =>
  join(secretariatDir(n), 'editions', `${String(version).padStart(6, '0')}.json`);
const relayDir = (n: Network): string => h.path('relays', n);
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
      await each(NETWORKS, async (n) => {
        await mkdir(relayDir(n), { recursive: true });
        const keygen = await h.run('relay', ['keygen', '-o', join(relayDir(n), 'relay-key.json')], {
          env: { ROGATORY_RELAY_PASSPHRASE: RELAY_PASSPHRASE },
        });
        const keyRefFile = join(relayDir(n), 'relay-keyref.json');
        await writeFile(keyRefFile, keygen.stdout);
        await secretariat(n, ['relay', 'add', '--key', keyRefFile, '--url', relayUrls.get(n)!]);
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
          listedInManifest: boolean;
          identity: { kid: string };
          encryptionCertificate: { body: { key: { kid: string } } };
        }>();
        expect(result).toMatchObject({ address: m.address, listedInManifest: false });
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
        const dir = relayDir(n);
        const config = {
          relay: {
            id: `relay@${n}`,
            host: '127.0.0.1',
            port: Number(new URL(relayUrls.get(n)!).port),
          },
          identity: { keyFile: './relay-key.json', passphraseEnv: 'ROGATORY_RELAY_PASSPHRASE' },
          trust: {
            rootFile: rootFile(n),
            // Today a relay reads the editions from files (own network first); D2 makes them
            // arrive as publications (POST /v1/trust/publications, peers' chains fetched).
            manifestFiles: [n, ...PEERS[n].map(([peer]) => peer)].map((x) => editionFile(x)),
          },
          sessionSecretEnv: 'ROGATORY_RELAY_SESSION_SECRET',
          backend: { kind: 'embedded', dataDir: './data' },
          logLevel: 'warn',
        };
        await writeFile(join(dir, 'relay.json'), `${JSON.stringify(config, null, 2)}\n`);
        relays.set(
          n,
          h.start(`relay@${n}`, 'relay', ['start', '--config', join(dir, 'relay.json')], {
            env: {
              ROGATORY_RELAY_PASSPHRASE: RELAY_PASSPHRASE,
              ROGATORY_RELAY_SESSION_SECRET: randomBytes(32).toString('hex'),
            },
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
          // Today the new editions are copied into the node's trust folder by hand; D4 makes the
          // node pull them as publications from its relay (and a second source).
          for (const n of NETWORKS)
            await writeFile(
              join(nodeDir(m.address), 'trust', `${n}.json`),
              await readFile(editionFile(n)),
            );
          const proc = h.start(
            m.address,
            'node',
            ['--dir', nodeDir(m.address), '--json', 'serve', '--port', '0'],
            { env: { ROGATORY_PASSPHRASE: NODE_PASSPHRASE } },
          );
          const match = await proc.waitForOutput(/"url":\s*"(http:\/\/[^"]+)"/, 90_000);
          const api = new NodeApi(match[1]!);
          nodes.set(m.address, { proc, api });
          await api.login(ADMIN.username, ADMIN.password);
          const status = await api.call<{
            address: string;
            listedInManifest: boolean;
            trustedNetworks: string[];
          }>(ADMIN.username, 'GET', '/status');
          expect(status).toMatchObject({ address: m.address, listedInManifest: true });
          expect([...status.trustedNetworks].sort()).toEqual(['casc', 'global', 'wacap']);
          const users = USERS[m.address as keyof typeof USERS];
          for (const [role, user] of [
            ['officer', users.officer],
            ['approver', users.approver],
          ] as const) {
            await api.call(ADMIN.username, 'POST', '/users', {
              ...user,
              role,
              clearances: ['restricted'],
            });
            await api.login(user.username, user.password);
          }
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

  // ---------------------------------------------------------------- still to come (issue 10)
  // Each todo lists the commands it will run once the other helpers' work is merged. Paths:
  // secretariats/<net>, relays/<net>, nodes/<address>, inits/<address>.json in the harness folder.

  /*
   * D1/D2/D3. For n in wacap, global, casc (the editions 1 and 2 above are already in log.db):
   *   rogatory-network --dir secretariats/<n> --json publish   (when the draft changed) ->
   *     secretariats/<n>/publications/<size>.json
   *   push: POST <relay@n>/v1/trust/publications with each publication file, in order
   *     (`rogatory-network push --relay <url>` if the lead adds it, else fetch() in the test)
   *     -> { network, size, edition, cosigners } with cosigners ⊇ the relays of n's direct peers
   *     (wacap: relay@global; global: relay@wacap, relay@casc; casc: relay@global).
   *   GET <relay@global>/v1/trust/networks -> wacap, global, casc with size/edition/rootHash.
   *   GET <relay@wacap>/v1/trust/publications/casc?after=0 -> casc's chain (fetched by the
   *     relay itself, trust.pollSeconds: 1 in relay.json).
   * The relays above were started from manifestFiles; from here they take new editions live.
   */
  it.todo(
    'publications reach the relays without copying files: each secretariat pushes its chain, peer relays cosign',
  );

  /*
   * D4. nodes/<address>/node.json gains trust: { quorum: 1, pollSeconds: 1 } (set before
   * `serve`); the manual copy into nodes/<address>/trust/ in the "nodes start" step goes away.
   *   rogatory --dir nodes/sn-moj@wacap --json trust status   (or GET /api/v1/status)
   *     -> per network: size, edition, cosigners, fork: none
   * (a CLI run while `serve` holds the node: if the node forbids it, use GET /status.)
   */
  it.todo(
    'nodes pick up the editions as publications, with the witnesses quorum (trust.quorum 1, trust.pollSeconds 1)',
  );

  /*
   * D5. Instead of the plain `rogatory init` above for poc-sn@wacap and poc-kz@casc:
   *   rogatory --dir nodes/<poc> --json init --poc --address <poc> --relay-url ... --relay-id
   *     relay@<net> --root anchors/<net>-root.json --manifest <editions> --admin admin --kdf interactive
   *   rogatory-network poc add --from inits/<poc>.json ... ; publish ; push
   *   rogatory --dir nodes/<poc> --json serve --port 0 ; users: one officer + one approver each
   *   GET /api/v1/status on each PoC node -> listedInManifest true (role poc)
   */
  it.todo('the PoCs run as nodes (rogatory init --poc) and can be written to');

  /*
   * D5. On sn-moj@wacap (officer, then approver: it is a sealed dossier like any other):
   *   rogatory --dir nodes/sn-moj@wacap --user amadou.diallo --json introduce request
   *     --to poc-sn@wacap --country KZ --type mla --language en --note "bank records"
   *     --case-ref SN-PRD-2026-0042
   *   -> a draft of content type introduction-request; send + approve (fatou.ndiaye)
   *   relay@wacap sees an ordinary envelope (no new route); poc-sn@wacap's inbox lists it
   *   (GET /api/v1/dossiers?direction=in, kind introduction-request).
   */
  it.todo(
    'Senegal asks the WACAP PoC for a competent authority in Kazakhstan (rogatory introduce request)',
  );

  /*
   * D4/D5. On poc-sn@wacap:
   *   rogatory --json directory --country KZ --type mla --language en
   *     -> kz-gpo@casc (network casc, vouched by casc edition 2), and poc-kz@casc
   *   rogatory --json introduce refer <request id> --to poc-kz@casc   (content
   *     introduction-referral: the original request, the requesting authority and its key)
   *   -> delivered to poc-kz@casc through relay@wacap -> relay@global -> relay@casc.
   */
  it.todo(
    'the WACAP PoC searches the directory and refers the request to the CASC PoC (rogatory introduce refer)',
  );

  /*
   * D5. On poc-kz@casc:
   *   rogatory --json introduce issue <referral id> --authority kz-gpo@casc
   *     -> a signed Introduction (subject kz-gpo@casc, audience sn-moj@wacap) in an
   *        introduction-answer (outcome introduced) to sn-moj@wacap, and to kz-gpo@casc
   *   rogatory --json introduce export > introductions.json
   *   rogatory-network --dir secretariats/casc log add introductions.json ; publish ; push
   *     -> the casc publication has an entry of kind introduction (no statement)
   * Then: GET /api/v1/dossiers on sn-moj@wacap shows the answer (outcome introduced);
   *   rogatory --dir nodes/sn-moj@wacap --json directory --text "Prosecutor" lists kz-gpo@casc
   *   "introduced by poc-kz@casc"; same on kz-gpo@casc for sn-moj@wacap.
   * Negative: an introduction signed by a non-PoC (kz-gpo@casc's key) is refused with its code.
   */
  it.todo(
    'the CASC PoC introduces the Kazakh prosecutor; both sides see the introduction (introduce issue, directory)',
  );

  /*
   * Same calls as the steps above (POST /dossiers with caseReference SN-PRD-2026-0042, submit,
   * approve, evidences, open). Kazakhstan answers (POST /dossiers/<id>/reply full-execution)
   * and Senegal sees status executed.
   */
  it.todo(
    'a dossier goes through on the introduction (the MLA request above, now in its introduced case)',
  );

  /*
   * D6. Stop kz-gpo@casc's `serve` (or run while it serves, if the node allows):
   *   rogatory --dir nodes/kz-gpo@casc --json keys rotate-encryption > kz-cert.json
   *   rogatory-network --dir secretariats/casc --json authority update kz-gpo@casc --cert kz-cert.json
   *   rogatory-network --dir secretariats/casc --json publish ; push to relay@casc
   *     -> edition 3 (with a rotation log entry), cosigned by relay@global
   *   wait until sn-moj@wacap holds casc edition 3 (trust status / GET /status)
   *   Senegal sends a second dossier: its envelope's recipient key kid == the new cert's kid
   *     (GET /dossiers/<id>/evidences -> envelope.body.recipients[...].kid)
   *   Kazakhstan opens the first dossier (sealed to the old key) and the second: both readable.
   */
  it.todo(
    'the Kazakh prosecutor rotates its encryption key: the next dossier uses the new key, the old one stays readable',
  );

  /*
   * D6. ml-moj@wacap (admitted in edition 2 above, not served so far):
   *   rogatory-network --dir secretariats/wacap --json revoke ml-moj@wacap --reason key-compromise
   *   rogatory-network --dir secretariats/wacap --json publish ; push to relay@wacap
   *   wait until relay@wacap serves the edition (GET /v1/trust/networks -> wacap edition 3)
   *   rogatory --dir nodes/ml-moj@wacap --user <approver> --json approve <draft to kz-gpo@casc>
   *     -> exit 10 RELAY_REJECTED, detail KEY_REVOKED (no restart of relay@wacap)
   *   Senegal composing to ml-moj@wacap -> RECIPIENT_UNKNOWN (nodes stop sealing to it)
   *   a dossier signed by ml-moj@wacap before the revocation shows "signed by a since-revoked key".
   */
  it.todo(
    'a revoked authority is refused: relay@wacap refuses its submissions, Kazakhstan refuses its dossiers',
  );

  /*
   * D4. Make the fork with the genuine root key, as a compromised secretariat would:
   *   cp -a secretariats/wacap secretariats/wacap-fork
   *   rogatory-network --dir secretariats/wacap-fork --json authority add --from <another init> ... ; publish
   *   rogatory-network --dir secretariats/wacap --json authority add ... ; publish    (same size, other root)
   *   push the genuine publication to relay@wacap (cosigned by relay@global), and the forked one to a
   *   second wacap relay listed in the wacap manifest (relay2@wacap: keygen + relay add --id
   *   relay2@wacap earlier, started like the others but never given the genuine publication).
   *   kz-gpo@casc pulls wacap's chain from relay@casc and directly from relay2@wacap:
   *   rogatory --dir nodes/kz-gpo@casc --json trust status -> wacap: fork LOG_FORK_DETECTED
   *   GET /api/v1/status shows it; /metrics rogatory_node_trust_forks_total 1;
   *   audit event trust.fork-detected; nothing more of wacap is applied until an operator clears it.
   */
  it.todo(
    'a relay serving a forked wacap log is detected by a node (rogatory trust status: LOG_FORK_DETECTED)',
  );
});
