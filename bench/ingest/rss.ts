/** Samples resident memory during each phase, to show the ingest path does not grow. */
export class RssSampler {
  private phase = 'setup';
  private readonly samples = new Map<string, number[]>();
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 250) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  /**
   * Starts a phase. With `node --expose-gc` (npm run bench:ingest) the garbage of the previous
   * phase is collected first, so each phase's maximum is its own footprint, not its predecessor's.
   */
  enter(phase: string): void {
    this.sample();
    (globalThis as { gc?: () => void }).gc?.();
    this.phase = phase;
    this.sample();
  }

  sample(): void {
    const list = this.samples.get(this.phase) ?? [];
    list.push(process.memoryUsage.rss());
    this.samples.set(this.phase, list);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Per phase: samples, first, min, max and last RSS in MiB. */
  summary(): { phase: string; samples: number; first: number; min: number; max: number; last: number }[] {
    const mib = (bytes: number) => Math.round(bytes / 1024 / 1024);
    return [...this.samples].map(([phase, list]) => ({
      phase,
      samples: list.length,
      first: mib(list[0] ?? 0),
      min: mib(Math.min(...list)),
      max: mib(Math.max(...list)),
      last: mib(list[list.length - 1] ?? 0),
    }));
  }
}
