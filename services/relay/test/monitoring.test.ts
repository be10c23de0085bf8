/**
 * The operators' monitoring kit (issue 14 item 3): infra/monitoring/alerts.yml
 * and grafana-relay.json use only metrics the relay and the node export, the
 * rules pass `promtool check rules` and their unit tests (alerts.test.yml)
 * when Debian's promtool is installed, and the example scrape config passes
 * `promtool check config`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { RelayMetrics } from '../src/metrics.js';
import type { RelayBackend } from '../src/backend/types.js';

const DIR = fileURLToPath(new URL('../../../infra/monitoring/', import.meta.url));
const PROMTOOL = '/usr/bin/promtool';

/** Metric names the node's /metrics writes (services/node/src/api/metrics-routes.ts). */
async function nodeMetricNames(): Promise<Set<string>> {
  const source = await readFile(
    fileURLToPath(new URL('../../node/src/api/metrics-routes.ts', import.meta.url)),
    'utf8',
  );
  return new Set(source.match(/rogatory_node_[a-z_]+/g) ?? []);
}

async function relayMetricNames(): Promise<Set<string>> {
  const backend = {
    stats: () => Promise.resolve({ mailboxItems: 0, forwardPending: 0, envelopes: 0 }),
    usage: () => Promise.resolve(new Map()),
  } as unknown as RelayBackend;
  const metrics = new RelayMetrics(backend);
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram')
      for (const s of ['_bucket', '_sum', '_count']) names.add(`${m.name}${s}`);
  }
  return names;
}

function referenced(text: string, prefix: RegExp): string[] {
  return [...new Set(text.match(prefix) ?? [])];
}

describe('monitoring: alert rules and dashboard', () => {
  it('every Rogatory metric the rules and the dashboard use is exported', async () => {
    const relay = await relayMetricNames();
    const node = await nodeMetricNames();
    const rules = await readFile(join(DIR, 'alerts.yml'), 'utf8');
    const dashboard = await readFile(join(DIR, 'grafana-relay.json'), 'utf8');
    const used = [
      ...referenced(rules, /rogatory_(relay|node)_[a-z_]+/g),
      ...referenced(dashboard, /rogatory_relay_[a-z_]+/g),
    ];
    expect(used.length).toBeGreaterThan(10);
    for (const name of used)
      expect(relay.has(name) || node.has(name), `${name} is not exported`).toBe(true);
  });

  it('the rules name the alerts an operator needs, each with a severity and a summary', async () => {
    const doc = parse(await readFile(join(DIR, 'alerts.yml'), 'utf8')) as {
      groups: {
        rules: {
          alert: string;
          expr: string;
          labels: { severity: string };
          annotations: { summary: string };
        }[];
      }[];
    };
    const rules = doc.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'RogatoryForwardBacklog',
        'RogatoryMailboxBacklog',
        'RogatoryPeerUnreachable',
        'RogatoryNonDeliveries',
        'RogatoryRefusalsByCode',
        'RogatoryDiskFilling',
        'RogatoryRelayStorageFull',
        'RogatoryRedisMemory',
        'RogatoryNodeTrustFork',
      ]),
    );
    for (const r of rules) {
      expect(['warning', 'critical']).toContain(r.labels.severity);
      expect(r.annotations.summary.length).toBeGreaterThan(10);
    }
  });

  it('the Grafana dashboard is a dashboard: unique panel ids, each with a query', async () => {
    const dash = JSON.parse(await readFile(join(DIR, 'grafana-relay.json'), 'utf8')) as {
      uid: string;
      panels: { id: number; targets: { expr: string }[] }[];
    };
    expect(dash.uid).toBe('rogatory-relay');
    expect(new Set(dash.panels.map((p) => p.id)).size).toBe(dash.panels.length);
    for (const p of dash.panels) expect(p.targets.length).toBeGreaterThan(0);
  });

  it.runIf(existsSync(PROMTOOL))(
    'promtool: check rules, rule unit tests, check config',
    async () => {
      execFileSync(PROMTOOL, ['check', 'rules', 'alerts.yml'], { cwd: DIR, stdio: 'pipe' });
      execFileSync(PROMTOOL, ['test', 'rules', 'alerts.test.yml'], { cwd: DIR, stdio: 'pipe' });
      // The scrape config names a token file; check it beside a stand-in token.
      const tmp = await mkdtemp(join(tmpdir(), 'rogatory-prom-'));
      try {
        const config = (await readFile(join(DIR, 'prometheus.yml'), 'utf8')).replace(
          '/etc/prometheus/rogatory-node-metrics-token',
          join(tmp, 'token'),
        );
        await writeFile(join(tmp, 'token'), 'x'.repeat(40));
        await writeFile(join(tmp, 'prometheus.yml'), config);
        await copyFile(join(DIR, 'alerts.yml'), join(tmp, 'alerts.yml'));
        execFileSync(PROMTOOL, ['check', 'config', 'prometheus.yml'], { cwd: tmp, stdio: 'pipe' });
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },
  );
});
