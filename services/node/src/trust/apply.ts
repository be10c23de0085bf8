import {
  isProtocolError,
  validator,
  ManifestSchema,
  type PublishedStatement,
  type TrustStore,
} from '@rogatory/protocol';

const manifestShape = validator(ManifestSchema, 'manifest');

/** The version of the last manifest among `statements`, or null. */
export function lastEdition(statements: readonly PublishedStatement[]): number | null {
  let edition: number | null = null;
  for (const s of statements)
    if (s.kind === 'manifest') edition = manifestShape.parse(s.statement).body.version;
  return edition;
}

/**
 * Apply the statements of verified publications of one network to a trust
 * store, in entry order: manifests with `addManifest` (succession checked),
 * rotations with `addKeyRotation`, revocations with `addRevocation`;
 * introductions are logged by hash only and carry nothing to apply.
 *
 * A log is history: an edition older than the one held was superseded long
 * ago (the node's trust folder may start at a later edition than the log)
 * and is passed over, as are rotations and revocations of members the held
 * edition no longer lists (their keys resolve to nothing). What is refused:
 * a newest edition older than the held one, or another edition of the same
 * version (MANIFEST_ROLLBACK), a skipped version (MANIFEST_CHAIN_BROKEN), a
 * newest edition already expired at `now` (MANIFEST_EXPIRED), and any
 * statement that does not verify. The store may be left half-updated by a
 * refusal: apply to a scratch store first. With `history`, a chain already
 * accepted is replayed at start: a trust folder ahead of the log is no rollback.
 */
export function applyStatements(
  trust: TrustStore,
  network: string,
  statements: readonly PublishedStatement[],
  options: { now?: number; history?: boolean } = {},
): void {
  let lastManifest = -1;
  statements.forEach((s, i) => {
    if (s.kind === 'manifest') lastManifest = i;
  });
  if (lastManifest >= 0 && options.history !== true) {
    const newest = manifestShape.parse(statements[lastManifest]!.statement);
    const held = trust.manifest(network);
    if (held && newest.body.version < held.body.version)
      // Let the protocol name it (MANIFEST_ROLLBACK).
      trust.addManifest(newest);
  }
  statements.forEach((s, i) => {
    switch (s.kind) {
      case 'manifest': {
        const manifest = manifestShape.parse(s.statement);
        const held = trust.manifest(network);
        if (held && manifest.body.version < held.body.version) return;
        trust.addManifest(
          manifest,
          i === lastManifest && options.now !== undefined ? { now: options.now } : {},
        );
        return;
      }
      case 'rotation':
        passOverUnknown(() => trust.addKeyRotation(s.statement));
        return;
      case 'revocation':
        passOverUnknown(() => trust.addRevocation(s.statement));
        return;
      case 'introduction':
        return;
    }
  });
}

function passOverUnknown(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (isProtocolError(err, 'KEY_UNKNOWN')) return;
    throw err;
  }
}
