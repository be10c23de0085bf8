import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { nodeFail } from '../errors.js';

/** O_NOFOLLOW where the platform has it (Windows has none; creating links there takes privileges). */
export const O_NOFOLLOW = (constants as Partial<typeof constants>).O_NOFOLLOW ?? 0;

/**
 * Flags to open a file for reading that might not be a regular one: a FIFO
 * or device must not block the open (it is refused after fstat); on
 * regular files O_NONBLOCK changes nothing.
 */
export const READ_ANY =
  constants.O_RDONLY | ((constants as Partial<typeof constants>).O_NONBLOCK ?? 0);

/** Whether `path` is `root` or below it (both absolute and normalised). */
export function isWithin(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Where an open file actually is. On Linux the kernel says so
 * (/proc/self/fd); elsewhere the path it was opened by must still name the
 * same file (device and inode), with no link in its directories.
 */
async function checkOpenedAt(
  handle: FileHandle,
  opened: Stats,
  path: string,
  inside: string,
): Promise<void> {
  if (process.platform === 'linux') {
    const where = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
    if (where !== undefined) {
      // `path` has no link in it: the kernel must name the very same path.
      if (where !== path || !isWithin(inside, where))
        nodeFail('PATH_REFUSED', 'the file opened is not the one asked for');
      return;
    }
  }
  const [again, dir] = await Promise.all([
    lstat(path).catch(() => undefined),
    realpath(dirname(path)).catch(() => undefined),
  ]);
  if (again === undefined || again.dev !== opened.dev || again.ino !== opened.ino)
    nodeFail('PATH_REFUSED', 'the file changed while it was opened');
  if (dir !== dirname(path) || !isWithin(inside, dir))
    nodeFail('PATH_REFUSED', 'the path goes through a symbolic link');
}

/**
 * The directory the REST API may read attachments from and write exports
 * into (`--file-root`). Request paths are checked lexically, then against
 * the file system: no symbolic link below the root is followed, at any
 * component (links in the root's own path, chosen by the operator, are
 * resolved once when it is opened). Files are opened with O_NOFOLLOW, and
 * the opened descriptor is checked to be a regular file inside the root;
 * every directory an export creates or enters is checked not to be a link.
 *
 * What stays outside this check: hard links (a hard link inside the root
 * is the file itself; keep the root on its own file system, or writable only
 * by those who may read what it links), and a local user who can rename
 * directories inside the root while an export runs (checked before each
 * write, not atomically: Node has no openat).
 */
export class FileRoot {
  /** The root as configured, made absolute. */
  readonly given: string;
  /** Its real path. */
  readonly real: string;

  private constructor(given: string, real: string) {
    this.given = given;
    this.real = real;
  }

  static async open(dir: string): Promise<FileRoot> {
    const given = resolve(dir);
    let real: string;
    let info: Stats;
    try {
      real = await realpath(given);
      info = await lstat(real);
    } catch (cause) {
      return nodeFail('CONFIG_INVALID', 'the file root does not exist', { cause });
    }
    if (!info.isDirectory()) nodeFail('CONFIG_INVALID', 'the file root is not a directory');
    return new FileRoot(given, real);
  }

  /** The components below the root of a request path (relative to the root, or absolute inside it), checked lexically. */
  private components(path: string): string[] {
    const full = resolve(this.given, path);
    const base = isWithin(this.given, full)
      ? this.given
      : isWithin(this.real, full)
        ? this.real
        : undefined;
    const rel = base === undefined ? '' : relative(base, full);
    if (rel === '') nodeFail('PATH_REFUSED', 'the path is outside the directory the API may use');
    return rel.split(sep);
  }

  /** The real path a request path names (for messages and callers that only need the name); no file system access. */
  lexical(path: string): string {
    return join(this.real, ...this.components(path));
  }

  /**
   * Open a regular file inside the root for reading, refusing symbolic
   * links anywhere below the root. The caller closes the handle.
   */
  async openForReading(path: string): Promise<FileHandle> {
    const target = this.lexical(path);
    const parent = dirname(target);
    const realParent = await realpath(parent).catch((cause: unknown) =>
      nodeFail('INPUT_INVALID', 'an attachment file cannot be read', { cause }),
    );
    if (realParent !== parent) nodeFail('PATH_REFUSED', 'the path goes through a symbolic link');
    let handle: FileHandle;
    try {
      handle = await open(target, READ_ANY | O_NOFOLLOW);
    } catch (cause) {
      if (errnoOf(cause) === 'ELOOP')
        return nodeFail('PATH_REFUSED', 'the attachment is a symbolic link', { cause });
      return nodeFail('INPUT_INVALID', 'an attachment file cannot be read', { cause });
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) nodeFail('PATH_REFUSED', 'an attachment is not a regular file');
      await checkOpenedAt(handle, info, target, this.real);
      return handle;
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Create a directory inside the root (and its missing parents, mode 0700)
   * or enter an existing one, refusing any component that is a symbolic
   * link or not a directory. Returns its real path.
   */
  async makeDirectory(path: string): Promise<string> {
    let current = this.real;
    for (const part of this.components(path)) {
      current = join(current, part);
      await ensureRealDirectory(current);
    }
    return current;
  }
}

/**
 * Make `path` a directory (mode 0700) if it is missing, and check that it
 * is one and not a symbolic link (a link planted there, even while we
 * created it, is refused rather than written through). Its parent must exist.
 */
export async function ensureRealDirectory(path: string): Promise<Stats> {
  try {
    await mkdir(path, { mode: 0o700 });
  } catch (cause) {
    if (errnoOf(cause) !== 'EEXIST')
      nodeFail('INPUT_INVALID', 'a destination directory cannot be created', { cause });
  }
  const info = await lstat(path).catch((cause: unknown) =>
    nodeFail('INPUT_INVALID', 'a destination directory cannot be created', { cause }),
  );
  if (info.isSymbolicLink()) nodeFail('PATH_REFUSED', 'a destination directory is a symbolic link');
  if (!info.isDirectory()) nodeFail('PATH_REFUSED', 'a destination is not a directory');
  return info;
}

/** Whether `path` is still the directory `expected` (same device and inode, not a link). */
export async function sameDirectory(path: string, expected: Stats): Promise<boolean> {
  const now = await lstat(path).catch(() => undefined);
  return (
    now !== undefined && now.isDirectory() && now.dev === expected.dev && now.ino === expected.ino
  );
}
