import { fail } from './errors.js';

/** `authority@network`, lowercase: the only accepted spelling. */
export const ADDRESS_RE = /^([a-z0-9][a-z0-9-]{0,62})@([a-z0-9][a-z0-9-]{0,31})$/;

export interface ParsedAddress {
  readonly local: string;
  readonly network: string;
}

export function parseAddress(address: string): ParsedAddress {
  const m = ADDRESS_RE.exec(address);
  if (!m) return fail('ADDRESS_INVALID', 'address must be lowercase authority@network');
  return { local: m[1]!, network: m[2]! };
}

export function networkOf(address: string): string {
  return parseAddress(address).network;
}

export function isAddress(value: unknown): value is string {
  return typeof value === 'string' && ADDRESS_RE.test(value);
}
