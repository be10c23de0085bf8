import type { FastifyInstance } from 'fastify';

/** /healthz (process up), /readyz (backend and storage reachable, not draining), /metrics (Prometheus). */
export function opsRoutes(app: FastifyInstance): void {
  app.get('/healthz', () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const { relay } = app;
    const checks: Record<string, string> = {};
    try {
      await relay.backend.ping();
      checks['backend'] = 'ok';
    } catch {
      checks['backend'] = 'unavailable';
    }
    try {
      await relay.blobs.has('0'.repeat(64));
      checks['storage'] = 'ok';
    } catch {
      checks['storage'] = 'unavailable';
    }
    checks['draining'] = relay.draining ? 'yes' : 'no';
    const ready = checks['backend'] === 'ok' && checks['storage'] === 'ok' && !relay.draining;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not-ready', checks });
  });

  app.get('/metrics', async (_request, reply) => {
    const { registry } = app.relay.metrics;
    return reply.header('content-type', registry.contentType).send(await registry.metrics());
  });

  /** The manifests this relay holds, so nodes can refresh their trust store. */
  app.get('/v1/manifests', () => {
    const { trust } = app.relay;
    return { manifests: trust.networks().map((n) => trust.manifest(n)) };
  });
}
