import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer as HfTokenizerImpl } from '@huggingface/tokenizers';
import { type Tokenizer, TokenizerFileError } from './tokenizer.ts';

interface TokenizerConfig {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  add_bos_token?: boolean;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new TokenizerFileError(file, (err as Error).message);
  }
}

function tokenText(token: TokenizerConfig['bos_token']): string | undefined {
  return typeof token === 'string' ? token : (token?.content ?? undefined);
}

/**
 * A Hugging Face `tokenizer.json` (with the `tokenizer_config.json` beside it, when present), run by
 * Hugging Face's own pure-JS implementation. BOS follows the config: its `bos_token`, added when `add_bos_token`
 * is not false.
 */
export class HfTokenizer implements Tokenizer {
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly vocabSize: number;
  private readonly impl: HfTokenizerImpl;

  constructor(tokenizerJson: object, config: TokenizerConfig, file: string) {
    try {
      this.impl = new HfTokenizerImpl(tokenizerJson, config);
    } catch (err) {
      throw new TokenizerFileError(file, `not a Hugging Face tokenizer: ${(err as Error).message}`);
    }
    const bos = tokenText(config.bos_token);
    const eos = tokenText(config.eos_token);
    this.bosId = bos !== undefined && config.add_bos_token !== false ? this.impl.token_to_id(bos) : undefined;
    this.eosId = eos !== undefined ? this.impl.token_to_id(eos) : undefined;
    this.vocabSize = this.impl.get_vocab(true).size;
  }

  static fromFile(file: string): HfTokenizer {
    const json = readJson(file);
    if (typeof json !== 'object' || json === null || !('model' in json))
      throw new TokenizerFileError(file, 'not a Hugging Face tokenizer.json (no "model" field)');
    const configFile = join(dirname(file), 'tokenizer_config.json');
    const config = existsSync(configFile) ? (readJson(configFile) as TokenizerConfig) : {};
    return new HfTokenizer(json, config, file);
  }

  encode(text: string, options: { bos?: boolean } = {}): number[] {
    const ids = this.impl.encode(text, { add_special_tokens: false }).ids;
    return (options.bos ?? true) && this.bosId !== undefined ? [this.bosId, ...ids] : ids;
  }

  decode(ids: readonly number[]): string {
    return this.impl.decode([...ids], { skip_special_tokens: true });
  }
}
