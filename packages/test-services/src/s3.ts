import { mkdtemp, rm } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { onProcessExit } from './cleanup.js';

/** One request the server received, for tests that check what a client sent. */
export interface S3Request {
  readonly method: string;
  /** Path and query string, as sent. */
  readonly url: string;
}

export interface S3Server {
  readonly endPoint: string;
  readonly port: number;
  readonly useSSL: false;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly region: string;
  /** Where s3rver keeps buckets and objects; removed by stop(). */
  readonly dir: string;
  /** Requests received so far, oldest first (a copy). */
  requests(): S3Request[];
  /** Closes the server and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

/**
 * Starts s3rver in this process on a free loopback port (the OS picks it, so
 * there is no port race) with a temp directory. Quirks to know: s3rver's one
 * account is S3RVER/S3RVER, and it checks only the access key id of a SigV4
 * request, not its signature (a wrong secret key goes unnoticed; unsigned
 * requests are accepted); it cannot list multipart uploads, which minio's
 * client does before any multipart upload, so only single PUTs work.
 */
export async function startS3(): Promise<S3Server> {
  const dir = await mkdtemp(join(tmpdir(), 'rogatory-s3-'));
  const unregister = onProcessExit(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const s3rver = new S3rver({ directory: dir, silent: true });
  // Our own HTTP server around s3rver's handler: it lets us log requests and
  // drop keep-alive connections at stop, which s3rver.close() leaves open.
  const handler = s3rver.callback();
  const log: S3Request[] = [];
  const server = createServer((req, res) => {
    log.push({ method: req.method ?? '', url: req.url ?? '' });
    handler(req, res);
  });
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: HOST, port: 0 }, () => {
        const address = server.address();
        if (address === null || typeof address === 'string')
          reject(new Error('startS3: no TCP address'));
        else resolve(address.port);
      });
    });
  } catch (err) {
    server.close();
    unregister();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  // A forgotten server must not keep the test process alive.
  server.unref();

  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    const closed = new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
    server.closeAllConnections();
    await closed;
    unregister();
    await rm(dir, { recursive: true, force: true });
  };
  return {
    endPoint: HOST,
    port,
    useSSL: false,
    accessKey: 'S3RVER',
    secretKey: 'S3RVER',
    region: 'us-east-1',
    dir,
    requests: () => [...log],
    stop: () => (stopping ??= stop()),
  };
}
