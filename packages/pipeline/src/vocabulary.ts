import type { Tokenizer } from '@evop/data';
import type { DecoderLayout } from '@evop/onnx';
import { PipelineError } from './pipeline-error.ts';

/**
 * Refuses a tokenizer with more tokens than the model's embedding has rows: its ids past the end would be fed to
 * the model (onnxruntime's CPU Gather does not check them) and every number after would be nonsense. Such a
 * tokenizer is another model's.
 */
export function checkVocabulary(
  layout: Pick<DecoderLayout, 'vocabSize'>,
  tokenizer: Pick<Tokenizer, 'vocabSize'>,
): void {
  if (tokenizer.vocabSize > layout.vocabSize)
    throw new PipelineError(
      'tokenizer',
      `has ${tokenizer.vocabSize} tokens but the model's embedding has ${layout.vocabSize}: it is another model's tokenizer`,
    );
}
