import { createHash } from 'node:crypto';

/**
 * A small deterministic PRNG (sfc32) for fuzz inputs: the same seed gives
 * the same sequence of choices on every machine. Not for anything secret.
 */
export class SeededRandom {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private readonly label: string;

  constructor(seed: number | string) {
    this.label = String(seed);
    const digest = createHash('sha256')
      .update(`rogatory-fuzz/${String(seed)}`)
      .digest();
    this.a = digest.readUInt32LE(0);
    this.b = digest.readUInt32LE(4);
    this.c = digest.readUInt32LE(8);
    this.d = digest.readUInt32LE(12);
    for (let i = 0; i < 12; i++) this.next();
  }

  /** Uniform 32-bit unsigned integer. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n >= 1)) throw new RangeError('n must be at least 1');
    return Math.floor((this.next() / 0x1_0000_0000) * n);
  }

  /** Uniform integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('nothing to pick from');
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }

  /** A 32-bit seed for fast-check's `fc.sample`, derived from this stream. */
  seed(): number {
    return this.next() | 0;
  }

  /** An independent stream for a named sub-task: it depends on the seed and the label only, not on earlier draws. */
  fork(label: string): SeededRandom {
    return new SeededRandom(`${this.label}/${label}`);
  }
}
