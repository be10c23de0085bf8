import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KDF_LIMITS,
  ready,
  generateSigningKeyPair,
  sealSigningKey,
  signKeyRotation,
  signManifest,
  signRevocation,
  verifyKeyRotation,
  type Manifest,
  type SigningKeyPair,
} from '@rogatory/protocol';
import { isRelayClientError } from '@rogatory/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RelayKeyring,
  openRelayKeyring,
  pendingKeyPaths,
  rotateRelayKey,
} from '../src/key-rotation.js';
import {
  startTestRelays,
  type TestNetworkOfRelays,
  type TestRelay,
} from '../src/testing/harness.js';
import { TestLog } from '../src/testing/publications.js';
import { nodeClient, sealAndUpload } from '../src/testing/relay-helpers.js';

const HOUR = 3600_000;
const PASSPHRASE = 'relay passphrase for tests';

describe('rogatory-relay keys rotate (files)', () => {
  let dir: string;
  beforeAll(async () => {
    await ready();
    dir = await mkdtemp(join(tmpdir(), 'rogatory-relay-rotate-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function keyFile(name: string) {
    const key = generateSigningKeyPair();
    const path = join(dir, name);
    const sealed = sealSigningKey(key, {
      passphrase: PASSPHRASE,
      purpose: 'relay-identity',
      limits: KDF_LIMITS.interactive,
    });
    await writeFile(path, JSON.stringify(sealed));
    return { key, path };
  }

  it('writes a sealed pending key and a rotation signed by the current key; the keyring opens both', async () => {
    const { key, path } = await keyFile('a.json');
    const now = Date.now();
    const result = await rotateRelayKey({
      relayId: 'relay@wacap',
      keyFile: path,
      passphrase: PASSPHRASE,
      now,
    });
    expect(result.oldKid).toBe(key.kid);
    expect(result.effectiveAt).toBe(now + 7 * 24 * HOUR);
    const ref = {
      alg: 'ed25519' as const,
      kid: key.kid,
      publicKey: Buffer.from(key.publicKey).toString('base64url'),
      notBefore: now - HOUR,
      notAfter: now + 1000 * HOUR,
    };
    const rotation = verifyKeyRotation(result.rotation, ref);
    expect(rotation.body).toMatchObject({ subject: 'relay@wacap', oldKid: key.kid });
    const paths = pendingKeyPaths(path);
    expect(JSON.parse(await readFile(paths.rotation, 'utf8'))).toEqual(result.rotation);
    const keyring = await openRelayKeyring({ keyFile: path, passphrase: PASSPHRASE });
    expect(keyring.kid).toBe(key.kid);
    expect(keyring.kids()).toEqual([key.kid, result.newKid]);
    expect(keyring.pendingKey()).toEqual({ kid: result.newKid, effectiveAt: result.effectiveAt });

    // One rotation at a time.
    await expect(
      rotateRelayKey({ relayId: 'relay@wacap', keyFile: path, passphrase: PASSPHRASE, now }),
    ).rejects.toThrow(/pending already/);
  }, 60_000);

  it('a running relay takes up a rotation made after it started (refresh), once', async () => {
    const { key, path } = await keyFile('c.json');
    const keyring = await openRelayKeyring({ keyFile: path, passphrase: PASSPHRASE });
    expect(keyring.pendingKey()).toBeUndefined();
    await keyring.refresh();
    expect(keyring.pendingKey()).toBeUndefined();
    const result = await rotateRelayKey({
      relayId: 'relay@wacap',
      keyFile: path,
      passphrase: PASSPHRASE,
      now: Date.now(),
    });
    await keyring.refresh();
    expect(keyring.kid).toBe(key.kid);
    expect(keyring.pendingKey()).toEqual({ kid: result.newKid, effectiveAt: result.effectiveAt });
  }, 60_000);

  it('refuses a wrong passphrase and an effectiveAt in the past or beyond 30 days, writing nothing', async () => {
    const { path } = await keyFile('b.json');
    const before = await readdir(dir);
    const now = Date.now();
    await expect(
      rotateRelayKey({ relayId: 'relay@wacap', keyFile: path, passphrase: 'wrong one', now }),
    ).rejects.toMatchObject({ code: 'PASSPHRASE_INVALID' });
    await expect(
      rotateRelayKey({
        relayId: 'relay@wacap',
        keyFile: path,
        passphrase: PASSPHRASE,
        now,
        effectiveAt: now - 1,
      }),
    ).rejects.toThrow(/future/);
    await expect(
      rotateRelayKey({
        relayId: 'relay@wacap',
        keyFile: path,
        passphrase: PASSPHRASE,
        now,
        effectiveAt: now + 31 * 24 * HOUR,
      }),
    ).rejects.toThrow(/30 days/);
    expect(await readdir(dir)).toEqual(before);
  });
});

describe('relay key rotation and revocation, live on a running relay', () => {
  let net: TestNetworkOfRelays;
  let rotating: TestRelay;
  let keyring: RelayKeyring;
  let skew = 0;
  let log: TestLog;
  let edition: Manifest;
  let newKey: SigningKeyPair;

  beforeAll(async () => {
    net = await startTestRelays({ backend: { kind: 'embedded' } });
    newKey = generateSigningKeyPair();
    const w = net.world.networks['wacap']!;
    keyring = new RelayKeyring(w.relay.key, { key: newKey, effectiveAt: Date.now() + HOUR });
    // A second relay of wacap that signs with the keyring, on a clock the test moves.
    rotating = await net.startInstance('wacap', {
      key: keyring,
      clock: () => Date.now() + skew,
    });
    edition = w.manifest;
    log = new TestLog('wacap', w.root).append('manifest', edition);
    await pushToBoth(log.publish());
  }, 60_000);

  afterAll(async () => {
    await net.stop();
  });

  async function push(url: string, publication: unknown) {
    const res = await fetch(`${url}/v1/trust/publications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(publication),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  async function pushToBoth(publication: unknown) {
    expect((await push(net.relays['wacap']!.url, publication)).status).toBe(200);
    expect((await push(rotating.url, publication)).status).toBe(200);
  }

  function nextEdition(patch: Partial<Manifest['body']> = {}): Manifest {
    const { type: _t, version: _v, previous: _p, ...body } = edition.body;
    edition = signManifest(
      { ...body, issuedAt: Date.now() - 500, ...patch },
      net.world.networks['wacap']!.root,
      edition,
    );
    return edition;
  }

  it('refuses submissions signed by a key revoked by a revocation statement, from the moment the publication is applied', async () => {
    const w = net.world.networks['wacap']!;
    const client = nodeClient(net.world, net.relays['wacap']!.url, 'ng-agf@wacap');
    const ok = await sealAndUpload(net.world, client, {
      from: 'ng-agf@wacap',
      to: ['sn-moj@wacap'],
    });
    await expect(client.submit(ok.envelope)).resolves.toBeDefined();

    const now = Date.now();
    log.append(
      'revocation',
      signRevocation(
        {
          network: 'wacap',
          subject: 'ng-agf@wacap',
          kid: net.world.authority('ng-agf@wacap').identityRef.kid,
          reason: 'key-compromise',
          revokedAt: now - 1000,
          issuedAt: now,
        },
        w.root,
      ),
    );
    await pushToBoth(log.publish());
    const next = await sealAndUpload(net.world, client, {
      from: 'ng-agf@wacap',
      to: ['sn-moj@wacap'],
    }).catch((e: unknown) => e);
    const err = isRelayClientError(next)
      ? next
      : await client.submit((next as { envelope: never }).envelope).catch((e: unknown) => e);
    expect(isRelayClientError(err)).toBe(true);
    expect(['SENDER_REVOKED', 'AUTH_FAILED', 'UNAUTHENTICATED']).toContain(
      (err as { code: string }).code,
    );
    // Another member is not affected.
    const other = nodeClient(net.world, net.relays['wacap']!.url, 'gh-ago@wacap');
    const fine = await sealAndUpload(net.world, other, {
      from: 'gh-ago@wacap',
      to: ['sn-moj@wacap'],
    });
    await expect(other.submit(fine.envelope)).resolves.toBeDefined();
  }, 60_000);

  it('switches the signing key when an applied edition lists the new key and effectiveAt has come, not before', async () => {
    const w = net.world.networks['wacap']!;
    const oldKid = w.relay.key.kid;
    const effectiveAt = keyring.pendingKey()!.effectiveAt;
    const pending = keyring.pendingKey()!;
    expect(pending.kid).toBe(newKey.kid);

    // An edition that does not list the new key changes nothing, even after effectiveAt.
    skew = 2 * HOUR;
    log.append('manifest', nextEdition());
    await pushToBoth(log.publish());
    expect(keyring.kid).toBe(oldKid);
    skew = 0;

    // The secretariat publishes the rotation and an edition listing the new key, before effectiveAt.
    const rotation = signKeyRotation({
      subject: w.relay.id,
      oldKey: w.relay.key,
      newKey,
      effectiveAt,
      notAfter: effectiveAt + 1000 * HOUR,
    });
    log.append('rotation', rotation);
    log.append(
      'manifest',
      nextEdition({
        relays: edition.body.relays.map((r) =>
          r.id === w.relay.id ? { ...r, key: rotation.body.newKey } : r,
        ),
      }),
    );
    await pushToBoth(log.publish());
    // Listed, but effectiveAt has not come: the relay still signs with the old key.
    expect(keyring.kid).toBe(oldKid);

    // effectiveAt comes; the next edition applied (or the timer) switches it, without a restart.
    skew = HOUR + 1000;
    log.append('manifest', nextEdition());
    await pushToBoth(log.publish());
    expect(keyring.kid).toBe(newKey.kid);
    expect(keyring.pendingKey()).toBeUndefined();
    const ops = await fetch(`${rotating.url}/v1/trust/networks`);
    expect(ops.status).toBe(200);
  }, 60_000);
});
