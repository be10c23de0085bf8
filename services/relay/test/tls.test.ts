/**
 * TLS on the relay itself (relay.tls): the real CLI serves HTTPS and WSS
 * from PEM files made here with openssl (a private CA, two leaf
 * certificates for 127.0.0.1); SIGHUP swaps the certificate for new
 * connections while an open mailbox WebSocket stays open; a broken new
 * file is refused and the old certificate keeps serving; start refuses
 * bad files naming the field and the file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { AddressInfo } from 'node:net';
import { connect, createServer } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Agent, RelayClient } from '@rogatory/client';
import { TrustStore, ready } from '@rogatory/protocol';
import { FsBlobStore } from '@rogatory/storage';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { freePort } from '@rogatory/test-services';
import { getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEmbeddedBackend } from '../src/backend/embedded.js';
import type { RelayConfig } from '../src/config.js';
import { loadRelayConfig } from '../src/config.js';
import { sealAndUpload, waitFor } from '../src/testing/relay-helpers.js';
import { RELAY_BIN, RelayProcess, writeRelayFiles } from '../src/testing/relay-process.js';
import { startRelay, type RunningRelay } from '../src/server.js';
import { startTestRelays, type TestNetworkOfRelays } from '../src/testing/harness.js';
import { RelayTlsError, readTlsMaterial } from '../src/tls.js';

const opensslInstalled = spawnSync('openssl', ['version']).status === 0;
const NODE_SCRIPT = fileURLToPath(new URL('./support/tls-node.ts', import.meta.url));
const SENDER = 'ng-agf@wacap';
const RECIPIENT = 'sn-moj@wacap';

function openssl(args: readonly string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl ${args[0] ?? ''} failed: ${r.stderr}`);
}

interface Leaf {
  readonly cert: string;
  readonly key: string;
  readonly fingerprint256: string;
}

/** A private CA (EC P-256) and leaf certificates for 127.0.0.1 it signs. */
async function makeCa(dir: string): Promise<{ caFile: string; leaf(name: string): Promise<Leaf> }> {
  await mkdir(dir, { recursive: true });
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', '/CN=Rogatory test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]); // prettier-ignore
  const ext = join(dir, 'leaf.ext');
  await writeFile(
    ext,
    'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  return {
    caFile,
    leaf: async (name) => {
      const key = join(dir, `${name}.key`);
      const csr = join(dir, `${name}.csr`);
      const cert = join(dir, `${name}.pem`);
      openssl([
        'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', key, '-out', csr, '-subj', `/CN=relay ${name}`,
      ]); // prettier-ignore
      openssl([
        'x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial',
        String(Date.now()), '-days', '1', '-extfile', ext, '-out', cert,
      ]); // prettier-ignore
      const text = await readFile(cert, 'utf8');
      return {
        cert: text,
        key: await readFile(key, 'utf8'),
        fingerprint256: new X509Certificate(text).fingerprint256,
      };
    },
  };
}

/** SHA-256 fingerprint of the certificate a NEW TLS connection to the relay is served. */
async function servedFingerprint(port: number, ca: string): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port, ca });
  try {
    await once(socket, 'secureConnect');
    const cert = socket.getPeerX509Certificate();
    if (!cert) throw new Error('no peer certificate');
    return cert.fingerprint256;
  } finally {
    socket.destroy();
  }
}

/** Replace a file the way certbot's symlink switch or `install` does: a new file renamed over the old. */
async function replaceFile(file: string, text: string, mode = 0o644): Promise<void> {
  const next = `${file}.next`;
  await writeFile(next, text, { mode });
  await rename(next, file);
}

/** The `tls-node.ts` child: a node subscribed to its mailbox over WSS, trusting the CA from NODE_EXTRA_CA_CERTS only. */
class NodeChild {
  readonly events: Record<string, unknown>[] = [];
  readonly exited: Promise<unknown>;
  private stderr = '';

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.events.push({ event: 'unparsable', line });
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString('utf8')).slice(-4000);
    });
    this.exited = once(child, 'exit');
  }

  static start(url: string, address: string, caFile: string | undefined): NodeChild {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env['NODE_EXTRA_CA_CERTS'];
    if (caFile !== undefined) env['NODE_EXTRA_CA_CERTS'] = caFile;
    return new NodeChild(
      spawn(process.execPath, ['--import', 'tsx', NODE_SCRIPT, url, address], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
  }

  count(event: string): number {
    return this.events.filter((e) => e['event'] === event).length;
  }

  async waitFor(what: string, predicate: (e: Record<string, unknown>) => boolean): Promise<void> {
    await waitFor(
      `${what} (node child events: ${JSON.stringify(this.events)}; stderr: ${this.stderr})`,
      () => (this.events.some(predicate) ? true : undefined),
      30_000,
    );
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** `rogatory-relay start` that must fail: exit code and stderr (bounded). */
async function startMustFail(configFile: string, env: Readonly<Record<string, string>>) {
  const child = spawn(process.execPath, [RELAY_BIN, 'start', '--config', configFile], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stderr };
}

describe.skipIf(!opensslInstalled)('relay TLS (relay.tls, SIGHUP reload)', () => {
  let dir: string;
  let port: number;
  let url: string;
  let world: TestWorld;
  let ca: { caFile: string; leaf(name: string): Promise<Leaf> };
  let caPem: string;
  let first: Leaf;
  let second: Leaf;
  let relay: RelayProcess | undefined;
  let relayLog = '';
  let node: NodeChild | undefined;
  let files: Awaited<ReturnType<typeof writeRelayFiles>>;
  let baseConfig: RelayConfig;
  let sender: RelayClient;
  let agent: Agent | undefined;
  let previousDispatcher: Dispatcher | undefined;
  const tlsDir = (): string => join(dir, 'relay', 'tls');

  beforeAll(async () => {
    await ready();
    dir = await mkdtemp(join(tmpdir(), 'rogatory-relay-tls-'));
    ca = await makeCa(join(dir, 'ca'));
    caPem = await readFile(ca.caFile, 'utf8');
    first = await ca.leaf('first');
    second = await ca.leaf('second');
    port = await freePort();
    url = `https://127.0.0.1:${String(port)}`;
    world = buildTestWorld({
      now: Date.now(),
      relayUrl: (n) => (n === 'wacap' ? url : 'https://127.0.0.1:9'),
    });
    await mkdir(tlsDir(), { recursive: true });
    await writeFile(join(tlsDir(), 'cert.pem'), first.cert);
    await writeFile(join(tlsDir(), 'key.pem'), first.key, { mode: 0o600 });
    files = await writeRelayFiles({
      dir: join(dir, 'relay'),
      world,
      network: 'wacap',
      port,
      backend: { kind: 'embedded' },
    });
    baseConfig = JSON.parse(await readFile(files.configFile, 'utf8')) as RelayConfig;
    // Relative paths: resolved against the configuration file's folder.
    const config: RelayConfig = {
      ...baseConfig,
      relay: { ...baseConfig.relay, tls: { certFile: 'tls/cert.pem', keyFile: 'tls/key.pem' } },
      logLevel: 'info',
    };
    await writeFile(files.configFile, JSON.stringify(config, null, 2));
    // This process trusts the private CA through its dispatchers only (RelayProcess's readiness probe uses fetch).
    const trusting = new Agent({ connect: { ca: caPem } });
    agent = trusting;
    previousDispatcher = getGlobalDispatcher();
    setGlobalDispatcher(trusting);
    relay = await RelayProcess.start(files, url);
    // RelayProcess keeps the last 8 kB of output; the reload tests count log lines over the whole run.
    const keep = (d: Buffer): void => {
      relayLog += d.toString('utf8');
    };
    relay.child.stdout?.on('data', keep);
    relay.child.stderr?.on('data', keep);
    sender = new RelayClient({
      baseUrl: url,
      address: SENDER,
      identity: world.authority(SENDER).identity,
      relayId: 'relay@wacap',
      retry: { retries: 2, baseMs: 20, maxMs: 200 },
      timeoutMs: 15_000,
      dispatcher: trusting,
    });
  }, 120_000);

  afterAll(async () => {
    await node?.stop();
    await relay?.stop();
    if (previousDispatcher) setGlobalDispatcher(previousDispatcher);
    await agent?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('loads relay.tls with paths relative to the configuration file', async () => {
    const config = await loadRelayConfig(files.configFile, {});
    expect(config.relay.tls).toEqual({
      certFile: join(tlsDir(), 'cert.pem'),
      keyFile: join(tlsDir(), 'key.pem'),
    });
  });

  it('serves HTTPS and WSS: a submission over HTTPS reaches a node subscribed over WSS that trusts the CA through NODE_EXTRA_CA_CERTS', async () => {
    expect(relay!.log).toContain('serving TLS');
    expect(relay!.log).toContain(first.fingerprint256);
    expect(await servedFingerprint(port, caPem)).toBe(first.fingerprint256);

    node = NodeChild.start(url, RECIPIENT, ca.caFile);
    await node.waitFor('the node connected over WSS', (e) => e['event'] === 'connected');
    const prepared = await sealAndUpload(world, sender, { from: SENDER, to: [RECIPIENT] });
    const acceptance = await sender.submit(prepared.envelope);
    expect(acceptance.body.envelopeId).toBe(prepared.envelope.body.id);
    await node.waitFor(
      'the envelope delivered over WSS',
      (e) => e['event'] === 'item' && e['id'] === prepared.envelope.body.id,
    );
    expect(node.count('error')).toBe(0);
  }, 90_000);

  it('without the CA, a node refuses the relay (the trust came from NODE_EXTRA_CA_CERTS)', async () => {
    const untrusting = NodeChild.start(url, 'gh-ago@wacap', undefined);
    try {
      await untrusting.waitFor('a certificate error', (e) => e['event'] === 'error');
      expect(untrusting.count('connected')).toBe(0);
      const codes = untrusting.events.filter((e) => e['event'] === 'error');
      expect(JSON.stringify(codes)).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    } finally {
      await untrusting.stop();
    }
    // Nor is plain HTTP served on the TLS port.
    const plain = await fetch(`http://127.0.0.1:${String(port)}/readyz`, {
      signal: AbortSignal.timeout(5000),
    }).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(plain).toBe('refused');
  }, 60_000);

  it('SIGHUP serves the new certificate to new connections while the open WebSocket stays open and keeps delivering', async () => {
    expect(node?.count('connected')).toBe(1);
    await replaceFile(join(tlsDir(), 'cert.pem'), second.cert);
    await replaceFile(join(tlsDir(), 'key.pem'), second.key, 0o600);
    relay!.child.kill('SIGHUP');
    await waitFor('the reload log line', () =>
      relayLog.includes('TLS certificate reloaded') ? true : undefined,
    );
    expect(relayLog).toContain(second.fingerprint256);
    expect(await servedFingerprint(port, caPem)).toBe(second.fingerprint256);
    // No key material in the log.
    expect(relayLog).not.toContain('PRIVATE KEY');
    expect(relayLog).not.toContain(second.key.split('\n')[1]!);

    // The subscription opened before the reload is still the same connection, and still delivers.
    const prepared = await sealAndUpload(world, sender, { from: SENDER, to: [RECIPIENT] });
    await sender.submit(prepared.envelope);
    await node!.waitFor(
      'the second envelope on the open WebSocket',
      (e) => e['event'] === 'item' && e['id'] === prepared.envelope.body.id,
    );
    expect(node!.count('disconnected')).toBe(0);
    expect(node!.count('connected')).toBe(1);
    expect(relay!.alive).toBe(true);
  }, 90_000);

  it('a broken new file is refused with its field, file and reason; the previous certificate keeps serving', async () => {
    const certFile = join(tlsDir(), 'cert.pem');
    const keyFile = join(tlsDir(), 'key.pem');
    const refusals = (): number => relayLog.split('TLS reload refused').length - 1;

    // Not PEM at all.
    await replaceFile(certFile, 'this is not a certificate\n');
    relay!.child.kill('SIGHUP');
    await waitFor('the first refusal', () => (refusals() >= 1 ? true : undefined));
    expect(relayLog).toMatch(/relay\.tls\.certFile/);
    expect(relayLog).toContain(certFile);
    expect(relayLog).toContain('not a PEM certificate');
    expect(await servedFingerprint(port, caPem)).toBe(second.fingerprint256);

    // A valid certificate with a key that is not its own.
    await replaceFile(certFile, first.cert);
    relay!.child.kill('SIGHUP');
    await waitFor('the second refusal', () => (refusals() >= 2 ? true : undefined));
    expect(relayLog).toContain(`relay.tls.keyFile (${keyFile}): not the private key`);
    expect(await servedFingerprint(port, caPem)).toBe(second.fingerprint256);

    // The key file gone (a renewal half done).
    await rm(keyFile);
    relay!.child.kill('SIGHUP');
    await waitFor('the third refusal', () => (refusals() >= 3 ? true : undefined));
    expect(relayLog).toContain(`relay.tls.keyFile (${keyFile}): no such file`);
    expect(await servedFingerprint(port, caPem)).toBe(second.fingerprint256);

    // Repaired: the next SIGHUP takes it, the WebSocket is still the one opened at the start.
    await replaceFile(keyFile, first.key, 0o600);
    relay!.child.kill('SIGHUP');
    await waitFor('the repaired reload', () =>
      relayLog.split('TLS certificate reloaded').length - 1 >= 2 ? true : undefined,
    );
    expect(await servedFingerprint(port, caPem)).toBe(first.fingerprint256);
    expect(relay!.alive).toBe(true);
    expect(node!.count('disconnected')).toBe(0);
    // Requests still work on the reloaded certificate.
    const readyz = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
    expect(readyz.status).toBe(200);
  }, 90_000);

  it('start refuses a missing, non-PEM or mismatched certificate or key, naming the field and the file', async () => {
    const cases: { name: string; tls: Record<string, string>; write?: () => Promise<void>; expected: string[] }[] = [
      {
        name: 'missing certificate',
        tls: { certFile: join(dir, 'nowhere', 'cert.pem'), keyFile: join(tlsDir(), 'key.pem') },
        expected: ['relay.tls.certFile', join(dir, 'nowhere', 'cert.pem'), 'no such file'],
      },
      {
        name: 'key not PEM',
        tls: { certFile: join(tlsDir(), 'cert.pem'), keyFile: join(dir, 'bad-key.pem') },
        write: () => writeFile(join(dir, 'bad-key.pem'), '{"not":"a key"}\n'),
        expected: ['relay.tls.keyFile', join(dir, 'bad-key.pem'), 'not a PEM private key'],
      },
      {
        name: 'key of another certificate',
        tls: { certFile: join(tlsDir(), 'cert.pem'), keyFile: join(dir, 'other-key.pem') },
        write: () => writeFile(join(dir, 'other-key.pem'), second.key),
        expected: ['relay.tls.keyFile', join(dir, 'other-key.pem'), 'not the private key'],
      },
      {
        name: 'CA bundle not PEM',
        tls: {
          certFile: join(tlsDir(), 'cert.pem'),
          keyFile: join(tlsDir(), 'key.pem'),
          caFile: join(dir, 'bad-ca.pem'),
        },
        write: () => writeFile(join(dir, 'bad-ca.pem'), 'garbage'),
        expected: ['relay.tls.caFile', join(dir, 'bad-ca.pem'), 'not a PEM certificate'],
      },
    ]; // prettier-ignore
    for (const c of cases) {
      await c.write?.();
      const configFile = join(dir, `bad-${c.name.replace(/\W+/g, '-')}.json`);
      await writeFile(
        configFile,
        JSON.stringify({
          ...baseConfig,
          relay: { ...baseConfig.relay, port: await freePort(), tls: c.tls },
        }),
      );
      const { code, stderr } = await startMustFail(configFile, files.env);
      expect(code, c.name).not.toBe(0);
      expect(code, c.name).not.toBeNull();
      for (const text of c.expected) expect(stderr, c.name).toContain(text);
      for (const leaf of [first, second])
        expect(stderr, c.name).not.toContain(leaf.key.split('\n')[1]!);
      expect(stderr, c.name).not.toMatch(/\n\s+at /); // no stack trace
    }
  }, 120_000);

  it('readTlsMaterial refuses an expired certificate, an encrypted key, an unreadable file, and never quotes the key', async () => {
    const certFile = join(dir, 'ca', 'first.pem');
    const keyFile = join(dir, 'ca', 'first.key');
    const refusal = async (p: Promise<unknown>): Promise<RelayTlsError> => {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RelayTlsError);
      return err as RelayTlsError;
    };
    const ok = await readTlsMaterial({ certFile, keyFile });
    expect(ok.info.fingerprint256).toBe(first.fingerprint256);
    expect(ok.info.subjectAltName).toContain('127.0.0.1');
    expect(Date.parse(ok.info.notAfter)).toBeGreaterThan(Date.now());

    const expired = await refusal(
      readTlsMaterial({ certFile, keyFile }, Date.now() + 3 * 86_400_000),
    );
    expect(expired).toMatchObject({
      code: 'TLS_FILE_REFUSED',
      field: 'relay.tls.certFile',
      file: certFile,
    });
    expect(expired.reason).toMatch(/^the certificate expired on \d{4}-/);

    const encrypted = join(dir, 'encrypted.key');
    openssl(['pkcs8', '-topk8', '-in', keyFile, '-out', encrypted, '-passout', 'pass:secret-test']);
    const enc = await refusal(readTlsMaterial({ certFile, keyFile: encrypted }));
    expect(enc).toMatchObject({ field: 'relay.tls.keyFile', file: encrypted });
    expect(enc.reason).toContain('encrypted');

    const dirAsCert = await refusal(readTlsMaterial({ certFile: dir, keyFile }));
    expect(dirAsCert).toMatchObject({
      field: 'relay.tls.certFile',
      reason: 'is a directory, not a file',
    });

    // A key given as the certificate: refused as not a certificate, without quoting it.
    const swapped = await refusal(readTlsMaterial({ certFile: keyFile, keyFile }));
    expect(swapped.field).toBe('relay.tls.certFile');
    expect(swapped.message).not.toContain(first.key.split('\n')[1]!);

    if (process.getuid?.() !== 0) {
      const unreadable = join(dir, 'unreadable.key');
      await writeFile(unreadable, first.key);
      await chmod(unreadable, 0o000);
      const denied = await refusal(readTlsMaterial({ certFile, keyFile: unreadable }));
      expect(denied).toMatchObject({
        field: 'relay.tls.keyFile',
        reason: 'not readable by the relay (permission denied)',
      });
    }
  });
});

describe.skipIf(!opensslInstalled)('relay TLS in process (startRelay, reloadTls)', () => {
  let dir: string;
  let running: RunningRelay | undefined;
  let plainRelays: TestNetworkOfRelays | undefined;

  afterAll(async () => {
    await running?.stop();
    await plainRelays?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves the intermediate of caFile with a leaf-only certFile, reloads through reloadTls, and counts failed handshakes', async () => {
    await ready();
    dir = await mkdtemp(join(tmpdir(), 'rogatory-relay-tls-chain-'));
    const root = await makeCa(join(dir, 'root'));
    // An intermediate CA signed by the root; the relay's leaf is signed by the intermediate.
    const intKey = join(dir, 'int.key');
    const intCsr = join(dir, 'int.csr');
    const intPem = join(dir, 'int.pem');
    const intExt = join(dir, 'int.ext');
    await writeFile(
      intExt,
      'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n',
    );
    openssl([
      'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', intKey, '-out', intCsr, '-subj', '/CN=Rogatory test intermediate',
    ]); // prettier-ignore
    openssl([
      'x509', '-req', '-in', intCsr, '-CA', root.caFile, '-CAkey', join(dir, 'root', 'ca.key'),
      '-set_serial', '7', '-days', '2', '-extfile', intExt, '-out', intPem,
    ]); // prettier-ignore
    const leafKey = join(dir, 'leaf.key');
    const leafCsr = join(dir, 'leaf.csr');
    const leafPem = join(dir, 'leaf.pem');
    openssl([
      'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', leafKey, '-out', leafCsr, '-subj', '/CN=relay via intermediate',
    ]); // prettier-ignore
    openssl([
      'x509', '-req', '-in', leafCsr, '-CA', intPem, '-CAkey', intKey, '-set_serial', '8',
      '-days', '1', '-extfile', join(dir, 'root', 'leaf.ext'), '-out', leafPem,
    ]); // prettier-ignore
    const rootPem = await readFile(root.caFile, 'utf8');

    const port = await freePort();
    const url = `https://127.0.0.1:${String(port)}`;
    const world = buildTestWorld({ now: Date.now(), relayUrl: () => url });
    const net = world.networks['wacap']!;
    const trust = new TrustStore({ pinned: [{ network: 'wacap', root: net.rootRef }] });
    trust.addManifest(net.manifest);
    for (const peer of net.manifest.body.peers)
      trust.addManifest(world.networks[peer.network]!.manifest);
    const tlsFiles = { certFile: leafPem, keyFile: leafKey, caFile: intPem };
    running = await startRelay(
      {
        relayId: net.relay.id,
        key: net.relay.key,
        trust,
        backend: await openEmbeddedBackend({ file: join(dir, 'relay.db') }),
        blobs: await FsBlobStore.open({ dir: join(dir, 'chunks') }),
        sessionSecret: randomBytes(32),
        logger: false,
        workers: false,
        trustDir: join(dir, 'trust'),
        tls: { files: tlsFiles, material: await readTlsMaterial(tlsFiles) },
      },
      { host: '127.0.0.1', port },
    );
    expect(running.url).toBe(url);
    // Trusting the root only: the handshake needs the intermediate the relay sends from caFile.
    const leafFingerprint = new X509Certificate(await readFile(leafPem, 'utf8')).fingerprint256;
    expect(await servedFingerprint(port, rootPem)).toBe(leafFingerprint);

    // Without caFile the chain is incomplete: the same client refuses it (caFile is what made it work).
    const leafOnly = await readTlsMaterial({ certFile: leafPem, keyFile: leafKey });
    const bare = createServer({ cert: leafOnly.cert, key: leafOnly.key });
    await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
    try {
      const barePort = (bare.address() as AddressInfo).port;
      await expect(servedFingerprint(barePort, rootPem)).rejects.toMatchObject({
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      });
    } finally {
      bare.close();
    }

    // reloadTls: a new leaf from the root, certFile replaced; two reloads asked at once run one after the other.
    const next = await root.leaf('next');
    await replaceFile(leafPem, next.cert);
    await replaceFile(leafKey, next.key, 0o600);
    const [a, b] = await Promise.all([running.reloadTls(), running.reloadTls()]);
    expect(a).toMatchObject({
      reloaded: true,
      certificate: { fingerprint256: next.fingerprint256 },
    });
    expect(b).toMatchObject({
      reloaded: true,
      certificate: { fingerprint256: next.fingerprint256 },
    });
    expect(await servedFingerprint(port, rootPem)).toBe(next.fingerprint256);

    // A refusal is an outcome, not a rejection.
    await replaceFile(leafKey, 'garbage', 0o600);
    const refused = await running.reloadTls();
    expect(refused).toMatchObject({
      reloaded: false,
      reason: 'refused',
      error: { code: 'TLS_FILE_REFUSED', field: 'relay.tls.keyFile', file: leafKey },
    });
    expect(await servedFingerprint(port, rootPem)).toBe(next.fingerprint256);

    // Plain HTTP on the TLS port fails its handshake: counted, not served.
    const plain = await fetch(`http://127.0.0.1:${String(port)}/healthz`, {
      signal: AbortSignal.timeout(5000),
    }).then(
      () => 'answered',
      () => 'refused',
    );
    expect(plain).toBe('refused');
    const metrics = await running.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(
      /rogatory_relay_client_errors_total\{reason="tls_handshake"\} [1-9]/,
    );
  }, 90_000);

  it('a relay without relay.tls serves plain HTTP and answers a reload with not-configured', async () => {
    plainRelays = await startTestRelays({ backend: { kind: 'embedded' }, networks: ['wacap'] });
    const relay = plainRelays.relays['wacap']!;
    expect(relay.url.startsWith('http://')).toBe(true);
    expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
    expect(await relay.running.reloadTls()).toEqual({ reloaded: false, reason: 'not-configured' });
  }, 60_000);
});
