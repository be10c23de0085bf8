/**
 * The route fuzzer of the security tests: it reads a Fastify route table
 * (`printRoutes`), so a route added later is fuzzed without a change here,
 * and sends seeded, hostile requests over real sockets with bounded
 * concurrency, recording what each route answered.
 */
import { createHash } from 'node:crypto';
import { Agent, request } from 'node:http';

/** A deterministic generator (mulberry32 seeded from a string): a failure is replayed from its seed. */
export class Rng {
  private state: number;
  constructor(seed: string) {
    this.state = createHash('sha256').update(seed).digest().readUInt32LE(0);
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

export interface Route {
  readonly method: string;
  readonly url: string;
}

/** The routes of a Fastify app as `printRoutes({ commonPrefix: false })` draws them. */
export function parseRoutes(tree: string): Route[] {
  const routes: Route[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    const url = `${stack.at(-1) ?? ''}${m[2]!}`;
    stack.push(url);
    for (const method of (m[3] ?? '').split(', ').filter((x) => x !== ''))
      if (method !== 'HEAD') routes.push({ method, url });
  }
  return routes;
}

export interface FuzzContext {
  /** Bearer tokens of valid sessions: requests with them reach past authentication. */
  readonly tokens: readonly string[];
  /** Keys JSON bodies are made of (field names of the API's schemas). */
  readonly keys: readonly string[];
  /** Plausible values: addresses, ids, enum members. */
  readonly words: readonly string[];
  /** Routes never sent a valid token (logout would end the sessions the fuzz relies on). */
  readonly noValidToken?: (route: Route) => boolean;
}

export interface FuzzRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Buffer;
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];
const SEGMENTS = [
  '',
  '..',
  '%2e%2e',
  '%00',
  '%',
  '%ZZ',
  '%C0%AF',
  '%E0%A4%A',
  'a'.repeat(3000),
  '0',
  '-1',
  '1e9',
  'null',
  '__proto__',
  'constructor',
  'é',
  '😀',
  '%F0%9F%98%80',
  '{}',
  '[]',
];

function randomString(rng: Rng, ctx: FuzzContext): string {
  switch (rng.int(8)) {
    case 0:
      return rng.pick(ctx.words);
    case 1:
      return rng.bytes(rng.int(40)).toString('hex');
    case 2:
      return rng.bytes(rng.int(40)).toString('base64url');
    case 3:
      return 'x'.repeat(rng.pick([0, 1, 255, 256, 1025, 20_000]));
    case 4:
      return rng.bytes(rng.int(24)).toString('latin1');
    case 5:
      return rng.pick(SEGMENTS);
    case 6:
      return `${rng.pick(ctx.words)}${rng.pick(['', ' ', '\u0000', '\n', '@', '/', '..'])}`;
    default:
      return rng.pick(ctx.keys);
  }
}

function randomValue(rng: Rng, ctx: FuzzContext, depth: number): unknown {
  const k = rng.int(depth > 3 ? 6 : 9);
  switch (k) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1, 1.5, 2 ** 53, -(2 ** 63), 1e308, 10_000, 4_294_967_296]);
    case 3:
    case 4:
    case 5:
      return randomString(rng, ctx);
    case 6:
      return Array.from({ length: rng.int(5) }, () => randomValue(rng, ctx, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(6); i > 0; i--) o[rng.pick(ctx.keys)] = randomValue(rng, ctx, depth + 1);
      return o;
    }
  }
}

function randomBody(rng: Rng, ctx: FuzzContext): Buffer | undefined {
  switch (rng.int(10)) {
    case 0:
      return undefined;
    case 1:
      return rng.bytes(rng.int(2048));
    case 2:
      // Deep nesting: a parser's stack, not a schema, meets it first.
      return Buffer.from(`${'['.repeat(5000)}${']'.repeat(rng.chance(0.5) ? 5000 : 10)}`);
    case 3: {
      const text = JSON.stringify(randomValue(rng, ctx, 0));
      return Buffer.from(text.slice(0, rng.int(text.length + 1))); // truncated
    }
    case 4:
      return Buffer.from('{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}');
    default: {
      const o: Record<string, unknown> = {};
      for (let i = 1 + rng.int(6); i > 0; i--) o[rng.pick(ctx.keys)] = randomValue(rng, ctx, 1);
      return Buffer.from(JSON.stringify(o));
    }
  }
}

/** One hostile request for `route`: its method mostly, parameters, query, headers and body fuzzed. */
export function fuzzRequest(route: Route, rng: Rng, ctx: FuzzContext): FuzzRequest {
  const method = rng.chance(0.85) ? route.method : rng.pick(METHODS);
  let path = route.url.replace(/:[A-Za-z]+/g, () =>
    rng.chance(0.3) ? encodeURIComponent(rng.pick(ctx.words)) : rng.pick(SEGMENTS) || 'x',
  );
  if (rng.chance(0.1)) path += rng.pick(['/', '//', '/x', '?', '/..', '%20']);
  // On the wire a path is printable ASCII: the rest goes percent-encoded (bad escapes stay as they are).
  path = path.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
  if (rng.chance(0.4)) {
    const pairs = Array.from(
      { length: 1 + rng.int(4) },
      () =>
        `${encodeURIComponent(rng.pick(ctx.keys))}=${encodeURIComponent(randomString(rng, ctx))}`,
    );
    path += `${path.includes('?') ? '&' : '?'}${pairs.join('&')}`;
  }
  const headers: Record<string, string> = {};
  const auth = rng.int(10);
  if (auth < 5 && !(ctx.noValidToken?.(route) ?? false) && ctx.tokens.length > 0)
    headers['authorization'] = `Bearer ${rng.pick(ctx.tokens)}`;
  else if (auth < 7)
    headers['authorization'] = rng.pick([
      'Bearer ',
      `Bearer ${rng.bytes(32).toString('base64url')}`,
      `Basic ${Buffer.from('admin:admin').toString('base64')}`,
      'Bearer x'.repeat(200),
    ]);
  const body = method === 'GET' || method === 'HEAD' ? undefined : randomBody(rng, ctx);
  if (body !== undefined || rng.chance(0.2))
    headers['content-type'] = rng.pick([
      'application/json',
      'application/json',
      'application/json',
      'application/octet-stream',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset=latin1',
      'garbage',
    ]);
  if (rng.chance(0.05)) headers['content-encoding'] = rng.pick(['gzip', 'br', 'deflate', 'x']);
  if (rng.chance(0.05)) headers['x-forwarded-for'] = randomString(rng, ctx).replace(/\W/g, '');
  return { method, path, headers, ...(body === undefined ? {} : { body }) };
}

export interface Outcome {
  readonly status: number;
  readonly code: string | undefined;
  /** The body is the API's error shape `{ error: { code } }` (refusals only). */
  readonly shaped: boolean;
}

/** Send one request; a connection the server cut is status 0. */
export function send(
  agent: Agent,
  base: URL,
  r: FuzzRequest,
  timeoutMs = 20_000,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method: r.method,
        path: r.path,
        headers: {
          ...r.headers,
          ...(r.body === undefined ? {} : { 'content-length': String(r.body.length) }),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', () => {
          resolve({ status: 0, code: undefined, shaped: false });
        });
        res.on('end', () => {
          let code: string | undefined;
          try {
            const v = JSON.parse(Buffer.concat(parts).toString('utf8')) as {
              error?: { code?: unknown };
            };
            code = typeof v.error?.code === 'string' ? v.error.code : undefined;
          } catch {
            code = undefined;
          }
          resolve({ status: res.statusCode ?? 0, code, shaped: code !== undefined });
        });
      },
    );
    req.on('timeout', () => {
      req.destroy();
      reject(new Error(`no answer within ${String(timeoutMs)} ms: ${r.method} ${r.path}`));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.message === 'socket hang up')
        resolve({ status: 0, code: undefined, shaped: false });
      // Node's HTTP server answers an oversized request line or header block itself, with a
      // canned reply and a closed socket, which the client's parser may not take as an answer
      // (HEAD): the server cut the connection, as it may with an abusive request.
      else if (err.code?.startsWith('HPE_') === true)
        resolve({ status: 0, code: undefined, shaped: false });
      else reject(err);
    });
    req.end(r.body);
  });
}

export interface FuzzReport {
  readonly total: number;
  /** Requests per route (`METHOD url`), every route of the table among them. */
  readonly perRoute: Map<string, number>;
  readonly statuses: Map<number, number>;
  readonly codes: Map<string, number>;
  /** Answers that break the rules: a 5xx other than a typed UNAVAILABLE, a refusal without a code. */
  readonly violations: string[];
}

/** `count` fuzzed requests spread over `routes` (each at least once), at most `concurrency` at once. */
export async function fuzzRoutes(options: {
  readonly base: string;
  readonly routes: readonly Route[];
  readonly count: number;
  readonly concurrency: number;
  readonly seed: string;
  readonly context: FuzzContext;
  readonly keepAlive?: boolean;
}): Promise<FuzzReport> {
  const base = new URL(options.base);
  const agent = new Agent({
    keepAlive: options.keepAlive ?? true,
    maxSockets: options.concurrency,
  });
  const rng = new Rng(options.seed);
  const requests = Array.from({ length: options.count }, (_, i) => {
    const route = options.routes[i % options.routes.length]!;
    return { route, request: fuzzRequest(route, rng, options.context) };
  });
  const report: FuzzReport = {
    total: 0,
    perRoute: new Map(),
    statuses: new Map(),
    codes: new Map(),
    violations: [],
  };
  const bump = <K>(m: Map<K, number>, k: K): void => {
    m.set(k, (m.get(k) ?? 0) + 1);
  };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < requests.length) {
      const { route, request: r } = requests[next++]!;
      const o = await send(agent, base, r);
      (report as { total: number }).total++;
      bump(report.perRoute, `${route.method} ${route.url}`);
      bump(report.statuses, o.status);
      if (o.code !== undefined) bump(report.codes, o.code);
      const label = `${r.method} ${r.path.slice(0, 120)}`;
      if (o.status >= 500 && !(o.status === 503 && o.code === 'UNAVAILABLE'))
        report.violations.push(`${label}: ${String(o.status)} ${o.code ?? '(no code)'}`);
      else if (o.status >= 400 && r.method !== 'HEAD' && !o.shaped)
        report.violations.push(`${label}: ${String(o.status)} without an error code`);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return report;
}

/** Resident memory of a process in bytes (Linux /proc), or undefined elsewhere. */
export async function rssOf(pid: number): Promise<number | undefined> {
  const { readFile } = await import('node:fs/promises');
  try {
    const status = await readFile(`/proc/${String(pid)}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
