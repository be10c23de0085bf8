/**
 * infra/compose.production.yaml deploys as it is (issue 14 item 4): no
 * container engine runs here, so this parses it and checks each service's
 * image, restart policy, healthcheck, resource limits and volumes, and the
 * relays' environment against what the relay's configuration loader
 * accepts, Sentinel and the TLS proxy included.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadRelayConfig } from '../src/config.js';

const INFRA = fileURLToPath(new URL('../../../infra/', import.meta.url));

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  restart?: string;
  healthcheck?: { test: string[] };
  deploy?: { resources?: { limits?: { memory?: string; cpus?: string } } };
  depends_on?: unknown;
}

async function compose(): Promise<{
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}> {
  const text = await readFile(`${INFRA}compose.production.yaml`, 'utf8');
  return parse(text, { merge: true }) as {
    services: Record<string, Service>;
    volumes: Record<string, unknown>;
  };
}

/** ${VAR} substituted as docker compose would, from a stand-in .env. */
function substituted(env: Record<string, string>): Record<string, string> {
  const dotenv: Record<string, string> = {
    ROGATORY_RELAY_PASSPHRASE: 'p'.repeat(20),
    ROGATORY_RELAY_SESSION_SECRET: 'ab'.repeat(32),
    ROGATORY_S3_ACCESS_KEY: 'access',
    ROGATORY_S3_SECRET_KEY: 'secret-key-0123',
  };
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [
      k,
      v.replace(/\$\{([A-Z0-9_]+)\}/g, (_m, name: string) => {
        const value = dotenv[name];
        if (value === undefined)
          throw new Error(`${k} uses \${${name}}, which the .env does not define`);
        return value;
      }),
    ]),
  );
}

describe('infra/compose.production.yaml', () => {
  it('every service has a pinned image, a restart policy, a healthcheck and resource limits', async () => {
    const { services } = await compose();
    expect(Object.keys(services).sort()).toEqual(
      [
        'minio',
        'proxy',
        'redis-primary',
        'redis-replica-1',
        'redis-replica-2',
        'relay-a',
        'relay-b',
        'sentinel-1',
        'sentinel-2',
        'sentinel-3',
      ].sort(),
    );
    for (const [name, s] of Object.entries(services)) {
      expect(s.image, name).toMatch(/^[a-z0-9/._-]+:[a-z0-9._-]+$/);
      expect(s.restart, name).toBe('unless-stopped');
      expect(s.healthcheck?.test.length, `${name} healthcheck`).toBeGreaterThan(1);
      expect(s.deploy?.resources?.limits?.memory, `${name} memory limit`).toMatch(/^\d+[mg]$/);
    }
  });

  it('Redis keeps every write (AOF, fsync always, no eviction) and the replicas follow the primary', async () => {
    const { services } = await compose();
    for (const name of ['redis-primary', 'redis-replica-1', 'redis-replica-2']) {
      const cmd = services[name]!.command!.join(' ');
      expect(cmd, name).toContain('--appendonly yes');
      expect(cmd, name).toContain('--appendfsync always');
      expect(cmd, name).toContain('--maxmemory-policy noeviction');
      if (name !== 'redis-primary') expect(cmd).toContain('--replicaof redis-primary 6379');
    }
  });

  it("the relays' environment loads as a valid relay configuration, through Sentinel with one replica acknowledging", async () => {
    const { services, volumes } = await compose();
    const sentinelConf = await readFile(`${INFRA}production/sentinel.conf`, 'utf8');
    const monitor = /^sentinel monitor (\S+) (\S+) (\d+) (\d+)$/m.exec(sentinelConf);
    expect(monitor?.[2]).toBe('redis-primary');
    const sentinelPort = Number(/^port (\d+)$/m.exec(sentinelConf)?.[1]);
    const trustVolumes = new Set<string>();
    for (const name of ['relay-a', 'relay-b']) {
      const relay = services[name]!;
      const env = substituted(relay.environment ?? {});
      const config = await loadRelayConfig(`${INFRA}relay/relay.example.yaml`, env);
      expect(config.backend.kind).toBe('redis');
      const redis = config.backend.redis!;
      expect(redis.url).toBeUndefined();
      expect(redis.replicasToAck).toBe(1);
      expect(redis.sentinel?.name).toBe(monitor?.[1]);
      for (const s of redis.sentinel!.sentinels) {
        expect(services[s.host], s.host).toBeDefined();
        expect(s.port).toBe(sentinelPort);
      }
      expect(config.backend.s3?.endPoint).toBe('minio');
      expect(services[config.backend.s3!.endPoint]).toBeDefined();
      // The healthcheck asks /readyz on the port the relay listens on.
      expect(relay.healthcheck!.test.join(' ')).toContain(`:${String(config.relay.port)}/readyz`);
      // The trust state is per instance: a named volume of its own at trust.dir.
      const trust = relay.volumes!.find((v) => v.endsWith(`:${config.trust.dir ?? ''}`));
      expect(trust, `${name} mounts a volume at trust.dir`).toBeDefined();
      const volume = trust!.split(':')[0]!;
      expect(volumes).toHaveProperty(volume);
      trustVolumes.add(volume);
      // Secrets come from the environment, never from the image or the config file.
      expect(relay.environment!['ROGATORY_RELAY_PASSPHRASE']).toBe('${ROGATORY_RELAY_PASSPHRASE}');
    }
    expect(trustVolumes.size).toBe(2);
  });

  it('TLS terminates at the proxy with mounted certificate files, in front of both relays', async () => {
    const { services } = await compose();
    const proxy = services['proxy']!;
    expect(proxy.ports).toEqual(['443:443']);
    expect(proxy.volumes!.some((v) => v.endsWith(':/etc/rogatory/tls:ro'))).toBe(true);
    const caddy = await readFile(`${INFRA}production/Caddyfile`, 'utf8');
    expect(caddy).toMatch(/tls \/etc\/rogatory\/tls\/relay\.crt \/etc\/rogatory\/tls\/relay\.key/);
    expect(caddy).toContain('reverse_proxy relay-a:7443 relay-b:7443');
    expect(caddy).toContain('health_uri /readyz');
    // Only the proxy publishes a port.
    for (const [name, s] of Object.entries(services))
      if (name !== 'proxy') expect(s.ports, name).toBeUndefined();
  });
});
