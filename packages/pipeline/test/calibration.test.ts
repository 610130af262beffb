import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenWindows } from '@evop/data';
import {
  balancedOrder,
  type Calibration,
  prefixLength,
  splitWindows,
  validationFidelity,
} from '../src/index.ts';

test('the search windows are ordered so that every fidelity prefix is balanced over the clusters', () => {
  const clusters = [0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3];
  const order = balancedOrder(clusters);
  assert.deepEqual(
    [...order].sort((a, b) => a - b),
    clusters.map((_, i) => i),
    'a permutation',
  );
  for (let n = 1; n <= order.length; n++) {
    const counts = [0, 1, 2, 3].map((c) => order.slice(0, n).filter((i) => clusters[i] === c).length);
    const available = [0, 1, 2, 3].map((c) => clusters.filter((x) => x === c).length);
    // A cluster is short of another's count only when it has nothing left to give.
    for (const [c, k] of counts.entries())
      assert.ok(k >= Math.min(available[c]!, Math.max(...counts) - 1), `prefix ${n}: ${counts}`);
  }
});

test('splitWindows gives the calibration windows in balanced order, the validation windows after them, and the held-out windows, with their clusters', () => {
  const pool = new TokenWindows(
    2,
    Int32Array.from({ length: 20 }, (_, i) => i),
  );
  const calibration: Calibration = {
    sampling: 'ccds',
    assignments: [0, 1, 0, 1, 2, 2, 0, 1, 2, 0],
    clusterSizes: [4, 3, 3],
    calibration: [0, 2, 6, 1, 4],
    calibrationClusters: [0, 0, 0, 1, 2],
    heldOut: [3, 5, 9],
    seed: 0,
    poolSha256: pool.sha256,
  };
  const sets = splitWindows(pool, calibration);
  const { search, heldOut } = sets;
  assert.deepEqual(sets.calibration.clusters, [0, 1, 2, 0, 0]);
  assert.deepEqual(Array.from(sets.calibration.windows.window(1)), [2, 3], 'pool window 1 second');
  // The search windows: the calibration windows, then the pool's others (7, 8) that are not held out.
  assert.equal(search.calibration, 5);
  assert.deepEqual(search.clusters, [0, 1, 2, 0, 0, 1, 2]);
  assert.deepEqual(
    Array.from(search.windows.tokens.subarray(0, 10)),
    Array.from(sets.calibration.windows.tokens),
  );
  assert.deepEqual(Array.from(search.windows.tokens.subarray(10)), [14, 15, 16, 17]);
  assert.equal(validationFidelity(search), 7 / 5);
  assert.deepEqual(heldOut.clusters, [1, 2, 0]);
  assert.deepEqual(Array.from(heldOut.windows.tokens), [6, 7, 10, 11, 18, 19]);
  assert.equal(prefixLength(0.5, search.calibration), 3);
  assert.equal(prefixLength(0.01, search.calibration), 1, 'at least one window');
});
