import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Type, type Static } from 'typebox';
import { validator } from '@rogatory/protocol';
import { nodeFail } from '../errors.js';
import { whyUnreadable } from '../files/file-errors.js';
import { snapshotDatabase } from '../store/snapshot.js';
import { readConfig, type NodeConfig } from './config.js';

/**
 * Node backup and restore (docs/operations.md "Backup and restore").
 *
 * A backup needs no passphrase and may run while the node serves: the
 * database is copied with SQLite's online backup (a consistent snapshot
 * however many writes go on), the audit head is taken from that snapshot
 * (so head and entries agree), the sealed key files, node.json and the
 * trust folder are copied, and so are the blobs (content-addressed and
 * immutable: a blob written after the snapshot is an extra, never a
 * missing one). Everything in a backup is as encrypted as on the node: the
 * database rows under the storage key, the keys under the passphrase, the
 * blobs as ciphertext. backup.json lists every file with its SHA-256; a
 * restore checks them, and every blob against its id, before writing.
 */

export const BACKUP_FORMAT = 'rogatory-node-backup/v1';
const MANIFEST = 'backup.json';
const BLOB_DIR = 'blobs';

const BackupManifestSchema = Type.Object(
  {
    format: Type.Literal(BACKUP_FORMAT),
    address: Type.String({ maxLength: 96 }),
    createdAt: Type.Integer({ minimum: 0 }),
    files: Type.Array(
      Type.Object(
        {
          path: Type.String({ pattern: '^[A-Za-z0-9._-]+(/[A-Za-z0-9._@-]+)*$', maxLength: 300 }),
          size: Type.Integer({ minimum: 0 }),
          sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
        },
        { additionalProperties: false },
      ),
      { maxItems: 10_000 },
    ),
    blobs: Type.Object(
      {
        kind: Type.Union([Type.Literal('fs'), Type.Literal('s3')]),
        count: Type.Integer({ minimum: 0 }),
        bytes: Type.Integer({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
    auditHeadSeq: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
type BackupManifest = Static<typeof BackupManifestSchema>;
const manifestShape = validator(BackupManifestSchema, 'backup.json');

export interface BackupReport {
  readonly dir: string;
  readonly address: string;
  readonly files: number;
  readonly blobs: number;
  readonly blobBytes: number;
  readonly auditHeadSeq: number;
  /** Blobs in an S3 store are not copied: the object store is backed up by its own means. */
  readonly blobsInObjectStore: boolean;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function emptyOrAbsent(dir: string, what: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR')
      return nodeFail('PATH_REFUSED', `${what} ${dir} is a file, not a folder`);
    return nodeFail('PATH_REFUSED', `${what} ${dir} ${whyUnreadable(cause)}`, { cause });
  }
  if (entries.length > 0) nodeFail('NODE_EXISTS', `${what} ${dir} is not empty; give a new folder`);
}

/** The files of a node folder besides the database and blobs (keys, node.json, trust), relative paths. */
async function configFiles(dir: string, config: NodeConfig): Promise<string[]> {
  const p = config.paths;
  const files = [
    'node.json',
    p.identityKey,
    ...p.encryptionKeys,
    ...(p.pendingIdentityKey === undefined ? [] : [p.pendingIdentityKey]),
    ...(p.retiredIdentityKeys ?? []),
    p.storageKey,
  ];
  for (const name of (await readdir(join(dir, p.trust))).sort())
    if (name.endsWith('.json')) files.push(join(p.trust, name));
  return [...new Set(files)];
}

/** Every blob file of an fs blob store (two shard levels, the temp folder skipped). */
async function* blobFiles(root: string): AsyncGenerator<{ id: string; path: string }> {
  let first: string[];
  try {
    first = await readdir(root);
  } catch {
    return;
  }
  for (const a of first.sort()) {
    if (!/^[0-9a-f]{2}$/.test(a)) continue;
    for (const b of (await readdir(join(root, a))).sort()) {
      if (!/^[0-9a-f]{2}$/.test(b)) continue;
      for (const id of (await readdir(join(root, a, b))).sort())
        if (/^[0-9a-f]{64}$/.test(id) && id.startsWith(a + b))
          yield { id, path: join(root, a, b, id) };
    }
  }
}

/**
 * Back up the node in `dir` into the new folder `out`, consistently while it
 * runs. No passphrase: nothing is decrypted.
 */
export async function backupNode(dir: string, out: string): Promise<BackupReport> {
  const config = await readConfig(dir);
  await emptyOrAbsent(out, 'the backup folder');
  await mkdir(out, { recursive: true, mode: 0o700 });
  const files: BackupManifest['files'] = [];
  const record = async (path: string): Promise<void> => {
    const full = join(out, path);
    files.push({
      path: path.split(sep).join('/'),
      size: (await stat(full)).size,
      sha256: await sha256File(full),
    });
  };

  // 1. The database: SQLite's online backup, a snapshot consistent with itself.
  const dbPath = config.paths.database;
  await mkdir(dirname(join(out, dbPath)), { recursive: true });
  const head = await snapshotDatabase(join(dir, dbPath), join(out, dbPath));
  await record(dbPath);
  // 2. The audit head of that snapshot (the node's own file may be a commit ahead).
  if (head) {
    await writeFile(join(out, config.paths.auditHead), `${JSON.stringify(head)}\n`, {
      mode: 0o600,
    });
    await record(config.paths.auditHead);
  }
  // 3. node.json, the sealed keys and the trust folder.
  for (const path of await configFiles(dir, config)) {
    await mkdir(dirname(join(out, path)), { recursive: true });
    try {
      await copyFile(join(dir, path), join(out, path));
    } catch (cause) {
      nodeFail('CONFIG_INVALID', `${join(dir, path)} ${whyUnreadable(cause)}`, { cause });
    }
    await record(path);
  }
  // 4. The blobs, after the snapshot: every blob it names is already there.
  let blobs = 0;
  let blobBytes = 0;
  if (config.blobs.kind === 'fs') {
    const root = join(dir, config.blobs.dir);
    for await (const blob of blobFiles(root)) {
      const target = join(out, BLOB_DIR, blob.id.slice(0, 2), blob.id);
      await mkdir(dirname(target), { recursive: true });
      await copyFile(blob.path, target);
      blobs += 1;
      blobBytes += (await stat(target)).size;
    }
  }
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    address: config.address,
    createdAt: Date.now(),
    files,
    blobs: { kind: config.blobs.kind, count: blobs, bytes: blobBytes },
    auditHeadSeq: head?.seq ?? 0,
  };
  await writeFile(join(out, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  return {
    dir: out,
    address: config.address,
    files: files.length,
    blobs,
    blobBytes,
    auditHeadSeq: manifest.auditHeadSeq,
    blobsInObjectStore: config.blobs.kind === 's3',
  };
}

export interface RestoreReport {
  readonly dir: string;
  readonly address: string;
  readonly files: number;
  readonly blobs: number;
  readonly auditHeadSeq: number;
}

/**
 * Restore a backup into the new folder `dir`: every file checked against
 * backup.json and every blob against its id first (VERIFICATION_FAILED
 * naming the damaged file, nothing written), then copied. Open the node
 * afterwards with its passphrase; it syncs on from the snapshot's cursor.
 */
export async function restoreNode(from: string, dir: string): Promise<RestoreReport> {
  let text: string;
  try {
    text = await readFile(join(from, MANIFEST), 'utf8');
  } catch (cause) {
    return nodeFail(
      'INPUT_INVALID',
      `${join(from, MANIFEST)} ${whyUnreadable(cause)}: not a node backup`,
      {
        cause,
      },
    );
  }
  let manifest: BackupManifest;
  try {
    manifest = manifestShape.parse(JSON.parse(text));
  } catch (cause) {
    return nodeFail('INPUT_INVALID', `${join(from, MANIFEST)} is not a node backup manifest`, {
      cause,
    });
  }
  await emptyOrAbsent(dir, 'the node folder');
  for (const f of manifest.files) {
    const path = join(from, f.path);
    if (relative(from, path).startsWith('..'))
      nodeFail('PATH_REFUSED', `backup path ${f.path} leaves the backup`);
    let digest: string;
    try {
      digest = await sha256File(path);
    } catch (cause) {
      return nodeFail('VERIFICATION_FAILED', `backup file ${path} ${whyUnreadable(cause)}`, {
        cause,
      });
    }
    if (digest !== f.sha256)
      nodeFail(
        'VERIFICATION_FAILED',
        `backup file ${path} is damaged (its SHA-256 differs from backup.json)`,
      );
  }
  const blobRoot = join(from, BLOB_DIR);
  const blobs: { id: string; path: string }[] = [];
  for (const shard of await readdir(blobRoot).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const id of await readdir(join(blobRoot, shard))) {
      if (!/^[0-9a-f]{64}$/.test(id)) continue;
      const path = join(blobRoot, shard, id);
      if ((await sha256File(path)) !== id)
        nodeFail(
          'VERIFICATION_FAILED',
          `backup blob ${path} is damaged (its bytes do not hash to its name)`,
        );
      blobs.push({ id, path });
    }
  }
  if (blobs.length !== manifest.blobs.count)
    nodeFail(
      'VERIFICATION_FAILED',
      `the backup holds ${String(blobs.length)} blobs, backup.json says ${String(manifest.blobs.count)}`,
    );
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const f of manifest.files) {
    await mkdir(dirname(join(dir, f.path)), { recursive: true });
    await copyFile(join(from, f.path), join(dir, f.path));
  }
  const config = await readConfig(dir);
  if (config.blobs.kind === 'fs') {
    for (const b of blobs) {
      const target = join(dir, config.blobs.dir, b.id.slice(0, 2), b.id.slice(2, 4), b.id);
      await mkdir(dirname(target), { recursive: true });
      await copyFile(b.path, target);
    }
  }
  return {
    dir,
    address: manifest.address,
    files: manifest.files.length,
    blobs: blobs.length,
    auditHeadSeq: manifest.auditHeadSeq,
  };
}
