import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * The relay's trust state on disk, local to the instance (docs/relay-api.md
 * "Trust distribution"):
 *
 *   <dir>/publications/<network>/<size, 12 digits>.json   accepted publications, in chain order
 *   <dir>/witness/<network>.json                          what the witness last cosigned for that log
 *
 * Every file is written atomically: a temporary file in the same folder,
 * fsync, rename over the target, fsync of the folder. A reader sees the old
 * file or the new one, never a torn one, and a crash after the answer
 * cannot lose what was answered.
 */
export class TrustFiles {
  constructor(readonly dir: string) {}

  static async open(dir: string): Promise<TrustFiles> {
    await mkdir(join(dir, 'publications'), { recursive: true });
    await mkdir(join(dir, 'witness'), { recursive: true });
    return new TrustFiles(dir);
  }

  private publicationFile(network: string, size: number): string {
    return join(this.dir, 'publications', network, `${String(size).padStart(12, '0')}.json`);
  }

  private witnessFile(network: string): string {
    return join(this.dir, 'witness', `${network}.json`);
  }

  /** Store (or replace, e.g. with more cosignatures) the publication ending at `size`. */
  async writePublication(network: string, size: number, publication: unknown): Promise<void> {
    const file = this.publicationFile(network, size);
    await mkdir(dirname(file), { recursive: true });
    await writeAtomically(file, `${JSON.stringify(publication)}\n`);
  }

  /** Networks with stored publications. */
  async networks(): Promise<string[]> {
    const entries = await readdir(join(this.dir, 'publications'), { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  }

  /** The stored publications of a network, in chain order (ascending size). Unparsable files throw. */
  async readChain(network: string): Promise<unknown[]> {
    let names: string[];
    try {
      names = await readdir(join(this.dir, 'publications', network));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const files = names.filter((n) => /^[0-9]{12}\.json$/.test(n)).sort();
    const chain: unknown[] = [];
    for (const name of files)
      chain.push(JSON.parse(await readFile(join(this.dir, 'publications', network, name), 'utf8')));
    return chain;
  }

  async writeWitnessState(
    network: string,
    state: { origin: string; size: number; rootHash: string },
  ): Promise<void> {
    await writeAtomically(this.witnessFile(network), `${JSON.stringify(state)}\n`);
  }

  async readWitnessState(
    network: string,
  ): Promise<{ origin: string; size: number; rootHash: string } | undefined> {
    try {
      const value = JSON.parse(await readFile(this.witnessFile(network), 'utf8')) as {
        origin: string;
        size: number;
        rootHash: string;
      };
      if (
        typeof value.origin !== 'string' ||
        !Number.isSafeInteger(value.size) ||
        typeof value.rootHash !== 'string'
      )
        throw new Error(`witness state of ${network} is malformed`);
      return value;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }
}

/** Write `text` to `file` atomically and durably (temp + fsync + rename + folder fsync). */
export async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const folder = await open(dirname(file), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/** Byte-wise equality of two hashes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
