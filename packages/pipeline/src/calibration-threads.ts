import { threadModule } from '@evop/config';
import { TokenWindows } from '@evop/data';
import { Piscina } from 'piscina';
import type { Calibration } from './calibration.ts';
import type { CalibrationTask, PoolResult } from './calibration-thread.ts';
import type { SearchSpec } from './search-spec.ts';

/**
 * Worker threads for calibration's CPU-heavy steps, so that a coordinator's event loop stays free to renew its
 * jobs' BullMQ locks, serve other jobs and stop on SIGTERM while a corpus is tokenized or k-means runs. An aborted
 * signal ends its task at once: piscina stops the thread that runs it.
 */
export class CalibrationThreads {
  private readonly piscina = new Piscina({
    ...threadModule('calibration-thread', import.meta.url),
    // Threads start when a job needs one and end when idle: most of a coordinator's time is spent waiting.
    minThreads: 0,
    idleTimeout: 30_000,
  });

  /**
   * The pool of windows from the corpus files (`poolWindows`), the windows each corpus gave, and whether the
   * tokenizer adds BOS.
   */
  async poolWindows(
    corpora: string[],
    tokenizer: string,
    spec: SearchSpec,
    signal: AbortSignal,
  ): Promise<{ pool: TokenWindows; corpusWindows: number[]; bos: boolean }> {
    const task: CalibrationTask = { op: 'pool', corpora, tokenizer, spec };
    const { tokens, corpusWindows, bos } = (await this.piscina.run(task, { signal })) as PoolResult;
    return { pool: new TokenWindows(spec.seqLen, tokens), corpusWindows, bos };
  }

  /** The first `count` windows of `seqLen` tokens of a corpus file (`windowsFromDocuments`). */
  async windows(
    corpus: string,
    tokenizer: string,
    seqLen: number,
    count: number,
    signal: AbortSignal,
  ): Promise<TokenWindows> {
    const task: CalibrationTask = { op: 'windows', corpus, tokenizer, seqLen, count };
    return new TokenWindows(seqLen, (await this.piscina.run(task, { signal })) as Int32Array);
  }

  /** `calibrate` on a thread. */
  async calibrate(
    spec: SearchSpec,
    pool: TokenWindows,
    states: Float32Array | undefined,
    hiddenSize: number,
    signal: AbortSignal,
  ): Promise<Calibration> {
    const task: CalibrationTask = {
      op: 'calibrate',
      spec,
      seqLen: pool.seqLen,
      pool: pool.tokens,
      ...(states ? { states } : {}),
      hiddenSize,
    };
    return (await this.piscina.run(task, { signal })) as Calibration;
  }

  close(): Promise<void> {
    return this.piscina.destroy();
  }
}
