import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Type, type Static } from 'typebox';
import {
  Hex256,
  KeyRefSchema,
  ManifestBodySchema,
  NetworkIdSchema,
  RelayEntrySchema,
  Timestamp,
  checkManifestSuccession,
  manifestHash,
  validator,
  verifyManifest,
  type Manifest,
} from '@rogatory/protocol';
import { mapProtocol, networkFail } from './errors.js';

/**
 * The secretariat folder:
 *
 *   network.json        network id and root KeyRef (public)
 *   root-key.json       the root's private key, sealed with the passphrase (protocol §13)
 *   editions/000001.json, 000002.json, ...   the published signed manifests, in order
 *   draft.json          the next edition's members, peers and revocations, and the edition it is based on
 *   log.db              the network's transparency log (@rogatory/transparency-log)
 *   publications/000000000003.json, ...  the Publications (D1), named by their checkpoint size
 *   queue.json          statements queued for the next publish (rotations, revocations, introductions)
 *   publishing.json     present only while a publish is under way: what it signed, for recovery
 *   pushed.json         per relay URL, the log size pushed to it
 */
export const FILES = {
  config: 'network.json',
  rootKey: 'root-key.json',
  draft: 'draft.json',
  editions: 'editions',
  log: 'log.db',
  publications: 'publications',
  queue: 'queue.json',
  publishing: 'publishing.json',
  pushed: 'pushed.json',
} as const;

export const SecretariatConfigSchema = Type.Object(
  {
    format: Type.Literal('rogatory-secretariat'),
    version: Type.Literal(1),
    network: NetworkIdSchema,
    root: KeyRefSchema,
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
export type SecretariatConfig = Static<typeof SecretariatConfigSchema>;

const body = ManifestBodySchema.properties;
export const DraftSchema = Type.Object(
  {
    /** The edition this draft continues (null before the first): publish refuses a draft based on an older one. */
    basedOn: Type.Union([
      Type.Null(),
      Type.Object(
        { version: Type.Integer({ minimum: 1 }), hash: Hex256 },
        { additionalProperties: false },
      ),
    ]),
    // A draft may have no relay yet; the manifest's own limits apply when it is signed.
    relays: Type.Array(RelayEntrySchema, { maxItems: 64 }),
    pocs: body.pocs,
    authorities: body.authorities,
    peers: body.peers,
    revoked: body.revoked,
  },
  { additionalProperties: false },
);
export type Draft = Static<typeof DraftSchema>;

const configShape = validator(SecretariatConfigSchema, 'network.json');
const draftShape = validator(DraftSchema, 'draft.json');

/** Write a file so that readers see the old or the new content, never a part: temp file, fsync, rename. */
export async function writeFileAtomic(path: string, text: string, mode = 0o644): Promise<void> {
  const tmp = join(dirname(path), `.tmp-${randomUUID()}`);
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  await syncDir(dirname(path));
}

/** Like writeFileAtomic, but refuses (false) when `path` exists already: an edition is never overwritten. */
export async function createFileAtomic(path: string, text: string): Promise<boolean> {
  const tmp = join(dirname(path), `.tmp-${randomUUID()}`);
  const handle = await open(tmp, 'wx', 0o644);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(tmp, path);
    return true;
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    throw err;
  } finally {
    await unlink(tmp);
    await syncDir(dirname(path));
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === code;
}

/** Read a JSON file; INPUT_INVALID naming `what` and the path when it cannot be read or parsed. */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    return networkFail('INPUT_INVALID', `${what} ${path} cannot be read`, { cause });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    return networkFail('INPUT_INVALID', `${what} ${path} is not JSON`, { cause });
  }
}

export async function readConfig(dir: string): Promise<SecretariatConfig> {
  let text: string;
  try {
    text = await readFile(join(dir, FILES.config), 'utf8');
  } catch (cause) {
    if (isErrno(cause, 'ENOENT'))
      return networkFail('SECRETARIAT_NOT_FOUND', `no secretariat in ${dir}`, { cause });
    throw cause;
  }
  return mapProtocol('INPUT_INVALID', `${FILES.config} in ${dir}`, () =>
    configShape.parse(JSON.parse(text)),
  );
}

export async function readDraft(dir: string): Promise<Draft> {
  const value = await readJsonFile(join(dir, FILES.draft), 'the draft');
  return mapProtocol('INPUT_INVALID', FILES.draft, () => draftShape.parse(value));
}

export async function writeDraft(dir: string, draft: Draft): Promise<void> {
  await writeFileAtomic(
    join(dir, FILES.draft),
    `${JSON.stringify(draftShape.parse(draft), null, 2)}\n`,
  );
}

export function editionFile(version: number): string {
  return `${String(version).padStart(6, '0')}.json`;
}

/**
 * The published editions, checked as one chain: edition i (file
 * 00000i.json) is version i, verifies under the folder's root, and follows
 * edition i - 1 (`checkManifestSuccession`); version 1 has previous = null.
 * Anything else (a missing, skipped, forked or foreign edition) is
 * EDITION_CHAIN_BROKEN, naming the file.
 */
export async function readEditions(dir: string, config: SecretariatConfig): Promise<Manifest[]> {
  const folder = join(dir, FILES.editions);
  await mkdir(folder, { recursive: true });
  const names = (await readdir(folder)).filter((n) => !n.startsWith('.')).sort();
  const editions: Manifest[] = [];
  for (const [i, name] of names.entries()) {
    const expected = editionFile(i + 1);
    if (name !== expected)
      networkFail(
        'EDITION_CHAIN_BROKEN',
        `editions/${name} found where editions/${expected} was expected`,
      );
    let value: unknown;
    try {
      value = JSON.parse(await readFile(join(folder, name), 'utf8'));
    } catch (cause) {
      return networkFail('EDITION_CHAIN_BROKEN', `editions/${name} is not JSON`, { cause });
    }
    const manifest = mapProtocol('EDITION_CHAIN_BROKEN', `editions/${name}`, () =>
      verifyManifest(value, config.root),
    );
    if (manifest.body.network !== config.network)
      networkFail(
        'EDITION_CHAIN_BROKEN',
        `editions/${name} is an edition of ${manifest.body.network}`,
      );
    if (manifest.body.version !== i + 1)
      networkFail(
        'EDITION_CHAIN_BROKEN',
        `editions/${name} holds version ${manifest.body.version}`,
      );
    const prev = editions[i - 1];
    if (prev)
      mapProtocol('EDITION_CHAIN_BROKEN', `editions/${name}`, () =>
        checkManifestSuccession(prev, manifest),
      );
    else if (manifest.body.previous !== null)
      networkFail(
        'EDITION_CHAIN_BROKEN',
        `editions/${name} is version 1 but names a previous edition`,
      );
    editions.push(manifest);
  }
  return editions;
}

/** What a draft is based on, for an edition (or null for none). */
export function baseOf(edition: Manifest | undefined): Draft['basedOn'] {
  return edition ? { version: edition.body.version, hash: manifestHash(edition) } : null;
}
