import { HfTokenizer } from './hf-tokenizer.ts';
import { Llama2cTokenizer } from './llama2c-tokenizer.ts';
import type { Tokenizer } from './tokenizer.ts';

/** A tokenizer from its file: `*.json` is a Hugging Face tokenizer, anything else the llama2.c binary format. */
export function loadTokenizer(file: string): Tokenizer {
  return file.endsWith('.json') ? HfTokenizer.fromFile(file) : Llama2cTokenizer.fromFile(file);
}
