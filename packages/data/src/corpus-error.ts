import { UserError } from '@evop/config';

/** A corpus file evop cannot read; names the file, and the line where the problem is when there is one. */
export class CorpusError extends UserError {
  override readonly name = 'CorpusError';
}
