import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { RelayConfig } from './config.js';

/** `relay.tls` of the configuration: PEM files the relay serves HTTPS and WSS from. */
export type RelayTlsFiles = NonNullable<RelayConfig['relay']['tls']>;

export type RelayTlsField = 'relay.tls.certFile' | 'relay.tls.keyFile' | 'relay.tls.caFile';

/**
 * A TLS file the relay cannot serve from: which field, which file, why.
 * The message never quotes the file's content (it may be the private key).
 */
export class RelayTlsError extends Error {
  readonly code = 'TLS_FILE_REFUSED' as const;
  constructor(
    readonly field: RelayTlsField,
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${field} (${file}): ${reason}`);
    this.name = 'RelayTlsError';
  }
}

/** What is safe to log about a loaded certificate (no key material). */
export interface RelayCertificateInfo {
  /** SHA-256 fingerprint of the leaf certificate, colon-separated hex (as openssl prints it). */
  readonly fingerprint256: string;
  readonly subject: string;
  readonly subjectAltName: string | undefined;
  readonly notBefore: string;
  /** ISO 8601. */
  readonly notAfter: string;
}

/** Certificate, key and optional CA bundle, checked and ready for a secure context. */
export interface RelayTlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string;
  readonly info: RelayCertificateInfo;
}

/** A PEM file larger than this is not a certificate chain or a key. */
const MAX_PEM_BYTES = 1024 * 1024;

function readReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'not readable by the relay (permission denied)';
  if (code === 'EISDIR') return 'is a directory, not a file';
  return `cannot be read (${typeof code === 'string' ? code : 'unknown error'})`;
}

async function readPem(field: RelayTlsField, file: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new RelayTlsError(field, file, readReason(err));
  }
  if (bytes.length === 0) throw new RelayTlsError(field, file, 'is empty');
  if (bytes.length > MAX_PEM_BYTES)
    throw new RelayTlsError(field, file, 'too large for a PEM file (over 1 MiB)');
  return bytes.toString('utf8');
}

function parseCertificate(field: RelayTlsField, file: string, text: string): X509Certificate {
  if (!text.includes('-----BEGIN CERTIFICATE-----'))
    throw new RelayTlsError(field, file, 'not a PEM certificate (no BEGIN CERTIFICATE block)');
  try {
    return new X509Certificate(text);
  } catch {
    throw new RelayTlsError(field, file, 'not a PEM certificate (the certificate does not parse)');
  }
}

function parseKey(file: string, text: string): KeyObject {
  const field = 'relay.tls.keyFile';
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text))
    throw new RelayTlsError(
      field,
      file,
      'the private key is encrypted; give it unencrypted, readable by the relay only',
    );
  if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(text))
    throw new RelayTlsError(field, file, 'not a PEM private key (no BEGIN PRIVATE KEY block)');
  try {
    return createPrivateKey(text);
  } catch {
    throw new RelayTlsError(field, file, 'not a PEM private key (the key does not parse)');
  }
}

function isoDate(text: string): string {
  const t = Date.parse(text);
  return Number.isNaN(t) ? text : new Date(t).toISOString();
}

/**
 * Read and check the relay's TLS files: each readable and PEM, the key
 * unencrypted and matching the certificate, the certificate not expired
 * at `now`, and the three accepted together by OpenSSL. Any failure is a
 * RelayTlsError naming the field and the file.
 */
export async function readTlsMaterial(
  files: RelayTlsFiles,
  now: number = Date.now(),
): Promise<RelayTlsMaterial> {
  const cert = await readPem('relay.tls.certFile', files.certFile);
  const x509 = parseCertificate('relay.tls.certFile', files.certFile, cert);
  const key = await readPem('relay.tls.keyFile', files.keyFile);
  const keyObject = parseKey(files.keyFile, key);
  if (keyObject.type !== 'private' || !x509.checkPrivateKey(keyObject))
    throw new RelayTlsError(
      'relay.tls.keyFile',
      files.keyFile,
      `not the private key of the certificate in relay.tls.certFile (${files.certFile})`,
    );
  const notAfter = Date.parse(x509.validTo);
  if (!Number.isNaN(notAfter) && notAfter <= now)
    throw new RelayTlsError(
      'relay.tls.certFile',
      files.certFile,
      `the certificate expired on ${new Date(notAfter).toISOString()}`,
    );
  let ca: string | undefined;
  if (files.caFile !== undefined) {
    ca = await readPem('relay.tls.caFile', files.caFile);
    parseCertificate('relay.tls.caFile', files.caFile, ca);
  }
  try {
    createSecureContext({ cert, key, ...(ca === undefined ? {} : { ca }) });
  } catch {
    throw new RelayTlsError(
      'relay.tls.certFile',
      files.certFile,
      'OpenSSL refuses this certificate with this key',
    );
  }
  return {
    cert,
    key,
    ...(ca === undefined ? {} : { ca }),
    info: {
      fingerprint256: x509.fingerprint256,
      subject: x509.subject.replace(/\n/g, ', '),
      subjectAltName: x509.subjectAltName,
      notBefore: isoDate(x509.validFrom),
      notAfter: isoDate(x509.validTo),
    },
  };
}
