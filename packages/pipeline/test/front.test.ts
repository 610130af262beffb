import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LatencyComparison } from '@evop/runtime';
import { paretoOptimal } from '../src/front.ts';

const at = (units: number, perplexity: number, prefill?: number) => ({
  units,
  perplexity,
  latency:
    prefill === undefined
      ? null
      : ({ prefill: { ratio: { median: prefill } } } as unknown as LatencyComparison),
});

test('a front point is Pareto-optimal unless another is at least as fast and as good, one of them strictly', () => {
  assert.deepEqual(
    paretoOptimal([at(2, 5.0, 1.3), at(4, 6.0, 1.2), at(6, 7.0, 2.0), at(8, 7.0, 2.0)]),
    // 4 units is slower and worse than 2; 6 and 8 tie on both: neither dominates the other.
    [true, false, true, true],
  );
  // Where a point's latency failed, units pruned stand in for speed for every point.
  assert.deepEqual(paretoOptimal([at(2, 5.0, 1.3), at(4, 4.9), at(6, 7.0, 0.9)]), [false, true, true]);
});
