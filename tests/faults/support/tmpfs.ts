import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A small tmpfs mounted on a folder (needs root and a kernel that lets it mount), resizable in place. */
export class Tmpfs {
  private mounted = true;

  private constructor(readonly dir: string) {}

  static async mount(dir: string, sizeBytes: number): Promise<Tmpfs> {
    await mkdir(dir, { recursive: true });
    await run('mount', ['-t', 'tmpfs', '-o', `size=${String(sizeBytes)},mode=0700`, 'tmpfs', dir]);
    return new Tmpfs(dir);
  }

  /** Grow (or shrink) the file system while files on it stay open: space returns. */
  async resize(sizeBytes: number): Promise<void> {
    await run('mount', ['-o', `remount,size=${String(sizeBytes)}`, this.dir]);
  }

  /** Write a file of zeros until the file system refuses (ENOSPC): no byte left free. */
  async fill(name: string): Promise<void> {
    const handle = await open(join(this.dir, name), 'w');
    const zeros = Buffer.alloc(64 * 1024);
    try {
      for (let size = zeros.length; size >= 1;) {
        try {
          await handle.write(zeros, 0, size);
        } catch {
          size = Math.floor(size / 2);
        }
      }
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  async remove(name: string): Promise<void> {
    await rm(join(this.dir, name), { force: true });
  }

  /** Bytes used and free, as df sees them. */
  async usage(): Promise<{ used: number; free: number }> {
    const { stdout } = await run('df', ['-B1', '--output=used,avail', this.dir]);
    const [used, free] = stdout.trim().split('\n').at(-1)!.trim().split(/\s+/).map(Number);
    return { used: used ?? 0, free: free ?? 0 };
  }

  /** Unmount (lazily, so a process that still holds a file does not keep it busy). */
  async unmount(): Promise<void> {
    if (!this.mounted) return;
    this.mounted = false;
    await run('umount', ['-l', this.dir]).catch(() => undefined);
    await rmdir(this.dir).catch(() => undefined);
  }
}

/**
 * Why a tmpfs cannot be mounted here (not root, or mounts refused), or
 * undefined when it can: a synchronous probe for `Scenario.skip`.
 */
export function tmpfsRefusal(): string | undefined {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const probe = mkdtempSync(join(tmpdir(), 'faults-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return undefined;
  } catch {
    return 'mount -t tmpfs was refused on this machine';
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
