import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitnessOf, Rng, SearchOptionError, selectCalibration } from '../src/index.ts';

/** `perCluster` points around each of `centres` unit directions in `dim` dimensions, shuffled. */
function blobs(centres: number, perCluster: number[], dim: number, seed: number) {
  const rng = Rng.seeded(seed);
  const rows: { truth: number; v: number[] }[] = [];
  for (let c = 0; c < centres; c++)
    for (let i = 0; i < perCluster[c]!; i++)
      rows.push({
        truth: c,
        v: Array.from(
          { length: dim },
          (_, d) => (d === c ? 5 : 0) + (rng.float() - 0.5) * (1 + 3 * rng.float()),
        ),
      });
  const shuffled = rng.shuffle(rows);
  return { states: Float32Array.from(shuffled.flatMap((r) => r.v)), truth: shuffled.map((r) => r.truth) };
}

test('CCDS recovers clusters, shares the calibration budget equally and keeps the held-out set apart', () => {
  const sizes = [60, 25, 40, 15];
  const { states, truth } = blobs(4, sizes, 6, 1);
  const set = selectCalibration({ states, dim: 6, calibration: 22, heldOut: 30, clusters: 4, seed: 3 });
  // Each found cluster is one true cluster.
  for (let c = 0; c < 4; c++) {
    const members = set.assignments.map((a, i) => (a === c ? truth[i]! : -1)).filter((t) => t >= 0);
    assert.equal(new Set(members).size, 1, `cluster ${c} is pure`);
  }
  assert.deepEqual(
    [...set.clusterSizes].sort((a, b) => a - b),
    [15, 25, 40, 60],
  );
  const perCluster = [0, 1, 2, 3].map((c) => set.calibrationClusters.filter((x) => x === c).length);
  const largest = set.clusterSizes.indexOf(60);
  // 22 = 4 × 5 + 2: five each, the remainder to the largest cluster.
  assert.deepEqual(
    perCluster,
    perCluster.map((_, c) => (c === largest ? 7 : 5)),
  );
  assert.equal(set.calibration.length, 22);
  assert.equal(set.heldOut.length, 30);
  assert.equal(new Set([...set.calibration, ...set.heldOut]).size, 52, 'disjoint');
  assert.deepEqual(
    selectCalibration({ states, dim: 6, calibration: 22, heldOut: 30, clusters: 4, seed: 3 }),
    set,
    'seeded',
  );
});

test('a cluster smaller than its share gives its shortfall to the largest', () => {
  const { states } = blobs(3, [50, 3, 40], 5, 2);
  const set = selectCalibration({ states, dim: 5, calibration: 30, heldOut: 0, clusters: 3, seed: 1 });
  const counts = [0, 1, 2].map((c) => set.calibrationClusters.filter((x) => x === c).length);
  assert.deepEqual(
    counts.map((n, c) => [set.clusterSizes[c], n]).sort((a, b) => a[0]! - b[0]!),
    [
      [3, 3],
      [40, 10],
      [50, 17],
    ],
  );
});

test('random sampling is the ablation: one cluster, the same sizes, disjoint sets', () => {
  const { states } = blobs(2, [30, 30], 4, 5);
  const set = selectCalibration({
    states,
    dim: 4,
    calibration: 10,
    heldOut: 20,
    sampling: 'random',
    seed: 2,
  });
  assert.deepEqual(set.clusterSizes, [60]);
  assert.equal(new Set([...set.calibration, ...set.heldOut]).size, 30);
  assert.throws(
    () => selectCalibration({ states, dim: 4, calibration: 50, heldOut: 20 }),
    (e: unknown) => e instanceof SearchOptionError && e.option === 'calibration',
  );
});

test('objectives: mean per token, cluster-balanced and worst cluster', () => {
  const r = {
    nllSum: 30,
    count: 20,
    clusters: [
      { nllSum: 10, count: 10 },
      { nllSum: 20, count: 10 },
    ],
  };
  const skewed = {
    nllSum: 12,
    count: 11,
    clusters: [
      { nllSum: 10, count: 10 },
      { nllSum: 2, count: 1 },
    ],
  };
  assert.equal(fitnessOf(r, 'mean'), 1.5);
  assert.equal(fitnessOf(skewed, 'mean'), 12 / 11);
  assert.equal(
    fitnessOf(skewed, 'cluster-balanced'),
    1.5,
    'each cluster weighs the same, however many tokens',
  );
  assert.equal(fitnessOf(skewed, 'worst-cluster'), 2);
});
