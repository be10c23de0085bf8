import { beforeAll, describe, expect, it } from 'vitest';
import { isProtocolError } from '../src/errors.js';
import { generateEncryptionKeyPair, generateSigningKeyPair } from '../src/keys.js';
import { KDF_LIMITS, openEncryptionKey, openSigningKey, sealEncryptionKey, sealSigningKey } from '../src/keyfile.js';
import { ready } from '../src/sodium.js';

beforeAll(ready);

const limits = KDF_LIMITS.interactive;

describe('passphrase-sealed keys', () => {
  it('round-trip signing and encryption keys, and the file holds no key bytes', () => {
    const sign = generateSigningKeyPair();
    const sealed = sealSigningKey(sign, { passphrase: 'correct horse battery', purpose: 'relay-identity', limits });
    expect(openSigningKey(sealed, { passphrase: 'correct horse battery', purpose: 'relay-identity' }).kid).toBe(sign.kid);
    expect(JSON.stringify(sealed)).not.toContain(Buffer.from(sign.secretKey.subarray(0, 32)).toString('base64url'));
    const enc = generateEncryptionKeyPair();
    const sealedEnc = sealEncryptionKey(enc, { passphrase: 'correct horse battery', purpose: 'authority-encryption', limits });
    expect(openEncryptionKey(sealedEnc, { passphrase: 'correct horse battery', purpose: 'authority-encryption' }).kid).toBe(enc.kid);
  });

  it('refuse a wrong passphrase, another purpose, tampering and short passphrases', () => {
    const sealed = sealSigningKey(generateSigningKeyPair(), { passphrase: 'correct horse battery', purpose: 'relay-identity', limits });
    const code = (fn: () => unknown) => {
      try {
        fn();
        return undefined;
      } catch (err) {
        return isProtocolError(err) ? err.code : 'OTHER';
      }
    };
    expect(code(() => openSigningKey(sealed, { passphrase: 'wrong horse battery', purpose: 'relay-identity' }))).toBe('PASSPHRASE_INVALID');
    expect(code(() => openSigningKey(sealed, { passphrase: 'correct horse battery', purpose: 'authority-identity' }))).toBe('KEY_WRONG_ROLE');
    expect(code(() => openSigningKey({ ...sealed, purpose: 'authority-identity' }, { passphrase: 'correct horse battery', purpose: 'authority-identity' }))).toBe('PASSPHRASE_INVALID');
    expect(code(() => openSigningKey({ ...sealed, opslimit: 0 }, { passphrase: 'correct horse battery', purpose: 'relay-identity' }))).toBe('SCHEMA_INVALID');
    expect(code(() => sealSigningKey(generateSigningKeyPair(), { passphrase: 'short', purpose: 'x', limits }))).toBe('LIMIT_EXCEEDED');
  });
});
