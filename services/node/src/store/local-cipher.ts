import {
  canonicalBytes,
  concatBytes,
  fromUtf8,
  randomBytes,
  sodium,
  utf8,
  type Validator,
} from '@rogatory/protocol';
import { nodeFail } from '../errors.js';

const NONCE_BYTES = 24;
const KEY_BYTES = 32;
/** crypto_kdf context: exactly 8 bytes. */
const KDF_CONTEXT = 'rgnode01';
const SUBKEY = { records: 1, audit: 2 } as const;

/**
 * Encryption at rest of everything the node decrypted for display
 * (dossier content, attachment manifests with their keys, metadata used
 * for search): XChaCha20-Poly1305 under a subkey of the local storage key,
 * a random 24-byte nonce per record, and additional data naming the table
 * and the row, so a record cannot be moved to another row or table without
 * failing to open. Stored form: nonce || ciphertext.
 */
export class LocalCipher {
  readonly #records: Uint8Array;
  readonly #audit: Uint8Array;

  constructor(storageKey: Uint8Array) {
    if (storageKey.length !== KEY_BYTES) throw new RangeError('the storage key is 32 bytes');
    const s = sodium();
    this.#records = s.crypto_kdf_derive_from_key(
      KEY_BYTES,
      SUBKEY.records,
      KDF_CONTEXT,
      storageKey,
    );
    this.#audit = s.crypto_kdf_derive_from_key(KEY_BYTES, SUBKEY.audit, KDF_CONTEXT, storageKey);
  }

  seal(table: string, rowId: string, plaintext: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_BYTES);
    const ct = sodium().crypto_aead_xchacha20poly1305_ietf_encrypt(
      plaintext,
      associatedData(table, rowId),
      null,
      nonce,
      this.#records,
    );
    return concatBytes(nonce, ct);
  }

  /** LOCAL_DATA_TAMPERED when the record was altered, moved to another row, or sealed under another key. */
  open(table: string, rowId: string, sealed: Uint8Array): Uint8Array {
    if (sealed.length < NONCE_BYTES + 16)
      return nodeFail('LOCAL_DATA_TAMPERED', `record ${table}/${rowId} is truncated`);
    try {
      return sodium().crypto_aead_xchacha20poly1305_ietf_decrypt(
        null,
        sealed.subarray(NONCE_BYTES),
        associatedData(table, rowId),
        sealed.subarray(0, NONCE_BYTES),
        this.#records,
      );
    } catch (cause) {
      return nodeFail('LOCAL_DATA_TAMPERED', `record ${table}/${rowId} does not decrypt`, {
        cause,
      });
    }
  }

  sealJson(table: string, rowId: string, value: unknown): Uint8Array {
    return this.seal(table, rowId, canonicalBytes(value));
  }

  /** Decrypt and check a JSON record against its schema (a record that decrypts but does not match is tampering or a bug). */
  openJson<T>(table: string, rowId: string, sealed: Uint8Array, shape: Validator<T>): T {
    const text = fromUtf8(this.open(table, rowId, sealed));
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      return nodeFail('LOCAL_DATA_TAMPERED', `record ${table}/${rowId} is not JSON`, { cause });
    }
    if (!shape.check(value))
      return nodeFail('LOCAL_DATA_TAMPERED', `record ${table}/${rowId} does not match its schema`);
    return value;
  }

  /** Keyed MAC (crypto_auth, HMAC-SHA-512-256) under the audit subkey: binds audit heads to this node's passphrase. */
  mac(data: Uint8Array): Uint8Array {
    return sodium().crypto_auth(data, this.#audit);
  }

  /** Constant-time MAC check. */
  verifyMac(mac: Uint8Array, data: Uint8Array): boolean {
    try {
      return sodium().crypto_auth_verify(mac, data, this.#audit);
    } catch {
      return false;
    }
  }

  /** Erase the subkeys (the node is closing). */
  destroy(): void {
    sodium().memzero(this.#records);
    sodium().memzero(this.#audit);
  }
}

function associatedData(table: string, rowId: string): Uint8Array {
  return concatBytes(
    utf8('rogatory-node/v1/record'),
    Uint8Array.of(0),
    utf8(table),
    Uint8Array.of(0),
    utf8(rowId),
  );
}
