import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { CONTEXTS, canonicalBytes, signBytes, type SigningKeyPair } from '@rogatory/protocol';

/**
 * The relay API spoken over plain HTTP (fetch), so that the suite checks the
 * wire and not a client library: every body is built here, by hand, the way
 * docs/relay-api.md describes it.
 */

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  /** The body as bytes. */
  readonly bytes: Uint8Array;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown;
}

export interface Call {
  readonly method?: string;
  readonly path: string;
  readonly token?: string;
  /** A JSON value (sent as canonical JSON), or raw bytes sent as they are. */
  readonly body?: unknown;
  readonly contentType?: string;
}

/** One relay under test, reached at `base` (e.g. http://127.0.0.1:7443). */
export class Wire {
  constructor(readonly base: string) {}

  async call(call: Call): Promise<Answer> {
    const headers: Record<string, string> = {};
    let body: Uint8Array | undefined;
    if (call.body !== undefined) {
      body = call.body instanceof Uint8Array ? call.body : canonicalBytes(call.body);
      headers['content-type'] = call.contentType ?? 'application/json';
    }
    if (call.token !== undefined) headers['authorization'] = `Bearer ${call.token}`;
    const res = await fetch(new URL(call.path, this.base), {
      method: call.method ?? (body === undefined ? 'GET' : 'POST'),
      headers,
      // A copy on its own ArrayBuffer: what fetch's BodyInit accepts.
      ...(body === undefined ? {} : { body: new Uint8Array(body) }),
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, bytes, json };
  }

  /**
   * A body the relay is expected to refuse before reading it (over a size limit): the
   * answer may come, and the connection close, while the body is still being sent, which
   * fetch reports as a failure (EPIPE). Resolves with the status and body once they arrive.
   */
  oversize(call: {
    path: string;
    token: string;
    bytes: Uint8Array;
    contentType: string;
    method: string;
  }): Promise<Answer> {
    const url = new URL(call.path, this.base);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, {
        method: call.method,
        headers: {
          'content-type': call.contentType,
          'content-length': String(call.bytes.length),
          authorization: `Bearer ${call.token}`,
        },
      });
      let answered = false;
      req.on('response', (res) => {
        answered = true;
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(rest);
          req.destroy();
          const bytes = new Uint8Array(Buffer.concat(parts));
          let json: unknown;
          try {
            json = JSON.parse(new TextDecoder().decode(bytes));
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: new Headers(), bytes, json });
        });
      });
      req.on('error', (err) => {
        // The relay closing while the body is still going out is expected once it has answered.
        if (!answered) reject(err);
      });
      // The declared length is over the limit: send a first part and give the relay time to
      // refuse on the header alone, so that its closing the connection does not cut our reading
      // of the answer; a relay that counts bytes instead gets the rest.
      const head = Math.min(call.bytes.length, 64 * 1024);
      req.write(call.bytes.subarray(0, head));
      const rest = setTimeout(() => {
        if (!answered) req.end(call.bytes.subarray(head));
      }, 2000);
    });
  }

  async challenge(
    address: string,
  ): Promise<{ challenge: string; relay: string; expiresAt: number }> {
    const a = await this.call({ path: '/v1/session/challenge', body: { address } });
    if (a.status !== 200) throw new Error(`POST /v1/session/challenge answered ${a.status}`);
    return a.json as { challenge: string; relay: string; expiresAt: number };
  }

  /** The signed answer to a challenge, with the parts a check may want wrong. */
  static answer(
    c: { challenge: string; relay: string },
    address: string,
    key: SigningKeyPair,
    issuedAt: number = Date.now(),
  ): { body: Record<string, unknown>; signature: { kid: string; value: string } } {
    const body = { type: 'session', relay: c.relay, address, challenge: c.challenge, issuedAt };
    return { body, signature: signBytes(CONTEXTS.sessionChallenge, body, key) };
  }

  /** Log in and return the session (token, expiresAt); throws when refused. */
  async login(
    address: string,
    key: SigningKeyPair,
  ): Promise<{ token: string; expiresAt: number; address: string }> {
    const c = await this.challenge(address);
    const a = await this.call({ path: '/v1/session', body: Wire.answer(c, address, key) });
    if (a.status !== 200)
      throw new Error(`login of ${address} answered ${a.status} ${codeOf(a) ?? ''}`);
    return a.json as { token: string; expiresAt: number; address: string };
  }
}

/** The `error.code` of a refusal, if the body has the documented shape. */
export function codeOf(a: Answer): string | undefined {
  const error = (a.json as { error?: { code?: unknown } } | undefined)?.error;
  return typeof error?.code === 'string' ? error.code : undefined;
}
