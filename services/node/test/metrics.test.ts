import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestWorld } from '@rogatory/protocol/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildNodeApi } from '../src/index.js';
import { nodeMetricsText } from '../src/api/metrics-routes.js';
import {
  makeNode,
  mlaRequest,
  offlineWorld,
  randomFile,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';
const TOKEN = 'm'.repeat(40);
const CASE_REF = 'SN-METRICS-CASE-7';

describe('node metrics (GET /metrics, Prometheus text format)', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let n: NodeFixture;
  let app: FastifyInstance;
  let plain: FastifyInstance;

  beforeAll(async () => {
    world = await offlineWorld();
    tmp = await tempDir();
    n = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn') });
    const officer = n.user('officer', 'officer', ['restricted', 'witness-protection']);
    const warrant = await randomFile(tmp.path, 'warrant.pdf', 4096);
    await n.node.compose(officer, {
      content: mlaRequest(world, SN, KZ, { caseReference: CASE_REF }),
      attachments: [{ path: warrant.path }, { path: warrant.path }],
    });
    app = await buildNodeApi({ node: n.node, logger: false, metricsToken: TOKEN });
    plain = await buildNodeApi({ node: n.node, logger: false });
  });

  afterAll(async () => {
    await app.close();
    await plain.close();
    await n.node.close();
    await tmp.remove();
  });

  it('serves counts and trust state to the holder of the metrics token, and nothing of a dossier', async () => {
    const res = await app.inject({
      url: '/metrics',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.body;
    expect(text).toContain('rogatory_node_dossiers{status="draft"} 1');
    expect(text).toContain('rogatory_node_listed_in_manifest 1');
    expect(text).toContain('# TYPE rogatory_node_trust_forks_total counter');
    expect(text).toContain('rogatory_node_trust_forks_total 0');
    expect(text).toMatch(/rogatory_node_outbox_pending 0\n/);
    expect(text).not.toContain(CASE_REF);
    expect(text).not.toContain(KZ);
  });

  it('refuses a missing or wrong token with UNAUTHENTICATED, and has no /metrics without a token configured', async () => {
    for (const authorization of [
      undefined,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(1)}`,
      TOKEN,
    ]) {
      const res = await app.inject({
        url: '/metrics',
        ...(authorization === undefined ? {} : { headers: { authorization } }),
      });
      expect(res.statusCode).toBe(401);
      expect(res.json<{ error: { code: string } }>().error.code).toBe('UNAUTHENTICATED');
      expect(res.body).not.toContain('rogatory_node');
    }
    const none = await plain.inject({
      url: '/metrics',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(none.statusCode).toBe(404);
    await expect(
      buildNodeApi({ node: n.node, logger: false, metricsToken: 'short' }),
    ).rejects.toThrow(/at least 32 characters/);
  });

  it('writes trust state per network, escapes label values, and passes promtool when Debian has it', async () => {
    const status = n.node.status();
    const text = nodeMetricsText({
      ...status,
      dossiers: { 'odd"status\\x': 2 },
      trust: {
        networks: [
          { network: 'wacap', edition: 3, logSize: 7, forkAlarm: true },
          { network: 'casc', edition: null, logSize: 0, forkAlarm: false },
        ],
        openAlarms: 1,
        forksTotal: 2,
      },
    });
    expect(text).toContain('rogatory_node_trust_edition{network="wacap"} 3');
    expect(text).toContain('rogatory_node_trust_edition{network="casc"} -1');
    expect(text).toContain('rogatory_node_trust_fork_alarm{network="wacap"} 1');
    expect(text).toContain('rogatory_node_trust_log_size{network="wacap"} 7');
    expect(text).toContain('rogatory_node_trust_forks_total 2');
    expect(text).toContain('rogatory_node_dossiers{status="odd\\"status\\\\x"} 2');
    if (existsSync('/usr/bin/promtool')) {
      const file = join(tmp.path, 'metrics.txt');
      await writeFile(file, text);
      // promtool reads the exposition on stdin and exits non-zero on a format error.
      execFileSync('sh', ['-c', `promtool check metrics < ${file}`], { stdio: 'pipe' });
    }
  });
});
