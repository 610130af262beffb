import type { Candidate, EvaluationResult, Evaluator } from '@evop/core';
import type { TokenWindows } from '@evop/data';
import type { OnnxEvaluator } from '@evop/runtime';

/** How many of n windows fidelity f measures: the first ⌈f·n⌉, at least one. */
export const prefixLength = (fidelity: number, n: number) => Math.max(1, Math.ceil(fidelity * n));

/**
 * The search's Evaluator on an onnxruntime evaluator: fidelity f measures the first ⌈f·n⌉ windows, n the
 * calibration windows, which `splitWindows` orders round-robin over the CCDS clusters; past fidelity 1 the
 * validation windows after them (at most all of them). The local run and a service worker both use it.
 * Masks are scored by `OnnxEvaluator.forSearch()`: the gated graph, or the trie evaluator (`EVOP_EVALUATOR`).
 */
export class PrefixEvaluator implements Evaluator {
  constructor(
    private readonly onnx: OnnxEvaluator,
    private readonly windows: TokenWindows,
    /** The cluster of each window: results then carry per-cluster sums. */
    private readonly clusters?: readonly number[],
    /** How many of the windows are the calibration windows, the rest validation windows (default: all). */
    private readonly calibration = windows.count,
  ) {}

  async evaluate(candidates: readonly Candidate[], signal?: AbortSignal): Promise<EvaluationResult[]> {
    const results = new Array<EvaluationResult>(candidates.length);
    const windows = this.windows;
    const clusters = this.clusters;
    await Promise.all(
      [...new Set(candidates.map((c) => c.fidelity))].map(async (fidelity) => {
        const length = Math.min(windows.count, prefixLength(fidelity, this.calibration));
        const take = Array.from({ length }, (_, i) => i);
        const indices = candidates.flatMap((c, i) => (c.fidelity === fidelity ? [i] : []));
        const out = await (await this.onnx.forSearch()).evaluate(
          indices.map((i) => candidates[i]!.mask),
          windows.select(take),
          {
            ...(clusters ? { clusterOf: take.map((w) => clusters[w]!) } : {}),
            ...(signal ? { signal } : {}),
          },
        );
        indices.forEach((i, j) => {
          const { nllSum, count, clusters } = out[j]!;
          results[i] = { nllSum, count, ...(clusters ? { clusters } : {}) };
        });
      }),
    );
    return results;
  }
}
