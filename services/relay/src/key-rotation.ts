import { readFile, writeFile } from 'node:fs/promises';
import { deriveKeyInWorker } from '@rogatory/protocol/node';
import {
  KDF_LIMITS,
  KeyRotationSchema,
  ROTATION_OVERLAP_MAX_MS,
  generateSigningKeyPair,
  networkOf,
  openSigningKeyAsync,
  sealSigningKeyAsync,
  signKeyRotation,
  validator,
  type KeyRotation,
  type SigningKeyPair,
  type TrustStore,
} from '@rogatory/protocol';

const DAY = 24 * 3600 * 1000;
/** Default time between `keys rotate` and the rotation's `effectiveAt`: the secretariat publishes before then. */
export const RELAY_ROTATION_LEAD_MS = 7 * DAY;
const KEY_PURPOSE = 'relay-identity';
const rotationShape = validator(KeyRotationSchema, 'relay key rotation');

/** Where a pending rotation lives, beside the configured key file (so a restarted relay, or every instance, finds it). */
export function pendingKeyPaths(keyFile: string): { key: string; rotation: string } {
  return { key: `${keyFile}.pending.json`, rotation: `${keyFile}.rotation.json` };
}

/**
 * The relay's signing key, switchable while the relay runs: every part of
 * the relay (acceptance evidences, peer calls, witness cosignatures) holds
 * this one object and reads the key at each signature. It signs with the
 * current key until the trusted manifest lists the pending key for the
 * relay and the rotation's `effectiveAt` has come (docs/protocol.md §6.4).
 */
export class RelayKeyring implements SigningKeyPair {
  readonly alg = 'ed25519' as const;
  private current: SigningKeyPair;
  private pending: PendingKey | undefined;

  private readonly load: (() => Promise<PendingKey | undefined>) | undefined;

  /** `load` finds a rotation made since the relay started (`keys rotate` beside a running relay). */
  constructor(
    current: SigningKeyPair,
    pending?: PendingKey,
    load?: () => Promise<PendingKey | undefined>,
  ) {
    this.current = current;
    this.pending = pending;
    this.load = load;
  }

  /** Take up a pending key made since start (no-op when one is held or none was made). */
  async refresh(): Promise<void> {
    if (this.pending || !this.load) return;
    const found = await this.load().catch(() => undefined);
    if (found && found.key.kid !== this.current.kid) this.pending = found;
  }

  get kid(): string {
    return this.current.kid;
  }

  get publicKey(): Uint8Array {
    return this.current.publicKey;
  }

  get secretKey(): Uint8Array {
    return this.current.secretKey;
  }

  /** Key ids the relay can sign with now or after a switch (its manifest entry must list one). */
  kids(): string[] {
    return [this.current.kid, ...(this.pending ? [this.pending.key.kid] : [])];
  }

  /** The pending key id and when it takes effect, if a rotation waits. */
  pendingKey(): { kid: string; effectiveAt: number } | undefined {
    return this.pending
      ? { kid: this.pending.key.kid, effectiveAt: this.pending.effectiveAt }
      : undefined;
  }

  /**
   * Switch to the pending key if `trust` lists it for `relayId` and
   * `effectiveAt` has come. Returns `switched`, or the time at which to
   * look again (listed, not yet effective), or `waiting` (not listed).
   */
  settle(trust: TrustStore, relayId: string, now: number): 'switched' | 'waiting' | number {
    const pending = this.pending;
    if (!pending) return 'waiting';
    const listed = trust.relays(networkOf(relayId)).find((r) => r.id === relayId)?.key.kid;
    if (listed !== pending.key.kid) return 'waiting';
    if (now < pending.effectiveAt) return pending.effectiveAt;
    // The old secret is not wiped: a signature in progress may still read it.
    this.current = pending.key;
    this.pending = undefined;
    return 'switched';
  }
}

interface PendingKey {
  readonly key: SigningKeyPair;
  readonly effectiveAt: number;
}

/**
 * Open the relay key, and a pending rotated-in key beside it if
 * `rogatory-relay keys rotate` made one (both sealed under the same passphrase).
 */
export async function openRelayKeyring(options: {
  keyFile: string;
  passphrase: string;
}): Promise<RelayKeyring> {
  const open = async (path: string): Promise<SigningKeyPair> =>
    openSigningKeyAsync(JSON.parse(await readFile(path, 'utf8')), {
      derive: deriveKeyInWorker,
      passphrase: options.passphrase,
      purpose: KEY_PURPOSE,
    });
  const current = await open(options.keyFile);
  const paths = pendingKeyPaths(options.keyFile);
  const load = async (): Promise<PendingKey | undefined> => {
    const rotationText = await readFile(paths.rotation, 'utf8').catch(() => undefined);
    if (rotationText === undefined) return undefined;
    const rotation = rotationShape.parse(JSON.parse(rotationText));
    // After a switch and a restart the configured file is the old key: nothing is pending.
    if (rotation.body.oldKid !== current.kid) return undefined;
    const pending = await open(paths.key);
    if (pending.kid !== rotation.body.newKey.kid)
      throw new Error('the pending relay key does not match its rotation statement');
    return { key: pending, effectiveAt: rotation.body.effectiveAt };
  };
  // The passphrase stays with the loader (as in the environment): a rotation made later is taken up live.
  return new RelayKeyring(current, await load(), load);
}

/**
 * `rogatory-relay keys rotate`: a new relay key, sealed under the relay
 * passphrase beside the configured key file, and the KeyRotation the
 * current key signs, for `rogatory-network relay update <id> --rotation`.
 * Refuses while a rotation is pending. Nothing is written on failure.
 */
export async function rotateRelayKey(options: {
  relayId: string;
  keyFile: string;
  passphrase: string;
  now: number;
  effectiveAt?: number;
}): Promise<{ rotation: KeyRotation; oldKid: string; newKid: string; effectiveAt: number }> {
  const paths = pendingKeyPaths(options.keyFile);
  const exists = await readFile(paths.rotation, 'utf8').then(
    () => true,
    () => false,
  );
  if (exists) throw new RotationError('a relay key rotation is pending already');
  const effectiveAt = options.effectiveAt ?? options.now + RELAY_ROTATION_LEAD_MS;
  if (!Number.isSafeInteger(effectiveAt) || effectiveAt <= options.now)
    throw new RotationError('effectiveAt must be in the future');
  if (effectiveAt > options.now + ROTATION_OVERLAP_MAX_MS)
    throw new RotationError('effectiveAt must be at most 30 days ahead');
  // Wrong passphrase: openSigningKeyAsync fails (PASSPHRASE_INVALID) before anything is made.
  const old = await openSigningKeyAsync(JSON.parse(await readFile(options.keyFile, 'utf8')), {
    derive: deriveKeyInWorker,
    passphrase: options.passphrase,
    purpose: KEY_PURPOSE,
  });
  const key = generateSigningKeyPair();
  try {
    const rotation = signKeyRotation({
      subject: options.relayId,
      oldKey: old,
      newKey: key,
      effectiveAt,
      notAfter: effectiveAt + 730 * DAY,
    });
    const sealed = await sealSigningKeyAsync(key, {
      passphrase: options.passphrase,
      purpose: KEY_PURPOSE,
      limits: KDF_LIMITS.moderate,
      derive: deriveKeyInWorker,
    });
    await writeFile(paths.key, `${JSON.stringify(sealed, null, 2)}\n`, {
      mode: 0o600,
      flag: 'wx',
    });
    // The rotation file last: its presence marks a complete pending rotation.
    await writeFile(paths.rotation, `${JSON.stringify(rotation, null, 2)}\n`, {
      mode: 0o644,
      flag: 'wx',
    });
    return { rotation, oldKid: old.kid, newKid: key.kid, effectiveAt };
  } finally {
    old.secretKey.fill(0);
    key.secretKey.fill(0);
  }
}

/** A refusal of `keys rotate` (the CLI prints its message and exits 1). */
export class RotationError extends Error {
  override readonly name = 'RotationError';
}
