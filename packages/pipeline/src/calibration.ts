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
 * The search's windows (calibration, in balanced order: fidelity f is their first ⌈f·n⌉) and the held-out
 * windows, each with its clusters.
 */
export function splitWindows(
  pool: TokenWindows,
  calibration: Calibration,
): { search: ClusteredWindows; heldOut: ClusteredWindows } {
  const ordered = balancedOrder(calibration.calibrationClusters).map((i) => calibration.calibration[i]!);
  return {
    search: {
      windows: pool.select(ordered),
      clusters: ordered.map((w) => calibration.assignments[w]!),
    },
    heldOut: {
      windows: pool.select(calibration.heldOut),
      clusters: calibration.heldOut.map((w) => calibration.assignments[w]!),
    },
  };
}
