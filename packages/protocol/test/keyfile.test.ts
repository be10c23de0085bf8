import { beforeAll, describe, expect, it } from 'vitest';
import { isProtocolError } from '../src/errors.js';
import { generateEncryptionKeyPair, generateSigningKeyPair } from '../src/keys.js';
import {
  KDF_LIMITS,
  openEncryptionKey,
  openSigningKey,
  sealEncryptionKey,
  sealSigningKey,
} from '../src/keyfile.js';
import { ready } from '../src/sodium.js';

beforeAll(ready);

const limits = KDF_LIMITS.interactive;

describe('passphrase-sealed keys', () => {
  it('round-trip signing and encryption keys, and the file holds no key bytes', () => {
    const sign = generateSigningKeyPair();
    const sealed = sealSigningKey(sign, {
      passphrase: 'correct horse battery',
      purpose: 'relay-identity',
      limits,
    });
    expect(
      openSigningKey(sealed, { passphrase: 'correct horse battery', purpose: 'relay-identity' })
        .kid,
    ).toBe(sign.kid);
    expect(JSON.stringify(sealed)).not.toContain(
      Buffer.from(sign.secretKey.subarray(0, 32)).toString('base64url'),
    );
    const enc = generateEncryptionKeyPair();
    const sealedEnc = sealEncryptionKey(enc, {
      passphrase: 'correct horse battery',
      purpose: 'authority-encryption',
      limits,
    });
    expect(
      openEncryptionKey(sealedEnc, {
        passphrase: 'correct horse battery',
        purpose: 'authority-encryption',
      }).kid,
    ).toBe(enc.kid);
  });

  it('refuse a wrong passphrase, another purpose, tampering and short passphrases', () => {
    const sealed = sealSigningKey(generateSigningKeyPair(), {
      passphrase: 'correct horse battery',
      purpose: 'relay-identity',
      limits,
    });
    const code = (fn: () => unknown) => {
      try {
        fn();
        return undefined;
      } catch (err) {
        return isProtocolError(err) ? err.code : 'OTHER';
      }
    };
    expect(
      code(() =>
        openSigningKey(sealed, { passphrase: 'wrong horse battery', purpose: 'relay-identity' }),
      ),
    ).toBe('PASSPHRASE_INVALID');
    expect(
      code(() =>
        openSigningKey(sealed, {
          passphrase: 'correct horse battery',
          purpose: 'authority-identity',
        }),
      ),
    ).toBe('KEY_WRONG_ROLE');
    expect(
      code(() =>
        openSigningKey(
          { ...sealed, purpose: 'authority-identity' },
          { passphrase: 'correct horse battery', purpose: 'authority-identity' },
        ),
      ),
    ).toBe('PASSPHRASE_INVALID');
    expect(
      code(() =>
        openSigningKey(
          { ...sealed, opslimit: 0 },
          { passphrase: 'correct horse battery', purpose: 'relay-identity' },
        ),
      ),
    ).toBe('SCHEMA_INVALID');
    expect(
      code(() =>
        sealSigningKey(generateSigningKeyPair(), { passphrase: 'short', purpose: 'x', limits }),
      ),
    ).toBe('LIMIT_EXCEEDED');
  });
});

describe('injectable key derivation (Node worker thread)', () => {
  it('seals and opens on a worker with the same format and result as in-process', async () => {
    const { sealSecretAsync, openSecretAsync, openSecret, sealSecret } =
      await import('../src/keyfile.js');
    const {
      deriveKeyInWorker,
      deriveKeyInWorkerSync,
      pwhashStrInWorkerSync,
      pwhashStrVerifyInWorker,
      pwhashStrVerifyInWorkerSync,
    } = await import('../src/node/index.js');
    const { sodium } = await import('../src/sodium.js');
    const secret = Uint8Array.from({ length: 32 }, (_, i) => i);
    const options = { passphrase: 'correct horse battery', purpose: 'relay-identity' };
    const inWorker = await sealSecretAsync(secret, {
      ...options,
      limits,
      derive: deriveKeyInWorker,
    });
    expect(openSecret(inWorker, options)).toEqual(secret);
    const inProcess = sealSecret(secret, { ...options, limits });
    expect(await openSecretAsync(inProcess, { ...options, derive: deriveKeyInWorker })).toEqual(
      secret,
    );
    expect(await openSecretAsync(inProcess, { ...options, derive: deriveKeyInWorkerSync })).toEqual(
      secret,
    );
    const wrong = await openSecretAsync(inProcess, {
      ...options,
      passphrase: 'wrong horse battery',
      derive: deriveKeyInWorker,
    }).catch((e: unknown) => e);
    expect(isProtocolError(wrong, 'PASSPHRASE_INVALID')).toBe(true);
    const hash = pwhashStrInWorkerSync('pässword 1', limits.opslimit, limits.memlimit);
    expect(sodium().crypto_pwhash_str_verify(hash, 'pässword 1')).toBe(true);
    expect(pwhashStrVerifyInWorkerSync(hash, 'pässword 1')).toBe(true);
    expect(await pwhashStrVerifyInWorker(hash, 'pässword 2')).toBe(false);
  });
});
