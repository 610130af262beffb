export { HfTokenizer } from './hf-tokenizer.ts';
export { Llama2cTokenizer } from './llama2c-tokenizer.ts';
export { loadTokenizer } from './load-tokenizer.ts';
export { type Tokenizer, TokenizerFileError } from './tokenizer.ts';
