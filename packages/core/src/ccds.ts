import { kmeans } from 'ml-kmeans';
import { SearchOptionError } from './errors.ts';
import { Rng } from './rng.ts';

export interface CalibrationOptions {
  /** Pooled hidden states, row-major [count, dim]. */
  states: Float32Array;
  dim: number;
  /** Windows in the calibration set. */
  calibration: number;
  /** Windows in the held-out set, disjoint from the calibration set. */
  heldOut: number;
  /** `ccds` (default): cluster, then sample each cluster equally; `random`: the ablation. */
  sampling?: 'ccds' | 'random';
  /** Clusters (default 8). */
  clusters?: number;
  seed?: number;
}

export interface CalibrationSet {
  sampling: 'ccds' | 'random';
  /** Cluster of every pool window (all 0 under random sampling). */
  assignments: number[];
  clusterSizes: number[];
  /** Pool indices of the calibration windows, with their clusters. */
  calibration: number[];
  calibrationClusters: number[];
  heldOut: number[];
  seed: number;
}

function normalisedRows(states: Float32Array, dim: number): number[][] {
  const rows: number[][] = [];
  for (let r = 0; r * dim < states.length; r++) {
    const row = Array.from(states.subarray(r * dim, (r + 1) * dim));
    const norm = Math.hypot(...row) || 1;
    rows.push(row.map((v) => v / norm));
  }
  return rows;
}

/**
 * CCDS, EvoP's cluster-based calibration sampling: the pool windows' pooled states are L2-normalised and
 * clustered by seeded k-means++; the calibration budget is shared equally between clusters (the remainder, and
 * whatever a small cluster cannot supply, to the largest), drawn at random within each; the held-out set is
 * drawn from the windows left.
 */
export function selectCalibration(options: CalibrationOptions): CalibrationSet {
  const { states, dim, calibration, heldOut } = options;
  const sampling = options.sampling ?? 'ccds';
  const seed = options.seed ?? 0;
  const count = states.length / dim;
  const k = sampling === 'ccds' ? (options.clusters ?? 8) : 1;
  if (!Number.isInteger(count) || count === 0)
    throw new SearchOptionError('states', `${states.length} values are not rows of ${dim}`);
  if (!Number.isInteger(calibration) || calibration < 1)
    throw new SearchOptionError('calibration', `must be a positive integer, got ${calibration}`);
  if (!Number.isInteger(heldOut) || heldOut < 0)
    throw new SearchOptionError('heldOut', `must be a non-negative integer, got ${heldOut}`);
  if (calibration + heldOut > count)
    throw new SearchOptionError(
      'calibration',
      `${calibration} calibration + ${heldOut} held-out windows exceed the pool of ${count}`,
    );
  if (!Number.isInteger(k) || k < 1 || k > calibration)
    throw new SearchOptionError('clusters', `must be in 1…calibration (${calibration}), got ${k}`);

  const rng = Rng.seeded(seed);
  const assignments =
    k === 1
      ? new Array<number>(count).fill(0)
      : kmeans(normalisedRows(states, dim), k, { initialization: 'kmeans++', seed }).clusters;
  const members = Array.from({ length: k }, () => [] as number[]);
  for (const [i, c] of assignments.entries()) members[c]!.push(i);
  const shuffled = members.map((m) => rng.shuffle(m));

  // Equal shares; the remainder and any shortfall of small clusters go to the largest clusters that have room.
  const share = shuffled.map((m) => Math.min(m.length, Math.floor(calibration / k)));
  const bySize = shuffled.map((_, c) => c).sort((a, b) => shuffled[b]!.length - shuffled[a]!.length || a - b);
  for (let missing = calibration - share.reduce((a, b) => a + b, 0); missing > 0; ) {
    const c = bySize.find((c) => share[c]! < shuffled[c]!.length)!;
    const add = Math.min(missing, shuffled[c]!.length - share[c]!);
    share[c]! += add;
    missing -= add;
  }
  const chosen = shuffled.flatMap((m, c) => m.slice(0, share[c]).map((i) => ({ i, c })));
  chosen.sort((a, b) => a.i - b.i);
  const taken = new Set(chosen.map((x) => x.i));
  const rest = rng.shuffle(Array.from({ length: count }, (_, i) => i).filter((i) => !taken.has(i)));
  return {
    sampling,
    assignments,
    clusterSizes: members.map((m) => m.length),
    calibration: chosen.map((x) => x.i),
    calibrationClusters: chosen.map((x) => x.c),
    heldOut: rest.slice(0, heldOut).sort((a, b) => a - b),
    seed,
  };
}
