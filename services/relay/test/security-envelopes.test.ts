/**
 * Issue 14 item 6, third point: replayed, re-addressed and expired
 * envelopes are refused with their stable codes and nothing is stored, on
 * both backends. A replay is the same envelope id again: re-signed for
 * another mailbox (REPLAY), handed in by someone who is not its sender
 * (FORBIDDEN), or the very same bytes after delivery (answered with the
 * original acceptance, as a sender's retry must be, and never delivered a
 * second time). A re-addressed envelope has recipients its signature does
 * not cover (SIGNATURE_INVALID), or a peer relay hands it over for a
 * recipient it does not name (MALFORMED). An expired one: EXPIRED.
 * (A node that receives an envelope not addressed to it refuses it as
 * NOT_ADDRESSED: services/node/test/hostile-relay.test.ts.)
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { RelayClient } from '@rogatory/client';
import {
  canonicalBytes,
  envelopeHash,
  toBase64url,
  verifyEvidence,
  withHop,
  type Envelope,
} from '@rogatory/protocol';
import { startRedis } from '@rogatory/test-services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendStats } from '../src/backend/types.js';
import {
  startTestRelays,
  type BackendKind,
  type TestNetworkOfRelays,
  type TestRelay,
} from '../src/testing/harness.js';
import {
  nodeClient,
  sealAndUpload,
  signAsIs,
  type Prepared,
} from '../src/testing/relay-helpers.js';
import { HttpProbe } from './support/http-probe.js';
import { loginToken, signedRelayHeaders } from './support/relay-auth.js';

const SN = 'sn-moj@wacap';
const NG = 'ng-agf@wacap';
const GH = 'gh-ago@wacap';
const RELAY = 'relay@wacap';
const redisInstalled =
  spawnSync(process.env['REDIS_SERVER'] ?? 'redis-server', ['--version']).status === 0;

interface Answer {
  readonly status: number;
  readonly code: string | undefined;
  readonly body: Record<string, unknown>;
}

function suite(
  name: string,
  backend: () => Promise<{ kind: BackendKind; stop?: () => Promise<void> }>,
): void {
  describe(name, () => {
    let net: TestNetworkOfRelays | undefined;
    let stopBackend: (() => Promise<void>) | undefined;
    let relay: TestRelay;
    let probe: HttpProbe;
    let tokens: Record<'sn' | 'ng' | 'gh', string>;
    let clients: Record<'sn' | 'ng', RelayClient>;

    beforeAll(async () => {
      const b = await backend();
      stopBackend = b.stop;
      const started = await startTestRelays({ backend: b.kind, networks: ['wacap'] });
      net = started;
      relay = started.relays['wacap']!;
      probe = HttpProbe.fromUrl(relay.url);
      const { world } = started;
      tokens = {
        sn: await loginToken(probe, SN, world.authority(SN).identity),
        ng: await loginToken(probe, NG, world.authority(NG).identity),
        gh: await loginToken(probe, GH, world.authority(GH).identity),
      };
      clients = { sn: nodeClient(world, relay.url, SN), ng: nodeClient(world, relay.url, NG) };
    }, 120_000);

    afterAll(async () => {
      probe.close();
      await net?.stop();
      await stopBackend?.();
    });

    const submitAs = async (token: string, envelope: Envelope): Promise<Answer> => {
      const o = await probe.send({
        method: 'POST',
        path: '/v1/envelopes',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: canonicalBytes(envelope),
      });
      if (o.kind !== 'response') throw new Error(`no answer: ${JSON.stringify(o)}`);
      const body = JSON.parse(o.response.body.toString('utf8')) as Record<string, unknown>;
      const error = body['error'] as { code?: string } | undefined;
      return { status: o.response.status, code: error?.code, body };
    };

    /** The refusal's signed rejection, when the relay signs one: it must verify and carry the code. */
    const expectSignedRejection = (envelope: Envelope, answer: Answer, code: string): void => {
      expect(answer.body['evidence'], code).toBeDefined();
      const evidence = verifyEvidence(
        envelope,
        answer.body['evidence'],
        net!.world.trustFor('wacap'),
      );
      expect(evidence.body.kind).toBe('submission-rejection');
      expect((evidence.body as { reason?: { code: string } }).reason?.code).toBe(code);
    };

    const mailboxIds = async (address: string): Promise<string[]> =>
      (await relay.backend.readMailbox(address, 0, 100)).map((i) => i.envelopeId);

    /** Run `fn` (a refusal); afterwards the backend holds exactly what it held before. */
    const storesNothing = async (fn: () => Promise<void>): Promise<void> => {
      const before: BackendStats = await relay.backend.stats();
      const boxes = { ng: await mailboxIds(NG), gh: await mailboxIds(GH) };
      await fn();
      expect(await relay.backend.stats()).toEqual(before);
      expect({ ng: await mailboxIds(NG), gh: await mailboxIds(GH) }).toEqual(boxes);
    };

    /** A dossier from SN to NG, accepted, delivered and acked. */
    const delivered = async (): Promise<Prepared> => {
      const p = await sealAndUpload(net!.world, clients.sn, { from: SN, to: [NG] });
      await clients.sn.submit(p.envelope);
      const items = await clients.ng.readMailbox(0, 100);
      const item = items.find(
        (i) => i.kind === 'envelope' && i.envelope.body.id === p.envelope.body.id,
      );
      if (!item) throw new Error('not delivered');
      await clients.ng.ack([item.seq]);
      return p;
    };

    it('an expired envelope is refused EXPIRED, with a signed rejection, and nothing stored', async () => {
      const p = await sealAndUpload(net!.world, clients.sn, { from: SN, to: [NG] });
      const now = Date.now();
      for (const expiresAt of [now - 1000, now]) {
        const expired = signAsIs(
          { ...p.envelope.body, createdAt: now - 3_600_000, expiresAt },
          net!.world.authority(SN).identity,
        );
        await storesNothing(async () => {
          const a = await submitAs(tokens.sn, expired);
          expect(a.status).toBe(410);
          expect(a.code).toBe('EXPIRED');
          expectSignedRejection(expired, a, 'EXPIRED');
        });
        expect(await relay.backend.getEnvelope(expired.body.id)).toBeUndefined();
      }
    });

    it('a re-addressed envelope (recipients its signature does not cover) is refused SIGNATURE_INVALID, nothing stored', async () => {
      const p = await sealAndUpload(net!.world, clients.sn, { from: SN, to: [NG] });
      const variants: Envelope[] = [
        { ...p.envelope, body: { ...p.envelope.body, recipients: [GH] } },
        { ...p.envelope, body: { ...p.envelope.body, recipients: [NG, GH] } },
        { ...p.envelope, body: { ...p.envelope.body, recipients: [GH, NG] } },
      ];
      for (const v of variants) {
        await storesNothing(async () => {
          for (const token of [tokens.sn, tokens.gh]) {
            const a = await submitAs(token, v);
            expect(a.status).toBeGreaterThanOrEqual(400);
            expect(a.status).toBeLessThan(500);
            // The sender's session: the signature is checked; anyone else's: refused before that.
            expect(a.code).toBe(token === tokens.sn ? 'SIGNATURE_INVALID' : 'FORBIDDEN');
          }
        });
        expect(await relay.backend.getEnvelope(v.body.id)).toBeUndefined();
      }
      // The genuine one still goes (its id was never taken).
      expect((await submitAs(tokens.sn, p.envelope)).status).toBe(200);
      expect(await mailboxIds(NG)).toEqual([p.envelope.body.id]);
      const items = await clients.ng.readMailbox(0, 100);
      await clients.ng.ack(items.map((i) => i.seq));
    });

    it('a delivered envelope replayed to another mailbox is refused REPLAY; by anyone but its sender FORBIDDEN; nothing stored', async () => {
      const p = await delivered();
      const id = p.envelope.body.id;
      const stored = await relay.backend.getEnvelope(id);
      expect(stored?.hash).toBe(envelopeHash(p.envelope));
      // The sender signs another envelope under the same id, for another mailbox.
      const sn = net!.world.authority(SN).identity;
      for (const recipients of [[GH], [NG, GH]]) {
        const other = signAsIs({ ...p.envelope.body, recipients }, sn);
        await storesNothing(async () => {
          const a = await submitAs(tokens.sn, other);
          expect(a.status).toBe(409);
          expect(a.code).toBe('REPLAY');
          expectSignedRejection(other, a, 'REPLAY');
        });
      }
      // Its recipient (or anyone) handing the received envelope in again, as received or stripped.
      const received = withHop(p.envelope, { relay: RELAY, receivedAt: Date.now() });
      for (const [token, envelope] of [
        [tokens.ng, p.envelope],
        [tokens.ng, received],
        [tokens.gh, p.envelope],
      ] as const) {
        await storesNothing(async () => {
          const a = await submitAs(token, envelope);
          expect(a.status).toBe(403);
          expect(a.code).toBe('FORBIDDEN');
        });
      }
      expect((await relay.backend.getEnvelope(id))?.hash).toBe(stored?.hash);
    });

    it('the same envelope again after delivery gets its original acceptance and is not delivered twice', async () => {
      const p = await delivered();
      const first = await relay.backend.getEnvelope(p.envelope.body.id);
      for (let i = 0; i < 3; i++) {
        await storesNothing(async () => {
          const a = await submitAs(tokens.sn, p.envelope);
          expect(a.status).toBe(200);
          expect(canonicalBytes(a.body['evidence'])).toEqual(
            canonicalBytes((await clients.sn.submit(p.envelope)) as unknown),
          );
        });
        expect(await mailboxIds(NG)).toEqual([]);
      }
      expect(await relay.backend.getEnvelope(p.envelope.body.id)).toEqual(first);
    });

    it('a peer relay handing an envelope over for a recipient it does not name is refused MALFORMED; a replay through it is not delivered again', async () => {
      const p = await delivered();
      const global = net!.world.networks['global']!.relay;
      const hopped = withHop(p.envelope, { relay: global.id, receivedAt: Date.now() });
      const handOver = async (recipients: string[]): Promise<Answer> => {
        const body = canonicalBytes({ envelope: hopped, recipients });
        const path = '/v1/relay/envelopes';
        const o = await probe.send({
          method: 'POST',
          path,
          headers: {
            'content-type': 'application/json',
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
        if (o.kind !== 'response') throw new Error('no answer');
        const json = JSON.parse(o.response.body.toString('utf8')) as Record<string, unknown>;
        return {
          status: o.response.status,
          code: (json['error'] as { code?: string } | undefined)?.code,
          body: json,
        };
      };
      for (const recipients of [[GH], [NG, GH]]) {
        await storesNothing(async () => {
          const a = await handOver(recipients);
          expect(a.status).toBe(400);
          expect(a.code).toBe('MALFORMED');
        });
      }
      // A fresh envelope, never accepted here, for a recipient it does not name: the same.
      const fresh = await sealAndUpload(net!.world, clients.sn, {
        from: SN,
        to: [NG],
        envelopeId: toBase64url(randomBytes(16)),
        upload: false,
      });
      await storesNothing(async () => {
        const body = canonicalBytes({
          envelope: withHop(fresh.envelope, { relay: global.id, receivedAt: Date.now() }),
          recipients: [GH],
        });
        const path = '/v1/relay/envelopes';
        const o = await probe.send({
          method: 'POST',
          path,
          headers: {
            'content-type': 'application/json',
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
        expect(o.kind === 'response' && o.response.status).toBe(400);
      });
      expect(await relay.backend.getEnvelope(fresh.envelope.body.id)).toBeUndefined();
      // The delivered one handed over again for its own recipient: answered, never in the mailbox again.
      const again = await handOver([NG]);
      expect(again.status).toBeLessThan(500);
      expect(await mailboxIds(NG)).toEqual([]);
    });
  });
}

suite('replayed, re-addressed and expired envelopes, embedded backend', () =>
  Promise.resolve({ kind: { kind: 'embedded' } }),
);

describe.runIf(redisInstalled)('with redis-server', () => {
  suite('replayed, re-addressed and expired envelopes, Redis backend', async () => {
    const redis = await startRedis();
    return { kind: { kind: 'redis', url: redis.url }, stop: () => redis.stop() };
  });
});
