/**
 * Publications (docs/protocol.md §18.10, design D1) as the relay checks
 * them: the protocol's `verifyPublication`, with the log key given as the
 * network root the relay trusts.
 */
import {
  verifyPublication as verifyWithRoot,
  type KeyRef,
  type Publication,
  type VerifiedPublication,
} from '@rogatory/protocol';

export type { Publication, VerifiedPublication };

/** Verify a publication against the network root and the checkpoint held (null: none). */
export function verifyPublication(options: {
  publication: unknown;
  logKey: KeyRef;
  held: { size: number; rootHash: Uint8Array } | null;
}): VerifiedPublication {
  return verifyWithRoot({
    publication: options.publication,
    root: options.logKey,
    held: options.held,
  });
}
