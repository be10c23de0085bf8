import type { FastifyInstance } from 'fastify';
import { buildNodeApi, type NodeApiOptions } from './app.js';

export interface ServeOptions extends NodeApiOptions {
  readonly port: number;
  /** Default 127.0.0.1: put a TLS-terminating proxy in front before exposing it. */
  readonly host?: string;
  /** Run the node's live sync alongside (default true). */
  readonly sync?: boolean;
}

export interface RunningApi {
  readonly app: FastifyInstance;
  readonly url: string;
  /** Stop accepting requests, finish those in flight, then stop sync. Does not close the node. */
  close(): Promise<void>;
}

/** Listen with the API and, unless `sync: false`, run the node's live sync. */
export async function serveNodeApi(options: ServeOptions): Promise<RunningApi> {
  const app = await buildNodeApi(options);
  const { node } = options;
  const url = await app.listen({ port: options.port, host: options.host ?? '127.0.0.1' });
  if (options.sync !== false) {
    node.startSync((event) => {
      // Sync events carry ids and codes only.
      if (event.type === 'error') app.log.warn({ sync: event }, 'sync error');
      else app.log.info({ sync: event }, 'sync');
    });
  }
  let closing: Promise<void> | undefined;
  return {
    app,
    url,
    close() {
      closing ??= (async () => {
        await app.close();
        if (options.sync !== false) await node.stopSync();
      })();
      return closing;
    },
  };
}
