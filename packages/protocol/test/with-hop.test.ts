import { beforeAll, describe, expect, it } from 'vitest';
import { sha256, toHex } from '../src/bytes.js';
import { canonicalBytes } from '../src/encoding.js';
import {
  decodeEnvelope,
  encodeEnvelope,
  ENVELOPE_LIMITS,
  parseEnvelope,
  signEnvelope,
  withHop,
  type Envelope,
  type Hop,
} from '../src/envelope.js';
import { ready } from '../src/sodium.js';
import { buildTestWorld, type TestWorld } from '../src/testing/index.js';
import { codeOf } from './support/code-of.js';

const NOW = Date.UTC(2026, 10, 1);
let world: TestWorld;

function makeEnvelope(maxHops = 4): Envelope {
  const sn = world.authority('sn-moj@wacap');
  return signEnvelope(
    {
      id: 'AAAAAAAAAAAAAAAAAAAAAA',
      sender: sn.address,
      recipients: ['kz-gpo@casc', 'ng-agf@wacap'],
      createdAt: NOW,
      expiresAt: NOW + 86_400_000,
      maxHops,
      dossier: { id: toHex(sha256(Uint8Array.of(1))), size: 100 },
      chunks: [{ id: toHex(sha256(Uint8Array.of(2))), size: 1_048_593 }],
    },
    sn.identity,
  );
}

/** The envelope as a relay holds it after receiving it: decoded, checked, deep-frozen. */
function received(maxHops = 4): Envelope {
  return decodeEnvelope(encodeEnvelope(makeEnvelope(maxHops)));
}

const hop = (relay: string, receivedAt = NOW): Hop => ({ relay, receivedAt });

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: NOW });
});

describe('withHop on a received envelope', () => {
  it('returns a checked, deep-frozen envelope that shares the signed parts', () => {
    const decoded = received();
    const first = withHop(decoded, hop('relay@wacap'));
    const result = withHop(first, hop('relay@casc', NOW + 1));

    expect(result.hops).toEqual([hop('relay@wacap'), hop('relay@casc', NOW + 1)]);
    expect(Object.isFrozen(result)).toBe(true);
    expect(Object.isFrozen(result.hops)).toBe(true);
    expect(Object.isFrozen(result.hops[0])).toBe(true);
    expect(Object.isFrozen(result.hops[1])).toBe(true);
    expect(() => {
      result.hops.push(hop('relay@global'));
    }).toThrow(TypeError);
    expect(() => {
      (result.hops[1] as { relay: string }).relay = 'relay@global';
    }).toThrow(TypeError);

    // Checked already: parsing it again is the identity.
    expect(parseEnvelope(result)).toBe(result);
    expect(result.body).toBe(decoded.body);
    expect(result.signature).toBe(decoded.signature);
    // The input is left as it was.
    expect(decoded.hops).toEqual([]);
    expect(first.hops).toEqual([hop('relay@wacap')]);
  });

  it('encodes exactly as the same value built afresh', () => {
    const decoded = received();
    const result = withHop(withHop(decoded, hop('relay@wacap')), hop('relay@casc'));
    const plain: unknown = JSON.parse(JSON.stringify(result));
    expect(encodeEnvelope(result)).toEqual(canonicalBytes(plain));
    // And decodes back to an equal envelope.
    expect(decodeEnvelope(encodeEnvelope(result))).toEqual(plain);
  });

  it('does not keep caller-owned hop objects or extra fields of them', () => {
    const decoded = received();
    const mine = hop('relay@wacap');
    const result = withHop(decoded, mine);
    expect(result.hops[0]).not.toBe(mine);
    mine.receivedAt = NOW + 5;
    expect(result.hops[0]).toEqual(hop('relay@wacap'));
    expect(Object.isFrozen(mine)).toBe(false);
  });

  it('refuses a hop that does not match the hop schema', () => {
    const decoded = received();
    expect(codeOf(() => withHop(decoded, hop('not an address')))).toBe('SCHEMA_INVALID');
    expect(codeOf(() => withHop(decoded, hop('Relay@wacap')))).toBe('SCHEMA_INVALID');
    expect(codeOf(() => withHop(decoded, { ...hop('relay@wacap'), note: 'x' } as Hop))).toBe(
      'SCHEMA_INVALID',
    );
    expect(codeOf(() => withHop(decoded, { relay: 'relay@wacap' } as Hop))).toBe('SCHEMA_INVALID');
    expect(codeOf(() => withHop(decoded, hop('relay@wacap', 1.5)))).toBe('SCHEMA_INVALID');
  });

  it('refuses more hops than body.maxHops', () => {
    let result = received(2);
    result = withHop(result, hop('relay@wacap'));
    result = withHop(result, hop('relay@casc'));
    expect(codeOf(() => withHop(result, hop('relay@global')))).toBe('HOP_LIMIT_EXCEEDED');
    expect(result.hops).toHaveLength(2);
  });

  it('refuses more hops than ENVELOPE_LIMITS.maxHops', () => {
    let result = received(ENVELOPE_LIMITS.maxHops);
    for (let i = 0; i < ENVELOPE_LIMITS.maxHops; i++)
      result = withHop(result, hop(`relay-${i}@wacap`));
    expect(result.hops).toHaveLength(ENVELOPE_LIMITS.maxHops);
    expect(codeOf(() => withHop(result, hop('relay@global')))).toBe('HOP_LIMIT_EXCEEDED');
  });

  it('refuses a relay that is already on the path (a loop)', () => {
    const once = withHop(withHop(received(), hop('relay@wacap')), hop('relay@casc'));
    expect(codeOf(() => withHop(once, hop('relay@wacap', NOW + 10)))).toBe('HOP_LIMIT_EXCEEDED');
    expect(codeOf(() => withHop(once, hop('relay@casc')))).toBe('HOP_LIMIT_EXCEEDED');
  });
});

describe('withHop on an envelope that was not decoded', () => {
  it('appends the hop to a new, unfrozen envelope', () => {
    const plain = makeEnvelope();
    const result = withHop(plain, hop('relay@wacap'));
    expect(result).not.toBe(plain);
    expect(result.hops).toEqual([hop('relay@wacap')]);
    expect(plain.hops).toEqual([]);
    expect(result.body).toEqual(plain.body);
    expect(result.signature).toEqual(plain.signature);
    expect(Object.isFrozen(result)).toBe(false);
    expect(Object.isFrozen(result.hops)).toBe(false);
    expect(encodeEnvelope(result)).toEqual(
      canonicalBytes({ ...plain, hops: [hop('relay@wacap')] }),
    );
  });

  it('applies the same hop-path limits', () => {
    const plain = makeEnvelope(1);
    const result = withHop(plain, hop('relay@wacap'));
    expect(codeOf(() => withHop(result, hop('relay@casc')))).toBe('HOP_LIMIT_EXCEEDED');
    expect(codeOf(() => withHop(makeEnvelope(), hop('relay@wacap')))).toBeUndefined();
    expect(
      codeOf(() => withHop(withHop(makeEnvelope(), hop('relay@wacap')), hop('relay@wacap'))),
    ).toBe('HOP_LIMIT_EXCEEDED');
  });
});
