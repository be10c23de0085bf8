import { stat } from 'node:fs/promises';
import { Client } from 'minio';
import { describe, expect, it } from 'vitest';
import { startS3 } from '../src/index.js';
import { refusesConnections } from './resp.js';

async function readAll(stream: AsyncIterable<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts).toString('utf8');
}

describe('startS3', () => {
  it('serves S3 on loopback with the S3RVER credentials, logs requests, and stops', async () => {
    const s3 = await startS3();
    try {
      expect(s3.endPoint).toBe('127.0.0.1');
      const client = new Client({
        endPoint: s3.endPoint,
        port: s3.port,
        useSSL: s3.useSSL,
        accessKey: s3.accessKey,
        secretKey: s3.secretKey,
        region: s3.region,
      });
      await client.makeBucket('test-bucket', s3.region);
      await client.putObject('test-bucket', 'a/b', Buffer.from('hello'));
      expect(await readAll(await client.getObject('test-bucket', 'a/b'))).toBe('hello');
      expect((await stat(s3.dir)).isDirectory()).toBe(true);
      expect(s3.requests()).toContainEqual({ method: 'PUT', url: '/test-bucket/a/b' });
      expect(s3.requests()).toContainEqual({ method: 'GET', url: '/test-bucket/a/b' });

      // s3rver checks the access key id only: it does not verify SigV4 signatures.
      const stranger = new Client({
        endPoint: s3.endPoint,
        port: s3.port,
        useSSL: false,
        accessKey: 'SOMEONE',
        secretKey: 'ELSE',
        region: s3.region,
      });
      await expect(stranger.putObject('test-bucket', 'c', Buffer.from('x'))).rejects.toMatchObject({
        code: 'InvalidAccessKeyId',
      });
    } finally {
      await s3.stop();
      await s3.stop();
    }
    expect(await refusesConnections(s3.port)).toBe(true);
    await expect(stat(s3.dir)).rejects.toThrow();
  });

  it('gives each server its own port and directory', async () => {
    const [a, b] = await Promise.all([startS3(), startS3()]);
    expect(a.port).not.toBe(b.port);
    expect(a.dir).not.toBe(b.dir);
    await Promise.all([a.stop(), b.stop()]);
  });
});
