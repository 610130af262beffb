import type { GenerationRecord } from '@evop/core';
import { SingleBar } from 'cli-progress';

/** Search progress: a bar on a terminal, one plain line per generation otherwise (logs, CI). */
export class Progress {
  private bar: SingleBar | undefined;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {}

  stage(message: string): void {
    this.stop();
    if (!this.quiet) this.stream.write(`${message}\n`);
  }

  start(strategy: string, total: number): void {
    this.stop();
    if (this.quiet || !this.stream.isTTY) return;
    this.bar = new SingleBar({
      format: `  ${strategy.padEnd(11)} [{bar}] {value}/{total} evaluations  best {best}`,
      stream: this.stream,
      hideCursor: true,
      barCompleteChar: '#',
      barIncompleteChar: '.',
    });
    this.bar.start(Math.max(1, Math.round(total)), 0, { best: '-' });
  }

  generation(strategy: string, r: GenerationRecord, total: number): void {
    const best = r.best ? r.best.fitness.toFixed(4) : '-';
    if (this.bar) {
      this.bar.setTotal(Math.max(Math.round(total), Math.round(r.spent)));
      this.bar.update(Math.round(r.spent), { best });
    } else if (!this.quiet)
      this.stream.write(
        `  ${strategy} generation ${r.generation}: best ${best}, mean ${r.mean.toFixed(4)}, ` +
          `${r.evaluations} evaluations (${r.cacheHits} cached), cost ${r.spent.toFixed(2)}\n`,
      );
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
