import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { nodeFail } from '../errors.js';
import { O_NOFOLLOW } from './file-root.js';

/** Exclusive creation that never follows a link at the last component (O_EXCL refuses one already; O_NOFOLLOW says so). */
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW;

/**
 * Write a file so that readers see the old or the new content, never a mix,
 * and the new content survives a crash. A symbolic link at `path` is
 * replaced, never written through (rename does not follow it).
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: { mode?: number } = {},
): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temporary, CREATE_NEW, options.mode ?? 0o600);
  let moved = false;
  try {
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    await rename(temporary, path);
    moved = true;
    await syncDirectory(dirname(path));
  } finally {
    await handle.close().catch(() => undefined);
    if (!moved) await unlink(temporary).catch(() => undefined);
  }
}

/** Synchronous variant, for writes that follow a synchronous database commit. */
export function writeFileAtomicSync(path: string, data: string, mode = 0o600): void {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temporary, 'wx', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

/**
 * Create `path` with `data` (mode 0600), never replacing or following
 * anything already there: PATH_REFUSED names the path if it exists.
 */
export function writeNewFileSync(path: string, data: string): void {
  let fd: number;
  try {
    fd = openSync(path, CREATE_NEW, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ELOOP')
      return nodeFail('PATH_REFUSED', `${path} exists already; choose a new file name`);
    if (code === 'ENOENT') return nodeFail('PATH_REFUSED', `the folder of ${path} does not exist`);
    return nodeFail('PATH_REFUSED', `cannot create ${path} (${code ?? 'error'})`);
  }
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } catch {
    // Some filesystems cannot fsync a directory; the rename is as durable as it gets there.
  } finally {
    await handle.close();
  }
}
