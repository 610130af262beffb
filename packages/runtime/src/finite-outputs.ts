import { ModelError } from '@evop/onnx';

/**
 * A model whose outputs are NaN or infinite cannot be scored: its perplexity, pooled states and cosines mean
 * nothing, and JSON (task results, reports) would carry them as null. Found where the numbers come out of
 * onnxruntime, so that `evop prune` exits 2 and a service job fails with this sentence instead of a schema dump
 * or a k-means failure far away.
 */
export function assertFinite(
  values: ArrayLike<number>,
  what: 'logits' | 'hidden states',
  where: (index: number) => string,
): void {
  for (let i = 0; i < values.length; i++)
    if (!Number.isFinite(values[i]))
      throw new ModelError(
        'not-finite',
        `the model's ${what} are not finite (${values[i]}) on ${where(i)}; the model cannot be scored`,
      );
}
