import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildNodeApi } from '../src/index.js';
import { checkedProxies } from '../src/api/app.js';
import { LoginLimiter } from '../src/api/sessions.js';
import { runCli } from '../src/cli/program.js';
import { PASSWORD, makeNode, offlineWorld, tempDir, type NodeFixture } from './support/fixtures.js';

const V1 = '/api/v1';
const WRONG = 'not the password';
const OUTSIDER = '203.0.113.9';
const COLLEAGUE = '198.51.100.7';
const PROXY = '127.0.0.1';

const LIMITS = {
  perUserAndAddress: 2,
  perAddress: 4,
  baseDelayMs: 1000,
  maxDelayMs: 8000,
  maxAddressDelayMs: 8000,
  forgetMs: 3_600_000,
};

function codeOf(res: LightMyRequestResponse): string {
  return res.json<{ error: { code: string } }>().error.code;
}

describe('login throttle: delays that double up to a cap, per username and address, then per address', () => {
  it('waits grow 1, 2, 4, 8 s and stay at the cap; a success clears only its own counter', () => {
    let now = 0;
    const limiter = new LoginLimiter(LIMITS, () => now);
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      // Each try comes as soon as the last wait is over.
      now += (waits.at(-1) ?? 0) * 1000;
      limiter.failed('target', OUTSIDER);
      waits.push(limiter.blockedFor('target', OUTSIDER));
    }
    expect(waits).toEqual([0, 1, 2, 4, 8, 8]);
    // Another address is not held back by the outsider's failures.
    expect(limiter.blockedFor('target', COLLEAGUE)).toBe(0);
    // The outsider's address is throttled for other usernames too, past its own allowance.
    expect(limiter.blockedFor('someone-else', OUTSIDER)).toBeGreaterThan(0);
    limiter.succeeded('target', OUTSIDER);
    expect(limiter.blockedFor('target', OUTSIDER)).toBe(
      limiter.blockedFor('someone-else', OUTSIDER),
    );
    // Counters are forgotten an hour after their last failure.
    now += LIMITS.forgetMs;
    expect(limiter.blockedFor('someone-else', OUTSIDER)).toBe(0);
    expect(limiter.delayAfter(1000, 2)).toBe(LIMITS.maxDelayMs);
  });

  it('the per-address wait has its own short cap: an outsider behind a shared address cannot hold off everyone there for long', () => {
    let now = 0;
    const limiter = new LoginLimiter(
      { ...LIMITS, maxDelayMs: 900_000, maxAddressDelayMs: 2000 },
      () => now,
    );
    // The outsider sprays one password over many usernames, a failure as soon as each wait ends.
    for (let i = 0; i < 50; i++) {
      now += limiter.blockedFor(`user-${i}`, OUTSIDER) * 1000;
      limiter.failed(`user-${i}`, OUTSIDER);
    }
    // A colleague behind the same address waits at most the address cap, never the user cap.
    expect(limiter.blockedFor('colleague', OUTSIDER)).toBeLessThanOrEqual(2);
    expect(limiter.blockedFor('colleague', OUTSIDER)).toBeGreaterThan(0);
    // One username guessed from that address still climbs to its own, long cap.
    for (let i = 0; i < 20; i++) {
      now += limiter.blockedFor('target', OUTSIDER) * 1000;
      limiter.failed('target', OUTSIDER);
    }
    expect(limiter.blockedFor('target', OUTSIDER)).toBe(900);
  });

  it('trusted proxies are IP addresses or CIDR ranges', () => {
    expect(checkedProxies(['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8'])).toEqual([
      '127.0.0.1',
      '10.0.0.0/8',
      '::1',
      'fd00::/8',
    ]);
    for (const bad of ['proxy.example', '10.0.0.0/33', '10.0.0.0/8/1', '1.2.3.4/', 'fd00::/129'])
      expect(() => checkedProxies([bad]), bad).toThrow(/INPUT_INVALID/);
  });

  it('`rogatory serve --trusted-proxy` refuses a value that is not an address or range', async () => {
    let out = '';
    const code = await runCli(
      [
        '--dir',
        '/nonexistent',
        '--json',
        'serve',
        '--port',
        '0',
        '--trusted-proxy',
        'proxy.example',
      ],
      { out: (t) => (out += t), err: () => undefined, env: {}, isTTY: false },
    );
    expect(code).toBe(1);
    expect(JSON.parse(out)).toMatchObject({ error: { code: 'INPUT_INVALID' } });
  });
});

describe('REST API login throttle (app.inject from chosen peer addresses)', () => {
  let tmp: { path: string; remove: () => Promise<void> };
  let n: NodeFixture;
  let direct: FastifyInstance;
  let proxied: FastifyInstance;
  let now = Date.now();

  const login = (
    app: FastifyInstance,
    peer: string,
    username: string,
    password: string,
    forwardedFor?: string,
  ) =>
    app.inject({
      method: 'POST',
      url: `${V1}/login`,
      remoteAddress: peer,
      payload: { username, password },
      ...(forwardedFor === undefined ? {} : { headers: { 'x-forwarded-for': forwardedFor } }),
    });

  beforeAll(async () => {
    tmp = await tempDir();
    n = await makeNode({
      world: await offlineWorld(),
      address: 'sn-moj@wacap',
      dir: join(tmp.path, 'sn'),
    });
    n.user('target', 'officer');
    n.user('other', 'officer');
    direct = await buildNodeApi({ node: n.node, clock: () => now, loginLimits: LIMITS });
    proxied = await buildNodeApi({
      node: n.node,
      clock: () => now,
      loginLimits: LIMITS,
      trustedProxies: [PROXY, '10.0.0.0/8'],
    });
  });

  afterAll(async () => {
    await direct.close();
    await proxied.close();
    await n.node.close();
    await tmp.remove();
  });

  it('an outsider failing again and again cannot stop the user logging in from another address; Retry-After grows to the cap', async () => {
    const retryAfter: number[] = [];
    let failures = 0;
    while (failures < 6) {
      const res = await login(direct, OUTSIDER, 'target', WRONG);
      if (res.statusCode === 429) {
        expect(codeOf(res)).toBe('RATE_LIMITED');
        const wait = Number(res.headers['retry-after']);
        retryAfter.push(wait);
        now += wait * 1000;
        continue;
      }
      expect(res.statusCode).toBe(401);
      failures++;
    }
    expect(retryAfter).toEqual([1, 2, 4, 8]);
    // From the outsider's address even the right password waits now…
    const held = await login(direct, OUTSIDER, 'target', PASSWORD);
    expect(held.statusCode).toBe(429);
    expect(Number(held.headers['retry-after'])).toBe(8);
    // …but the user, from their own address, logs in at once.
    expect((await login(direct, COLLEAGUE, 'target', PASSWORD)).statusCode).toBe(200);
  });

  it('an admin resets the throttle; officers may not', async () => {
    const admin = await login(direct, COLLEAGUE, 'admin', PASSWORD);
    const officer = await login(direct, COLLEAGUE, 'other', PASSWORD);
    const reset = (token: string) =>
      direct.inject({
        method: 'POST',
        url: `${V1}/login-throttle/reset`,
        headers: { authorization: `Bearer ${token}` },
      });
    const refused = await reset(officer.json<{ token: string }>().token);
    expect(refused.statusCode).toBe(403);
    expect(codeOf(refused)).toBe('NOT_AUTHORISED');
    expect((await login(direct, OUTSIDER, 'target', PASSWORD)).statusCode).toBe(429);
    const done = await reset(admin.json<{ token: string }>().token);
    expect(done.statusCode).toBe(200);
    expect(done.json<{ cleared: number }>().cleared).toBeGreaterThan(0);
    expect((await login(direct, OUTSIDER, 'target', PASSWORD)).statusCode).toBe(200);
  });

  it('X-Forwarded-For from an untrusted peer is ignored: a new forged address each time does not escape the throttle', async () => {
    const peer = '192.0.2.50';
    for (let i = 0; i < LIMITS.perAddress; i++)
      expect(
        (await login(proxied, peer, `nobody-${i}`, WRONG, `192.0.2.${100 + i}`)).statusCode,
      ).toBe(401);
    const res = await login(proxied, peer, 'other', PASSWORD, '192.0.2.200');
    expect(res.statusCode).toBe(429);
    expect(codeOf(res)).toBe('RATE_LIMITED');
  });

  it('behind a trusted proxy the forwarded client address is used: a guesser does not hold back a colleague behind the same proxy', async () => {
    const guesser = '203.0.113.77';
    const colleague = '198.51.100.99';
    for (let i = 0; i < LIMITS.perUserAndAddress; i++)
      expect((await login(proxied, PROXY, 'target', WRONG, guesser)).statusCode).toBe(401);
    expect((await login(proxied, PROXY, 'target', PASSWORD, guesser)).statusCode).toBe(429);
    // Prepending a forged address is no way out: the proxy appends the real one, which counts.
    expect(
      (await login(proxied, PROXY, 'target', PASSWORD, `${colleague}, ${guesser}`)).statusCode,
    ).toBe(429);
    // The same proxy, a different client: in at once. Through a chain of trusted proxies too.
    expect((await login(proxied, PROXY, 'target', PASSWORD, colleague)).statusCode).toBe(200);
    expect(
      (await login(proxied, PROXY, 'target', PASSWORD, `${colleague}, 10.1.2.3`)).statusCode,
    ).toBe(200);
  });
});
