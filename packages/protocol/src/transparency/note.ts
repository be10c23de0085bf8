/**
 * C2SP signed notes, tlog checkpoints and tlog cosignatures (v1, Ed25519),
 * as Rogatory uses them (docs/protocol.md §18.3–§18.4). Parsing is strict:
 * one accepted encoding per note.
 */
import {
  concatBytes,
  equalBytes,
  fromBase64url,
  fromUtf8,
  sha256,
  toBase64url,
  utf8,
} from '../bytes.js';
import { fail } from '../errors.js';
import type { SigningKeyPair } from '../keys.js';
import { primitives } from '../primitives.js';
import { HASH_BYTES } from './merkle.js';

/** Signature type bytes of C2SP signed-note. */
export const NOTE_ED25519 = 0x01;
export const NOTE_COSIGNATURE_V1 = 0x04;
/** Bounds a verifier applies before any work (the note spec requires accepting at least 16 signatures). */
export const MAX_NOTE_BYTES = 64 * 1024;
export const MAX_NOTE_SIGNATURES = 64;

export interface NoteSignature {
  /** Key name (the log origin, or a witness's relay address). */
  readonly name: string;
  /** The 4-byte key id. */
  readonly keyId: Uint8Array;
  /** The signature bytes after the key id. */
  readonly signature: Uint8Array;
}

export interface Note {
  /** The signed text, ending in a newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** A public key a note signature is checked with: key name plus Ed25519 public key. */
export interface NoteVerifier {
  readonly name: string;
  readonly publicKey: Uint8Array;
}

/** A signer: key name plus Ed25519 key pair. */
export interface NoteSigner {
  readonly name: string;
  readonly key: SigningKeyPair;
}

/** Key id = SHA-256(name || 0x0A || type || publicKey)[:4]. */
export function noteKeyId(name: string, type: number, publicKey: Uint8Array): Uint8Array {
  return sha256(concatBytes(utf8(name), Uint8Array.of(0x0a, type), publicKey)).slice(0, 4);
}

const NAME_RE = /^[^\s+]{1,256}$/u;
// Control characters other than newline, anywhere in a note.
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u0009\u000b-\u001f\u007f]/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 with padding (RFC 4648 §4). */
export function toBase64(bytes: Uint8Array): string {
  const url = toBase64url(bytes).replace(/-/g, '+').replace(/_/g, '/');
  return url + '='.repeat((4 - (url.length % 4)) % 4);
}

/** Strict standard base64: padding required, unused bits zero. CHECKPOINT_INVALID otherwise. */
export function fromBase64(text: string, what: string): Uint8Array {
  if (!BASE64_RE.test(text)) fail('CHECKPOINT_INVALID', `${what}: not canonical base64`);
  try {
    return fromBase64url(text.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'), what);
  } catch (cause) {
    return fail('CHECKPOINT_INVALID', `${what}: not canonical base64`, { cause });
  }
}

function checkName(name: string, what: string): void {
  if (!NAME_RE.test(name))
    fail('CHECKPOINT_INVALID', `${what}: a key name is non-empty, without spaces or '+'`);
}

/** Parse a signed note (C2SP signed-note). CHECKPOINT_INVALID when malformed. */
export function parseNote(input: string | Uint8Array): Note {
  if (input.length > MAX_NOTE_BYTES) fail('CHECKPOINT_INVALID', 'note is too large');
  let s: string;
  try {
    s = typeof input === 'string' ? input : fromUtf8(input);
  } catch (cause) {
    return fail('CHECKPOINT_INVALID', 'note is not UTF-8', { cause });
  }
  if (utf8(s).length > MAX_NOTE_BYTES) fail('CHECKPOINT_INVALID', 'note is too large');
  if (CONTROL_RE.test(s)) fail('CHECKPOINT_INVALID', 'note contains a control character');
  const split = s.lastIndexOf('\n\n');
  if (split < 0 || !s.endsWith('\n')) fail('CHECKPOINT_INVALID', 'note has no signature block');
  const text = s.slice(0, split + 1);
  const lines = s.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES)
    fail('CHECKPOINT_INVALID', 'note has too many signatures');
  const signatures = lines.map(parseSignatureLine);
  return { text, signatures };
}

function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith('\u2014 '))
    fail('CHECKPOINT_INVALID', 'signature line does not start with an em dash');
  const parts = line.slice(2).split(' ');
  if (parts.length !== 2) fail('CHECKPOINT_INVALID', 'signature line is not "— name signature"');
  const [name, value] = parts as [string, string];
  checkName(name, 'signature line');
  const bytes = fromBase64(value, 'note signature');
  if (bytes.length < 5) fail('CHECKPOINT_INVALID', 'note signature is too short');
  return { name, keyId: bytes.slice(0, 4), signature: bytes.slice(4) };
}

/** The signature line `— name base64(keyId || signature)\n`. */
export function signatureLine(sig: NoteSignature): string {
  return `\u2014 ${sig.name} ${toBase64(concatBytes(sig.keyId, sig.signature))}\n`;
}

/** Encode a note: text, blank line, signature lines. */
export function encodeNote(note: Note): string {
  if (note.signatures.length === 0) fail('CHECKPOINT_INVALID', 'a note needs a signature');
  return `${note.text}\n${note.signatures.map(signatureLine).join('')}`;
}

// ---------------------------------------------------------------- checkpoints

/** A log's signed tree head (C2SP tlog-checkpoint), without extension lines. */
export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
}

const SIZE_RE = /^(?:0|[1-9][0-9]{0,15})$/;

/** The checkpoint note text: origin, size, base64 root hash, each ending in a newline. */
export function checkpointText(cp: Checkpoint): string {
  if (cp.origin.length === 0 || CONTROL_RE.test(cp.origin) || cp.origin.includes('\n'))
    fail('CHECKPOINT_INVALID', 'origin line is empty or has a control character');
  if (!Number.isSafeInteger(cp.size) || cp.size < 0)
    fail('CHECKPOINT_INVALID', 'tree size is not a safe integer');
  if (cp.rootHash.length !== HASH_BYTES) fail('CHECKPOINT_INVALID', 'root hash is not 32 bytes');
  return `${cp.origin}\n${cp.size}\n${toBase64(cp.rootHash)}\n`;
}

/** Parse checkpoint note text. Extension lines are refused (§18.3). CHECKPOINT_INVALID. */
export function parseCheckpointText(text: string): Checkpoint {
  if (!text.endsWith('\n')) fail('CHECKPOINT_INVALID', 'checkpoint text does not end in a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length !== 3)
    fail('CHECKPOINT_INVALID', 'a checkpoint has exactly three lines here (no extension lines)');
  const [origin, size, root] = lines as [string, string, string];
  if (origin.length === 0) fail('CHECKPOINT_INVALID', 'origin line is empty');
  if (!SIZE_RE.test(size) || !Number.isSafeInteger(Number(size)))
    fail('CHECKPOINT_INVALID', 'tree size is not a canonical decimal');
  const rootHash = fromBase64(root, 'root hash');
  if (rootHash.length !== HASH_BYTES) fail('CHECKPOINT_INVALID', 'root hash is not 32 bytes');
  return { origin, size: Number(size), rootHash };
}

/** Sign a checkpoint with the log key; the key name is the origin (§18.3). Returns the signed note. */
export function signCheckpoint(cp: Checkpoint, key: SigningKeyPair): string {
  const text = checkpointText(cp);
  const signature = primitives().signDetached(utf8(text), key.secretKey);
  return encodeNote({
    text,
    signatures: [
      { name: cp.origin, keyId: noteKeyId(cp.origin, NOTE_ED25519, key.publicKey), signature },
    ],
  });
}

/** What a checkpoint note verified to. */
export interface VerifiedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: Note;
}

/**
 * Verify a checkpoint note against its log's key (name = origin). KEY_UNKNOWN
 * when it is another log's; SIGNATURE_INVALID when no line carries a valid
 * signature by the log key, or a line naming the log key fails to verify.
 */
export function verifyCheckpoint(
  input: string | Uint8Array,
  log: NoteVerifier,
): VerifiedCheckpoint {
  const note = parseNote(input);
  const checkpoint = parseCheckpointText(note.text);
  if (checkpoint.origin !== log.name)
    fail('KEY_UNKNOWN', 'checkpoint of a log this verifier does not know');
  const id = noteKeyId(log.name, NOTE_ED25519, log.publicKey);
  const message = utf8(note.text);
  let verified = false;
  for (const sig of note.signatures) {
    if (sig.name !== log.name || !equalBytes(sig.keyId, id)) continue;
    if (
      sig.signature.length !== 64 ||
      !primitives().verifyDetached(sig.signature, message, log.publicKey)
    )
      fail('SIGNATURE_INVALID', 'checkpoint signature by the log key does not verify');
    verified = true;
  }
  if (!verified) fail('SIGNATURE_INVALID', 'checkpoint is not signed by the log key');
  return { checkpoint, note };
}

// ---------------------------------------------------------------- cosignatures

/** Largest cosignature time accepted: a POSIX time in seconds below 2^53. */
const MAX_TIME = Number.MAX_SAFE_INTEGER;

/** The message a v1 cosignature signs: "cosignature/v1\ntime <t>\n" || checkpoint text. */
export function cosignedMessage(text: string, time: number): Uint8Array {
  if (!Number.isSafeInteger(time) || time < 0)
    fail('CHECKPOINT_INVALID', 'cosignature time is not a POSIX time');
  return utf8(`cosignature/v1\ntime ${time}\n${text}`);
}

/** Cosign checkpoint text at `time` (POSIX seconds): a signature line value (C2SP tlog-cosignature, type 0x04). */
export function cosign(text: string, witness: NoteSigner, time: number): NoteSignature {
  checkName(witness.name, 'witness name');
  parseCheckpointText(text);
  const signature = primitives().signDetached(cosignedMessage(text, time), witness.key.secretKey);
  const stamp = new Uint8Array(8);
  new DataView(stamp.buffer).setBigUint64(0, BigInt(time));
  return {
    name: witness.name,
    keyId: noteKeyId(witness.name, NOTE_COSIGNATURE_V1, witness.key.publicKey),
    signature: concatBytes(stamp, signature),
  };
}

/** A cosignature that verified: who, and the time it states. */
export interface Cosigner {
  readonly name: string;
  readonly time: number;
}

/**
 * Check one signature line as a cosignature by `witness` on `text`. null when
 * the line is not by that witness (another name or key id); SIGNATURE_INVALID
 * when it is and does not verify.
 */
export function verifyCosignature(
  text: string,
  sig: NoteSignature,
  witness: NoteVerifier,
): Cosigner | null {
  if (sig.name !== witness.name) return null;
  if (!equalBytes(sig.keyId, noteKeyId(witness.name, NOTE_COSIGNATURE_V1, witness.publicKey)))
    return null;
  if (sig.signature.length !== 8 + 64)
    fail('SIGNATURE_INVALID', `cosignature by ${witness.name} has the wrong length`);
  const time = new DataView(sig.signature.buffer, sig.signature.byteOffset, 8).getBigUint64(0);
  if (time > BigInt(MAX_TIME))
    fail('SIGNATURE_INVALID', `cosignature by ${witness.name} has an impossible time`);
  const ok = primitives().verifyDetached(
    sig.signature.subarray(8),
    cosignedMessage(text, Number(time)),
    witness.publicKey,
  );
  if (!ok) fail('SIGNATURE_INVALID', `cosignature by ${witness.name} does not verify`);
  return { name: witness.name, time: Number(time) };
}

/** A checkpoint verified under its log key and a quorum of witnesses. */
export interface CosignedCheckpoint extends VerifiedCheckpoint {
  /** The trusted witnesses whose cosignature verified, one each. */
  readonly cosigners: readonly Cosigner[];
}

/**
 * The verifier rule of §18.6: the log's signature, then every cosignature
 * by a trusted witness (one that fails rejects the note), then at least
 * `quorum` distinct trusted witnesses. QUORUM_NOT_MET when fewer.
 */
export function verifyCosignedCheckpoint(options: {
  note: string | Uint8Array;
  log: NoteVerifier;
  witnesses: readonly NoteVerifier[];
  quorum: number;
}): CosignedCheckpoint {
  const { quorum, witnesses } = options;
  if (!Number.isSafeInteger(quorum) || quorum < 1)
    fail('SCHEMA_INVALID', 'quorum must be at least 1');
  const verified = verifyCheckpoint(options.note, options.log);
  const cosigners = new Map<string, Cosigner>();
  for (const sig of verified.note.signatures) {
    for (const witness of witnesses) {
      const c = verifyCosignature(verified.note.text, sig, witness);
      // One witness counts once, however many lines or configured copies it has.
      if (c) cosigners.set(`${witness.name}\n${toBase64(witness.publicKey)}`, c);
    }
  }
  if (cosigners.size < quorum)
    fail('QUORUM_NOT_MET', `${cosigners.size} of ${quorum} required witness cosignatures`);
  return { ...verified, cosigners: [...cosigners.values()] };
}
