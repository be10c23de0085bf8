/**
 * Fuzz of a real relay over loopback: thousands of malformed, hostile or
 * merely wrong inputs on every route, deterministic from a seed
 * (ROGATORY_FUZZ_SEED overrides it to explore). Each must be refused with
 * a 4xx and a stable error code, in bounded time; afterwards nothing may
 * have been stored and the relay must still carry a valid dossier end to end.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { sha256Hex, type RelayClient } from '@rogatory/client';
import {
  canonicalBytes,
  envelopeHash,
  isAddress,
  issueEvidence,
  signRevocation,
  toBase64url,
  toHex,
  utf8,
  verifyEvidence,
  generateSigningKeyPair,
  type Envelope,
  type EnvelopeBody,
  type Evidence,
  type TrustStore,
} from '@rogatory/protocol';
import type { TestWorld } from '@rogatory/protocol/testing';
import { startRedis } from '@rogatory/test-services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendStats } from '../src/backend/types.js';
import type { RelayLimits } from '../src/options.js';
import { envelopeBodyLimits } from '@rogatory/relay-api';
import {
  startTestRelays,
  type BackendKind,
  type TestNetworkOfRelays,
  type TestRelay,
} from '../src/testing/harness.js';
import {
  badChunkIdSegments,
  jsonDocuments,
  mutateBytes,
  mutateJson,
  nonCanonicalSpellings,
  nonJsonBodies,
  objectsWithKeys,
} from './support/fuzz-inputs.js';
import { FuzzLedger, type Expectation } from './support/fuzz-ledger.js';
import { HttpProbe, type ProbeRequest } from './support/http-probe.js';
import {
  askChallenge,
  loginToken,
  sessionRequest,
  signedRelayHeaders,
  type SessionRequestBody,
} from './support/relay-auth.js';
import {
  filesBelow,
  inPool,
  nodeClient,
  sealAndUpload,
  signAsIs,
  waitFor,
  type Prepared,
} from '../src/testing/relay-helpers.js';
import { SeededRandom } from './support/seeded.js';
import { WsProbe } from './support/ws-probe.js';

const SEED = process.env['ROGATORY_FUZZ_SEED'] ?? 'relay-fuzz-2026';
/** Small limits, so that "just over the limit" is cheap to send many times. */
const LIMITS = {
  maxEnvelopeBytes: 64 * 1024,
  maxChunkBytes: 64 * 1024,
  maxTotalBytes: 512 * 1024,
  maxRecipients: 4,
} satisfies Partial<RelayLimits>;
const CONCURRENCY = 8;
const WS_MAX_PAYLOAD = 256 * 1024;
const RELAY = 'relay@wacap';
const SN = 'sn-moj@wacap';
const NG = 'ng-agf@wacap';
/** Its key gets a revocation effective a few minutes after start, then one effective at once. */
const GH = 'gh-ago@wacap';
const KZ = 'kz-gpo@casc';
type Codes = NonNullable<Expectation['code']>;
const JSON_TYPE = { 'content-type': 'application/json' } as const;
const BYTES_TYPE = { 'content-type': 'application/octet-stream' } as const;

const redisInstalled =
  spawnSync(process.env['REDIS_SERVER'] ?? 'redis-server', ['--version']).status === 0;

interface Fixture {
  readonly net: TestNetworkOfRelays;
  readonly world: TestWorld;
  readonly relay: TestRelay;
  readonly chunkDir: string;
  readonly probe: HttpProbe;
  readonly ledger: FuzzLedger;
  readonly rng: SeededRandom;
  /** The relay's own trust store (revocations added while it runs). */
  readonly trust: TrustStore;
  readonly scheduledRevocation: number;
  readonly tokens: { sn: string; ng: string; gh: string };
  readonly clients: { sn: RelayClient; ng: RelayClient };
  /** Accepted and acked before the fuzz: its id is taken. */
  readonly e0: Prepared;
  /** Accepted, in ng-agf's mailbox, never acked by the fuzz: foreign acks must not remove it. */
  readonly victim: Prepared & { readonly seq: number };
  /** Sealed with its chunks uploaded but never submitted: the base of mutations. */
  readonly base: Prepared;
  readonly baseBytes: Uint8Array;
  readonly baseline: BackendStats;
  /** Ids of envelopes the fuzz signed: none may be stored. */
  readonly signedIds: Set<string>;
  /** Chunk ids of refused or aborted uploads: none may be stored. */
  readonly refusedChunks: Set<string>;
}

const enc = (s: string): Uint8Array => utf8(s);
/** A JSON object (not null, not an array), or undefined. */
const objectOf = (v: unknown): Record<string, unknown> | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

async function setUp(backend: BackendKind): Promise<Fixture> {
  const t0 = Date.now();
  const scheduledRevocation = t0 + 4 * 60_000;
  let trust: TrustStore | undefined;
  const net = await startTestRelays({
    backend,
    now: t0,
    networks: ['wacap'],
    relayOptions: { limits: LIMITS },
    trustSetup: (network, store, world) => {
      if (network !== 'wacap') return;
      const gh = world.authority(GH);
      store.addRevocation(
        signRevocation(
          {
            network: 'wacap',
            subject: GH,
            kid: gh.identityRef.kid,
            reason: 'key-compromise',
            revokedAt: scheduledRevocation,
            issuedAt: t0,
          },
          world.networks['wacap']!.root,
        ),
      );
      trust = store;
    },
  });
  try {
    const world = net.world;
    const relay = net.relays['wacap']!;
    const probe = HttpProbe.fromUrl(relay.url);
    const tokens = {
      sn: await loginToken(probe, SN, world.authority(SN).identity),
      ng: await loginToken(probe, NG, world.authority(NG).identity),
      gh: await loginToken(probe, GH, world.authority(GH).identity),
    };
    const clients = { sn: nodeClient(world, relay.url, SN), ng: nodeClient(world, relay.url, NG) };
    const rng = new SeededRandom(SEED);

    const e0 = await sealAndUpload(world, clients.sn, { from: SN, to: [NG] });
    await clients.sn.submit(e0.envelope);
    const e0Item = (await clients.ng.readMailbox(0, 100)).find(
      (i) => i.kind === 'envelope' && i.envelope.body.id === e0.envelope.body.id,
    );
    if (!e0Item) throw new Error('setup: e0 not delivered');
    await clients.ng.ack([e0Item.seq]);

    const victimSealed = await sealAndUpload(world, clients.sn, { from: SN, to: [NG] });
    await clients.sn.submit(victimSealed.envelope);
    const victimItem = (await clients.ng.readMailbox(0, 100)).find(
      (i) => i.kind === 'envelope' && i.envelope.body.id === victimSealed.envelope.body.id,
    );
    if (!victimItem) throw new Error('setup: victim not delivered');

    const base = await sealAndUpload(world, clients.sn, {
      from: SN,
      to: [GH],
      envelopeId: toBase64url(rng.fork('base-id').bytes(16)),
    });
    return {
      net,
      world,
      relay,
      chunkDir: join(net.dir, backend.kind === 'embedded' ? 'wacap-0-chunks' : 'wacap-chunks'),
      probe,
      ledger: new FuzzLedger({
        trust: world.trustFor('wacap'),
        relayId: RELAY,
        maxEnvelopeBytes: LIMITS.maxEnvelopeBytes,
        seed: SEED,
      }),
      rng,
      trust: trust!,
      scheduledRevocation,
      tokens,
      clients,
      e0,
      victim: { ...victimSealed, seq: victimItem.seq },
      base,
      baseBytes: canonicalBytes(base.envelope),
      baseline: await relay.backend.stats(),
      signedIds: new Set(),
      refusedChunks: new Set(),
    };
  } catch (err) {
    await net.stop();
    throw err;
  }
}

/** A plain envelope body with defaults, for hand-signed variants. */
function bodyOf(rng: SeededRandom, overrides: Partial<EnvelopeBody> = {}): EnvelopeBody {
  const now = Date.now();
  const body: EnvelopeBody = {
    type: 'envelope',
    version: 1,
    id: toBase64url(rng.bytes(16)),
    sender: SN,
    recipients: [GH],
    createdAt: now,
    expiresAt: now + 24 * 3600 * 1000,
    maxHops: 4,
    dossier: { id: toHex(rng.bytes(32)), size: 1000 },
    chunks: [],
    totalSize: 1000,
    ...overrides,
  };
  return {
    ...body,
    totalSize:
      overrides.totalSize ?? body.dossier.size + body.chunks.reduce((n, c) => n + c.size, 0),
  };
}

function fuzzSuite(
  name: string,
  backend: () => Promise<{ kind: BackendKind; stop?: () => Promise<void> }>,
): void {
  describe(name, () => {
    let fx: Fixture | undefined;
    let stopBackend: (() => Promise<void>) | undefined;
    const f = (): Fixture => {
      if (!fx) throw new Error('fixture not set up');
      return fx;
    };

    beforeAll(async () => {
      const b = await backend();
      stopBackend = b.stop;
      fx = await setUp(b.kind);
    }, 120_000);

    afterAll(async () => {
      fx?.probe.close();
      await fx?.net.stop();
      await stopBackend?.();
    });

    /** Send one request that must be refused. */
    const refuse = async (
      kind: string,
      label: string,
      request: ProbeRequest,
      expect: Expectation = {},
    ): Promise<void> => {
      f().ledger.reject(kind, label, await f().probe.send(request), expect);
    };

    const submit = async (
      kind: string,
      label: string,
      bytes: Uint8Array,
      expect: Expectation = {},
      token = f().tokens.sn,
      session = SN,
    ): Promise<void> => {
      await refuse(
        kind,
        label,
        {
          method: 'POST',
          path: '/v1/envelopes',
          headers: { ...JSON_TYPE, ...bearer(token) },
          body: bytes,
        },
        { ...expect, submission: { bytes, session } },
      );
    };

    /** Violations recorded from now on: each phase fails on its own, the last one checks them all. */
    const phase = (): (() => void) => {
      const start = f().ledger.violations.length;
      return () => {
        expect(f().ledger.violations.slice(start)).toEqual([]);
      };
    };

    const signed = (envelope: Envelope): Envelope => {
      f().signedIds.add(envelope.body.id);
      return envelope;
    };

    it('refuses malformed challenges, logins and tokens', async () => {
      const done = phase();
      const { probe, world, tokens } = f();
      const r = f().rng.fork('sessions');

      const isValidChallengeRequest = (bytes: Uint8Array): boolean => {
        try {
          const v = objectOf(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)));
          return v !== undefined && Object.keys(v).length === 1 && isAddress(v['address']);
        } catch {
          return false;
        }
      };
      const badAddresses = [
        '',
        'x',
        'sn-moj',
        '@wacap',
        'sn-moj@',
        'a@b@c',
        'SN-MOJ@wacap',
        'sn moj@wacap',
        'sn-moj@wacap ',
        `${'a'.repeat(64)}@wacap`,
        'sn-moj@wacap\u0000',
        'sn-møj@wacap',
        '-x@wacap',
      ];
      const challengeBodies = [
        ...nonJsonBodies(r, 40),
        ...jsonDocuments(r, 30).map(enc),
        ...objectsWithKeys(r, ['address'], 40).map(enc),
        ...badAddresses.map((address) => canonicalBytes({ address })),
        canonicalBytes({ address: SN, extra: 1 }),
      ].filter((b) => !isValidChallengeRequest(b));
      await inPool(challengeBodies, CONCURRENCY, async (body, i) => {
        await refuse(
          'session-challenge',
          `challenge #${String(i)}`,
          { method: 'POST', path: '/v1/session/challenge', headers: JSON_TYPE, body },
          { code: ['MALFORMED', 'LIMIT_EXCEEDED'] },
        );
      });
      for (const chunked of [false, true]) {
        await refuse(
          'oversize',
          `challenge of 4097 bytes${chunked ? ' (chunked)' : ''}`,
          {
            method: 'POST',
            path: '/v1/session/challenge',
            headers: JSON_TYPE,
            body: enc(`{"address":"${'a'.repeat(4097 - 14)}"}`),
            chunked,
          },
          { code: 'LIMIT_EXCEEDED' },
        );
      }

      const loginBodies = [
        ...nonJsonBodies(r, 20),
        ...jsonDocuments(r, 20).map(enc),
        ...objectsWithKeys(r, ['body', 'signature'], 30).map(enc),
      ];
      await inPool(loginBodies, CONCURRENCY, async (body, i) => {
        await refuse(
          'session-login',
          `login #${String(i)}`,
          { method: 'POST', path: '/v1/session', headers: JSON_TYPE, body },
          { code: ['MALFORMED', 'LIMIT_EXCEEDED'] },
        );
      });
      await refuse(
        'oversize',
        'login of 8193 bytes',
        {
          method: 'POST',
          path: '/v1/session',
          headers: JSON_TYPE,
          body: enc(`{"body":"${'a'.repeat(8193 - 11)}"}`),
        },
        { code: 'LIMIT_EXCEEDED' },
      );

      // Mutations of one valid signed answer: every one refused. A refused attempt uses its challenge up
      // (docs/relay-api.md), so a valid answer to a fresh challenge then works once only.
      const sn = world.authority(SN).identity;
      const c = await askChallenge(probe, SN);
      const mutated = sessionRequest(
        {
          type: 'session',
          relay: c.relay,
          address: SN,
          challenge: c.challenge,
          issuedAt: Date.now(),
        },
        sn,
      );
      const mutants = Array.from({ length: 60 }, () => mutateJson(r, mutated));
      await inPool(mutants, CONCURRENCY, async (m) => {
        await refuse('session-login', `mutated login ${m.how}`, {
          method: 'POST',
          path: '/v1/session',
          headers: JSON_TYPE,
          body: enc(JSON.stringify(m.value)),
        });
      });
      const c2 = await askChallenge(probe, SN);
      const valid = sessionRequest(
        {
          type: 'session',
          relay: c2.relay,
          address: SN,
          challenge: c2.challenge,
          issuedAt: Date.now(),
        },
        sn,
      );
      const first = await probe.send({
        method: 'POST',
        path: '/v1/session',
        headers: JSON_TYPE,
        body: canonicalBytes(valid),
      });
      expect(first.kind === 'response' && first.response.status).toBe(200);
      for (let i = 0; i < 3; i++) {
        await refuse(
          'session-login',
          'challenge used twice',
          { method: 'POST', path: '/v1/session', headers: JSON_TYPE, body: canonicalBytes(valid) },
          { code: 'CHALLENGE_INVALID' },
        );
      }

      // Well-formed answers that are wrong in one respect each, on a fresh challenge.
      const ng = world.authority(NG).identity;
      const stranger = generateSigningKeyPair(r.bytes(32));
      const poc = world.networks['wacap']!.poc;
      const relayKey = world.networks['wacap']!.relay.key;
      const cases: {
        label: string;
        challengeFor: string;
        body: (c: { challenge: string; relay: string }) => SessionRequestBody;
        key: typeof sn;
        kid?: string;
        code: Codes;
      }[] = [
        {
          label: 'answer for another address',
          challengeFor: SN,
          body: (x) => ({
            type: 'session',
            relay: x.relay,
            address: NG,
            challenge: x.challenge,
            issuedAt: Date.now(),
          }),
          key: ng,
          code: 'CHALLENGE_INVALID',
        },
        {
          label: 'answer naming another relay',
          challengeFor: SN,
          body: (x) => ({
            type: 'session',
            relay: 'relay@casc',
            address: SN,
            challenge: x.challenge,
            issuedAt: Date.now(),
          }),
          key: sn,
          code: 'CHALLENGE_INVALID',
        },
        {
          label: 'forged challenge',
          challengeFor: SN,
          body: (x) => ({
            type: 'session',
            relay: x.relay,
            address: SN,
            challenge: toBase64url(r.bytes(32)),
            issuedAt: Date.now(),
          }),
          key: sn,
          code: 'CHALLENGE_INVALID',
        },
        {
          label: 'short challenge',
          challengeFor: SN,
          body: (x) => ({
            type: 'session',
            relay: x.relay,
            address: SN,
            challenge: x.challenge.slice(0, 40),
            issuedAt: Date.now(),
          }),
          key: sn,
          code: ['CHALLENGE_INVALID', 'MALFORMED'],
        },
        {
          label: 'challenge with its expiry changed',
          challengeFor: SN,
          body: (x) => ({
            type: 'session',
            relay: x.relay,
            address: SN,
            challenge: `${x.challenge.slice(0, 16)}${x.challenge[16] === 'A' ? 'B' : 'A'}${x.challenge.slice(17)}`,
            issuedAt: Date.now(),
          }),
          key: sn,
          code: 'CHALLENGE_INVALID',
        },
        {
          label: 'issued 10 minutes ago',
          challengeFor: SN,
          body: (x) => ({
            type: 'session',
            relay: x.relay,
            address: SN,
            challenge: x.challenge,
            issuedAt: Date.now() - 600_000,
          }),
          key: sn,
          code: 'CHALLENGE_INVALID',
        },
        {
          label: 'issued in 10 minutes',
          challengeFor: SN,
          body: (x) => ({
            type: 'session',
            relay: x.relay,
            address: SN,
            challenge: x.challenge,
            issuedAt: Date.now() + 600_000,
          }),
          key: sn,
          code: 'CHALLENGE_INVALID',
        },
        {
          label: 'authority of another network',
          challengeFor: KZ,
          body: (x) => ({
            type: 'session',
            relay: x.relay,
            address: KZ,
            challenge: x.challenge,
            issuedAt: Date.now(),
          }),
          key: world.authority(KZ).identity,
          code: 'FORBIDDEN',
        },
        {
          label: 'unknown authority',
          challengeFor: 'nobody@wacap',
          body: (x) => ({
            type: 'session',
            relay: x.relay,
            address: 'nobody@wacap',
            challenge: x.challenge,
            issuedAt: Date.now(),
          }),
          key: stranger,
          code: 'SENDER_UNKNOWN',
        },
        {
          label: "another member's key",
          challengeFor: SN,
          body: (x) => ({
            type: 'session',
            relay: x.relay,
            address: SN,
            challenge: x.challenge,
            issuedAt: Date.now(),
          }),
          key: ng,
          code: 'SENDER_UNKNOWN',
        },
        {
          label: 'bad signature under the right kid',
          challengeFor: SN,
          body: (x) => ({
            type: 'session',
            relay: x.relay,
            address: SN,
            challenge: x.challenge,
            issuedAt: Date.now(),
          }),
          key: ng,
          kid: sn.kid,
          code: 'SIGNATURE_INVALID',
        },
        {
          // A point of contact may open a session (design D5), but only with its own key.
          label: 'a point of contact signing with an authority key under its kid',
          challengeFor: poc.address,
          body: (x) => ({
            type: 'session',
            relay: x.relay,
            address: poc.address,
            challenge: x.challenge,
            issuedAt: Date.now(),
          }),
          key: ng,
          kid: poc.key.kid,
          code: 'SIGNATURE_INVALID',
        },
        {
          label: 'the relay itself',
          challengeFor: RELAY,
          body: (x) => ({
            type: 'session',
            relay: x.relay,
            address: RELAY,
            challenge: x.challenge,
            issuedAt: Date.now(),
          }),
          key: relayKey,
          code: 'SENDER_UNKNOWN',
        },
        {
          label: 'type not session',
          challengeFor: SN,
          body: (x) => ({
            type: 'sessionX',
            relay: x.relay,
            address: SN,
            challenge: x.challenge,
            issuedAt: Date.now(),
          }),
          key: sn,
          code: 'MALFORMED',
        },
      ];
      for (const k of cases) {
        const fresh = await askChallenge(probe, k.challengeFor);
        const req = sessionRequest(k.body(fresh), k.key);
        const bodyOut = k.kid ? { ...req, signature: { ...req.signature, kid: k.kid } } : req;
        await refuse(
          'session-login',
          k.label,
          {
            method: 'POST',
            path: '/v1/session',
            headers: JSON_TYPE,
            body: canonicalBytes(bodyOut),
          },
          { code: k.code },
        );
      }

      // Bearer tokens: missing, malformed, altered, forged, on every authenticated route.
      const valid64 = sha256Hex(enc('any'));
      const routes: ProbeRequest[] = [
        { method: 'GET', path: '/v1/mailbox' },
        { method: 'POST', path: '/v1/envelopes', headers: JSON_TYPE, body: f().baseBytes },
        {
          method: 'POST',
          path: '/v1/chunks/missing',
          headers: JSON_TYPE,
          body: canonicalBytes({ ids: [valid64] }),
        },
        {
          method: 'PUT',
          path: `/v1/chunks/${sha256Hex(enc('x'))}`,
          headers: BYTES_TYPE,
          body: enc('x'),
        },
        { method: 'GET', path: `/v1/chunks/${f().e0.envelope.body.dossier.id}` },
        {
          method: 'POST',
          path: '/v1/mailbox/ack',
          headers: JSON_TYPE,
          body: canonicalBytes({ seqs: [f().victim.seq] }),
        },
        { method: 'POST', path: '/v1/evidences', headers: JSON_TYPE, body: enc('{}') },
      ];
      const token = tokens.sn;
      const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const altered = (): string => {
        const i = r.int(token.length);
        let ch = b64[r.int(64)]!;
        if (ch === token[i]) ch = ch === 'A' ? 'B' : 'A';
        return `${token.slice(0, i)}${ch}${token.slice(i + 1)}`;
      };
      const authHeaders: (Record<string, string> | undefined)[] = [
        undefined,
        { authorization: 'Bearer' },
        { authorization: 'Bearer ' },
        { authorization: `Basic ${Buffer.from('sn-moj:secret').toString('base64')}` },
        { authorization: `bearer ${token}` },
        { authorization: `Bearer  ${token}` },
        { authorization: `Bearer ${token}A` },
        { authorization: `Bearer ${token.slice(0, -1)}` },
        { authorization: `Bearer ${token.slice(0, -3)}` },
        { authorization: `Bearer ${'A'.repeat(401)}` },
        { authorization: `Bearer ${token}, Bearer ${token}` },
        ...Array.from({ length: 30 }, () => ({ authorization: `Bearer ${altered()}` })),
        ...Array.from({ length: 15 }, () => ({
          authorization: `Bearer ${toBase64url(r.bytes(r.range(1, 120)))}`,
        })),
        ...Array.from({ length: 5 }, () => ({
          authorization: `Bearer ${toBase64url(Buffer.concat([Buffer.from(`${SN}.${world.authority(SN).identity.kid}.99999999999999`), r.bytes(16)]))}`,
        })),
      ];
      const tokenCases = authHeaders.map((h, i) => ({ h, route: routes[i % routes.length]! }));
      await inPool(tokenCases, CONCURRENCY, async ({ h, route }, i) => {
        await refuse(
          'token',
          `token #${String(i)} on ${route.method} ${route.path}`,
          { ...route, headers: { ...route.headers, ...h } },
          { code: 'UNAUTHENTICATED' },
        );
      });
      done();
    });

    it('refuses malformed, mutated, forged and replayed envelope submissions with signed rejections', async () => {
      const done = phase();
      const { world, base, baseBytes, e0, tokens, scheduledRevocation } = f();
      const r = f().rng.fork('envelopes');
      const sn = world.authority(SN).identity;

      // The revoked sender first: its key is revoked from `scheduledRevocation`, a few minutes ahead.
      const gh = world.authority(GH).identity;
      for (let i = 0; i < 3; i++) {
        const env = signed(
          signAsIs(
            bodyOf(r, {
              sender: GH,
              recipients: [NG],
              createdAt: scheduledRevocation + 1000 * (i + 1),
              expiresAt: scheduledRevocation + 86_400_000,
            }),
            gh,
          ),
        );
        await submit(
          'envelope-semantic',
          'sender key revoked at its creation time',
          canonicalBytes(env),
          { code: 'SENDER_REVOKED' },
          tokens.gh,
          GH,
        );
      }

      const garbage = [
        ...nonJsonBodies(r, 120),
        ...jsonDocuments(r, 100).map(enc),
        ...objectsWithKeys(r, ['body', 'signature', 'hops'], 80).map(enc),
      ];
      await inPool(garbage, CONCURRENCY, async (bytes, i) => {
        await submit('envelope-garbage', `garbage #${String(i)}`, bytes, {
          code: ['MALFORMED', 'LIMIT_EXCEEDED'],
        });
      });

      for (const s of nonCanonicalSpellings(base.envelope)) {
        await submit('envelope-noncanonical', s.how, enc(s.text), { code: 'MALFORMED' });
      }

      const byteMutants = Array.from({ length: 800 }, () => mutateBytes(r, baseBytes));
      await inPool(byteMutants, CONCURRENCY, async (m) => {
        await submit('envelope-bytes-mutated', m.how, m.bytes);
      });

      const jsonMutants = Array.from({ length: 400 }, () => mutateJson(r, base.envelope));
      await inPool(jsonMutants, CONCURRENCY, async (m) => {
        let bytes: Uint8Array;
        try {
          bytes = canonicalBytes(m.value);
        } catch {
          bytes = enc(JSON.stringify(m.value));
        }
        await submit('envelope-json-mutated', m.how, bytes);
      });

      // Validly encoded, signed envelopes that are wrong in one respect each.
      const now = Date.now();
      const ng = world.authority(NG).identity;
      const stranger = generateSigningKeyPair(r.bytes(32));
      const semantic: { label: string; envelope: Envelope; code: Codes }[] = [];
      const add = (label: string, envelope: Envelope, code: Codes): void => {
        semantic.push({ label, envelope, code });
      };
      for (let i = 0; i < 4; i++) {
        add(
          'signed by another key under the sender kid',
          signAsIs(bodyOf(r), ng, { kid: sn.kid }),
          'SIGNATURE_INVALID',
        );
        add(
          'signature of another body',
          { ...signAsIs(bodyOf(r), sn), body: bodyOf(r) },
          'SIGNATURE_INVALID',
        );
        add('unknown key', signAsIs(bodyOf(r), stranger), 'SENDER_UNKNOWN');
        add("another member's key", signAsIs(bodyOf(r), ng), 'SENDER_UNKNOWN');
        add(
          'expired',
          signAsIs(
            bodyOf(r, { createdAt: now - 10 * 86_400_000, expiresAt: now - 86_400_000 }),
            sn,
          ),
          'EXPIRED',
        );
        add(
          'created in the future',
          signAsIs(bodyOf(r, { createdAt: now + 600_000, expiresAt: now + 86_400_000 }), sn),
          'MALFORMED',
        );
        add(
          'created before the key was valid',
          signAsIs(
            bodyOf(r, {
              createdAt: now - 2 * 365 * 86_400_000,
              expiresAt: now - 2 * 365 * 86_400_000 + 1000,
            }),
            sn,
          ),
          'SENDER_KEY_EXPIRED',
        );
        add(
          'hops from a node',
          signAsIs(bodyOf(r), sn, { hops: [{ relay: 'relay@global', receivedAt: now }] }),
          'MALFORMED',
        );
        add(
          'unknown recipient',
          signAsIs(bodyOf(r, { recipients: ['nobody@wacap'] }), sn),
          'RECIPIENT_UNKNOWN',
        );
        add(
          'unknown recipient in a peer network',
          signAsIs(bodyOf(r, { recipients: ['nobody@casc'] }), sn),
          'RECIPIENT_UNKNOWN',
        );
        add(
          'one unknown recipient among known ones',
          signAsIs(bodyOf(r, { recipients: [NG, 'nobody@wacap', GH] }), sn),
          'RECIPIENT_UNKNOWN',
        );
        add(
          'recipient in an unknown network',
          signAsIs(bodyOf(r, { recipients: ['x@nowhere'] }), sn),
          'RECIPIENT_UNREACHABLE',
        );
        add(
          'too many recipients',
          signAsIs(bodyOf(r, { recipients: [NG, GH, KZ, 'ge-pog@casc', 'nobody@wacap'] }), sn),
          'LIMIT_EXCEEDED',
        );
        add(
          'chunk over the chunk limit',
          signAsIs(
            bodyOf(r, { chunks: [{ id: toHex(r.bytes(32)), size: LIMITS.maxChunkBytes + 1 }] }),
            sn,
          ),
          'LIMIT_EXCEEDED',
        );
        add(
          'total over the total limit',
          signAsIs(
            bodyOf(r, {
              chunks: Array.from({ length: 10 }, () => ({
                id: toHex(r.bytes(32)),
                size: 60 * 1024,
              })),
            }),
            sn,
          ),
          'LIMIT_EXCEEDED',
        );
        add('chunks missing', signAsIs(bodyOf(r, { recipients: [NG] }), sn), 'CHUNK_MISSING');
        add(
          'lifetime over 90 days',
          signAsIs(bodyOf(r, { expiresAt: now + 91 * 86_400_000 }), sn),
          'LIMIT_EXCEEDED',
        );
        add(
          'totalSize that does not add up',
          signAsIs(bodyOf(r, { totalSize: 999 }), sn),
          'MALFORMED',
        );
      }
      // Replays: the id of an accepted envelope with another body.
      const { type: _t, version: _v, totalSize: _s, ...e0Body } = e0.envelope.body;
      for (let i = 1; i <= 20; i++) {
        const variant = {
          ...e0Body,
          type: 'envelope' as const,
          version: 1 as const,
          totalSize: e0.envelope.body.totalSize,
          expiresAt: e0Body.expiresAt - i * 1000,
        };
        add(
          'replay: same id, another body',
          signAsIs(i % 4 === 0 ? { ...variant, recipients: [GH] } : variant, sn),
          'REPLAY',
        );
      }
      await inPool(semantic, CONCURRENCY, async (s) => {
        if (s.code !== 'REPLAY') signed(s.envelope);
        await submit('envelope-semantic', s.label, canonicalBytes(s.envelope), { code: s.code });
      });

      // A retry of the accepted envelope is answered with the same acceptance, not stored twice.
      const retry = await f().probe.send({
        method: 'POST',
        path: '/v1/envelopes',
        headers: { ...JSON_TYPE, ...bearer(tokens.sn) },
        body: canonicalBytes(e0.envelope),
      });
      expect(retry.kind === 'response' && retry.response.status).toBe(200);

      // Another authority's envelope on this session: refused, and no rejection is signed for it.
      for (let i = 0; i < 3; i++)
        await submit(
          'envelope-semantic',
          "another sender's envelope",
          baseBytes,
          { code: 'FORBIDDEN' },
          tokens.ng,
          NG,
        );

      // Just over the size limit (announced, and chunked), and exactly at it.
      const padded = (n: number): Uint8Array => {
        const out = new Uint8Array(n).fill(0x20);
        out.set(baseBytes.subarray(0, Math.min(baseBytes.length, n)));
        return out;
      };
      for (const chunked of [false, true, false]) {
        await refuse(
          'oversize',
          `envelope of ${String(LIMITS.maxEnvelopeBytes + 1)} bytes${chunked ? ' (chunked)' : ''}`,
          {
            method: 'POST',
            path: '/v1/envelopes',
            headers: { ...JSON_TYPE, ...bearer(tokens.sn) },
            body: padded(LIMITS.maxEnvelopeBytes + 1),
            chunked,
          },
          { code: 'LIMIT_EXCEEDED' },
        );
      }
      await submit(
        'envelope-garbage',
        'envelope padded to exactly the limit',
        padded(LIMITS.maxEnvelopeBytes),
        { code: 'MALFORMED' },
      );
      const huge = signed(
        signAsIs(
          bodyOf(r, {
            chunks: Array.from({ length: 800 }, () => ({ id: toHex(r.bytes(32)), size: 10 })),
          }),
          sn,
        ),
      );
      await refuse(
        'oversize',
        'canonical envelope over the limit',
        {
          method: 'POST',
          path: '/v1/envelopes',
          headers: { ...JSON_TYPE, ...bearer(tokens.sn) },
          body: canonicalBytes(huge),
        },
        { code: 'LIMIT_EXCEEDED' },
      );

      // Content types other than JSON, with an envelope that is invalid anyway.
      const tampered = canonicalBytes({
        ...base.envelope,
        body: { ...base.envelope.body, expiresAt: base.envelope.body.expiresAt + 1 },
      });
      for (const type of [
        'text/plain',
        'application/octet-stream',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/json; charset=utf-16',
        'application/jsonx',
        'application/json, text/plain',
        'json',
        '*/*',
        '',
      ]) {
        const headers: Record<string, string> = { ...bearer(tokens.sn) };
        if (type !== '') headers['content-type'] = type;
        await refuse(
          'content-type',
          `envelope as ${JSON.stringify(type)}`,
          { method: 'POST', path: '/v1/envelopes', headers, body: tampered },
          { code: ['MALFORMED', 'SIGNATURE_INVALID'] },
        );
      }
      done();
    });

    it('refuses bad chunk ids, mismatched, oversize and aborted uploads, and stores none of them', async () => {
      const done = phase();
      const { probe, tokens, ledger, world, refusedChunks } = f();
      const r = f().rng.fork('chunks');
      const auth = bearer(tokens.sn);
      const reference = sha256Hex(r.bytes(64));
      const global = world.networks['global']!.relay;
      const peerHeaders = (
        method: string,
        path: string,
        body?: Uint8Array,
      ): Record<string, string> =>
        signedRelayHeaders({
          from: global.id,
          to: RELAY,
          key: global.key,
          method,
          path,
          ...(body ? { body } : {}),
        });

      const segments = badChunkIdSegments(r, reference, 150);
      await inPool(segments, CONCURRENCY, async (seg) => {
        await refuse(
          'chunk-id',
          `PUT /v1/chunks/${seg}`,
          {
            method: 'PUT',
            path: `/v1/chunks/${seg}`,
            headers: { ...BYTES_TYPE, ...auth },
            body: r.bytes(16),
          },
          { code: ['CHUNK_ID_INVALID', 'MALFORMED', 'NOT_FOUND'] },
        );
      });
      await inPool(segments.slice(0, 50), CONCURRENCY, async (seg) => {
        await refuse(
          'chunk-id',
          `GET /v1/chunks/${seg}`,
          { method: 'GET', path: `/v1/chunks/${seg}`, headers: auth },
          { code: ['CHUNK_ID_INVALID', 'MALFORMED', 'NOT_FOUND'] },
        );
      });
      await inPool(segments.slice(50, 80), CONCURRENCY, async (seg) => {
        const path = `/v1/relay/chunks/${seg}`;
        await refuse(
          'chunk-id',
          `PUT ${path} (peer)`,
          {
            method: 'PUT',
            path,
            headers: { ...BYTES_TYPE, ...peerHeaders('PUT', path) },
            body: r.bytes(16),
          },
          { code: ['CHUNK_ID_INVALID', 'MALFORMED', 'NOT_FOUND'] },
        );
      });

      // Bytes that do not hash to the id.
      const mismatches: { id: string; body: Uint8Array; how: string; chunked: boolean }[] = [];
      for (let i = 0; i < 100; i++)
        mismatches.push({
          id: sha256Hex(r.bytes(32)),
          body: r.bytes(r.range(1, 4096)),
          how: 'unrelated bytes',
          chunked: i % 5 === 0,
        });
      const real = r.bytes(3000);
      const realId = sha256Hex(real);
      for (let i = 0; i < 20; i++)
        mismatches.push({
          id: realId,
          body: mutateBytes(r, real).bytes,
          how: 'mutated bytes',
          chunked: i % 2 === 0,
        });
      for (let i = 0; i < 10; i++)
        mismatches.push({
          id: realId,
          body: real.subarray(0, r.int(real.length)),
          how: 'truncated bytes',
          chunked: false,
        });
      for (let i = 0; i < 10; i++)
        mismatches.push({
          id: realId,
          body: Buffer.concat([real, r.bytes(r.range(1, 10))]),
          how: 'extra bytes',
          chunked: false,
        });
      mismatches.push({ id: realId, body: new Uint8Array(0), how: 'empty body', chunked: false });
      mismatches.push({
        id: sha256Hex(r.bytes(8)),
        body: r.bytes(LIMITS.maxChunkBytes),
        how: 'exactly the size limit',
        chunked: false,
      });
      await inPool(mismatches, CONCURRENCY, async (m, i) => {
        refusedChunks.add(m.id);
        const peer = i % 7 === 0;
        const path = peer ? `/v1/relay/chunks/${m.id}` : `/v1/chunks/${m.id}`;
        const headers = peer
          ? { ...BYTES_TYPE, ...peerHeaders('PUT', path) }
          : { ...BYTES_TYPE, ...auth };
        const code: Codes =
          m.body.length === 0 || m.body.length !== real.length
            ? ['CHUNK_HASH_MISMATCH', 'MALFORMED', 'LIMIT_EXCEEDED']
            : 'CHUNK_HASH_MISMATCH';
        await refuse(
          'chunk-mismatch',
          `${m.how}${m.chunked ? ' (chunked)' : ''}${peer ? ' (peer)' : ''}`,
          { method: 'PUT', path, headers, body: m.body, chunked: m.chunked },
          {
            code:
              m.how === 'unrelated bytes' || m.how === 'mutated bytes'
                ? 'CHUNK_HASH_MISMATCH'
                : code,
          },
        );
      });

      // A content-length that says less than what follows: the relay reads what was announced, which does not hash to the
      // id, and the rest is a broken second request (which may be answered first, as the connection then closes).
      for (let i = 0; i < 3; i++) {
        const head = `PUT /v1/chunks/${realId} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${tokens.sn}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${String(100 + i)}\r\nConnection: close\r\n\r\n`;
        ledger.reject(
          'chunk-mismatch',
          'content-length shorter than the body',
          await probe.sendRaw(Buffer.concat([Buffer.from(head, 'latin1'), real])),
          { code: ['CHUNK_HASH_MISMATCH', 'MALFORMED'] },
        );
      }

      // Just over the chunk limit: announced, chunked, and announced far beyond.
      const big = r.bytes(LIMITS.maxChunkBytes + 1);
      const bigId = sha256Hex(big);
      refusedChunks.add(bigId);
      for (const chunked of [false, true, false, true]) {
        await refuse(
          'oversize',
          `chunk of ${String(big.length)} bytes${chunked ? ' (chunked)' : ''}`,
          {
            method: 'PUT',
            path: `/v1/chunks/${bigId}`,
            headers: { ...BYTES_TYPE, ...auth },
            body: big,
            chunked,
          },
          { code: 'LIMIT_EXCEEDED' },
        );
      }
      const relayBigPath = `/v1/relay/chunks/${bigId}`;
      await refuse(
        'oversize',
        'chunk over the limit (peer)',
        {
          method: 'PUT',
          path: relayBigPath,
          headers: { ...BYTES_TYPE, ...peerHeaders('PUT', relayBigPath) },
          body: big,
        },
        { code: 'LIMIT_EXCEEDED' },
      );
      for (const announced of ['1000000000000', String(LIMITS.maxChunkBytes + 1)]) {
        const head = `PUT /v1/chunks/${bigId} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${tokens.sn}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${announced}\r\nConnection: close\r\n\r\n`;
        ledger.reject(
          'oversize',
          `content-length ${announced} announced`,
          await probe.sendRaw(Buffer.concat([Buffer.from(head, 'latin1'), big.subarray(0, 10)])),
          { code: 'LIMIT_EXCEEDED' },
        );
      }

      // Slow uploads dropped midway: nothing may be stored.
      const aborted = Array.from({ length: 40 }, (_, i) => ({
        bytes: r.bytes(r.range(20_000, LIMITS.maxChunkBytes)),
        peer: i % 4 === 0,
        pause: r.range(20, 80),
      }));
      await inPool(aborted, 4, async (a) => {
        const id = sha256Hex(a.bytes);
        refusedChunks.add(id);
        const path = a.peer ? `/v1/relay/chunks/${id}` : `/v1/chunks/${id}`;
        const headers = a.peer
          ? { ...BYTES_TYPE, ...peerHeaders('PUT', path) }
          : { ...BYTES_TYPE, ...auth };
        await probe.abortedUpload({
          method: 'PUT',
          path,
          headers,
          announced: a.bytes.length,
          sent: a.bytes.subarray(0, Math.floor(a.bytes.length / 2)),
          pauseMs: a.pause,
        });
        ledger.count('chunk-upload-aborted');
      });

      // "Which chunks do you lack?" with bodies that are not a list of ids.
      const isValidMissing = (bytes: Uint8Array): boolean => {
        try {
          const v = objectOf(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)));
          const ids = v?.['ids'];
          return (
            v !== undefined &&
            Object.keys(v).length === 1 &&
            Array.isArray(ids) &&
            ids.length <= 10_000 &&
            ids.every((x) => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x))
          );
        } catch {
          return false;
        }
      };
      const missingBodies = [
        ...nonJsonBodies(r, 40),
        ...jsonDocuments(r, 40).map(enc),
        ...objectsWithKeys(r, ['ids'], 50).map(enc),
        ...badChunkIdSegments(r, reference, 30).map((id) =>
          canonicalBytes({ ids: [reference, id] }),
        ),
        canonicalBytes({ ids: Array.from({ length: 10_001 }, () => reference) }),
        canonicalBytes({ ids: [1, 2, 3] }),
        canonicalBytes({ ids: reference }),
      ].filter((b) => !isValidMissing(b));
      await inPool(missingBodies, CONCURRENCY, async (body, i) => {
        const peer = i % 5 === 0;
        const path = peer ? '/v1/relay/chunks/missing' : '/v1/chunks/missing';
        const headers = peer
          ? { ...JSON_TYPE, ...peerHeaders('POST', path, body) }
          : { ...JSON_TYPE, ...auth };
        await refuse(
          'chunk-missing-query',
          `missing #${String(i)}${peer ? ' (peer)' : ''}`,
          { method: 'POST', path, headers, body },
          { code: ['MALFORMED', 'LIMIT_EXCEEDED'] },
        );
      });
      const overMiB = enc(`{"ids":["${'a'.repeat(1024 * 1024 - 10)}"]}`);
      await refuse(
        'oversize',
        'missing query over 1 MiB',
        {
          method: 'POST',
          path: '/v1/chunks/missing',
          headers: { ...JSON_TYPE, ...auth },
          body: overMiB,
        },
        { code: 'LIMIT_EXCEEDED' },
      );

      // Downloads of chunks this authority may not see.
      const hidden = [
        f().e0.envelope.body.dossier.id,
        f().base.envelope.body.dossier.id,
        ...Array.from({ length: 20 }, () => sha256Hex(r.bytes(16))),
      ];
      await inPool(hidden, CONCURRENCY, async (id, i) => {
        await refuse(
          'chunk-download',
          `GET a chunk that is not ours #${String(i)}`,
          {
            method: 'GET',
            path: `/v1/chunks/${id}`,
            headers: bearer(i === 0 ? tokens.gh : tokens.sn),
          },
          { code: 'NOT_FOUND' },
        );
      });
      done();
    });

    it('refuses mailbox and WebSocket garbage, and foreign acks remove nothing', async () => {
      const done = phase();
      const { probe, tokens, ledger, relay, victim } = f();
      const r = f().rng.fork('mailbox');
      const auth = bearer(tokens.sn);

      const badQueries = [
        'after=-1',
        'after=abc',
        'after=1e3',
        'after=1.5',
        'after=9999999999999999',
        'limit=abcd',
        'limit=10000',
        'limit=-5',
        'after=%20',
        'after=1&after=2',
        'limit=1&limit=2',
        'after=',
        'after=0x10',
        'after=%00',
        'limit=1e2',
        'after=%EF%BC%91',
      ];
      for (let i = 0; i < 40; i++)
        badQueries.push(
          `after=${toHex(r.bytes(r.range(1, 4)))}z`,
          `limit=${String(r.range(10_000, 99_999))}`,
        );
      await inPool(badQueries, CONCURRENCY, async (q) => {
        await refuse(
          'mailbox-query',
          q,
          { method: 'GET', path: `/v1/mailbox?${q}`, headers: auth },
          { code: 'MALFORMED' },
        );
      });

      const isValidAck = (bytes: Uint8Array): boolean => {
        try {
          const v = objectOf(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)));
          const seqs = v?.['seqs'];
          return (
            v !== undefined &&
            Object.keys(v).length === 1 &&
            Array.isArray(seqs) &&
            seqs.length >= 1 &&
            seqs.length <= 10_000 &&
            seqs.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 1)
          );
        } catch {
          return false;
        }
      };
      const ackBodies = [
        ...nonJsonBodies(r, 30),
        ...jsonDocuments(r, 30).map(enc),
        ...objectsWithKeys(r, ['seqs'], 40).map(enc),
        ...[
          [],
          [0],
          [-1],
          [1.5],
          ['1'],
          [null],
          Array.from({ length: 10_001 }, (_, i) => i + 1),
        ].map((seqs) => enc(JSON.stringify({ seqs }))),
      ].filter((b) => !isValidAck(b));
      await inPool(ackBodies, CONCURRENCY, async (body, i) => {
        await refuse(
          'mailbox-ack',
          `ack #${String(i)}`,
          { method: 'POST', path: '/v1/mailbox/ack', headers: { ...JSON_TYPE, ...auth }, body },
          { code: ['MALFORMED', 'LIMIT_EXCEEDED'] },
        );
      });
      await refuse(
        'oversize',
        'ack over 256 KiB',
        {
          method: 'POST',
          path: '/v1/mailbox/ack',
          headers: { ...JSON_TYPE, ...auth },
          body: enc(`{"seqs":[${'1,'.repeat(128 * 1024)}1]}`),
        },
        { code: 'LIMIT_EXCEEDED' },
      );

      // Acks of another mailbox's seqs: accepted as no-ops, never removing the other mailbox's item.
      const foreign = [
        [victim.seq],
        [victim.seq, victim.seq + 1],
        Array.from({ length: 1000 }, (_, i) => i + 1),
        [2 ** 53 - 1],
        [1e20],
      ];
      for (let i = 0; i < 25; i++) foreign.push([r.range(1, victim.seq + 50)]);
      await inPool(foreign, CONCURRENCY, async (seqs) => {
        ledger.count('mailbox-foreign-ack');
        const out = await probe.send({
          method: 'POST',
          path: '/v1/mailbox/ack',
          headers: { ...JSON_TYPE, ...auth },
          body: enc(JSON.stringify({ seqs })),
        });
        const ok =
          out.kind === 'response' &&
          (out.response.status === 200
            ? (JSON.parse(out.response.body.toString('utf8')) as { acked?: unknown }).acked === 0
            : out.response.status >= 400 && out.response.status < 500);
        if (!ok)
          ledger.violation(
            'mailbox-foreign-ack',
            `ack of ${String(seqs.length)} foreign seqs`,
            out.kind === 'response'
              ? `status ${String(out.response.status)} ${out.response.body.toString('utf8').slice(0, 100)}`
              : out.kind,
          );
      });

      // The WebSocket: no token or a bad one.
      const wsBase = relay.url.replace(/^http/, 'ws');
      const wsTokens = [
        '',
        `?token=`,
        `?token=${toBase64url(r.bytes(40))}`,
        `?token=${tokens.sn.slice(0, -2)}`,
        `?token=${tokens.sn}x`,
        `?token=${'A'.repeat(500)}`,
        `?tok=${tokens.sn}`,
      ];
      for (let i = 0; i < 13; i++) wsTokens.push(`?token=${toBase64url(r.bytes(r.range(17, 80)))}`);
      for (const q of wsTokens) {
        ledger.count('ws-auth');
        const ws = new WsProbe(`${wsBase}/v1/mailbox/ws${q}`);
        await ws.opened;
        const closed = await Promise.race([
          ws.closed,
          new Promise<undefined>((res) => setTimeout(res, 5000)),
        ]);
        const error = ws.frames.find((fr) => (fr as { type?: unknown }).type === 'error') as
          { code?: unknown } | undefined;
        if (
          !closed ||
          closed.code !== 1008 ||
          error?.code !== 'UNAUTHENTICATED' ||
          ws.unparsable.length > 0
        ) {
          ledger.violation(
            'ws-auth',
            `ws ${q.slice(0, 30)}`,
            `closed ${JSON.stringify(closed)}, frames ${JSON.stringify(ws.frames).slice(0, 100)}`,
          );
        }
        await ws.close();
      }

      // Garbage frames on an authenticated socket: each answered with a MALFORMED error; the eleventh closes it.
      const garbageFrames = (): { data: string | Uint8Array; binary: boolean }[] => {
        const out: { data: string | Uint8Array; binary: boolean }[] = [];
        for (const b of nonJsonBodies(r, 4)) out.push({ data: b, binary: true });
        for (const t of jsonDocuments(r, 3)) out.push({ data: t, binary: false });
        for (const t of objectsWithKeys(r, ['type', 'after', 'seqs'], 3))
          out.push({ data: t, binary: false });
        const fixed = [
          '{"type":"hello"}',
          '{"type":"subscribe"}',
          '{"type":"subscribe","after":-1}',
          '{"type":"subscribe","after":"0"}',
          '{"type":"subscribe","after":1.5}',
          '{"type":"ack","seqs":[]}',
          '{"type":"ack","seqs":[0]}',
          '{"type":"ack","seqs":"1"}',
          '{"type":"subscribe","after":0,"x":1}',
          '{"__proto__":{"type":"subscribe"},"after":0}',
          'null',
          '[]',
          '"subscribe"',
          '',
        ];
        for (const t of fixed) out.push({ data: t, binary: false });
        return out;
      };
      const frames = garbageFrames();
      for (let conn = 0; conn < 24; conn++) {
        const ws = new WsProbe(`${wsBase}/v1/mailbox/ws?token=${encodeURIComponent(tokens.sn)}`);
        if (!(await ws.opened)) {
          ledger.violation(
            'ws-frame',
            `connection ${String(conn)}`,
            'could not open an authenticated WebSocket',
          );
          continue;
        }
        const sent = Array.from({ length: 11 }, () => frames[r.int(frames.length)]!);
        for (const [i, fr] of sent.entries()) {
          ledger.count('ws-frame');
          ws.send(fr.data, fr.binary);
          if (i < 10) {
            const answered = await ws.until(() => ws.frames.length >= i + 1, 5000);
            const last = ws.frames[i] as { type?: unknown; code?: unknown } | undefined;
            if (!answered || last?.type !== 'error' || last.code !== 'MALFORMED')
              ledger.violation(
                'ws-frame',
                `frame ${String(i)} on connection ${String(conn)}`,
                `answer ${JSON.stringify(last)}`,
              );
          }
        }
        const closed = await Promise.race([
          ws.closed,
          new Promise<undefined>((res) => setTimeout(res, 5000)),
        ]);
        if (closed?.code !== 1008)
          ledger.violation(
            'ws-frame',
            `connection ${String(conn)}`,
            `not closed with 1008 after 11 invalid frames: ${JSON.stringify(closed)}`,
          );
        if (ws.unparsable.length > 0)
          ledger.violation(
            'ws-frame',
            `connection ${String(conn)}`,
            `frames that are not JSON: ${ws.unparsable.join(' | ')}`,
          );
        await ws.close();
      }

      // Frames over the payload limit close the socket (1009); foreign acks over the socket remove nothing.
      for (const binary of [false, true, false]) {
        ledger.count('ws-oversize');
        const ws = new WsProbe(`${wsBase}/v1/mailbox/ws?token=${encodeURIComponent(tokens.sn)}`);
        await ws.opened;
        ws.send(
          binary
            ? r.bytes(WS_MAX_PAYLOAD + 1)
            : `{"type":"ack","seqs":[${'1,'.repeat(WS_MAX_PAYLOAD / 2)}1]}`,
          binary,
        );
        const closed = await Promise.race([
          ws.closed,
          new Promise<undefined>((res) => setTimeout(res, 5000)),
        ]);
        if (closed?.code !== 1009)
          ledger.violation(
            'ws-oversize',
            `frame over ${String(WS_MAX_PAYLOAD)} bytes`,
            `closed with ${JSON.stringify(closed)}`,
          );
        await ws.close();
      }
      // One connection more than a node may hold is refused; closing one makes room again.
      const held = Array.from(
        { length: 8 },
        () => new WsProbe(`${wsBase}/v1/mailbox/ws?token=${encodeURIComponent(tokens.gh)}`),
      );
      await Promise.all(held.map((h) => h.opened));
      for (const h of held) h.send(JSON.stringify({ type: 'subscribe', after: 0 }));
      await Promise.all(held.map((h) => h.until(() => h.isClosed, 300)));
      ledger.count('ws-limit');
      const extra = new WsProbe(`${wsBase}/v1/mailbox/ws?token=${encodeURIComponent(tokens.gh)}`);
      const refused = await Promise.race([
        extra.closed,
        new Promise<undefined>((res) => setTimeout(res, 5000)),
      ]);
      if (
        refused?.code !== 1008 ||
        (extra.frames[0] as { code?: unknown } | undefined)?.code !== 'RATE_LIMITED'
      )
        ledger.violation(
          'ws-limit',
          'ninth connection',
          `closed ${JSON.stringify(refused)} frames ${JSON.stringify(extra.frames)}`,
        );
      if (held.some((h) => h.isClosed))
        ledger.violation(
          'ws-limit',
          'eight connections',
          'a connection within the limit was closed',
        );
      await Promise.all(held.map((h) => h.close()));

      const ws = new WsProbe(`${wsBase}/v1/mailbox/ws?token=${encodeURIComponent(tokens.sn)}`);
      expect(await ws.opened).toBe(true);
      ws.send(JSON.stringify({ type: 'subscribe', after: 0 }));
      const foreignWs = [
        [victim.seq],
        Array.from({ length: 500 }, (_, i) => i + 1),
        [victim.seq, 2 ** 53 - 1],
      ];
      for (const seqs of foreignWs) {
        ledger.count('ws-foreign-ack');
        ws.send(JSON.stringify({ type: 'ack', seqs }));
      }
      await ws.until(
        () =>
          ws.frames.filter((fr) => (fr as { type?: unknown }).type === 'acked').length >=
          foreignWs.length,
        5000,
      );
      expect(ws.frames.filter((fr) => (fr as { type?: unknown }).type === 'item')).toEqual([]);
      await ws.close();
      const ngItems = await relay.backend.readMailbox(NG, 0, 100);
      expect(ngItems.map((i) => i.envelopeId)).toEqual([victim.envelope.body.id]);
      done();
    });

    it('refuses evidences that do not certify themselves, and unsigned or badly signed relay calls', async () => {
      const done = phase();
      const { tokens, world, e0, victim, base } = f();
      const r = f().rng.fork('relay-calls');
      const auth = bearer(tokens.sn);
      const global = world.networks['global']!.relay;
      const sn = world.authority(SN).identity;
      const now = Date.now();

      // POST /v1/evidences: garbage, and well-formed evidences a node may not post.
      const evidenceBodies = [
        ...nonJsonBodies(r, 30),
        ...jsonDocuments(r, 30).map(enc),
        ...objectsWithKeys(r, ['evidence', 'envelope'], 40).map(enc),
      ];
      await inPool(evidenceBodies, CONCURRENCY, async (body, i) => {
        await refuse('evidence', `evidence #${String(i)}`, {
          method: 'POST',
          path: '/v1/evidences',
          headers: { ...JSON_TYPE, ...auth },
          body,
        });
      });
      const ngKey = world.authority(NG).identity;
      const ghKey = world.authority(GH).identity;
      const delivery = (envelope: Envelope, issuer: string, key: typeof sn): Evidence =>
        issueEvidence({
          kind: 'delivery',
          envelope,
          issuer,
          key,
          issuedAt: Date.now(),
          recipient: issuer,
        });
      const goodPair = {
        evidence: delivery(victim.envelope, NG, ngKey),
        envelope: victim.envelope,
      };
      const wrongEvidences: { label: string; body: unknown; token: string; code?: Codes }[] = [
        {
          label: "another authority's delivery posted by the sender",
          body: goodPair,
          token: tokens.sn,
          code: 'FORBIDDEN',
        },
        {
          label: 'delivery by a non-recipient',
          body: { evidence: delivery(victim.envelope, GH, ghKey), envelope: victim.envelope },
          token: tokens.gh,
        },
        {
          label: 'delivery about another envelope',
          body: { evidence: delivery(e0.envelope, NG, ngKey), envelope: victim.envelope },
          token: tokens.ng,
        },
        {
          label: 'delivery signed by another key',
          body: { evidence: delivery(victim.envelope, NG, sn), envelope: victim.envelope },
          token: tokens.ng,
        },
        {
          label: 'delivery with a tampered envelope',
          body: {
            evidence: goodPair.evidence,
            envelope: {
              ...victim.envelope,
              body: { ...victim.envelope.body, expiresAt: victim.envelope.body.expiresAt + 1 },
            },
          },
          token: tokens.ng,
        },
        {
          label: 'evidence about an envelope never sent',
          body: { evidence: delivery(base.envelope, GH, ghKey), envelope: base.envelope },
          token: tokens.ng,
        },
      ];
      for (let i = 0; i < 60; i++) {
        const m = mutateJson(r, goodPair);
        wrongEvidences.push({
          label: `mutated delivery ${m.how}`,
          body: m.value,
          token: tokens.sn,
        });
      }
      for (const w of wrongEvidences) {
        await refuse(
          'evidence',
          w.label,
          {
            method: 'POST',
            path: '/v1/evidences',
            headers: { ...JSON_TYPE, ...bearer(w.token) },
            body: enc(JSON.stringify(w.body)),
          },
          w.code ? { code: w.code } : {},
        );
      }
      await refuse(
        'oversize',
        'evidence over its limit',
        {
          method: 'POST',
          path: '/v1/evidences',
          headers: { ...JSON_TYPE, ...auth },
          body: new Uint8Array(LIMITS.maxEnvelopeBytes + 64 * 1024 + 1).fill(0x20),
        },
        { code: 'LIMIT_EXCEEDED' },
      );

      // Relay calls without, with broken, or with wrong signatures.
      const peerRoutes: { method: string; path: string; body?: Uint8Array }[] = [
        {
          method: 'POST',
          path: '/v1/relay/envelopes',
          body: canonicalBytes({ envelope: base.envelope, recipients: [GH] }),
        },
        {
          method: 'POST',
          path: '/v1/relay/evidences',
          body: canonicalBytes({ items: [goodPair] }),
        },
        {
          method: 'POST',
          path: '/v1/relay/chunks/missing',
          body: canonicalBytes({ ids: [base.envelope.body.dossier.id] }),
        },
        {
          method: 'PUT',
          path: `/v1/relay/chunks/${sha256Hex(enc('peer chunk'))}`,
          body: enc('peer chunk'),
        },
      ];
      const headerCases: {
        label: string;
        headers: (route: (typeof peerRoutes)[number]) => Record<string, string | string[]>;
        code: Codes;
      }[] = [
        { label: 'no signature headers', headers: () => ({}), code: 'UNAUTHENTICATED' },
        {
          label: 'one header missing',
          headers: (route) => {
            const h = signedRelayHeaders({
              from: global.id,
              to: RELAY,
              key: global.key,
              method: route.method,
              path: route.path,
              ...(route.body ? { body: route.body } : {}),
            });
            const names = Object.keys(h);
            Reflect.deleteProperty(h, names[r.int(names.length)]!);
            return h;
          },
          code: 'UNAUTHENTICATED',
        },
        {
          label: 'a header repeated',
          headers: (route) => {
            const h: Record<string, string | string[]> = signedRelayHeaders({
              from: global.id,
              to: RELAY,
              key: global.key,
              method: route.method,
              path: route.path,
              ...(route.body ? { body: route.body } : {}),
            });
            const name = r.pick(Object.keys(h));
            h[name] = [h[name] as string, h[name] as string];
            return h;
          },
          code: ['UNAUTHENTICATED', 'SIGNATURE_INVALID'],
        },
        {
          label: 'garbage header values',
          headers: (route) => {
            const h: Record<string, string> = signedRelayHeaders({
              from: global.id,
              to: RELAY,
              key: global.key,
              method: route.method,
              path: route.path,
              ...(route.body ? { body: route.body } : {}),
            });
            const name = r.pick(Object.keys(h));
            h[name] = r.pick([
              '',
              'x',
              '-1',
              '1e3',
              'relay@',
              'A'.repeat(86),
              'A'.repeat(87),
              toBase64url(r.bytes(r.range(1, 70))),
              String(Number.MAX_SAFE_INTEGER),
              '%00',
            ]);
            return h;
          },
          code: ['UNAUTHENTICATED', 'SIGNATURE_INVALID'],
        },
        {
          label: 'unknown kid',
          headers: (route) => ({
            ...signedRelayHeaders({
              from: global.id,
              to: RELAY,
              key: global.key,
              method: route.method,
              path: route.path,
              ...(route.body ? { body: route.body } : {}),
            }),
            'rogatory-kid': toBase64url(r.bytes(16)),
          }),
          code: 'UNAUTHENTICATED',
        },
        {
          label: 'random signature',
          headers: (route) => ({
            ...signedRelayHeaders({
              from: global.id,
              to: RELAY,
              key: global.key,
              method: route.method,
              path: route.path,
              ...(route.body ? { body: route.body } : {}),
            }),
            'rogatory-signature': toBase64url(r.bytes(64)),
          }),
          code: 'SIGNATURE_INVALID',
        },
        {
          label: 'signed by an authority key as a relay',
          headers: (route) =>
            signedRelayHeaders({
              from: SN,
              to: RELAY,
              key: sn,
              method: route.method,
              path: route.path,
              ...(route.body ? { body: route.body } : {}),
            }),
          code: 'UNAUTHENTICATED',
        },
        {
          label: 'unknown relay',
          headers: (route) =>
            signedRelayHeaders({
              from: 'relay@nowhere',
              to: RELAY,
              key: generateSigningKeyPair(r.bytes(32)),
              method: route.method,
              path: route.path,
              ...(route.body ? { body: route.body } : {}),
            }),
          code: 'UNAUTHENTICATED',
        },
        {
          label: 'timestamp 10 minutes old',
          headers: (route) =>
            signedRelayHeaders({
              from: global.id,
              to: RELAY,
              key: global.key,
              method: route.method,
              path: route.path,
              ...(route.body ? { body: route.body } : {}),
              timestamp: Date.now() - 600_000,
            }),
          code: 'UNAUTHENTICATED',
        },
        {
          label: 'timestamp 10 minutes ahead',
          headers: (route) =>
            signedRelayHeaders({
              from: global.id,
              to: RELAY,
              key: global.key,
              method: route.method,
              path: route.path,
              ...(route.body ? { body: route.body } : {}),
              timestamp: Date.now() + 600_000,
            }),
          code: 'UNAUTHENTICATED',
        },
        {
          label: 'signed for another relay',
          headers: (route) =>
            signedRelayHeaders({
              from: global.id,
              to: 'relay@casc',
              key: global.key,
              method: route.method,
              path: route.path,
              ...(route.body ? { body: route.body } : {}),
            }),
          code: 'SIGNATURE_INVALID',
        },
        {
          label: 'signed for another path',
          headers: (route) =>
            signedRelayHeaders({
              from: global.id,
              to: RELAY,
              key: global.key,
              method: route.method,
              path: `${route.path}?x=1`,
              ...(route.body ? { body: route.body } : {}),
            }),
          code: 'SIGNATURE_INVALID',
        },
        {
          label: 'signed for another method',
          headers: (route) =>
            signedRelayHeaders({
              from: global.id,
              to: RELAY,
              key: global.key,
              method: route.method === 'PUT' ? 'POST' : 'PUT',
              path: route.path,
              ...(route.body ? { body: route.body } : {}),
            }),
          code: 'SIGNATURE_INVALID',
        },
        {
          label: 'signed over another body',
          headers: (route) =>
            signedRelayHeaders({
              from: global.id,
              to: RELAY,
              key: global.key,
              method: route.method,
              path: route.path,
              body: r.bytes(20),
            }),
          code: 'SIGNATURE_INVALID',
        },
        {
          label: 'a relay calling itself',
          headers: (route) =>
            signedRelayHeaders({
              from: RELAY,
              to: RELAY,
              key: world.networks['wacap']!.relay.key,
              method: route.method,
              path: route.path,
              ...(route.body ? { body: route.body } : {}),
            }),
          code: 'FORBIDDEN',
        },
      ];
      const relayCases: { route: (typeof peerRoutes)[number]; c: (typeof headerCases)[number] }[] =
        [];
      for (let round = 0; round < 2; round++)
        for (const c of headerCases) for (const route of peerRoutes) relayCases.push({ route, c });
      await inPool(relayCases, CONCURRENCY, async ({ route, c }) => {
        // The chunk PUT signs its id, not its body: "another body" is a valid call there.
        const code =
          c.label === 'signed over another body' && route.method === 'PUT' ? undefined : c.code;
        if (code === undefined) return;
        const headers = {
          ...(route.method === 'PUT' ? BYTES_TYPE : JSON_TYPE),
          ...c.headers(route),
        };
        await refuse(
          'relay-auth',
          `${c.label} on ${route.method} ${route.path}`,
          {
            method: route.method,
            path: route.path,
            headers,
            ...(route.body ? { body: route.body } : {}),
          },
          { code },
        );
      });

      // Correctly signed by a peer relay, with bodies that are wrong.
      const peerPost = async (
        kind: string,
        label: string,
        path: string,
        body: Uint8Array,
        expect: Expectation = {},
      ): Promise<void> => {
        await refuse(
          kind,
          label,
          {
            method: 'POST',
            path,
            headers: {
              ...JSON_TYPE,
              ...signedRelayHeaders({
                from: global.id,
                to: RELAY,
                key: global.key,
                method: 'POST',
                path,
                body,
              }),
            },
            body,
          },
          expect,
        );
      };
      const peerGarbage = [
        ...nonJsonBodies(r, 40),
        ...jsonDocuments(r, 40).map(enc),
        ...objectsWithKeys(r, ['envelope', 'recipients'], 40).map(enc),
        ...objectsWithKeys(r, ['envelope', 'recipients', 'inline'], 20).map(enc),
      ];
      await inPool(peerGarbage, CONCURRENCY, async (body, i) => {
        await peerPost('relay-body', `hand-over #${String(i)}`, '/v1/relay/envelopes', body, {
          code: ['MALFORMED', 'LIMIT_EXCEEDED'],
        });
      });
      const overEnvelopes = new Uint8Array(
        envelopeBodyLimits(LIMITS.maxEnvelopeBytes).handOver + 1,
      ).fill(0x20);
      await peerPost(
        'oversize',
        'hand-over over its limit (peer)',
        '/v1/relay/envelopes',
        overEnvelopes,
        { code: 'LIMIT_EXCEEDED' },
      );
      const overItems = new Uint8Array(LIMITS.maxEnvelopeBytes + 1024 * 1024 + 1).fill(0x20);
      await peerPost(
        'oversize',
        'evidence items over their limit (peer)',
        '/v1/relay/evidences',
        overItems,
        { code: 'LIMIT_EXCEEDED' },
      );
      const itemGarbage = [
        ...nonJsonBodies(r, 20),
        ...jsonDocuments(r, 20).map(enc),
        ...objectsWithKeys(r, ['items'], 20).map(enc),
        canonicalBytes({ items: [] }),
        canonicalBytes({ items: Array.from({ length: 101 }, () => goodPair) }),
      ];
      const itemLabels = itemGarbage.map((_, i) => `evidence items #${String(i)}`);
      // Mutations inside the evidence or the envelope (an unknown key beside them is ignored: only the verified pair is kept).
      for (let i = 0; i < 30; i++) {
        const inEvidence = i % 2 === 0;
        const m = mutateJson(r, inEvidence ? goodPair.evidence : goodPair.envelope);
        itemGarbage.push(
          enc(
            JSON.stringify({
              items: [
                inEvidence
                  ? { evidence: m.value, envelope: goodPair.envelope }
                  : { evidence: goodPair.evidence, envelope: m.value },
              ],
            }),
          ),
        );
        itemLabels.push(
          `evidence item with its ${inEvidence ? 'evidence' : 'envelope'} mutated ${m.how}`,
        );
      }
      await inPool(itemGarbage, CONCURRENCY, async (body, i) => {
        await peerPost('relay-body', itemLabels[i]!, '/v1/relay/evidences', body);
      });

      const hop = (relay: string, at = now): { relay: string; receivedAt: number } => ({
        relay,
        receivedAt: at,
      });
      const kzKey = world.authority(KZ).identity;
      const ghRevoked = signAsIs(
        bodyOf(r, {
          sender: GH,
          recipients: [NG],
          createdAt: f().scheduledRevocation + 5000,
          expiresAt: f().scheduledRevocation + 86_400_000,
        }),
        ghKey,
        { hops: [hop('relay@global')] },
      );
      const { type: _t, version: _v, totalSize: _s, ...e0Body } = e0.envelope.body;
      const semantic: {
        label: string;
        envelope: Envelope;
        recipients: string[];
        code: Codes;
        evidences: boolean;
      }[] = [
        {
          label: 'the caller is not the last hop',
          envelope: { ...base.envelope, hops: [hop('relay@casc')] },
          recipients: [GH],
          code: 'FORBIDDEN',
          evidences: false,
        },
        {
          label: 'no hops at all',
          envelope: base.envelope,
          recipients: [GH],
          code: 'FORBIDDEN',
          evidences: false,
        },
        {
          label: 'tampered envelope',
          envelope: {
            ...base.envelope,
            body: { ...base.envelope.body, expiresAt: base.envelope.body.expiresAt + 1 },
            hops: [hop('relay@global')],
          },
          recipients: [GH],
          code: 'SIGNATURE_INVALID',
          evidences: true,
        },
        {
          label: 'a loop back to this relay',
          envelope: { ...base.envelope, hops: [hop(RELAY), hop('relay@global')] },
          recipients: [GH],
          code: 'HOP_LIMIT',
          evidences: true,
        },
        {
          label: 'recipients not among the envelope recipients',
          envelope: { ...base.envelope, hops: [hop('relay@global')] },
          recipients: [NG],
          code: 'MALFORMED',
          evidences: false,
        },
        {
          label: 'unknown recipient',
          envelope: signAsIs(bodyOf(r, { sender: KZ, recipients: ['nobody@wacap'] }), kzKey, {
            hops: [hop('relay@casc'), hop('relay@global')],
          }),
          recipients: ['nobody@wacap'],
          code: 'RECIPIENT_UNKNOWN',
          evidences: true,
        },
        {
          label: 'expired',
          envelope: signAsIs(
            bodyOf(r, {
              sender: KZ,
              recipients: [GH],
              createdAt: now - 10 * 86_400_000,
              expiresAt: now - 86_400_000,
            }),
            kzKey,
            { hops: [hop('relay@casc'), hop('relay@global')] },
          ),
          recipients: [GH],
          code: 'EXPIRED',
          evidences: true,
        },
        {
          label: 'revoked sender',
          envelope: ghRevoked,
          recipients: [NG],
          code: 'SENDER_REVOKED',
          evidences: true,
        },
        {
          label: 'over the hop limit',
          envelope: signAsIs(bodyOf(r, { sender: KZ, recipients: [GH], maxHops: 1 }), kzKey, {
            hops: [hop('relay@casc'), hop('relay@global')],
          }),
          recipients: [GH],
          code: 'HOP_LIMIT',
          evidences: true,
        },
        {
          label: 'chunks missing',
          envelope: signAsIs(bodyOf(r, { sender: KZ, recipients: [GH] }), kzKey, {
            hops: [hop('relay@casc'), hop('relay@global')],
          }),
          recipients: [GH],
          code: 'CHUNK_MISSING',
          evidences: false,
        },
        {
          label: 'replay of a taken id',
          envelope: signAsIs(
            {
              ...e0Body,
              type: 'envelope',
              version: 1,
              totalSize: e0.envelope.body.totalSize,
              expiresAt: e0Body.expiresAt - 5000,
            },
            sn,
            { hops: [hop('relay@global')] },
          ),
          recipients: [NG],
          code: 'REPLAY',
          evidences: true,
        },
        {
          label: 'replay of a taken id, handed over for its second recipient only',
          envelope: signAsIs(
            {
              ...e0Body,
              type: 'envelope',
              version: 1,
              totalSize: e0.envelope.body.totalSize,
              recipients: [GH, NG],
              expiresAt: e0Body.expiresAt - 6000,
            },
            sn,
            { hops: [hop('relay@global')] },
          ),
          recipients: [NG],
          code: 'REPLAY',
          evidences: true,
        },
      ];
      // Objects sent along with a hand-over that is otherwise valid (its chunks are missing):
      // each bad one refuses the whole hand-over, and nothing is stored.
      const withMissing = semantic.find((s) => s.code === 'CHUNK_MISSING')!;
      const dossier = withMissing.envelope.body.dossier;
      const inlineCases: { label: string; inline: unknown; code: Codes }[] = [
        {
          label: "an inline object that is not the envelope's",
          inline: [{ id: sha256Hex(r.bytes(8)), bytes: toBase64url(r.bytes(8)) }],
          code: 'MALFORMED',
        },
        {
          label: 'an inline object that does not hash to its id',
          inline: [{ id: dossier.id, bytes: toBase64url(r.bytes(dossier.size)) }],
          code: 'CHUNK_HASH_MISMATCH',
        },
        {
          label: 'an inline object of another size',
          inline: [{ id: dossier.id, bytes: toBase64url(r.bytes(dossier.size + 1)) }],
          code: 'MALFORMED',
        },
        {
          label: 'an inline object that is not base64url',
          inline: [{ id: dossier.id, bytes: '***' }],
          code: 'MALFORMED',
        },
        {
          label: 'too many inline objects',
          inline: Array.from({ length: 17 }, () => ({ id: dossier.id, bytes: 'AA' })),
          code: 'MALFORMED',
        },
        {
          label: 'an inline object over the size limit',
          inline: [{ id: dossier.id, bytes: 'A'.repeat(90_000) }],
          code: 'MALFORMED',
        },
      ];
      for (const c of inlineCases) {
        await peerPost(
          'relay-inline',
          c.label,
          '/v1/relay/envelopes',
          canonicalBytes({
            envelope: withMissing.envelope,
            recipients: withMissing.recipients,
            inline: c.inline,
          }),
          { code: c.code },
        );
      }
      for (const s of semantic) {
        if (s.code !== 'REPLAY') signed(s.envelope);
        for (let i = 0; i < 3; i++) {
          await peerPost(
            'relay-semantic',
            s.label,
            '/v1/relay/envelopes',
            canonicalBytes({ envelope: s.envelope, recipients: s.recipients }),
            {
              code: s.code,
              ...(s.evidences
                ? { peerRejection: { envelope: s.envelope, recipients: s.recipients } }
                : {}),
            },
          );
        }
      }

      // The batch route: a body that is not a batch is refused whole.
      const batchGarbage = [
        ...nonJsonBodies(r, 20),
        ...jsonDocuments(r, 20).map(enc),
        // Either list missing, or not a list.
        ...objectsWithKeys(r, ['envelopes'], 15).map(enc),
        ...objectsWithKeys(r, ['evidences'], 15).map(enc),
        canonicalBytes({ envelopes: {}, evidences: [] }),
        canonicalBytes({ envelopes: [], evidences: [] }),
        canonicalBytes({ envelopes: Array.from({ length: 65 }, () => ({})), evidences: [] }),
        canonicalBytes({ envelopes: [], evidences: Array.from({ length: 257 }, () => ({})) }),
        canonicalBytes({ envelopes: [], evidences: [], extra: 1 }),
      ];
      await inPool(batchGarbage, CONCURRENCY, async (body, i) => {
        await peerPost('relay-body', `batch #${String(i)}`, '/v1/relay/batch', body, {
          code: ['MALFORMED', 'LIMIT_EXCEEDED'],
        });
      });
      await peerPost(
        'oversize',
        'batch over its limit',
        '/v1/relay/batch',
        new Uint8Array(8 * 1024 * 1024 + 1).fill(0x20),
        { code: 'LIMIT_EXCEEDED' },
      );
      // A batch of bad items: each is answered as its own route would answer it, and none is stored.
      const garbageItems = [
        ...jsonDocuments(r, 10),
        ...objectsWithKeys(r, ['envelope', 'recipients'], 10),
      ].map((text) => JSON.parse(text) as unknown);
      const batchItems = [
        ...semantic.map((s) => ({ envelope: s.envelope, recipients: s.recipients })),
        ...garbageItems,
      ];
      const path = '/v1/relay/batch';
      const body = enc(
        JSON.stringify({ envelopes: batchItems.slice(0, 64), evidences: garbageItems }),
      );
      const answer = await f().probe.send({
        method: 'POST',
        path,
        headers: {
          ...JSON_TYPE,
          ...signedRelayHeaders({
            from: global.id,
            to: RELAY,
            key: global.key,
            method: 'POST',
            path,
            body,
          }),
        },
        body,
      });
      expect(answer.kind === 'response' ? answer.response.status : answer.kind).toBe(200);
      const results = JSON.parse(
        answer.kind === 'response' ? answer.response.body.toString('utf8') : '{}',
      ) as {
        envelopes: { status: number; error?: { code: string } }[];
        evidences: { status: number; error?: { code: string } }[];
      };
      expect(results.envelopes).toHaveLength(Math.min(64, batchItems.length));
      expect(results.evidences).toHaveLength(garbageItems.length);
      semantic.forEach((s, i) => {
        expect({ label: s.label, code: results.envelopes[i]!.error?.code }).toEqual({
          label: s.label,
          code: s.code,
        });
      });
      for (const item of [...results.envelopes, ...results.evidences]) {
        expect(item.status).toBeGreaterThanOrEqual(400);
        expect(item.status).toBeLessThan(500);
      }
      done();
    });

    it('refuses unknown routes, wrong methods and abusive headers with the relay error shape', async () => {
      const done = phase();
      const { probe, ledger, tokens } = f();
      const r = f().rng.fork('routes');
      const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-._~%';
      const paths = [
        '/',
        '/v1',
        '/v1/',
        '/V1/envelopes',
        '/v1/envelopes/',
        '/v1//envelopes',
        '/v2/envelopes',
        '/admin',
        '/.env',
        '/v1/relay',
        '/v1/relay/',
        '/%2e%2e/%2e%2e/etc/passwd',
        '/v1/mailbox/ws/x',
        '/v1/session/',
        '/healthz/x',
        '/metrics/../v1/envelopes',
        '/v1/chunks',
        '/v1/chunks/',
        `/${'a'.repeat(4000)}`,
        '/v1/%ZZ',
        '/v1/chunks/%E0%A4%A',
        '/v1/chunks/%C0%AF',
      ];
      for (let i = 0; i < 80; i++) {
        const segs = Array.from({ length: r.range(1, 4) }, () =>
          Array.from({ length: r.range(1, 12) }, () => alphabet[r.int(alphabet.length)]!).join(''),
        );
        paths.push(`/${r.chance(0.5) ? 'v1/' : ''}${segs.join('/')}`);
      }
      await inPool(paths, CONCURRENCY, async (path) => {
        await refuse('route', `GET ${path.slice(0, 60)}`, {
          method: 'GET',
          path,
          headers: bearer(tokens.sn),
        });
      });

      const known: { method: string; path: string }[] = [
        { method: 'GET', path: '/healthz' },
        { method: 'GET', path: '/readyz' },
        { method: 'GET', path: '/metrics' },
        { method: 'GET', path: '/v1/manifests' },
        { method: 'POST', path: '/v1/session/challenge' },
        { method: 'POST', path: '/v1/session' },
        { method: 'POST', path: '/v1/envelopes' },
        { method: 'POST', path: '/v1/evidences' },
        { method: 'GET', path: '/v1/mailbox' },
        { method: 'POST', path: '/v1/mailbox/ack' },
        { method: 'POST', path: '/v1/chunks/missing' },
        { method: 'PUT', path: `/v1/chunks/${sha256Hex(enc('m'))}` },
        { method: 'POST', path: '/v1/relay/envelopes' },
        { method: 'POST', path: '/v1/relay/evidences' },
      ];
      const wrong: { method: string; path: string }[] = [];
      for (const k of known)
        for (const m of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])
          if (m !== k.method && !(k.method === 'PUT' && m === 'GET'))
            wrong.push({ method: m, path: k.path });
      await inPool(wrong, CONCURRENCY, async (w) => {
        await refuse('method', `${w.method} ${w.path}`, {
          method: w.method,
          path: w.path,
          headers: { ...JSON_TYPE, ...bearer(tokens.sn) },
          body: enc('{}'),
        });
      });
      for (const k of known.filter((x) => x.method !== 'GET')) {
        await refuse(
          'method',
          `HEAD ${k.path}`,
          { method: 'HEAD', path: k.path },
          { noBody: true },
        );
      }
      await refuse('method', 'GET on the WebSocket route without an upgrade', {
        method: 'GET',
        path: '/v1/mailbox/ws',
        headers: bearer(tokens.sn),
      });

      // Header abuse, on raw sockets: what node:http would refuse to send.
      const host = 'Host: 127.0.0.1\r\n';
      const auth = `Authorization: Bearer ${tokens.sn}\r\n`;
      const raw: { label: string; text: string }[] = [
        {
          label: 'a header just over 16 KiB',
          text: `GET /healthz HTTP/1.1\r\n${host}X-Big: ${'a'.repeat(16 * 1024)}\r\nConnection: close\r\n\r\n`,
        },
        {
          label: 'a huge authorization header',
          text: `GET /v1/mailbox HTTP/1.1\r\n${host}Authorization: Bearer ${'A'.repeat(20_000)}\r\nConnection: close\r\n\r\n`,
        },
        {
          label: 'three thousand headers',
          text: `GET /healthz HTTP/1.1\r\n${host}${Array.from({ length: 3000 }, (_, i) => `X-H${String(i)}: v\r\n`).join('')}Connection: close\r\n\r\n`,
        },
        {
          label: 'a 20 KB URL',
          text: `GET /v1/${'a'.repeat(20_000)} HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
        },
        {
          label: 'content-length not a number',
          text: `POST /v1/envelopes HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nContent-Length: abc\r\nConnection: close\r\n\r\n{}`,
        },
        {
          label: 'negative content-length',
          text: `POST /v1/envelopes HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nContent-Length: -1\r\nConnection: close\r\n\r\n{}`,
        },
        {
          label: 'fractional content-length',
          text: `POST /v1/envelopes HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nContent-Length: 1.5\r\nConnection: close\r\n\r\n{}`,
        },
        {
          label: 'two different content-lengths',
          text: `POST /v1/envelopes HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{} `,
        },
        {
          label: 'content-length and chunked',
          text: `POST /v1/envelopes HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
        },
        {
          label: 'unknown transfer-encoding',
          text: `POST /v1/envelopes HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n{}`,
        },
        {
          label: 'bad chunk size',
          text: `POST /v1/envelopes HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
        },
        {
          label: 'space in a header name',
          text: `GET /healthz HTTP/1.1\r\n${host}X Y: z\r\nConnection: close\r\n\r\n`,
        },
        {
          label: 'NUL in a header value',
          text: `GET /healthz HTTP/1.1\r\n${host}X-Y: a\u0000b\r\nConnection: close\r\n\r\n`,
        },
        {
          label: 'bare CR in a header value',
          text: `GET /healthz HTTP/1.1\r\n${host}X-Y: a\rb\r\nConnection: close\r\n\r\n`,
        },
        {
          label: 'header line without a colon',
          text: `GET /healthz HTTP/1.1\r\n${host}NoColon\r\nConnection: close\r\n\r\n`,
        },
        { label: 'no Host header', text: 'GET /v1/mailbox HTTP/1.1\r\nConnection: close\r\n\r\n' },
        { label: 'HTTP/1.0 without a token', text: 'GET /v1/mailbox HTTP/1.0\r\n\r\n' },
        {
          label: 'unknown method',
          text: `BREW /healthz HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
        },
        {
          label: 'lowercase method',
          text: `get /healthz HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
        },
        { label: 'HTTP/9.9', text: `GET /healthz HTTP/9.9\r\n${host}Connection: close\r\n\r\n` },
        {
          label: 'absolute-form target',
          text: `GET http://evil.example/v1/mailbox HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
        },
        {
          label: 'asterisk target',
          text: `OPTIONS * HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
        },
        { label: 'HTTP/2 preface', text: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' },
        { label: 'request line only', text: 'GET\r\n\r\n' },
        {
          label: 'TLS client hello',
          text: '\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003',
        },
      ];
      for (let i = 0; i < 15; i++)
        raw.push({
          label: `random bytes #${String(i)}`,
          text: Buffer.from(r.bytes(r.range(1, 300))).toString('latin1') + '\r\n\r\n',
        });
      for (let i = 0; i < 10; i++)
        raw.push({
          label: `random header #${String(i)}`,
          text: `GET /healthz HTTP/1.1\r\n${host}${Buffer.from(r.bytes(r.range(1, 60)))
            .toString('latin1')
            .replace(/[\r\n]/g, 'x')}\r\nConnection: close\r\n\r\n`,
        });
      await inPool(raw, 4, async (c) => {
        ledger.reject('header', c.label, await probe.sendRaw(c.text));
      });

      // Content types on JSON and chunk routes, with bodies that are wrong anyway.
      const types = [
        'text/plain',
        'application/octet-stream',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/json; charset=utf-16',
        'application/jsonx',
        'application/json;;;',
        'application/json, text/plain',
        'image/png',
        '*/*',
        'application/',
        '\tapplication/json',
      ];
      const targets = [
        { method: 'POST', path: '/v1/session/challenge', body: enc('{"address":1}'), auth: false },
        { method: 'POST', path: '/v1/mailbox/ack', body: enc('{"seqs":[]}'), auth: true },
        { method: 'POST', path: '/v1/chunks/missing', body: enc('{"ids":1}'), auth: true },
        { method: 'PUT', path: `/v1/chunks/${sha256Hex(enc('n'))}`, body: enc('m'), auth: true },
      ];
      const typed: { type: string; t: (typeof targets)[number] }[] = [];
      for (const type of types)
        for (const t of targets)
          if (!(t.method === 'PUT' && type === 'application/octet-stream')) typed.push({ type, t });
      await inPool(typed, CONCURRENCY, async ({ type, t }) => {
        await refuse('content-type', `${t.method} ${t.path} as ${JSON.stringify(type)}`, {
          method: t.method,
          path: t.path,
          headers: { 'content-type': type, ...(t.auth ? bearer(tokens.sn) : {}) },
          body: t.body,
        });
      });
      done();
    });

    it('stored nothing, leaked nothing, and still carries a valid dossier end to end', async () => {
      const {
        relay,
        ledger,
        baseline,
        signedIds,
        refusedChunks,
        world,
        clients,
        victim,
        base,
        probe,
        chunkDir,
      } = f();
      // Every fuzz input has been answered; give aborted uploads a moment to be cleaned up.
      const leftovers = await waitFor(
        'aborted uploads to be cleaned up',
        async () => ((await filesBelow(join(chunkDir, '.tmp'))).length === 0 ? true : undefined),
        10_000,
      ).catch(() => false);
      if (!leftovers)
        ledger.violation(
          'storage',
          'temp files',
          `left behind: ${(await filesBelow(join(chunkDir, '.tmp'))).join(', ')}`,
        );

      const stats = await relay.backend.stats();
      if (JSON.stringify(stats) !== JSON.stringify(baseline))
        ledger.violation(
          'storage',
          'stats',
          `backend holds ${JSON.stringify(stats)}, before the fuzz ${JSON.stringify(baseline)}`,
        );
      for (const id of [...signedIds, base.envelope.body.id])
        if (await relay.backend.getEnvelope(id))
          ledger.violation('storage', id, 'an envelope the relay refused is stored');
      for (const id of refusedChunks)
        if (await relay.blobs.has(id))
          ledger.violation('storage', id, 'a refused or aborted upload is stored');
      for (const address of [SN, GH, 'nobody@wacap', 'nobody@casc', 'x@nowhere']) {
        const items = await relay.backend.readMailbox(address, 0, 100);
        if (items.length > 0)
          ledger.violation('storage', address, `mailbox holds ${String(items.length)} item(s)`);
      }
      expect((await relay.backend.readMailbox(NG, 0, 100)).map((i) => i.envelopeId)).toEqual([
        victim.envelope.body.id,
      ]);

      const metrics = await probe.send({ method: 'GET', path: '/metrics' });
      const text = metrics.kind === 'response' ? metrics.response.body.toString('utf8') : '';
      const serverErrors = text
        .split('\n')
        .filter((l) =>
          /^rogatory_relay_rejected_requests_total\{code="(INTERNAL|UNAVAILABLE)"\} [1-9]/.test(l),
        );
      if (serverErrors.length > 0)
        ledger.violation('server', 'metrics', `5xx answers counted: ${serverErrors.join('; ')}`);

      const openSockets = await waitFor(
        'every WebSocket to be released',
        async () => {
          const m = await probe.send({ method: 'GET', path: '/metrics' });
          const line =
            m.kind === 'response'
              ? m.response.body
                  .toString('utf8')
                  .split('\n')
                  .find((l) => l.startsWith('rogatory_relay_websockets '))
              : undefined;
          return line === 'rogatory_relay_websockets 0' ? line : undefined;
        },
        10_000,
      ).catch(() => 'still open');
      if (openSockets === 'still open')
        ledger.violation(
          'server',
          'websockets',
          'mailbox WebSockets still counted open after every client closed',
        );

      console.log(`fuzz seed ${SEED}\n${ledger.summary()}`);
      expect(ledger.violations).toEqual([]);
      expect(ledger.total()).toBeGreaterThanOrEqual(3000);
      // The fuzz reached past the front door: the deep checks answered too.
      const seen = ledger.codesSeen();
      for (const code of [
        'MALFORMED',
        'CHUNK_ID_INVALID',
        'CHUNK_HASH_MISMATCH',
        'UNAUTHENTICATED',
        'CHALLENGE_INVALID',
        'SIGNATURE_INVALID',
        'SENDER_UNKNOWN',
        'SENDER_REVOKED',
        'SENDER_KEY_EXPIRED',
        'FORBIDDEN',
        'NOT_FOUND',
        'REPLAY',
        'EXPIRED',
        'LIMIT_EXCEEDED',
        'RECIPIENT_UNKNOWN',
        'RECIPIENT_UNREACHABLE',
        'CHUNK_MISSING',
        'HOP_LIMIT',
      ]) {
        expect(seen.has(code), code).toBe(true);
      }

      // A key revoked while its session is open ends the session at once, and no new one is granted.
      const ghKey = world.authority(GH);
      f().trust.addRevocation(
        signRevocation(
          {
            network: 'wacap',
            subject: GH,
            kid: ghKey.identityRef.kid,
            reason: 'key-compromise',
            revokedAt: Date.now() - 1000,
            issuedAt: Date.now(),
          },
          world.networks['wacap']!.root,
        ),
      );
      ledger.reject(
        'revoked',
        'token of a revoked key',
        await probe.send({ method: 'GET', path: '/v1/mailbox', headers: bearer(f().tokens.gh) }),
        { code: 'UNAUTHENTICATED' },
      );
      const c = await askChallenge(probe, GH);
      const req = sessionRequest(
        {
          type: 'session',
          relay: c.relay,
          address: GH,
          challenge: c.challenge,
          issuedAt: Date.now(),
        },
        ghKey.identity,
      );
      ledger.reject(
        'revoked',
        'login with a revoked key',
        await probe.send({
          method: 'POST',
          path: '/v1/session',
          headers: JSON_TYPE,
          body: canonicalBytes(req),
        }),
        { code: 'SENDER_REVOKED' },
      );
      expect(ledger.violations).toEqual([]);

      // Still serving: a valid dossier goes through, delivered over the WebSocket and acked.
      const ready = await probe.send({ method: 'GET', path: '/readyz' });
      expect(ready.kind === 'response' && ready.response.status).toBe(200);
      const fresh = await sealAndUpload(world, clients.sn, { from: SN, to: [NG] });
      const submitRaw = (envelope: Envelope) =>
        probe.send({
          method: 'POST',
          path: '/v1/envelopes',
          headers: { ...JSON_TYPE, ...bearer(f().tokens.sn) },
          body: canonicalBytes(envelope),
        });
      // The same submission eight times at once: one envelope, one acceptance returned to all.
      const same = await Promise.all(Array.from({ length: 8 }, () => submitRaw(fresh.envelope)));
      const bodies = same.map((o) =>
        o.kind === 'response' && o.response.status === 200
          ? toHex(canonicalBytes(JSON.parse(o.response.body.toString('utf8'))))
          : `not accepted: ${JSON.stringify(o)}`,
      );
      expect(new Set(bodies).size).toBe(1);
      const first = same[0]!;
      const acceptance =
        first.kind === 'response'
          ? (JSON.parse(first.response.body.toString('utf8')) as { evidence: unknown }).evidence
          : undefined;
      expect(verifyEvidence(fresh.envelope, acceptance, world.trustFor('wacap')).body.kind).toBe(
        'submission-acceptance',
      );
      // Four different envelopes under one new id at once: exactly one wins, the others are replays.
      const r = f().rng.fork('race');
      const racingId = toBase64url(r.bytes(16));
      const now = Date.now();
      const variants = Array.from({ length: 4 }, (_, i) =>
        signAsIs(
          bodyOf(r, {
            id: racingId,
            recipients: [NG],
            dossier: fresh.envelope.body.dossier,
            chunks: fresh.envelope.body.chunks,
            createdAt: now,
            expiresAt: now + 86_400_000 - i * 1000,
          }),
          world.authority(SN).identity,
        ),
      );
      const raced = await Promise.all(variants.map((v) => submitRaw(v)));
      const statuses = raced.map((o) => (o.kind === 'response' ? o.response.status : 0));
      expect(statuses.filter((st) => st === 200)).toHaveLength(1);
      expect(statuses.filter((st) => st === 409)).toHaveLength(3);
      const winner = variants[statuses.indexOf(200)]!;
      for (const [i, o] of raced.entries())
        if (statuses[i] === 409)
          ledger.reject('race', 'racing replay', o, {
            code: 'REPLAY',
            submission: { bytes: canonicalBytes(variants[i]!), session: SN },
          });
      expect(ledger.violations).toEqual([]);

      const got: { seq: number; id: string }[] = [];
      const sub = clients.ng.openMailbox({
        after: 0,
        onItem: (item) =>
          void got.push({
            seq: item.seq,
            id: item.kind === 'envelope' ? item.envelope.body.id : '',
          }),
      });
      try {
        await waitFor('the fresh dossiers over the WebSocket', () =>
          got.some((g) => g.id === fresh.envelope.body.id) && got.some((g) => g.id === racingId)
            ? true
            : undefined,
        );
        expect(await clients.ng.getChunkBytes(fresh.envelope.body.dossier.id)).toEqual(
          fresh.sealed,
        );
        await sub.ack(got.map((g) => g.seq));
      } finally {
        await sub.close();
      }
      expect(got.map((g) => g.id).sort()).toEqual(
        [fresh.envelope.body.id, racingId, victim.envelope.body.id].sort(),
      );
      expect((await relay.backend.getEnvelope(racingId))?.hash).toBe(envelopeHash(winner));
      await waitFor(
        'the mailbox to be empty',
        async () => ((await relay.backend.readMailbox(NG, 0, 100)).length === 0 ? true : undefined),
        5000,
      );
    });
  });
}

fuzzSuite('relay fuzz, embedded backend', () => Promise.resolve({ kind: { kind: 'embedded' } }));

describe.runIf(redisInstalled)('with redis-server', () => {
  fuzzSuite('relay fuzz, Redis backend', async () => {
    const redis = await startRedis();
    return { kind: { kind: 'redis', url: redis.url }, stop: () => redis.stop() };
  });
});

describe('relay fuzz, fault injection', () => {
  let net: TestNetworkOfRelays | undefined;
  afterAll(async () => {
    await net?.stop();
  });

  it('answers a WebSocket ack the backend fails to carry out with an error frame, and keeps running', async () => {
    net = await startTestRelays({ backend: { kind: 'embedded' }, networks: ['wacap'] });
    const relay = net.relays['wacap']!;
    const probe = HttpProbe.fromUrl(relay.url);
    try {
      const token = await loginToken(probe, SN, net.world.authority(SN).identity);
      // The backend refuses the ack (a Redis failover, a locked database): the frame must get an answer, not an unhandled rejection.
      const backend = relay.backend as { ack: typeof relay.backend.ack };
      const ack = backend.ack.bind(relay.backend);
      backend.ack = () => Promise.reject(new Error('backend unavailable'));
      const ws = new WsProbe(
        `${relay.url.replace(/^http/, 'ws')}/v1/mailbox/ws?token=${encodeURIComponent(token)}`,
      );
      try {
        expect(await ws.opened).toBe(true);
        ws.send(JSON.stringify({ type: 'ack', seqs: [1] }));
        expect(await ws.until(() => ws.frames.length > 0, 5000)).toBe(true);
        expect(ws.frames[0]).toEqual({ type: 'error', code: 'UNAVAILABLE' });
      } finally {
        backend.ack = ack;
        await ws.close();
      }
      const ready = await probe.send({ method: 'GET', path: '/readyz' });
      expect(ready.kind === 'response' && ready.response.status).toBe(200);
    } finally {
      probe.close();
    }
  });
});
