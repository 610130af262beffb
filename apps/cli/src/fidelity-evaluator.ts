import type { Candidate, EvaluationResult, Evaluator } from '@evop/core';
import type { TokenWindows } from '@evop/data';
import type { OnnxEvaluator } from '@evop/runtime';

/**
 * The search's Evaluator on the local onnxruntime evaluator: fidelity f means the first ⌈f·n⌉ calibration
 * windows. The windows are ordered round-robin over the CCDS clusters, so every prefix is as balanced as it can be.
 */
export class FidelityEvaluator implements Evaluator {
  private readonly order: number[];

  constructor(
    private readonly onnx: OnnxEvaluator,
    private readonly windows: TokenWindows,
    private readonly clusterOf: readonly number[],
  ) {
    const byCluster = new Map<number, number[]>();
    for (const [i, c] of clusterOf.entries()) byCluster.set(c, [...(byCluster.get(c) ?? []), i]);
    const queues = [...byCluster.values()];
    this.order = [];
    for (let round = 0; this.order.length < clusterOf.length; round++)
      for (const q of queues) if (round < q.length) this.order.push(q[round]!);
  }

  async evaluate(candidates: readonly Candidate[], signal?: AbortSignal): Promise<EvaluationResult[]> {
    const results = new Array<EvaluationResult>(candidates.length);
    const fidelities = [...new Set(candidates.map((c) => c.fidelity))];
    await Promise.all(
      fidelities.map(async (fidelity) => {
        const take = this.order.slice(0, Math.max(1, Math.ceil(fidelity * this.order.length)));
        const indices = candidates.flatMap((c, i) => (c.fidelity === fidelity ? [i] : []));
        const out = await this.onnx.evaluate(
          indices.map((i) => candidates[i]!.mask),
          this.windows.select(take),
          { clusterOf: take.map((w) => this.clusterOf[w]!), ...(signal ? { signal } : {}) },
        );
        indices.forEach((i, j) => {
          results[i] = out[j]!;
        });
      }),
    );
    return results;
  }
}
