import type { JobEvent } from '@evop/queue/job-events';
import { SingleBar } from 'cli-progress';

/**
 * A job followed from afar: on a terminal, a bar of its progress with its stage, generation and best fitness; on a
 * log (no TTY), a line for each stage and each generation. Notes (reconnecting, …) go on their own line.
 */
export class WatchProgress {
  private bar: SingleBar | undefined;
  private stage: string | null = null;
  private generation = '-';
  private best = '-';
  private percent = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  event(event: JobEvent): void {
    if (event.type === 'generation') {
      const { record, strategy } = event;
      this.generation = `${strategy} ${record.generation}`;
      if (record.best) this.best = record.best.fitness.toFixed(4);
      if (!this.stream.isTTY)
        this.stream.write(
          `  ${strategy} generation ${record.generation}: best ${this.best}, mean ${record.mean.toFixed(4)}, ` +
            `${record.evaluations} evaluations\n`,
        );
    } else {
      const stage = event.stage ?? event.status;
      if (!this.stream.isTTY && stage !== this.stage)
        this.stream.write(event.stage ? `${event.status}: ${event.stage}\n` : `${event.status}\n`);
      this.stage = stage;
    }
    this.bar ??= this.stream.isTTY ? this.startBar() : undefined;
    if (event.type === 'status') this.percent = Math.round(100 * event.progress);
    this.bar?.update(this.percent, this.payload());
  }

  note(message: string): void {
    if (this.bar) this.bar.stop();
    this.bar = undefined;
    this.stream.write(`evop: ${message}\n`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  private payload() {
    return { stage: (this.stage ?? '').padEnd(11), generation: this.generation, best: this.best };
  }

  private startBar(): SingleBar {
    const bar = new SingleBar({
      format: '{stage} [{bar}] {percentage}%  generation {generation}  best {best}',
      stream: this.stream,
      hideCursor: true,
      barCompleteChar: '#',
      barIncompleteChar: '.',
    });
    bar.start(100, this.percent, this.payload());
    return bar;
  }
}
