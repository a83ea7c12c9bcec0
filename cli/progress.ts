import cliProgress from 'cli-progress';

/**
 * Progress of a long maintenance command: a live bar on a terminal, plain lines (at most one
 * every few seconds per step, plus the last one) when the output is a log file or a pipe,
 * where redrawn bars would turn into noise.
 */
export interface ProgressReporter {
  update(step: string, done: number, total: number): void;
  /** A line of its own (finishes the current bar first). */
  note(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Minimum time between two plain lines of the same step. */
  intervalMs?: number;
  now?: () => number;
}

export function createProgressReporter(options: ProgressOptions = {}): ProgressReporter {
  const stream = options.stream ?? process.stdout;
  return stream.isTTY === true ? new BarReporter(stream) : new LineReporter(stream, options.intervalMs ?? 5_000, options.now ?? Date.now);
}

class BarReporter implements ProgressReporter {
  private bar: cliProgress.SingleBar | undefined;
  private step: string | undefined;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(step: string, done: number, total: number): void {
    if (this.step !== step || this.bar === undefined) {
      this.stop();
      this.step = step;
      this.bar = new cliProgress.SingleBar(
        { stream: this.stream, format: `${step.padEnd(12)} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted}`, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, done);
      return;
    }
    this.bar.setTotal(total);
    this.bar.update(done);
  }

  note(line: string): void {
    this.stop();
    this.stream.write(`${line}\n`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
    this.step = undefined;
  }
}

class LineReporter implements ProgressReporter {
  private step: string | undefined;
  private lastLine = 0;
  private lastDone = -1;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  update(step: string, done: number, total: number): void {
    const changed = step !== this.step;
    const finished = done >= total && done !== this.lastDone;
    if (!changed && !finished && this.now() - this.lastLine < this.intervalMs) return;
    this.step = step;
    this.lastLine = this.now();
    this.lastDone = done;
    const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
    this.stream.write(`${step}: ${done}/${total} (${percent}%)\n`);
  }

  note(line: string): void {
    this.stream.write(`${line}\n`);
  }

  stop(): void {}
}
