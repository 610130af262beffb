import type { Tokenizer } from '@evop/data';
import type { DecoderLayout } from '@evop/onnx';
import { calibrate, poolWindows, type SearchSpec, type SearchWindows, splitWindows } from '@evop/pipeline';
import type { OnnxEvaluator } from '@evop/runtime';

/**
 * A setting's calibration as the search sees it, computed the way `evop prune` does (bench:quality, bench:front):
 * `spec`'s pool of windows from `corpora`, CCDS (or random) calibration sampled with `spec.seed`, the calibration
 * and validation windows in cluster round-robin order (`splitWindows`), and the units' block influence (1 − cosine)
 * on the calibration windows.
 */
export async function searchCalibration(
  dense: OnnxEvaluator,
  layout: DecoderLayout,
  corpora: string[][],
  tokenizer: Tokenizer,
  spec: SearchSpec,
): Promise<{ search: SearchWindows; influence: number[] }> {
  const windows = poolWindows(corpora, tokenizer, spec).pool;
  const states = spec.sampling === 'ccds' ? await dense.pooledStates(windows) : undefined;
  const sets = splitWindows(windows, calibrate(spec, windows, states, layout.hiddenSize));
  const influence = (await dense.unitCosines(sets.calibration.windows)).map((c) => 1 - c);
  return { search: sets.search, influence };
}
