import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  TrustStore,
  isProtocolError,
  validator,
  ManifestSchema,
  type KeyRef,
  type Manifest,
} from '@rogatory/protocol';
import { nodeFail } from '../errors.js';
import { whyUnreadable } from '../files/file-errors.js';
import { writeFileAtomic } from '../files/atomic-write.js';

const manifestShape = validator(ManifestSchema, 'manifest');

/**
 * Build a trust store pinned to the node's own network root from manifests:
 * the own network's first (it publishes the anchors of its peers), then the
 * others. A manifest that does not verify is refused with its protocol code.
 */
export function buildTrust(
  pinned: { network: string; root: KeyRef },
  manifests: readonly unknown[],
): TrustStore {
  const trust = new TrustStore({ pinned: [pinned] });
  const parsed = manifests.map((m) => parseManifest(m));
  const ordered = [
    ...parsed.filter((m) => m.body.network === pinned.network),
    ...parsed.filter((m) => m.body.network !== pinned.network),
  ];
  if (!ordered.some((m) => m.body.network === pinned.network))
    nodeFail('CONFIG_INVALID', `no manifest of the node's own network ${pinned.network}`);
  for (const manifest of ordered) {
    try {
      trust.addManifest(manifest);
    } catch (cause) {
      if (isProtocolError(cause))
        nodeFail('VERIFICATION_FAILED', `manifest of ${manifest.body.network} does not verify`, {
          cause,
          detail: cause.code,
        });
      throw cause;
    }
  }
  return trust;
}

/** A manifest's shape (CONFIG_INVALID with detail SCHEMA_INVALID), not its signature. */
export function parseManifest(value: unknown): Manifest {
  try {
    return manifestShape.parse(value);
  } catch (cause) {
    return nodeFail('CONFIG_INVALID', 'a manifest does not match its schema', {
      cause,
      detail: 'SCHEMA_INVALID',
    });
  }
}

/** Write the manifests the trust store holds, one file per network. */
export async function writeTrustMaterial(dir: string, trust: TrustStore): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const network of trust.networks()) {
    const manifest = trust.manifest(network)!;
    await writeFileAtomic(join(dir, `${network}.json`), `${JSON.stringify(manifest, null, 2)}\n`, {
      mode: 0o644,
    });
  }
}

/** Read every manifest file of the trust directory (JSON, unverified), in file-name order. */
export async function readTrustFolder(dir: string): Promise<unknown[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch (cause) {
    return nodeFail('CONFIG_INVALID', `the trust folder ${dir} ${whyUnreadable(cause)}`, { cause });
  }
  const manifests: unknown[] = [];
  for (const name of names) {
    try {
      manifests.push(JSON.parse(await readFile(join(dir, name), 'utf8')));
    } catch (cause) {
      nodeFail('CONFIG_INVALID', `trust file ${join(dir, name)} is unreadable or not JSON`, {
        cause,
      });
    }
  }
  return manifests;
}

/** Read every manifest file of the trust directory and build the trust store. */
export async function loadTrust(
  dir: string,
  pinned: { network: string; root: KeyRef },
): Promise<TrustStore> {
  return buildTrust(pinned, await readTrustFolder(dir));
}
