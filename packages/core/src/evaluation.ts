/** A mask to measure, on a fraction of the calibration windows (1 = all of them). */
export interface Candidate {
  mask: string;
  fidelity: number;
}

/** Summed NLL and predicted-token count of one candidate, with per-cluster sums when the windows have clusters. */
export interface EvaluationResult {
  nllSum: number;
  count: number;
  clusters?: { nllSum: number; count: number }[];
}

/**
 * What measures candidates: the local onnxruntime evaluator or the distributed one, the search never knows.
 * Results come back in the order of the candidates.
 */
export interface Evaluator {
  evaluate(candidates: readonly Candidate[], signal?: AbortSignal): Promise<EvaluationResult[]>;
}

/** A candidate with its fitness: lower is better (an NLL per token). */
export interface Scored extends Candidate {
  fitness: number;
}

/** The best complete mask found so far, measured on all windows. */
export interface Best {
  mask: string;
  fitness: number;
}

/**
 * How a result becomes one number: `mean` NLL per token (default); `cluster-balanced`, the mean over clusters of
 * each cluster's NLL per token, so that each cluster weighs the same; `worst-cluster`, the largest of those.
 */
export type Objective = 'mean' | 'cluster-balanced' | 'worst-cluster';
export const OBJECTIVES: readonly Objective[] = ['mean', 'cluster-balanced', 'worst-cluster'];

export function fitnessOf(result: EvaluationResult, objective: Objective = 'mean'): number {
  if (objective === 'mean' || !result.clusters || result.clusters.length === 0)
    return result.nllSum / result.count;
  const perCluster = result.clusters.filter((c) => c.count > 0).map((c) => c.nllSum / c.count);
  return objective === 'worst-cluster'
    ? Math.max(...perCluster)
    : perCluster.reduce((a, b) => a + b, 0) / perCluster.length;
}
