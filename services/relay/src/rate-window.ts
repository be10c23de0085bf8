/** Fixed-window request counters kept in memory: cheap enough for every request. */
export class RateWindow {
  private window = 0;
  private counts = new Map<string, number>();

  constructor(private readonly clock: () => number) {}

  /** True while `key` is within `limit` hits in the current minute. */
  hit(key: string, limit: number): boolean {
    const w = Math.floor(this.clock() / 60_000);
    if (w !== this.window) {
      this.window = w;
      this.counts = new Map();
    }
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    return n <= limit;
  }
}
