import { threadModule } from '@evop/config';
import { Piscina } from 'piscina';
import { invalid } from './problem.ts';
import type { CheckOutcome, CorpusCheck, ModelCheck, ModelChecked, UploadCheck } from './upload-checks.ts';

export interface UploadCheckerOptions {
  /** Uploads checked at once (default 1: each check is CPU-bound, and the server's own work needs a core). */
  threads?: number;
}

/**
 * Checks uploaded models and corpora in threads (upload-checks.ts), so that the API keeps answering every
 * tenant while a model of many GiB or a large corpus is read. Threads exit when idle: a check's memory goes
 * with them.
 */
export class UploadChecker {
  private readonly piscina: Piscina;

  constructor(options: UploadCheckerOptions = {}) {
    this.piscina = new Piscina({
      ...threadModule('upload-checks', import.meta.url),
      minThreads: 0,
      maxThreads: options.threads ?? 1,
      idleTimeout: 10_000,
    });
  }

  /** The model's identity and layout, its tokenizer checked against it; a refusal is a 422 naming the field. */
  model(check: ModelCheck): Promise<ModelChecked> {
    return this.run({ kind: 'model', ...check });
  }

  /** The corpus's number of documents; a refusal is a 422 naming the field. */
  corpus(check: CorpusCheck): Promise<{ documents: number }> {
    return this.run({ kind: 'corpus', ...check });
  }

  close(): Promise<void> {
    return this.piscina.destroy();
  }

  private async run<T>(check: UploadCheck): Promise<T> {
    const outcome = (await this.piscina.run(check)) as CheckOutcome<T>;
    if ('ok' in outcome) return outcome.ok;
    throw invalid(outcome.field, outcome.reason);
  }
}
