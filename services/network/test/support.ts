import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  certifyEncryptionKey,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  keyRef,
  type KeyRef,
} from '@rogatory/protocol';
import { runCli } from '../src/index.js';
import type { CliIO } from '../src/cli/io.js';

export const PASSPHRASE = 'correct horse battery staple';
export const NOW = Date.UTC(2026, 11, 4, 12, 0, 0);
const YEAR = 365 * 86_400_000;

export interface Run {
  code: number;
  out: string;
  err: string;
  /** stdout parsed as JSON; the caller names the shape it expects (a cast, checked by the assertions that follow). */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
  json: <T = Record<string, unknown>>() => T;
}

/** Run the CLI in this process with captured output; --dir and interactive KDF are the caller's. */
export async function cli(
  args: string[],
  env: Record<string, string> = {},
  clock: () => number = () => NOW,
): Promise<Run> {
  let out = '';
  let err = '';
  const io: CliIO = {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    env: { ROGATORY_PASSPHRASE: PASSPHRASE, ...env },
  };
  const code = await runCli(args, io, { clock });
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
  return { code, out, err, json: <T>() => JSON.parse(out) as T };
}

export async function tempDir(): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'rogatory-network-'));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Member keys as `rogatory init --json` prints them (unit tests; the end-to-end test uses initNode itself). */
export async function memberFile(
  dir: string,
  address: string,
): Promise<{ file: string; identity: KeyRef; encryptionKid: string }> {
  const identity = generateSigningKeyPair();
  const encryption = generateEncryptionKeyPair();
  const validity = { notBefore: NOW - 1000, notAfter: NOW + 2 * YEAR };
  const identityRef = keyRef(identity, validity);
  const certificate = certifyEncryptionKey({
    subject: address,
    identity,
    encryptionKey: encryption,
    ...validity,
  });
  const file = join(dir, `${address}.json`);
  await writeFile(
    file,
    JSON.stringify({
      dir: '/x',
      address,
      identity: identityRef,
      encryptionCertificate: certificate,
      listedInManifest: false,
    }),
  );
  return { file, identity: identityRef, encryptionKid: encryption.kid };
}

/** A relay KeyRef as `rogatory-relay keygen` prints it (unit tests). */
export async function relayKeyFile(
  dir: string,
  name: string,
): Promise<{ file: string; key: KeyRef }> {
  const key = keyRef(generateSigningKeyPair(), { notBefore: NOW - 1000, notAfter: NOW + 2 * YEAR });
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(key));
  return { file, key };
}
