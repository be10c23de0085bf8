/**
 * The Rogatory demo: two regional networks (WACAP, CASC) and the global hub,
 * their three relays, two authority nodes and the two networks' points of
 * contact, each a separate process on loopback, with every file in a
 * temporary folder (kept with --keep).
 *
 * First Senegal asks the WACAP point of contact whom to address in
 * Kazakhstan; it refers the request to the CASC point of contact, who
 * introduces the Kazakh prosecutor (a signed Introduction both sides see).
 * Then Senegal's Ministry of Justice (sn-moj@wacap) sends an MLA request with a
 * 2 MB attachment to Kazakhstan's General Prosecutor's Office
 * (kz-gpo@casc) through relay@wacap -> relay@global -> relay@casc; the
 * evidences are printed as they reach the sender; Kazakhstan opens the
 * dossier, answers with a full execution, and Senegal sees `executed`;
 * both audit logs verify and an exported bundle is verified offline.
 *
 * Run: npm run demo (or: pnpm exec tsx infra/demo/demo.ts [--keep]).
 * Exit code 0 when every step succeeded, 1 otherwise, 130 on Ctrl-C.
 */
import { spawn, fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KDF_LIMITS, ready, sealSigningKey } from '@rogatory/protocol';
import { buildTestWorld, exampleContentFor, type TestWorld } from '@rogatory/protocol/testing';
import { initNode, type DossierSummary, type SyncEvent } from '@rogatory/node';
import type { DemoUser, EventMessage, OpName, Ops, Reply } from './ipc.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RELAY_BIN = join(ROOT, 'services/relay/bin/rogatory-relay.js');
const NODE_CLI = join(ROOT, 'services/node/bin/rogatory.js');
const NODE_PROCESS = fileURLToPath(new URL('./node-process.ts', import.meta.url));
const STEP_TIMEOUT_MS = 60_000;

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';
const POC_SN = 'poc-sn@wacap';
const POC_KZ = 'poc-kz@casc';
const CASE_REFERENCE = 'SN-PRD-2026-0042';
const keep = process.argv.includes('--keep');

// ------------------------------------------------------------------ output

const t0 = Date.now();
function stamp(): string {
  const clock = new Date().toISOString().slice(11, 23);
  return `[${clock} +${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`;
}
const say = (text: string): void => {
  process.stdout.write(`${stamp()} ${text}\n`);
};
const detail = (text: string): void => {
  process.stdout.write(`${' '.repeat(23)}${text}\n`);
};

const EVIDENCE_NAMES: Readonly<Record<string, string>> = {
  'submission-acceptance': 'SubmissionAcceptance',
  'submission-rejection': 'SubmissionRejection',
  'relay-acceptance': 'RelayAcceptance',
  'relay-rejection': 'RelayRejection',
  delivery: 'Delivery',
  'non-delivery': 'NonDelivery',
  retrieval: 'Retrieval',
  'recipient-rejection': 'RecipientRejection',
};
const evidenceName = (kind: string): string => EVIDENCE_NAMES[kind] ?? kind;

const sha256File = async (path: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${String(ms / 1000)} s: ${what}`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a value (bounded by `ms`). */
async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = STEP_TIMEOUT_MS,
  intervalMs = 150,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (aborted) throw new Error('interrupted');
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`gave up after ${String(ms / 1000)} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// ------------------------------------------------------------------ child processes

const children = new Set<ChildProcess>();
let aborted = false;

/** A child process whose output goes to a log file in the demo folder; the last lines are kept for failure reports. */
class Child {
  private tail = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly log: WriteStream;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    logFile: string,
  ) {
    children.add(child);
    this.log = createWriteStream(logFile);
    const keepOutput = (d: Buffer): void => {
      this.log.write(d);
      this.tail = (this.tail + d.toString('utf8')).slice(-4000);
    };
    child.stdout?.on('data', keepOutput);
    child.stderr?.on('data', keepOutput);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        children.delete(child);
        this.log.end();
        resolve({ code, signal });
      });
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get output(): string {
    return this.tail;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

class RelayProc extends Child {
  constructor(
    name: string,
    child: ChildProcess,
    logFile: string,
    readonly url: string,
  ) {
    super(name, child, logFile);
  }

  async ready(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }
}

/** An authority node process, driven over IPC. */
class NodeProc extends Child {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();

  constructor(
    name: string,
    child: ChildProcess,
    logFile: string,
    onEvent: (event: SyncEvent) => void,
  ) {
    super(name, child, logFile);
    child.on('message', (message: Reply | EventMessage) => {
      if ('event' in message) {
        onEvent(message.event);
        return;
      }
      const p = this.pending.get(message.id);
      if (!p) return;
      this.pending.delete(message.id);
      if (message.ok) p.resolve(message.result);
      else
        p.reject(
          Object.assign(
            new Error(
              message.message.startsWith(message.code)
                ? message.message
                : `${message.code}: ${message.message}`,
            ),
            { code: message.code },
          ),
        );
    });
    void this.exited.then(({ code, signal }) => {
      for (const p of this.pending.values())
        p.reject(new Error(`${name} exited (${String(code ?? signal)})`));
      this.pending.clear();
    });
  }

  call<K extends OpName>(
    op: K,
    args: Ops[K]['args'],
    ms = STEP_TIMEOUT_MS,
  ): Promise<Ops[K]['result']> {
    if (!this.alive) return Promise.reject(new Error(`${this.name} is not running`));
    const id = this.nextId++;
    const result = new Promise<Ops[K]['result']>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    this.child.send({ id, op, args });
    return withTimeout(result, ms, `${this.name}: ${op}`).finally(() => this.pending.delete(id));
  }

  /** Ask the node to close (stop sync, close the database), then make sure the process is gone. */
  async close(): Promise<void> {
    if (!this.alive) return;
    try {
      await this.call('close', {}, 10_000);
    } catch {
      // it is killed below
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

const relays: RelayProc[] = [];
const nodes: NodeProc[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

// ------------------------------------------------------------------ steps

interface StepResult {
  readonly name: string;
  readonly state: 'ok' | 'failed' | 'skipped';
  readonly ms: number;
  readonly error?: string;
}
const results: StepResult[] = [];
let stepNo = 0;

async function step(name: string, fn: () => Promise<void>, ms = STEP_TIMEOUT_MS): Promise<void> {
  stepNo++;
  if (aborted || results.some((r) => r.state === 'failed')) {
    results.push({ name, state: 'skipped', ms: 0 });
    return;
  }
  process.stdout.write('\n');
  say(`${String(stepNo).padStart(2)}. ${name}`);
  const start = Date.now();
  try {
    await withTimeout(fn(), ms, name);
    results.push({ name, state: 'ok', ms: Date.now() - start });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    results.push({ name, state: 'failed', ms: Date.now() - start, error: message });
    say(`FAILED: ${message}`);
    for (const c of [...relays, ...nodes]) {
      if (c.output.trim())
        detail(
          `--- last output of ${c.name} ---\n${c.output.trim().split('\n').slice(-10).join('\n')}`,
        );
    }
  }
}

/** Run `fn` expecting a refusal with `code`; returns the error message. */
async function expectRefusal(fn: () => Promise<unknown>, code: string): Promise<string> {
  try {
    await fn();
  } catch (err) {
    const got =
      typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'none';
    if (got !== code) throw new Error(`expected ${code}, got ${got}`, { cause: err });
    return err instanceof Error ? err.message : String(err);
  }
  throw new Error(`expected a ${code} refusal, but the action succeeded`);
}

// ------------------------------------------------------------------ the demo

const PASSPHRASE = randomBytes(12).toString('hex');
const password = (): string => randomBytes(12).toString('base64url');
const ADMIN = { username: 'admin', password: password() };
const snUsers = {
  // Senior enough to approve, so that four eyes, not his role, refuses his own draft.
  officer: {
    username: 'amadou.diallo',
    password: password(),
    role: 'approver',
    clearances: ['restricted'],
  },
  approver: {
    username: 'fatou.ndiaye',
    password: password(),
    role: 'approver',
    clearances: ['restricted'],
  },
} satisfies Record<string, DemoUser>;
const kzUsers = {
  officer: {
    username: 'aigerim.sadykova',
    password: password(),
    role: 'officer',
    clearances: ['restricted'],
  },
  approver: {
    username: 'nursultan.abenov',
    password: password(),
    role: 'approver',
    clearances: ['restricted'],
  },
} satisfies Record<string, DemoUser>;

const pocUsers = {
  officer: { username: 'poc.officer', password: password(), role: 'officer', clearances: [] },
  approver: { username: 'poc.approver', password: password(), role: 'approver', clearances: [] },
} satisfies Record<string, DemoUser>;

let work = '';
let world: TestWorld | undefined;
let pocSn: NodeProc | undefined;
let pocKz: NodeProc | undefined;
let introductionRequestId = '';
let sn: NodeProc | undefined;
let kz: NodeProc | undefined;
let attachment = { path: '', sha256: '', size: 0 };
let requestId = '';
let requestEnvelopeId = '';
let receivedId = '';
let answerEnvelopeId = '';
let bundleDir = '';

// The sender's view of its request, polled in the background once it is sent:
// every new evidence and status change is printed as it arrives.
const seenEvidences = new Set<string>();
let requestStatus = '';
let watcher: Promise<void> | undefined;
const watch = { on: false };
/** Read through a call: the flag changes while the watcher awaits. */
const watchingNow = (): boolean => watch.on;

function watchRequest(): void {
  watch.on = true;
  watcher = (async () => {
    while (watchingNow() && sn?.alive) {
      try {
        const view = await sn.call(
          'evidences',
          { user: snUsers.officer.username, id: requestId },
          10_000,
        );
        for (const e of view.evidences) {
          const key = `${e.kind}:${e.issuer}:${e.recipient ?? ''}`;
          if (seenEvidences.has(key)) continue;
          seenEvidences.add(key);
          say(
            `  evidence at ${SN}: ${evidenceName(e.kind)} by ${e.issuer}${e.recipient ? ` for ${e.recipient}` : ''} (issued ${new Date(e.issuedAt).toISOString().slice(11, 23)}, signature verified)`,
          );
        }
        const status = (
          await sn.call('show', { user: snUsers.officer.username, id: requestId }, 10_000)
        ).status;
        if (status !== requestStatus) {
          requestStatus = status;
          say(`  status of the request at ${SN}: ${status}`);
        }
      } catch (err) {
        if (watchingNow()) say(`  (watcher: ${err instanceof Error ? err.message : String(err)})`);
      }
      await sleep(150);
    }
  })();
}

const hasEvidence = (kind: string, issuer: string): boolean =>
  seenEvidences.has(`${kind}:${issuer}:${KZ}`) ||
  [...seenEvidences].some((k) => k.startsWith(`${kind}:${issuer}:`));

function syncLogger(who: string): (event: SyncEvent) => void {
  return (event) => {
    if (cleaning) return;
    if (event.type === 'error')
      say(`  [${who} sync] error ${event.code}${event.detail ? ` (${event.detail})` : ''}`);
    else if (event.type === 'disconnected' && !event.willReconnect)
      say(`  [${who} sync] disconnected`);
  };
}

async function main(): Promise<void> {
  process.stdout.write(
    [
      'Rogatory demo: two networks (wacap, casc) and the global hub, three relays, two authority nodes and two',
      'points of contact, each a separate process on 127.0.0.1.',
      'NOTE: every key here is a TEST KEY derived from a public seed (@rogatory/protocol/testing).',
      '      Never use these keys for anything real.',
      '',
    ].join('\n'),
  );

  await step(
    'Network material: roots, relay keys and signed manifests (test keys), relay configuration files',
    async () => {
      await ready();
      work = await mkdtemp(join(tmpdir(), 'rogatory-demo-'));
      detail(
        `working folder: ${work}${keep ? ' (kept: --keep)' : ' (removed at the end; --keep keeps it)'}`,
      );
      const ports: Record<string, number> = {};
      for (const n of ['wacap', 'global', 'casc']) ports[n] = await freePort();
      const w = buildTestWorld({
        now: Date.now(),
        relayUrl: (n) => `http://127.0.0.1:${String(ports[n])}`,
      });
      world = w;
      for (const net of Object.values(w.networks)) {
        const m = net.manifest.body;
        detail(
          `${m.network.padEnd(6)} root ${net.rootRef.kid}  ${net.relay.id} at ${net.relay.url}  authorities: ${m.authorities.map((a) => a.address).join(', ') || '-'}  peers: ${m.peers.map((p) => p.network + (p.via ? ` via ${p.via}` : '')).join(', ')}`,
        );
      }
      for (const network of ['wacap', 'global', 'casc']) {
        const net = w.networks[network]!;
        const dir = join(work, `relay-${network}`);
        await mkdir(join(dir, 'trust'), { recursive: true });
        const relayPassphrase = randomBytes(12).toString('hex');
        await writeFile(
          join(dir, 'relay-key.json'),
          JSON.stringify(
            sealSigningKey(net.relay.key, {
              passphrase: relayPassphrase,
              purpose: 'relay-identity',
              limits: KDF_LIMITS.interactive,
            }),
          ),
          { mode: 0o600 },
        );
        await writeFile(
          join(dir, 'trust', `${network}-root.json`),
          JSON.stringify(net.rootRef, null, 2),
        );
        const manifestFiles: string[] = [];
        for (const n of [network, ...net.manifest.body.peers.map((p) => p.network)]) {
          await writeFile(
            join(dir, 'trust', `${n}-manifest.json`),
            JSON.stringify(w.networks[n]!.manifest, null, 2),
          );
          manifestFiles.push(`./trust/${n}-manifest.json`);
        }
        const config = {
          relay: { id: net.relay.id, host: '127.0.0.1', port: ports[network]! },
          identity: { keyFile: './relay-key.json', passphraseEnv: 'ROGATORY_RELAY_PASSPHRASE' },
          trust: { rootFile: `./trust/${network}-root.json`, manifestFiles },
          sessionSecretEnv: 'ROGATORY_RELAY_SESSION_SECRET',
          backend: { kind: 'embedded', dataDir: './data' },
          logLevel: 'warn',
        };
        await writeFile(join(dir, 'relay.json'), JSON.stringify(config, null, 2));
        await writeFile(
          join(dir, 'env.json'),
          JSON.stringify({
            ROGATORY_RELAY_PASSPHRASE: relayPassphrase,
            ROGATORY_RELAY_SESSION_SECRET: randomBytes(32).toString('hex'),
          }),
          { mode: 0o600 },
        );
      }
      detail(
        'per relay: relay.json, relay-key.json (sealed), trust/<network>-root.json, trust/*-manifest.json (own network first)',
      );
    },
  );

  await step(
    'Starting relay@wacap, relay@global and relay@casc (rogatory-relay start --config, embedded backend)',
    async () => {
      const w = world!;
      for (const network of ['wacap', 'global', 'casc']) {
        const net = w.networks[network]!;
        const dir = join(work, `relay-${network}`);
        if (aborted) throw new Error('interrupted');
        const secrets = JSON.parse(await readFile(join(dir, 'env.json'), 'utf8')) as Record<
          string,
          string
        >;
        const child = spawn(
          process.execPath,
          [RELAY_BIN, 'start', '--config', join(dir, 'relay.json')],
          {
            cwd: ROOT,
            env: { ...process.env, ...secrets },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        relays.push(new RelayProc(net.relay.id, child, join(dir, 'relay.log'), net.relay.url));
      }
      for (const relay of relays) {
        await waitFor(
          `${relay.name} /readyz`,
          async () => {
            if (!relay.alive)
              throw new Error(`${relay.name} exited before it was ready:\n${relay.output}`);
            return (await relay.ready()) ? true : undefined;
          },
          STEP_TIMEOUT_MS,
          100,
        );
        say(`  ${relay.name} ready at ${relay.url} (pid ${String(relay.child.pid)})`);
      }
    },
  );

  await step(
    `Initialising the nodes ${SN} (Senegal, Ministry of Justice) and ${KZ} (Kazakhstan, General Prosecutor's Office)`,
    async () => {
      const w = world!;
      for (const [address, users] of [
        [SN, snUsers],
        [KZ, kzUsers],
      ] as const) {
        const network = address.split('@')[1]!;
        const net = w.networks[network]!;
        const authority = w.authority(address);
        const dir = join(work, `node-${address.split('@')[0]!}`);
        const result = await initNode({
          dir,
          address,
          relayUrl: net.relay.url,
          relayId: net.relay.id,
          passphrase: PASSPHRASE,
          pinnedRoot: net.rootRef,
          manifests: [
            net.manifest,
            ...net.manifest.body.peers.map((p) => w.networks[p.network]!.manifest),
          ],
          kdf: KDF_LIMITS.interactive,
          importKeys: { identity: authority.identity, encryption: authority.encryption },
          admin: ADMIN,
        });
        detail(
          `${address}: identity ${result.identity.kid} (imported test key, listed in the ${network} manifest: ${result.listedInManifest ? 'yes' : 'NO'})`,
        );
        if (aborted) throw new Error('interrupted');
        const child = fork(NODE_PROCESS, [], {
          cwd: ROOT,
          execArgv: ['--import', 'tsx'],
          serialization: 'advanced',
          stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        });
        const proc = new NodeProc(
          address,
          child,
          join(work, `node-${address.split('@')[0]!}.log`),
          syncLogger(address),
        );
        nodes.push(proc);
        if (address === SN) sn = proc;
        else kz = proc;
        await proc.call('open', {
          dir,
          passphrase: PASSPHRASE,
          admin: ADMIN,
          users: [users.officer, users.approver],
        });
        await proc.call('startSync', {});
        say(
          `  ${address} running (pid ${String(child.pid)}), live sync with ${net.relay.id}; users: ${users.officer.username} (officer), ${users.approver.username} (approver), admin`,
        );
      }
    },
  );

  await step(
    `Initialising the point-of-contact nodes ${POC_SN} and ${POC_KZ} (rogatory init --poc: the PoC address and key of each manifest)`,
    async () => {
      const w = world!;
      for (const network of ['wacap', 'casc']) {
        const net = w.networks[network]!;
        const dir = join(work, `node-${net.poc.address.split('@')[0]!}`);
        const result = await initNode({
          dir,
          address: net.poc.address,
          role: 'poc',
          relayUrl: net.relay.url,
          relayId: net.relay.id,
          passphrase: PASSPHRASE,
          pinnedRoot: net.rootRef,
          manifests: [
            net.manifest,
            ...net.manifest.body.peers.map((p) => w.networks[p.network]!.manifest),
          ],
          kdf: KDF_LIMITS.interactive,
          importKeys: { identity: net.poc.key, encryption: net.poc.encryption },
          admin: ADMIN,
        });
        detail(
          `${net.poc.address}: identity ${result.identity.kid} (listed as a point of contact in the ${network} manifest: ${result.listedInManifest ? 'yes' : 'NO'})`,
        );
        if (aborted) throw new Error('interrupted');
        const child = fork(NODE_PROCESS, [], {
          cwd: ROOT,
          execArgv: ['--import', 'tsx'],
          serialization: 'advanced',
          stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        });
        const proc = new NodeProc(
          net.poc.address,
          child,
          join(work, `node-${net.poc.address.split('@')[0]!}.log`),
          syncLogger(net.poc.address),
        );
        nodes.push(proc);
        if (network === 'wacap') pocSn = proc;
        else pocKz = proc;
        await proc.call('open', {
          dir,
          passphrase: PASSPHRASE,
          admin: ADMIN,
          users: [pocUsers.officer, pocUsers.approver],
        });
        await proc.call('startSync', {});
        say(
          `  ${net.poc.address} running (pid ${String(child.pid)}), live sync with ${net.relay.id}`,
        );
      }
    },
  );

  await step(
    `The Senegalese officer asks the WACAP point of contact (${POC_SN}) for a competent authority in Kazakhstan; an approver sends the request`,
    async () => {
      const { id } = await sn!.call('requestIntroduction', {
        user: snUsers.officer.username,
        to: POC_SN,
        country: 'KZ',
        requestType: 'mla',
        languages: ['en', 'ru'],
        note: 'bank records',
        caseReference: CASE_REFERENCE,
      });
      introductionRequestId = id;
      detail(
        `introduction request ${id}: country KZ, type mla, languages en, ru, note "bank records"`,
      );
      await sn!.call('approve', { user: snUsers.approver.username, id });
      detail(`approved by ${snUsers.approver.username} (four eyes) and sealed to ${POC_SN}`);
    },
  );

  await step(
    `${POC_SN} finds no Kazakh authority in its network and refers the request to the CASC point of contact (${POC_KZ})`,
    async () => {
      const entry = await waitFor(`the request in ${POC_SN}'s list`, async () =>
        (await pocSn!.call('introductionInbox', { user: pocUsers.officer.username })).find(
          (e) => e.requester === SN && e.state === 'open',
        ),
      );
      detail(
        `${POC_SN} list: ${entry.id} open, from ${entry.requester}, ${entry.country} ${entry.requestType} (${entry.languages.join(', ')})`,
      );
      const { dossierId } = await pocSn!.call('referIntroduction', {
        user: pocUsers.officer.username,
        id: entry.id,
        to: POC_KZ,
        remarks: 'Kazakh competent authority for MLA sought',
      });
      await pocSn!.call('approve', { user: pocUsers.approver.username, id: dossierId });
      detail(
        `referral ${dossierId} approved by ${pocUsers.approver.username} and sent to ${POC_KZ}`,
      );
    },
  );

  await step(
    `${POC_KZ} introduces ${KZ}: an Introduction signed with the PoC key, sent to ${SN} with a copy to ${KZ}`,
    async () => {
      const entry = await waitFor(`the referral in ${POC_KZ}'s list`, async () =>
        (await pocKz!.call('introductionInbox', { user: pocUsers.officer.username })).find(
          (e) => e.requester === SN && e.state === 'open',
        ),
      );
      detail(`${POC_KZ} list: ${entry.id} open, referred by ${entry.from} for ${entry.requester}`);
      const issued = await pocKz!.call('issueIntroduction', {
        user: pocUsers.officer.username,
        id: entry.id,
        authority: KZ,
        note: 'central authority for MLA',
      });
      await pocKz!.call('approve', { user: pocUsers.approver.username, id: issued.dossierId });
      detail(
        `answer ${issued.dossierId} approved by ${pocUsers.approver.username}; the introduction is valid until ${new Date(issued.validUntil).toISOString().slice(0, 10)}`,
      );
    },
  );

  await step(
    `${SN} sees the outcome, its directory lists ${KZ} "introduced by ${POC_KZ}"; ${KZ} sees it was introduced`,
    async () => {
      const view = await waitFor(`the introduction at ${SN}`, async () => {
        const v = (
          await sn!.call('introductionStatus', {
            user: snUsers.officer.username,
            id: introductionRequestId,
          })
        )[0];
        return v && v.outcome !== 'pending' ? v : undefined;
      });
      if (view.outcome !== 'introduced')
        throw new Error(`the outcome is ${view.outcome}${view.code ? ` (${view.code})` : ''}`);
      detail(
        `outcome: introduced by ${view.answeredBy ?? '-'}: ${view.introductions.map((i) => `${i.subject} for ${i.competences.join(', ')}`).join('; ')} (signature verified, PoC of a trusted manifest)`,
      );
      const entry = (
        await sn!.call('directory', { user: snUsers.officer.username, text: 'kz-gpo' })
      )[0];
      const vouch = entry?.vouchedBy.find((v) => v.kind === 'introduction');
      if (vouch?.kind !== 'introduction') throw new Error('the directory lists no introduction');
      detail(`directory at ${SN}: ${KZ}, ${entry!.name ?? '-'}, introduced by ${vouch.issuer}`);
      const copy = await waitFor(
        `the copy at ${KZ}`,
        async () => (await kz!.call('introductionsOfSelf', { user: kzUsers.officer.username }))[0],
      );
      detail(`${KZ}: introduced to ${copy.requester} by ${copy.poc} (${copy.state})`);
    },
  );

  await step(
    `The Senegalese officer (${snUsers.officer.username}) drafts an MLA request (UNTOC art. 18) with a 2 MB attachment`,
    async () => {
      const w = world!;
      const path = join(work, 'bank-records.pdf');
      const body = randomBytes(2 * 1024 * 1024 - 64);
      const bytes = Buffer.concat([
        Buffer.from('%PDF-1.7\n% demo bank records (random bytes)\n'),
        body,
      ]);
      await writeFile(path, bytes);
      attachment = {
        path,
        sha256: createHash('sha256').update(bytes).digest('hex'),
        size: bytes.length,
      };
      detail(`bank-records.pdf: ${String(bytes.length)} bytes, sha256 ${attachment.sha256}`);
      const example = exampleContentFor('mla', SN, KZ, w);
      if (example.kind !== 'request') throw new Error('the example is not a request');
      const content = { ...example, header: { ...example.header, caseReference: CASE_REFERENCE } };
      const legal = content.header.legalBasis
        .map((l) => `${l.instrument}${'article' in l && l.article ? ` art. ${l.article}` : ''}`)
        .join(', ');
      const { id } = await sn!.call('compose', {
        user: snUsers.officer.username,
        content,
        attachments: [{ path, mediaType: 'application/pdf' }],
      });
      requestId = id;
      detail(
        `draft ${id}: case ${CASE_REFERENCE}, legal basis ${legal}, to ${KZ}; the attachment is encrypted into the node's blob store now`,
      );
      await sn!.call('submit', { user: snUsers.officer.username, id });
      detail('submitted for approval (status awaiting-approval)');
    },
  );

  await step(
    `Four eyes: the drafter (${snUsers.officer.username}, an approver himself) tries to approve his own request`,
    async () => {
      const message = await expectRefusal(
        () => sn!.call('approve', { user: snUsers.officer.username, id: requestId }),
        'FOUR_EYES_VIOLATION',
      );
      say(`  refused as expected: ${message}`);
    },
  );

  await step(
    `The approver (${snUsers.approver.username}) approves: the node signs, seals and sends it`,
    async () => {
      const { envelopeId } = await sn!.call('approve', {
        user: snUsers.approver.username,
        id: requestId,
      });
      requestEnvelopeId = envelopeId;
      detail(
        `envelope ${envelopeId}: signed by ${SN}, encrypted for ${KZ} (and the sender's archive), queued for relay@wacap`,
      );
      watchRequest();
    },
  );

  await step(
    `Delivery across networks: relay@wacap -> relay@global -> relay@casc -> ${KZ} (evidences printed as they reach ${SN})`,
    async () => {
      await waitFor('the Delivery evidence at the sender', () =>
        Promise.resolve(
          hasEvidence('submission-acceptance', 'relay@wacap') &&
            hasEvidence('relay-acceptance', 'relay@global') &&
            hasEvidence('relay-acceptance', 'relay@casc') &&
            hasEvidence('delivery', KZ)
            ? true
            : undefined,
        ),
      );
    },
  );

  await step(
    `The Kazakh officer (${kzUsers.officer.username}) lists the inbox and opens the dossier`,
    async () => {
      const item = await waitFor<DossierSummary>(`the request in ${KZ}'s inbox`, async () => {
        const inbox = await kz!.call('inbox', { user: kzUsers.officer.username });
        return inbox.find((d) => d.envelopeId === requestEnvelopeId);
      });
      receivedId = item.id;
      for (const d of await kz!.call('inbox', { user: kzUsers.officer.username })) {
        detail(
          `inbox: ${d.id}  ${d.kind} ${d.type ?? '?'}  case ${d.caseReference ?? '?'}  from ${(d.counterparts ?? []).join(', ')}  ${d.handlingCode ?? ''}  status ${d.status}`,
        );
      }
      const view = await kz!.call('read', { user: kzUsers.officer.username, id: receivedId });
      const content = view.content;
      if (content.kind !== 'request') throw new Error('the received dossier is not a request');
      if (view.signed?.sender !== SN)
        throw new Error(`unexpected sender ${String(view.signed?.sender)}`);
      if (content.header.caseReference !== CASE_REFERENCE)
        throw new Error(`unexpected case reference ${content.header.caseReference}`);
      detail(
        `verified sender: ${view.signed.sender} (signature checked against the pinned casc root -> global -> wacap manifest)`,
      );
      detail(
        `case reference ${content.header.caseReference}, ${content.requestType}, requested: ${content.header.assistanceRequested.join('; ')}`,
      );
      const [info] = view.attachments;
      if (!info) throw new Error('no attachment');
      const saved = await kz!.call('saveAttachments', {
        user: kzUsers.officer.username,
        id: receivedId,
        dir: join(work, 'kz-received'),
      });
      const savedSha = await sha256File(saved[0]!.path);
      const match = info.sha256 === attachment.sha256 && savedSha === attachment.sha256;
      detail(
        `attachment ${info.name} (${String(info.size)} bytes): signed checksum ${info.sha256.slice(0, 16)}..., decrypted file ${savedSha.slice(0, 16)}..., original ${attachment.sha256.slice(0, 16)}... -> ${match ? 'MATCH' : 'MISMATCH'}`,
      );
      if (!match) throw new Error('attachment checksum mismatch');
    },
  );

  await step(`The Retrieval evidence reaches ${SN}`, async () => {
    await waitFor('the Retrieval evidence at the sender', () =>
      Promise.resolve(hasEvidence('retrieval', KZ) ? true : undefined),
    );
  });

  await step(
    `${KZ} answers: full execution, drafted by ${kzUsers.officer.username}, approved by ${kzUsers.approver.username}`,
    async () => {
      const answer = {
        answerType: 'full-execution',
        language: 'en',
        execution: {
          results: [
            {
              description:
                'Certified bank records of the account obtained from the bank; witness heard on 2026-01-10.',
              executedOn: '2026-01-10',
            },
          ],
        },
      };
      const { id } = await kz!.call('reply', {
        user: kzUsers.officer.username,
        requestId: receivedId,
        content: answer,
      });
      await kz!.call('submit', { user: kzUsers.officer.username, id });
      const message = await expectRefusal(
        () => kz!.call('approve', { user: kzUsers.officer.username, id }),
        'NOT_AUTHORISED',
      );
      detail(`the officer's own approval is refused: ${message}`);
      const { envelopeId } = await kz!.call('approve', { user: kzUsers.approver.username, id });
      answerEnvelopeId = envelopeId;
      detail(`answer ${id} approved and sent: envelope ${envelopeId}`);
    },
  );

  await step(`The answer travels back; ${SN} sees the request executed`, async () => {
    const answer = await waitFor<DossierSummary>(`the answer in ${SN}'s inbox`, async () => {
      const inbox = await sn!.call('inbox', { user: snUsers.officer.username });
      return inbox.find((d) => d.envelopeId === answerEnvelopeId);
    });
    detail(
      `received ${answer.kind} ${answer.type ?? '?'} from ${(answer.counterparts ?? []).join(', ')} in case ${answer.caseReference ?? '?'}`,
    );
    await waitFor('status executed', async () =>
      (await sn!.call('show', { user: snUsers.officer.username, id: requestId })).status ===
      'executed'
        ? true
        : undefined,
    );
    if (requestStatus !== 'executed') say(`  status of the request at ${SN}: executed`);
    const atKz = await kz!.call('show', { user: kzUsers.officer.username, id: receivedId });
    detail(`status of the received request at ${KZ}: ${atKz.status}`);
    const chain = await sn!.call('evidences', { user: snUsers.officer.username, id: requestId });
    if (!chain.chain) throw new Error(`the evidence chain does not verify: ${chain.error ?? '?'}`);
    detail(
      `evidence chain verified: ${chain.chain.ordered
        .map((o) => {
          const [k, i] = o.split(':');
          return `${evidenceName(k!)}(${i!})`;
        })
        .join(' -> ')}`,
    );
    detail(
      `submission ${chain.chain.submission}; ${Object.entries(chain.chain.recipients)
        .map(([r, s]) => `${r}: ${s}`)
        .join(', ')}`,
    );
  });

  await step('Both audit logs verify (hash chain and MACed heads)', async () => {
    watch.on = false;
    await watcher;
    for (const node of [sn!, kz!]) {
      const report = await node.call('verifyAudit', {});
      detail(
        `${node.name}: ${report.ok ? 'ok' : 'FAILED'}, ${String(report.entries)} entries, head ${report.head ? `#${String(report.head.seq)} ${report.head.hash.slice(0, 16)}...` : '-'}`,
      );
      if (!report.ok)
        throw new Error(
          `audit log of ${node.name}: ${report.problems.map((p) => p.code).join(', ')}`,
        );
    }
  });

  await step(
    'Export a bundle of the request and verify it offline (`rogatory verify`, a separate process: no node, no relay)',
    async () => {
      bundleDir = join(work, 'bundle');
      const exported = await sn!.call('exportBundle', {
        user: snUsers.officer.username,
        id: requestId,
        dir: bundleDir,
      });
      detail(`exported to ${exported.dir} (${String(exported.files.length)} files)`);
      const rootKid = world!.networks['wacap']!.rootRef.kid;
      const child = spawn(
        process.execPath,
        [NODE_CLI, '--json', 'verify', exported.dir, '--expect-root-kid', rootKid],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const verifier = new Child('rogatory verify', child, join(work, 'verify.log'));
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      const { code } = await verifier.exited;
      const report = JSON.parse(stdout) as {
        ok: boolean;
        checks: { check: string; ok: boolean; detail: string }[];
        evidence?: { ordered: string[] };
      };
      for (const c of report.checks)
        detail(
          `${c.ok ? 'ok    ' : 'FAILED'} ${c.check.padEnd(18)} ${c.detail.length > 90 ? `${c.detail.slice(0, 87)}...` : c.detail}`,
        );
      if (code !== 0 || !report.ok)
        throw new Error(`offline verification failed (exit ${String(code)})\n${verifier.output}`);
      say(
        `  VERIFIED offline against the wacap root ${rootKid} (exit 0), ${String(report.evidence?.ordered.length ?? 0)} evidences in the chain`,
      );
    },
  );
}

// ------------------------------------------------------------------ cleanup

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    watch.on = false;
    await Promise.race([watcher, sleep(5000)]);
    await Promise.all(nodes.map((n) => n.close()));
    await Promise.all(relays.map((r) => r.stop()));
    if (work && !keep) await rm(work, { recursive: true, force: true });
  })();
  return cleaning;
}

process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  // An interrupted step may have written into the folder after the cleanup removed it.
  if (work && !keep) rmSync(work, { recursive: true, force: true });
});
let interrupts = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupts++;
    aborted = true;
    if (interrupts > 1) process.exit(130);
    process.stdout.write(`\n${stamp()} ${signal}: stopping every process...\n`);
    void withTimeout(cleanup(), 20_000, 'cleanup')
      .catch(() => undefined)
      .finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (err) {
  results.push({
    name: 'demo',
    state: 'failed',
    ms: 0,
    error: err instanceof Error ? err.message : String(err),
  });
}
process.stdout.write('\n');
say('Stopping the nodes and relays');
await withTimeout(cleanup(), 30_000, 'cleanup').catch((err: unknown) => {
  say(`cleanup: ${err instanceof Error ? err.message : String(err)}`);
});
if (keep && work) {
  // Everything needed to reopen the kept nodes and relays: demo-only secrets, printed and saved.
  const nodeDirs: Record<string, string> = {
    [SN]: join(work, 'node-sn-moj'),
    [KZ]: join(work, 'node-kz-gpo'),
  };
  const credentials = {
    note: 'DEMO ONLY: test passphrases and passwords of the kept demo folder; never reuse them',
    nodes: Object.fromEntries(
      (
        [
          [SN, snUsers],
          [KZ, kzUsers],
        ] as const
      ).map(([address, users]) => [
        address,
        {
          dir: nodeDirs[address] ?? '',
          passphrase: PASSPHRASE,
          users: [ADMIN, ...Object.values<DemoUser>(users)].map((u) => ({
            username: u.username,
            password: u.password,
          })),
        },
      ]),
    ),
    relays: Object.fromEntries(
      ['wacap', 'global', 'casc'].map((n) => [
        `relay@${n}`,
        { dir: join(work, `relay-${n}`), env: join(work, `relay-${n}`, 'env.json') },
      ]),
    ),
  };
  const file = join(work, 'demo-credentials.json');
  writeFileSync(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  detail(`kept: ${work}`);
  detail(`test passphrases and passwords (demo only) saved in ${file}; to reopen a node:`);
  detail(
    `  ROGATORY_PASSPHRASE=${PASSPHRASE} ROGATORY_PASSWORD=${snUsers.officer.password} pnpm --filter @rogatory/node exec rogatory --dir ${nodeDirs[SN] ?? ''} --user ${snUsers.officer.username} inbox`,
  );
  detail(
    '  a relay: cd <relay dir> and start it with the variables of its env.json (rogatory-relay start --config relay.json)',
  );
} else detail('temporary folder removed');

const failed = results.filter((r) => r.state !== 'ok');
process.stdout.write('\nSummary\n');
for (const r of results)
  process.stdout.write(
    `  ${r.state === 'ok' ? 'ok     ' : r.state === 'failed' ? 'FAILED ' : 'skipped'} ${(r.ms / 1000).toFixed(1).padStart(5)} s  ${r.name}${r.error ? `: ${r.error.split('\n')[0]!}` : ''}\n`,
  );
process.stdout.write(
  failed.length === 0
    ? `\nDemo completed: ${SN} -> ${KZ} request delivered, opened, executed; 5 evidences verified; audit logs and bundle verified (${((Date.now() - t0) / 1000).toFixed(1)} s). Keys were TEST keys.\n`
    : `\nDemo FAILED (${String(failed.length)} step(s) failed or skipped).\n`,
);
process.exit(failed.length === 0 ? 0 : 1);
