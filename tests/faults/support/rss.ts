import { readFileSync } from 'node:fs';

/** Resident set size of a process in MiB (from /proc), or undefined when it is gone. */
export function rssMB(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Math.round((Number(kb) / 1024) * 10) / 10;
  } catch {
    return undefined;
  }
}

/** Samples the RSS of named processes every `intervalMs` (1 s): the first value and the peak of each. */
export class RssSampler {
  private readonly start = new Map<string, number>();
  private readonly peak = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  /** Rounds of sampling so far. */
  samples = 0;

  constructor(
    private readonly pids: () => Readonly<Record<string, number | undefined>>,
    intervalMs = 1000,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    this.samples++;
    for (const [name, pid] of Object.entries(this.pids())) {
      if (pid === undefined) continue;
      const mb = rssMB(pid);
      if (mb === undefined) continue;
      if (!this.start.has(name)) this.start.set(name, mb);
      this.peak.set(name, Math.max(this.peak.get(name) ?? 0, mb));
    }
  }

  stop(): { start: Record<string, number>; peak: Record<string, number> } {
    clearInterval(this.timer);
    this.sample();
    return { start: Object.fromEntries(this.start), peak: Object.fromEntries(this.peak) };
  }
}
