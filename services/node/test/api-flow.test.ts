import { join } from 'node:path';
import { terminateHashWorker } from '@rogatory/protocol/node';
import { startTestRelays, type TestNetworkOfRelays } from '@rogatory/relay/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildNodeApi } from '../src/index.js';
import { runCli } from '../src/cli/program.js';
import {
  PASSPHRASE,
  PASSWORD,
  eventually,
  makeNode,
  mlaRequest,
  randomFile,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';
const V1 = '/api/v1';

describe('REST API over two nodes and real relays', () => {
  let net: TestNetworkOfRelays;
  let tmp: { path: string; remove: () => Promise<void> };
  let sn: NodeFixture;
  let kz: NodeFixture;
  let snApi: FastifyInstance;
  let kzApi: FastifyInstance;

  beforeAll(async () => {
    net = await startTestRelays({ backend: { kind: 'embedded' } });
    tmp = await tempDir();
    sn = await makeNode({ world: net.world, address: SN, dir: join(tmp.path, 'sn') });
    kz = await makeNode({ world: net.world, address: KZ, dir: join(tmp.path, 'kz') });
    sn.user('amadou', 'officer', ['restricted']);
    sn.user('fatou', 'approver', ['restricted']);
    kz.user('aigerim', 'officer', ['restricted']);
    snApi = await buildNodeApi({ node: sn.node });
    kzApi = await buildNodeApi({ node: kz.node });
  }, 120_000);

  afterAll(async () => {
    await snApi.close();
    await kzApi.close();
    await sn.node.close();
    await kz.node.close();
    await net.stop();
    await terminateHashWorker();
    await tmp.remove();
  });

  async function session(app: FastifyInstance, username: string) {
    const res = await app.inject({
      method: 'POST',
      url: `${V1}/login`,
      payload: { username, password: PASSWORD },
    });
    expect(res.statusCode).toBe(200);
    const headers = { authorization: `Bearer ${res.json<{ token: string }>().token}` };
    return {
      get: (url: string) => app.inject({ method: 'GET', url: `${V1}${url}`, headers }),
      post: (url: string, payload?: object) =>
        app.inject({
          method: 'POST',
          url: `${V1}${url}`,
          headers,
          ...(payload ? { payload } : {}),
        }),
    };
  }

  it('compose → submit → approve → sync → received, opened (Retrieval queued) and exported at the other node', async () => {
    const files = [
      await randomFile(tmp.path, 'warrant.pdf', 20_000),
      await randomFile(tmp.path, 'records.csv', 9_000),
    ];
    const amadou = await session(snApi, 'amadou');
    const fatou = await session(snApi, 'fatou');
    const aigerim = await session(kzApi, 'aigerim');

    const created = await amadou.post('/dossiers', {
      content: mlaRequest(net.world, SN, KZ, { caseReference: 'API-FLOW-1' }),
      attachments: files.map((f) => ({ path: f.path })),
    });
    expect(created.statusCode).toBe(201);
    const { id } = created.json<{ id: string }>();
    expect((await amadou.post(`/dossiers/${id}/submit`)).statusCode).toBe(200);
    const approved = await fatou.post(`/dossiers/${id}/approve`);
    expect(approved.statusCode).toBe(200);
    const { envelopeId } = approved.json<{ envelopeId: string }>();

    const sent = await amadou.post('/sync');
    expect(sent.statusCode).toBe(200);
    expect(sent.json<{ outbox: { sent: string[] } }>().outbox.sent).toEqual([id]);

    const received = await eventually(
      'the request at kz-gpo',
      async () => {
        const report = await aigerim.post('/sync');
        expect(report.statusCode).toBe(200);
        const list = await aigerim.get('/dossiers?direction=in&caseReference=API-FLOW-1');
        return list.json<{ dossiers: { id: string; envelopeId: string; status: string }[] }>()
          .dossiers[0];
      },
      100,
      100,
    );
    expect(received).toMatchObject({ envelopeId, status: 'received' });

    const opened = await aigerim.post(`/dossiers/${received.id}/open`);
    expect(opened.statusCode).toBe(200);
    expect(opened.json()).toMatchObject({
      attachments: [
        expect.objectContaining({ name: 'warrant.pdf' }),
        expect.objectContaining({ name: 'records.csv' }),
      ],
      signed: { sender: SN, recipients: [KZ] },
    });
    const shown = await aigerim.get(`/dossiers/${received.id}`);
    expect(shown.json<{ queued: { kind: string }[] }>().queued.map((q) => q.kind)).toContain(
      'retrieval',
    );

    await aigerim.post('/sync');
    const delivered = await eventually(
      'delivery evidences at the sender',
      async () => {
        await amadou.post('/sync');
        const ev = await amadou.get(`/dossiers/${id}/evidences`);
        const kinds = ev
          .json<{ evidences: { body: { kind: string } }[] }>()
          .evidences.map((e) => e.body.kind);
        return kinds.includes('retrieval') ? kinds : undefined;
      },
      100,
      100,
    );
    expect(delivered).toEqual(
      expect.arrayContaining(['submission-acceptance', 'delivery', 'retrieval']),
    );

    const exported = await aigerim.post(`/dossiers/${received.id}/export`, {
      dir: join(tmp.path, 'bundle'),
    });
    expect(exported.statusCode).toBe(200);
    expect(exported.json<{ files: string[] }>().files.length).toBeGreaterThan(0);
  });

  it('`rogatory serve` listens, answers over a real socket and stops on the signal', async () => {
    const dir = join(tmp.path, 'served');
    await makeNode({ world: net.world, address: 'gh-ago@wacap', dir }).then((f) => f.node.close());
    let out = '';
    let status = 0;
    let doc = '';
    const code = await runCli(
      ['--dir', dir, '--json', 'serve', '--port', '0', '--no-sync'],
      {
        out: (t) => (out += t),
        err: () => undefined,
        env: { ROGATORY_PASSPHRASE: PASSPHRASE },
        isTTY: false,
      },
      {
        untilSignal: async () => {
          const { url } = JSON.parse(out) as { url: string };
          const res = await fetch(`${url}/api/v1/login`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ username: 'admin', password: PASSWORD }),
          });
          status = res.status;
          doc = await (await fetch(`${url}/openapi.json`)).text();
        },
      },
    );
    expect(code).toBe(0);
    expect(status).toBe(200);
    expect(JSON.parse(doc)).toHaveProperty('paths');
  });
});
