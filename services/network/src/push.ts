/**
 * `push --relay <url>`: give a relay of this network every publication it
 * does not hold yet (design D2): GET /v1/trust/networks for the size it
 * holds, then POST /v1/trust/publications for each later publication, in
 * order. What was pushed is remembered per relay URL (pushed.json).
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { ready, toBase64 } from '@rogatory/protocol';
import { networkFail } from './errors.js';
import { FILES, isErrno, readConfig, writeFileAtomic } from './folder.js';
import { readPublications, withLog } from './log.js';

const TIMEOUT_MS = 30_000;

/** Relay URL (normalised) → the log size it acknowledged. */
export async function readPushed(dir: string): Promise<Record<string, number>> {
  let text: string;
  try {
    text = await readFile(join(dir, FILES.pushed), 'utf8');
  } catch (cause) {
    if (isErrno(cause, 'ENOENT')) return {};
    throw cause;
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error();
    return Object.fromEntries(
      Object.entries(value).filter(
        (e): e is [string, number] => typeof e[1] === 'number' && Number.isSafeInteger(e[1]),
      ),
    );
  } catch (cause) {
    return networkFail('INPUT_INVALID', `${FILES.pushed} is damaged`, { cause });
  }
}

export function normaliseRelayUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    return networkFail('INPUT_INVALID', '--relay must be a URL, e.g. https://relay.wacap.example', {
      cause,
    });
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    networkFail('INPUT_INVALID', '--relay must be an http(s) URL');
  return parsed.toString().replace(/\/+$/, '');
}

export interface PushedPublication {
  readonly file: string;
  readonly size: number;
  readonly edition: number | null;
  /** The witnesses that cosigned the checkpoint, as the relay reported them. */
  readonly cosigners: unknown[];
}

export interface PushResult {
  readonly relay: string;
  readonly network: string;
  /** The size the relay held before. */
  readonly relaySize: number;
  readonly pushed: PushedPublication[];
  readonly size: number;
}

async function call(
  relay: string,
  method: 'GET' | 'POST',
  path: string,
  body?: string,
): Promise<{ status: number; value: unknown }> {
  let status: number;
  let text: string;
  try {
    const res = await request(`${relay}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body }),
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (cause) {
    return networkFail('RELAY_UNREACHABLE', `${method} ${path} at ${relay}: no answer`, {
      cause,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    return networkFail(
      'RELAY_UNREACHABLE',
      `${method} ${path} at ${relay}: HTTP ${status}, not a relay API answer`,
      { cause },
    );
  }
  return { status, value };
}

function refusal(relay: string, what: string, status: number, value: unknown): never {
  const error = (value as { error?: { code?: unknown } } | null)?.error;
  const code = typeof error?.code === 'string' ? error.code.slice(0, 64) : `HTTP_${status}`;
  return networkFail('RELAY_REJECTED', `${relay} refused ${what} (HTTP ${status}, ${code})`, {
    detail: code,
  });
}

/** Push every publication the relay lacks, in order; record each one it acknowledged. */
export async function pushPublications(options: {
  readonly dir: string;
  readonly relay: string;
}): Promise<PushResult> {
  await ready();
  const dir = resolve(options.dir);
  const config = await readConfig(dir);
  const relay = normaliseRelayUrl(options.relay);
  return withLog(dir, config, async (log) => {
    const publications = await readPublications(dir);
    const held = await call(relay, 'GET', '/v1/trust/networks');
    if (held.status !== 200) refusal(relay, 'GET /v1/trust/networks', held.status, held.value);
    const networks = (held.value as { networks?: unknown } | null)?.networks;
    if (!Array.isArray(networks))
      networkFail('RELAY_UNREACHABLE', `GET /v1/trust/networks at ${relay}: not a relay answer`);
    const mine = (networks as { network?: unknown; size?: unknown; rootHash?: unknown }[]).find(
      (n) => n.network === config.network,
    );
    const relaySize = typeof mine?.size === 'number' ? mine.size : 0;
    if (!Number.isSafeInteger(relaySize) || relaySize < 0 || relaySize > log.size)
      networkFail(
        'LOG_INVALID',
        `${relay} holds ${String(relaySize)} entries of ${config.network}'s log; this folder has ${log.size}`,
      );
    if (
      relaySize > 0 &&
      typeof mine?.rootHash === 'string' &&
      mine.rootHash !== toBase64(log.root(relaySize))
    )
      networkFail(
        'LOG_INVALID',
        `${relay} holds another tree of ${config.network}'s log at size ${relaySize}: a fork (keep this output, compare checkpoints)`,
      );
    const pushed: PushedPublication[] = [];
    const state = await readPushed(dir);
    const record = async (size: number) => {
      state[relay] = size;
      await writeFileAtomic(join(dir, FILES.pushed), `${JSON.stringify(state, null, 2)}\n`);
    };
    if ((state[relay] ?? -1) !== relaySize && relaySize > 0) await record(relaySize);
    for (const p of publications.filter((x) => x.size > relaySize)) {
      const answer = await call(relay, 'POST', '/v1/trust/publications', JSON.stringify(p.value));
      if (answer.status !== 200) refusal(relay, p.file, answer.status, answer.value);
      const a = (answer.value ?? {}) as { edition?: unknown; cosigners?: unknown; size?: unknown };
      pushed.push({
        file: p.file,
        size: p.size,
        edition: typeof a.edition === 'number' ? a.edition : null,
        cosigners: Array.isArray(a.cosigners) ? a.cosigners : [],
      });
      await record(p.size);
    }
    return { relay, network: config.network, relaySize, pushed, size: log.size };
  });
}
