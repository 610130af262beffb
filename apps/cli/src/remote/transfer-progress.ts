import { SingleBar } from 'cli-progress';

const MIB = 1024 * 1024;
const mib = (bytes: number) => (bytes / MIB).toFixed(1);

/**
 * Bytes sent or received: a bar on a terminal; on a log (no TTY) a line when it starts and one when it ends, so
 * that a pipe gets no escape codes.
 */
export class TransferProgress {
  private bar: SingleBar | undefined;
  private done = 0;
  private finished = false;

  constructor(
    private readonly label: string,
    total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    if (stream.isTTY) {
      this.bar = new SingleBar({
        format: `${label} [{bar}] {percentage}% {doneMiB}/{totalMiB} MiB`,
        stream,
        hideCursor: true,
        barCompleteChar: '#',
        barIncompleteChar: '.',
      });
      this.bar.start(Math.max(total, 1), 0, { doneMiB: mib(0), totalMiB: mib(total) });
    } else stream.write(`${label} (${mib(total)} MiB)…\n`);
  }

  add(bytes: number): void {
    this.done += bytes;
    this.bar?.update(this.done, { doneMiB: mib(this.done) });
  }

  /** The transfer is over (said once): `message` (say, what the server does next) follows the bar. */
  finish(message?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (this.bar) this.bar.stop();
    else this.stream.write(`${this.label}: ${mib(this.done)} MiB done\n`);
    this.bar = undefined;
    if (message) this.stream.write(`${message}\n`);
  }

  /** The transfer failed: the bar goes, and nothing says it is done. */
  abort(): void {
    this.finished = true;
    this.bar?.stop();
    this.bar = undefined;
  }
}
