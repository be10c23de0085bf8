/**
 * A map that keeps only its newest entries: at most `maxEntries`, and at
 * most `maxBytes` by `sizeOf`. For immutable things the relay has just
 * handled and is about to need again (an envelope it accepted and now
 * forwards, a small object it received inline and now passes on), so the
 * forwarder does not read back what it wrote a moment ago.
 */
export class RecentMap<K, V> {
  private readonly entries = new Map<K, V>();
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
    private readonly sizeOf: (value: V) => number = () => 0,
  ) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0)
      throw new RangeError('maxEntries must be a non-negative integer');
  }

  get(key: K): V | undefined {
    return this.entries.get(key);
  }

  set(key: K, value: V): void {
    const size = this.sizeOf(value);
    this.delete(key);
    if (this.maxEntries === 0 || size > this.maxBytes) return;
    this.entries.set(key, value);
    this.bytes += size;
    // Maps iterate in insertion order: the first key is the oldest.
    for (const [oldest, old] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= this.sizeOf(old);
    }
  }

  delete(key: K): void {
    const old = this.entries.get(key);
    if (old === undefined) return;
    this.entries.delete(key);
    this.bytes -= this.sizeOf(old);
  }

  get size(): number {
    return this.entries.size;
  }

  get totalBytes(): number {
    return this.bytes;
  }
}
