import { describe, expect, it } from 'vitest';
import { RecentMap } from '../src/recent.js';

const byLength = (value: string): number => value.length;

/** Which of `keys` the map still holds. */
function kept<K, V>(map: RecentMap<K, V>, keys: readonly K[]): K[] {
  return keys.filter((key) => map.get(key) !== undefined);
}

describe('RecentMap', () => {
  it('keeps at most maxEntries, evicting the oldest first', () => {
    const map = new RecentMap<string, number>(3);
    for (const [i, key] of ['a', 'b', 'c', 'd', 'e'].entries()) map.set(key, i);
    expect(map.size).toBe(3);
    expect(kept(map, ['a', 'b', 'c', 'd', 'e'])).toEqual(['c', 'd', 'e']);
    expect(map.get('c')).toBe(2);
    expect(map.get('e')).toBe(4);
  });

  it('keeps at most maxBytes by sizeOf, evicting the oldest first', () => {
    const map = new RecentMap<string, string>(100, 10, byLength);
    map.set('a', 'xxxx');
    map.set('b', 'yyyy');
    expect(map.totalBytes).toBe(8);
    map.set('c', 'zzz');
    // 11 bytes together: 'a' goes, the two newest stay.
    expect(kept(map, ['a', 'b', 'c'])).toEqual(['b', 'c']);
    expect(map.totalBytes).toBe(7);
    map.set('d', 'wwwwwwwww');
    // 9 bytes alone: everything older has to go.
    expect(kept(map, ['a', 'b', 'c', 'd'])).toEqual(['d']);
    expect(map.totalBytes).toBe(9);
    expect(map.size).toBe(1);
  });

  it('does not store a value larger than maxBytes, and keeps what it held', () => {
    const map = new RecentMap<string, string>(10, 5, byLength);
    map.set('a', 'aa');
    map.set('b', 'bb');
    map.set('big', 'xxxxxx');
    expect(map.get('big')).toBeUndefined();
    expect(kept(map, ['a', 'b'])).toEqual(['a', 'b']);
    expect(map.size).toBe(2);
    expect(map.totalBytes).toBe(4);
    // Exactly maxBytes fits (evicting the rest).
    map.set('full', 'xxxxx');
    expect(map.get('full')).toBe('xxxxx');
    expect(map.totalBytes).toBe(5);
    expect(map.size).toBe(1);
  });

  it('replaces the value when a key is set again and makes it the newest', () => {
    const map = new RecentMap<string, string>(3, Number.POSITIVE_INFINITY, byLength);
    map.set('a', 'a1');
    map.set('b', 'b1');
    map.set('c', 'c1');
    map.set('a', 'a-two');
    expect(map.size).toBe(3);
    expect(map.get('a')).toBe('a-two');
    // The old value's size is gone from the total, the new one's is in it.
    expect(map.totalBytes).toBe(2 + 2 + 5);
    map.set('d', 'd1');
    // 'b' is now the oldest, not 'a'.
    expect(kept(map, ['a', 'b', 'c', 'd'])).toEqual(['a', 'c', 'd']);
  });

  it('adjusts totalBytes on delete, and ignores an unknown key', () => {
    const map = new RecentMap<string, string>(10, 100, byLength);
    map.set('a', 'aaa');
    map.set('b', 'bbbbb');
    map.delete('a');
    expect(map.get('a')).toBeUndefined();
    expect(map.size).toBe(1);
    expect(map.totalBytes).toBe(5);
    map.delete('a');
    map.delete('never');
    expect(map.size).toBe(1);
    expect(map.totalBytes).toBe(5);
    map.delete('b');
    expect(map.size).toBe(0);
    expect(map.totalBytes).toBe(0);
  });

  it('stores nothing with maxEntries 0', () => {
    const map = new RecentMap<string, string>(0, 100, byLength);
    map.set('a', 'aaa');
    expect(map.get('a')).toBeUndefined();
    expect(map.size).toBe(0);
    expect(map.totalBytes).toBe(0);
  });

  it('refuses a negative or non-integer maxEntries', () => {
    expect(() => new RecentMap(-1)).toThrow(RangeError);
    expect(() => new RecentMap(1.5)).toThrow(RangeError);
    expect(() => new RecentMap(Number.NaN)).toThrow(RangeError);
  });
});
