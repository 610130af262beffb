import { type CalibrationSet, selectCalibration } from '@evop/core';
import type { TokenWindows } from '@evop/data';
import type { SearchSpec } from './search-spec.ts';

/** A CCDS calibration, with the sha256 of the pool it indexes (a resumed run checks it is the same pool). */
export interface Calibration extends CalibrationSet {
  poolSha256: string;
}

/** Windows with the cluster of each. */
export interface ClusteredWindows {
  windows: TokenWindows;
  clusters: number[];
}

/**
 * Calibration and held-out sets from the pool. `states` are the windows' pooled hidden states (CCDS); random
 * sampling needs none.
 */
export function calibrate(
  spec: SearchSpec,
  pool: TokenWindows,
  states: Float32Array | undefined,
  hiddenSize: number,
): Calibration {
  const ccds = spec.sampling === 'ccds';
  const set = selectCalibration({
    states: ccds && states ? states : new Float32Array(pool.count),
    dim: ccds ? hiddenSize : 1,
    calibration: spec.calibration,
    heldOut: spec.heldOut,
    clusters: Math.min(spec.clusters, spec.calibration),
    sampling: spec.sampling,
    seed: spec.seed,
  });
  return { ...set, poolSha256: pool.sha256 };
}

/** Indices ordered round-robin over their clusters, so that every prefix is as balanced as it can be. */
export function balancedOrder(clusters: readonly number[]): number[] {
  const byCluster = new Map<number, number[]>();
  for (const [i, c] of clusters.entries()) byCluster.set(c, [...(byCluster.get(c) ?? []), i]);
  const queues = [...byCluster.values()];
  const order: number[] = [];
  for (let round = 0; order.length < clusters.length; round++)
    for (const q of queues) if (round < q.length) order.push(q[round]!);
  return order;
}

/**
 * The search's windows: the calibration windows, then the validation windows (the pool's windows neither
 * calibration nor held out). Fidelity f measures the first ⌈f·calibration⌉ of them: fidelity 1 the calibration
 * windows, more than 1 validation windows as well (evop's final choice).
 */
export interface SearchWindows extends ClusteredWindows {
  calibration: number;
}

/** The validation windows' fidelity: all the search windows, as a multiple of the calibration windows. */
export const validationFidelity = (search: SearchWindows) => search.windows.count / search.calibration;

/**
 * The calibration windows, the search's windows (the calibration windows, then the validation windows) and the
 * held-out windows, each with its clusters; the calibration and validation windows each in balanced order, so
 * that fidelity f < 1 measures the first ⌈f·n⌉ calibration windows, as balanced as they can be.
 */
export function splitWindows(
  pool: TokenWindows,
  calibration: Calibration,
): { calibration: ClusteredWindows; search: SearchWindows; heldOut: ClusteredWindows } {
  const clustered = (indices: readonly number[]): ClusteredWindows => ({
    windows: pool.select(indices),
    clusters: indices.map((w) => calibration.assignments[w]!),
  });
  const balanced = (indices: readonly number[]) =>
    balancedOrder(indices.map((w) => calibration.assignments[w]!)).map((i) => indices[i]!);
  const taken = new Set([...calibration.calibration, ...calibration.heldOut]);
  const validation = Array.from({ length: pool.count }, (_, w) => w).filter((w) => !taken.has(w));
  const ordered = balanced(calibration.calibration);
  return {
    calibration: clustered(ordered),
    search: { ...clustered([...ordered, ...balanced(validation)]), calibration: ordered.length },
    heldOut: clustered(calibration.heldOut),
  };
}
