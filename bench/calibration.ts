import type { Tokenizer } from '@evop/data';
import type { DecoderLayout } from '@evop/onnx';
import { type ClusteredWindows, calibrate, poolWindows, type SearchSpec, splitWindows } from '@evop/pipeline';
import type { OnnxEvaluator } from '@evop/runtime';

/**
 * A setting's calibration as the search sees it, computed the way `evop prune` does (bench:quality, bench:front):
 * `spec`'s pool of windows from `corpora`, CCDS (or random) calibration sampled with `spec.seed`, the calibration
 * windows in cluster round-robin order, and the units' block influence (1 − cosine) on them.
 */
export async function searchCalibration(
  dense: OnnxEvaluator,
  layout: DecoderLayout,
  corpora: string[][],
  tokenizer: Tokenizer,
  spec: SearchSpec,
): Promise<{ search: ClusteredWindows; influence: number[] }> {
  const windows = poolWindows(corpora, tokenizer, spec).pool;
  const states = spec.sampling === 'ccds' ? await dense.pooledStates(windows) : undefined;
  const calibration = calibrate(spec, windows, states, layout.hiddenSize);
  const { search } = splitWindows(windows, calibration);
  return { search, influence: (await dense.unitCosines(search.windows)).map((c) => 1 - c) };
}
