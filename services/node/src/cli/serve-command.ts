import type { Command } from 'commander';
import { checkedProxies } from '../api/app.js';
import { DEFAULT_API_LIMITS } from '../api/limits.js';
import { METRICS_TOKEN_MIN_LENGTH } from '../api/metrics-routes.js';
import { serveNodeApi } from '../api/server.js';
import { nodeFail } from '../errors.js';
import type { CliIO } from './io.js';
import { globals, withNode, type CliRun } from './session.js';

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    nodeFail('INPUT_INVALID', '--port must be 0..65535');
  return n;
}

/** `rogatory serve`: the REST API and the node's live sync until SIGINT/SIGTERM. */
export function registerServe(
  program: Command,
  run: CliRun,
  options: { untilSignal?: (io: CliIO) => Promise<void> } = {},
): void {
  const { io } = run;
  program
    .command('serve')
    .description('run the REST API (for the web UI) and live sync until SIGINT/SIGTERM')
    .requiredOption('--port <port>', 'TCP port (0 picks a free one)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option(
      '--file-root <dir>',
      'restrict attachment paths and export directories to this directory',
    )
    .option(
      '--trusted-proxy <addresses>',
      'reverse proxy addresses or CIDR ranges (comma-separated, repeatable) whose X-Forwarded-For is believed',
      (value: string, previous: string[]) => [
        ...previous,
        ...value.split(',').filter((v) => v.trim() !== ''),
      ],
      [] as string[],
    )
    .option('--no-sync', 'serve the API without live sync')
    .option('--session-minutes <n>', 'session lifetime in minutes', '480')
    .option(
      '--max-connections-per-address <n>',
      'concurrent connections from one client address (behind a proxy: the proxy); 0 for no limit',
      String(DEFAULT_API_LIMITS.maxConnectionsPerAddress),
    )
    .action(
      async (
        opts: {
          port: string;
          host: string;
          fileRoot?: string;
          trustedProxy: string[];
          sync: boolean;
          sessionMinutes: string;
          maxConnectionsPerAddress: string;
        },
        cmd: Command,
      ) => {
        const g = globals(cmd, io);
        const minutes = Number(opts.sessionMinutes);
        if (!Number.isFinite(minutes) || minutes <= 0)
          nodeFail('INPUT_INVALID', '--session-minutes must be a positive number');
        const trustedProxies = checkedProxies(opts.trustedProxy);
        const maxConnectionsPerAddress = Number(opts.maxConnectionsPerAddress);
        if (!Number.isInteger(maxConnectionsPerAddress) || maxConnectionsPerAddress < 0)
          nodeFail(
            'INPUT_INVALID',
            '--max-connections-per-address must be a whole number, 0 or more',
          );
        // A secret: from the environment, never a flag (flags show in the process list).
        const metricsToken = io.env['ROGATORY_NODE_METRICS_TOKEN'] || undefined;
        if (metricsToken !== undefined && metricsToken.length < METRICS_TOKEN_MIN_LENGTH)
          nodeFail(
            'INPUT_INVALID',
            `ROGATORY_NODE_METRICS_TOKEN must have at least ${METRICS_TOKEN_MIN_LENGTH} characters`,
          );
        await withNode(io, g, async (node) => {
          const api = await serveNodeApi({
            node,
            port: port(opts.port),
            host: opts.host,
            sync: opts.sync,
            sessionTtlMs: minutes * 60_000,
            trustedProxies,
            limits: { maxConnectionsPerAddress },
            logger: { level: 'info', stream: { write: (line: string) => io.err(line) } },
            ...(opts.fileRoot === undefined ? {} : { fileRoot: opts.fileRoot }),
            ...(metricsToken === undefined ? {} : { metricsToken }),
          });
          io.out(g.json ? `${JSON.stringify({ url: api.url })}\n` : `serving ${api.url}\n`);
          // Housekeeping: a garbage pass at start and once a day (two passes a grace apart delete).
          const housekeeping = (): void => {
            node.collectGarbage(null).catch(() => {
              io.err('rogatory: a housekeeping pass failed; it runs again in a day\n');
            });
          };
          housekeeping();
          const daily = setInterval(housekeeping, 24 * 3600 * 1000);
          daily.unref();
          try {
            await (options.untilSignal ?? waitForSignal)(io);
          } finally {
            clearInterval(daily);
            await api.close();
          }
        });
      },
    );
}
