import { HfTokenizer } from './hf-tokenizer.ts';
import { Llama2cTokenizer } from './llama2c-tokenizer.ts';
import type { Tokenizer } from './tokenizer.ts';

/** A tokenizer from its file: `*.json` is a Hugging Face tokenizer, anything else the llama2.c binary format. */
export function loadTokenizer(file: string): Tokenizer {
  return file.endsWith('.json') ? HfTokenizer.fromFile(file) : Llama2cTokenizer.fromFile(file);
}

/** The Hugging Face file beside `tokenizer.json` that says whether and which BOS is added. */
export const TOKENIZER_CONFIG = 'tokenizer_config.json';

/**
 * A tokenizer's files as artifacts: the tokenizer under its own name, then its `tokenizer_config.json` when it
 * has one, so that linked side by side they load as they did on the user's machine.
 */
export function tokenizerFiles(
  name: string,
  sha256: string,
  configSha256?: string | null,
): { name: string; sha256: string }[] {
  return configSha256
    ? [
        { name, sha256 },
        { name: TOKENIZER_CONFIG, sha256: configSha256 },
      ]
    : [{ name, sha256 }];
}
