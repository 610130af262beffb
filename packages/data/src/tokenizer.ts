import { UserError } from '@evop/config';
/** The one interface every tokenizer offers, whatever file format it was read from. */
export interface Tokenizer {
  readonly vocabSize: number;
  /** Id prepended to each document under the model's BOS convention, or undefined when the model has none. */
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  /** Token ids of `text`, with the BOS id first when `bos` is true and the model has one. */
  encode(text: string, options?: { bos?: boolean }): number[];
  /** Text of `ids`; special tokens are left out. */
  decode(ids: readonly number[]): string;
}

/** Thrown when a tokenizer file cannot be read; names the file and what is wrong with it. */
export class TokenizerFileError extends UserError {
  override readonly name = 'TokenizerFileError';
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`tokenizer file '${file}': ${reason}`);
  }
}
