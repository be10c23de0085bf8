/**
 * Runs a `transparency` vector (docs/protocol.md §18.9) with the public API
 * only, as another implementation would. Returns the success result, or
 * throws the ProtocolError of the refusal.
 */
import {
  ProtocolError,
  checkCheckpointsConsistent,
  fromBase64,
  fromBase64url,
  generateSigningKeyPair,
  logEntryLeafHash,
  parseLogEntry,
  toBase64,
  verifyCheckpoint,
  verifyConsistency,
  verifyCosignedCheckpoint,
  verifyInclusion,
  verifyPublication,
  witnessAddCheckpoint,
  type NoteVerifier,
} from '../../src/index.js';

type Key = { name: string; publicKey: string };
const verifier = (k: Key): NoteVerifier => ({
  name: k.name,
  publicKey: fromBase64url(k.publicKey),
});
const hashes = (list: unknown) => (list as string[]).map((h) => fromBase64(h, 'hash'));

export function runTransparencyVector(
  input: Record<string, unknown>,
  now: number,
): Record<string, unknown> {
  switch (input['check']) {
    case 'inclusion': {
      const v = verifyCosignedCheckpoint({
        note: input['checkpoint'] as string,
        log: verifier(input['log'] as Key),
        witnesses: (input['witnesses'] as Key[]).map(verifier),
        quorum: input['quorum'] as number,
      });
      const leaf = logEntryLeafHash(parseLogEntry(input['entry']));
      verifyInclusion({
        index: input['index'] as number,
        size: v.checkpoint.size,
        leafHash: leaf,
        proof: hashes(input['proof']),
        root: v.checkpoint.rootHash,
      });
      return {
        origin: v.checkpoint.origin,
        size: v.checkpoint.size,
        rootHash: toBase64(v.checkpoint.rootHash),
        leafHash: toBase64(leaf),
        cosigners: v.cosigners,
      };
    }
    case 'publication': {
      const held = input['held'] as { size: number; rootHash: string } | null;
      const v = verifyPublication({
        publication: input['publication'],
        root: input['root'] as never,
        held: held && { size: held.size, rootHash: fromBase64(held.rootHash, 'held root') },
      });
      return {
        network: v.network,
        size: v.size,
        rootHash: toBase64(v.rootHash),
        statements: v.statements.map((st) => ({ index: st.index, kind: st.kind })),
      };
    }
    case 'consistency':
      verifyConsistency({
        size1: input['size1'] as number,
        size2: input['size2'] as number,
        root1: fromBase64(input['root1'] as string, 'root1'),
        root2: fromBase64(input['root2'] as string, 'root2'),
        proof: hashes(input['proof']),
      });
      return { consistent: true };
    case 'witness': {
      const w = input['witness'] as { name: string; seed: string };
      const state = input['state'] as { origin: string; size: number; rootHash: string }[];
      const r = witnessAddCheckpoint({
        request: input['request'] as string,
        logs: (input['logs'] as Key[]).map(verifier),
        state: new Map(
          state.map((s) => [s.origin, { size: s.size, rootHash: fromBase64(s.rootHash, 'root') }]),
        ),
        witness: { name: w.name, key: generateSigningKeyPair(fromBase64url(w.seed)) },
        now,
      });
      if (!r.ok) {
        if (r.code === 'WITNESS_CONFLICT' && r.storedSize !== state[0]?.size)
          throw new Error('conflict does not carry the stored size');
        throw new ProtocolError(r.code, r.message);
      }
      return {
        origin: r.origin,
        size: r.state.size,
        rootHash: toBase64(r.state.rootHash),
        cosignature: r.cosignature,
      };
    }
    case 'checkpoints': {
      const log = verifier(input['log'] as Key);
      const [a, b] = (input['checkpoints'] as string[]).map(
        (n) => verifyCheckpoint(n, log).checkpoint,
      );
      checkCheckpointsConsistent(a!, b!, hashes(input['proof']));
      return { consistent: true };
    }
    default:
      throw new Error('unknown transparency check');
  }
}
