import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisNotInstalledError, startRedis, type RedisServer } from '../src/index.js';
import { eventually, redisCommand, refusesConnections } from './resp.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/hold-redis.ts', import.meta.url));

/** Runs the fixture in a child Node process and returns it with the server it started. */
async function childWithRedis(
  mode: 'hang' | 'exit',
): Promise<{ child: ReturnType<typeof spawn>; port: number; dir: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, mode], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (data: Buffer) => {
      out += data.toString('utf8');
      const newline = out.indexOf('\n');
      if (newline >= 0) resolve(out.slice(0, newline));
    });
    child.once('exit', (code) => {
      reject(new Error(`fixture exited with ${String(code)} before printing`));
    });
  });
  const { port, dir } = JSON.parse(line) as { port: number; dir: string };
  return { child, port, dir };
}

describe('startRedis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('serves on loopback with AOF on and snapshots off', async () => {
    expect(redis.host).toBe('127.0.0.1');
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await redisCommand(redis.port, 'PING')).toBe('PONG');
    expect(await redisCommand(redis.port, 'SET', 'test-key', 'value')).toBe('OK');
    expect(await redisCommand(redis.port, 'GET', 'test-key')).toBe('value');
    expect(await redisCommand(redis.port, 'CONFIG', 'GET', 'appendonly')).toEqual([
      'appendonly',
      'yes',
    ]);
    expect(await redisCommand(redis.port, 'CONFIG', 'GET', 'save')).toEqual(['save', '']);
    expect(await redisCommand(redis.port, 'CONFIG', 'GET', 'bind')).toEqual(['bind', '127.0.0.1']);
    expect(await redisCommand(redis.port, 'CONFIG', 'GET', 'dir')).toEqual(['dir', redis.dir]);
  });

  it('starts independent servers side by side', async () => {
    const other = await startRedis();
    try {
      expect(other.port).not.toBe(redis.port);
      await redisCommand(other.port, 'SET', 'only-here', '1');
      expect(await redisCommand(redis.port, 'GET', 'only-here')).toBeNull();
    } finally {
      await other.stop();
    }
  });

  it('stop() shuts the server down and removes its directory; twice is fine', async () => {
    const server = await startRedis();
    expect(await refusesConnections(server.port)).toBe(false);
    await server.stop();
    await server.stop();
    expect(await refusesConnections(server.port)).toBe(true);
    await expect(stat(server.dir)).rejects.toThrow();
  });

  it('says how to install redis-server when it is missing', async () => {
    const err: unknown = await startRedis({ binary: '/nonexistent/redis-server' }).catch(
      (caught: unknown) => caught,
    );
    expect(err).toBeInstanceOf(RedisNotInstalledError);
    expect((err as Error).message).toContain('apt-get install redis-server');
  });

  it('reports a server that will not start, with its output', async () => {
    await expect(startRedis({ args: ['--no-such-option', 'x'] })).rejects.toThrow(
      /did not become ready[\s\S]*no-such-option/i,
    );
  });

  it('the server dies, and its directory goes, with a process that is SIGKILLed', async () => {
    const { child, port, dir } = await childWithRedis('hang');
    expect(await redisCommand(port, 'PING')).toBe('PONG');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(await eventually(() => refusesConnections(port))).toBe(true);
    expect(
      await eventually(() =>
        stat(dir).then(
          () => false,
          () => true,
        ),
      ),
    ).toBe(true);
  });

  it('the server dies, and its directory goes, with a process that exits without stop()', async () => {
    const { child, port, dir } = await childWithRedis('exit');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(await eventually(() => refusesConnections(port))).toBe(true);
    await expect(stat(dir)).rejects.toThrow();
  });
});
