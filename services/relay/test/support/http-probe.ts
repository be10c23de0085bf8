import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

export interface ProbeResponse {
  readonly status: number;
  /** Lowercase header names. */
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** What came back: an answer, nothing within the time limit, or a connection that failed without one. */
export type ProbeOutcome =
  | { readonly kind: 'response'; readonly response: ProbeResponse }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'failed'; readonly error: string };

export interface ProbeRequest {
  readonly method: string;
  /** The request target as sent: path and query, already encoded as the test wants it. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string | number | readonly string[]>>;
  readonly body?: Uint8Array | string;
  /** Send the body with chunked transfer encoding (no content-length). */
  readonly chunked?: boolean;
}

const MAX_BODY = 2 * 1024 * 1024;

/**
 * Sends requests to one server on loopback and never waits longer than
 * `timeoutMs` for an answer: a server that does not answer is reported as a
 * timeout, not waited for.
 */
export class HttpProbe {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 8 });

  constructor(
    readonly host: string,
    readonly port: number,
    readonly timeoutMs = 10_000,
  ) {}

  static fromUrl(url: string, timeoutMs?: number): HttpProbe {
    const u = new URL(url);
    return new HttpProbe(u.hostname, Number(u.port), timeoutMs);
  }

  send(spec: ProbeRequest): Promise<ProbeOutcome> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (outcome: ProbeOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(outcome);
      };
      const body =
        spec.body === undefined
          ? undefined
          : typeof spec.body === 'string'
            ? Buffer.from(spec.body, 'utf8')
            : Buffer.from(spec.body);
      const headers: Record<string, string | number | string[]> = {};
      for (const [k, v] of Object.entries(spec.headers ?? {}))
        headers[k] = typeof v === 'object' ? [...v] : v;
      if (
        body !== undefined &&
        !spec.chunked &&
        !Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')
      ) {
        headers['content-length'] = body.length;
      }
      const req = request({
        host: this.host,
        port: this.port,
        method: spec.method,
        path: spec.path,
        headers,
        agent: this.agent,
      });
      const timer = setTimeout(() => {
        finish({ kind: 'timeout' });
        req.destroy();
      }, this.timeoutMs);
      req.on('response', (res) => {
        const parts: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size <= MAX_BODY) parts.push(d);
        });
        res.on('end', () => {
          finish({
            kind: 'response',
            response: {
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(parts),
            },
          });
        });
        res.on('error', (err) => {
          finish({ kind: 'failed', error: `response: ${err.message}` });
        });
      });
      // A server may answer (413, 400) and close before the whole body is written: the answer still counts.
      req.on('error', (err) => {
        setTimeout(() => {
          finish({ kind: 'failed', error: err.message });
        }, 200).unref();
      });
      if (body === undefined) {
        req.end();
      } else if (spec.chunked) {
        const step = Math.max(1, Math.ceil(body.length / 4));
        for (let i = 0; i < body.length; i += step) req.write(body.subarray(i, i + step));
        req.end();
      } else {
        req.end(body);
      }
    });
  }

  /**
   * Write raw bytes on a fresh connection and read one HTTP answer (for
   * requests node:http refuses to produce: broken headers, bad framing).
   */
  sendRaw(bytes: Uint8Array | string): Promise<ProbeOutcome> {
    return new Promise((resolve) => {
      const socket = connect({ host: this.host, port: this.port });
      let data = Buffer.alloc(0);
      let settled = false;
      const finish = (outcome: ProbeOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(outcome);
      };
      const timer = setTimeout(() => {
        finish({ kind: 'timeout' });
      }, this.timeoutMs);
      const tryParse = (closed: boolean): void => {
        const parsed = parseRawResponse(data, closed);
        if (parsed) finish({ kind: 'response', response: parsed });
        else if (closed)
          finish({
            kind: 'failed',
            error: data.length === 0 ? 'closed without an answer' : 'closed mid-answer',
          });
      };
      socket.on('data', (d: Buffer) => {
        data = Buffer.concat([data, d]);
        tryParse(false);
      });
      socket.on('close', () => {
        tryParse(true);
      });
      socket.on('error', () => {
        // 'close' follows and decides.
      });
      socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
    });
  }

  /**
   * Start an upload that announces `announced` bytes, send `sent` of them,
   * wait `pauseMs` so the server is reading the body, then drop the connection.
   */
  abortedUpload(spec: {
    method: string;
    path: string;
    headers: Readonly<Record<string, string>>;
    announced: number;
    sent: Uint8Array;
    pauseMs: number;
  }): Promise<void> {
    return new Promise((resolve) => {
      const socket = connect({ host: this.host, port: this.port });
      const head = [
        `${spec.method} ${spec.path} HTTP/1.1`,
        `host: ${this.host}:${String(this.port)}`,
        `content-length: ${String(spec.announced)}`,
      ];
      for (const [k, v] of Object.entries(spec.headers)) head.push(`${k}: ${v}`);
      const done = (): void => {
        socket.destroy();
        resolve();
      };
      socket.on('error', done);
      socket.on('connect', () => {
        socket.write(`${head.join('\r\n')}\r\n\r\n`);
        socket.write(spec.sent);
        setTimeout(done, spec.pauseMs);
      });
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** One HTTP/1.1 answer from raw bytes, or undefined while it is incomplete. */
function parseRawResponse(data: Buffer, closed: boolean): ProbeResponse | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = data.subarray(0, end).toString('latin1').split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!match) return undefined;
  const headers: IncomingHttpHeaders = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const rest = data.subarray(end + 4);
  const length = headers['content-length'];
  let body: Buffer;
  if (typeof length === 'string') {
    const n = Number(length);
    if (rest.length < n) return undefined;
    body = rest.subarray(0, n);
  } else if (headers['transfer-encoding'] === 'chunked') {
    const decoded = decodeChunked(rest);
    if (!decoded) return closed ? { status: Number(match[1]), headers, body: rest } : undefined;
    body = decoded;
  } else {
    if (!closed) return undefined;
    body = rest;
  }
  return { status: Number(match[1]), headers, body };
}

function decodeChunked(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const size = parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size)) return undefined;
    if (size === 0) return Buffer.concat(parts);
    if (data.length < eol + 2 + size + 2) return undefined;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
