/**
 * The witness (C2SP tlog-witness add-checkpoint) as a pure state transition,
 * and fork detection between two checkpoints of one log (docs/protocol.md
 * §18.5, §18.7). No I/O: the caller checks and persists the returned state
 * in one atomic step, before it answers.
 */
import { equalBytes } from '../bytes.js';
import { fail, isProtocolError, type ErrorCode } from '../errors.js';
import { MAX_PROOF_HASHES, emptyRoot, verifyConsistency } from './merkle.js';
import {
  MAX_NOTE_BYTES,
  cosign,
  fromBase64,
  parseCheckpointText,
  parseNote,
  signatureLine,
  toBase64,
  verifyCheckpoint,
  type Checkpoint,
  type NoteSigner,
  type NoteVerifier,
} from './note.js';

/** What a witness remembers of one log: the last checkpoint it cosigned. */
export interface WitnessLogState {
  readonly size: number;
  readonly rootHash: Uint8Array;
}

/** A C2SP tlog-witness add-checkpoint request. */
export interface AddCheckpointRequest {
  /** The size of the last checkpoint the witness cosigned, as the log believes. */
  readonly oldSize: number;
  /** Consistency proof from oldSize to the checkpoint's size. */
  readonly proof: readonly Uint8Array[];
  /** The checkpoint, a signed note. */
  readonly checkpoint: string;
}

const OLD_RE = /^old (0|[1-9][0-9]{0,15})$/;

/** Encode a request body: "old N\n", proof lines, a blank line, the checkpoint note. */
export function encodeAddCheckpointRequest(request: AddCheckpointRequest): string {
  const proof = request.proof.map((h) => `${toBase64(h)}\n`).join('');
  return `old ${request.oldSize}\n${proof}\n${request.checkpoint}`;
}

/** Parse a request body. CHECKPOINT_INVALID when malformed. */
export function parseAddCheckpointRequest(body: string): AddCheckpointRequest {
  if (body.length > 2 * MAX_NOTE_BYTES) fail('CHECKPOINT_INVALID', 'witness request is too large');
  const split = body.indexOf('\n\n');
  if (split < 0)
    fail('CHECKPOINT_INVALID', 'witness request has no blank line before the checkpoint');
  const lines = body.slice(0, split).split('\n');
  const old = OLD_RE.exec(lines[0]!);
  if (!old || !Number.isSafeInteger(Number(old[1])))
    fail('CHECKPOINT_INVALID', 'witness request has no valid old size line');
  const proofLines = lines.slice(1);
  if (proofLines.length > MAX_PROOF_HASHES)
    fail('CHECKPOINT_INVALID', 'more than 63 consistency proof lines');
  const proof = proofLines.map((line) => {
    const h = fromBase64(line, 'consistency proof line');
    if (h.length !== 32) fail('CHECKPOINT_INVALID', 'consistency proof line is not a 32-byte hash');
    return h;
  });
  return { oldSize: Number(old[1]), proof, checkpoint: body.slice(split + 2) };
}

/** A witness's answer: a cosignature and the state to persist, or a refusal with its code. */
export type WitnessOutcome =
  | {
      readonly ok: true;
      readonly origin: string;
      /** Persist this for `origin` before sending `cosignature`. */
      readonly state: WitnessLogState;
      /** The response body: one cosignature line. */
      readonly cosignature: string;
    }
  | {
      readonly ok: false;
      readonly code: ErrorCode;
      readonly message: string;
      /** With WITNESS_CONFLICT: the size the witness last cosigned (0 if none). */
      readonly storedSize?: number;
    };

/**
 * The add-checkpoint rules of §18.5, in order. `logs` are the logs the
 * witness serves (name = origin, the log's root key); `state` what it last
 * cosigned per origin; `now` the time in milliseconds.
 */
export function witnessAddCheckpoint(options: {
  request: string | AddCheckpointRequest;
  logs: readonly NoteVerifier[];
  state: ReadonlyMap<string, WitnessLogState>;
  witness: NoteSigner;
  now: number;
}): WitnessOutcome {
  try {
    return addCheckpoint(options);
  } catch (err) {
    if (isProtocolError(err)) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
}

function addCheckpoint(options: {
  request: string | AddCheckpointRequest;
  logs: readonly NoteVerifier[];
  state: ReadonlyMap<string, WitnessLogState>;
  witness: NoteSigner;
  now: number;
}): WitnessOutcome {
  const request =
    typeof options.request === 'string'
      ? parseAddCheckpointRequest(options.request)
      : options.request;
  // Step 1 covers the note too; then the origin decides which key verifies.
  const { origin } = parseCheckpointText(parseNote(request.checkpoint).text);
  const log = options.logs.find((l) => l.name === origin);
  if (!log) return fail('KEY_UNKNOWN', 'checkpoint of a log this witness does not serve');
  const { checkpoint } = verifyCheckpoint(request.checkpoint, log);
  if (request.oldSize > checkpoint.size)
    fail('CHECKPOINT_ROLLBACK', 'checkpoint is smaller than the old size');
  const stored = options.state.get(origin);
  const storedSize = stored?.size ?? 0;
  if (request.oldSize !== storedSize)
    return {
      ok: false,
      code: 'WITNESS_CONFLICT',
      message: 'old size is not the last cosigned size',
      storedSize,
    };
  if (checkpoint.size === 0 && !equalBytes(checkpoint.rootHash, emptyRoot()))
    fail('PROOF_INVALID', 'an empty tree has the empty root');
  if (stored === undefined || stored.size === 0) {
    if (request.proof.length !== 0)
      fail('PROOF_INVALID', 'a proof from the empty tree must be empty');
  } else if (stored.size === checkpoint.size) {
    if (request.proof.length !== 0)
      fail('PROOF_INVALID', 'a proof between equal sizes must be empty');
    if (!equalBytes(stored.rootHash, checkpoint.rootHash))
      fail('LOG_FORK_DETECTED', 'same size as the cosigned checkpoint, another root');
  } else {
    verifyConsistency({
      size1: stored.size,
      size2: checkpoint.size,
      root1: stored.rootHash,
      root2: checkpoint.rootHash,
      proof: request.proof,
    });
  }
  const time = Math.floor(options.now / 1000);
  if (!Number.isSafeInteger(time) || time < 1)
    fail('SCHEMA_INVALID', 'witness clock is not a POSIX time');
  const line = signatureLine(
    cosign(request.checkpoint.slice(0, textLength(request.checkpoint)), options.witness, time),
  );
  return {
    ok: true,
    origin,
    state: { size: checkpoint.size, rootHash: checkpoint.rootHash },
    cosignature: line,
  };
}

/** Length of a note's text (up to and including the newline before the last blank line). */
function textLength(note: string): number {
  return note.lastIndexOf('\n\n') + 1;
}

/**
 * Compare two checkpoints of one log, both already verified under the log
 * key (§18.7). Equal sizes must have equal roots; otherwise `proof` must be
 * a valid consistency proof from the smaller to the larger. LOG_FORK_DETECTED
 * when they cannot both be true, with the failed proof as cause.
 */
export function checkCheckpointsConsistent(
  a: Checkpoint,
  b: Checkpoint,
  proof: readonly Uint8Array[],
): void {
  if (a.origin !== b.origin) fail('SCHEMA_INVALID', 'checkpoints of two different logs');
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  if (small.size === large.size) {
    if (!equalBytes(small.rootHash, large.rootHash))
      fail('LOG_FORK_DETECTED', 'two roots for one tree size');
    return;
  }
  try {
    verifyConsistency({
      size1: small.size,
      size2: large.size,
      root1: small.rootHash,
      root2: large.rootHash,
      proof,
    });
  } catch (cause) {
    if (isProtocolError(cause, 'PROOF_INVALID'))
      fail('LOG_FORK_DETECTED', 'no valid consistency proof between two checkpoints', { cause });
    throw cause;
  }
}
