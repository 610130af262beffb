import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTight, medianInterval, verdictOf } from '../src/index.ts';

/** P(B ≤ k) for B ~ Binomial(n, ½), exactly (BigInt), as the reference. */
function binomialCdf(n: number, k: number): number {
  let term = 1n; // C(n, 0)
  let sum = 0n;
  for (let j = 0; j <= k; j++) {
    sum += term;
    term = (term * BigInt(n - j)) / BigInt(j + 1);
  }
  return Number((sum * 10n ** 12n) / 2n ** BigInt(n)) / 1e12;
}

test('the interval is the narrowest pair of order statistics that holds the median 95 % of the time', () => {
  assert.equal(medianInterval([3, 1, 2, 5, 4]), null, 'five samples give no 95 % interval');
  assert.deepEqual(medianInterval([6, 2, 4, 1, 5, 3]), { median: 3.5, low: 1, high: 6 });
  // The textbook case: for 100 samples, the 40th and 61st.
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.deepEqual(medianInterval(hundred), { median: 50.5, low: 40, high: 61 });
  for (const n of [6, 7, 10, 25, 64, 199, 1000, 2500]) {
    // Samples 1…n: the interval's ends are the ranks themselves.
    const e = medianInterval(Array.from({ length: n }, (_, i) => i + 1))!;
    const k = e.low;
    assert.equal(e.high, n + 1 - k, `n=${n}: symmetric ranks`);
    const miss = 2 * binomialCdf(n, k - 1);
    assert.ok(miss <= 0.05, `n=${n}: covers the median with probability ${1 - miss} ≥ 0.95`);
    assert.ok(2 * binomialCdf(n, k) > 0.05, `n=${n}: one rank narrower would not`);
  }
  assert.deepEqual(medianInterval([1, 2, 3, 4, 5], 0.9), { median: 3, low: 1, high: 5 }, 'other confidence');
});

test('verdict: faster or slower only when the whole interval is on one side of 1', () => {
  const steps = (from: number, to: number, n: number) =>
    Array.from({ length: n }, (_, i) => from + ((to - from) * i) / (n - 1));
  // Dense and pruned timings drawn from the same spread, paired in a scrambled order: ratios around 1.
  const times = steps(0.9, 1.1, 40);
  const scrambled = times.map((_, i) => times[(i * 17) % 40]!);
  const same = medianInterval(times.map((t, i) => t / scrambled[i]!))!;
  assert.ok(same.low < 1 && same.high > 1);
  assert.equal(verdictOf(same), 'inconclusive');
  assert.equal(verdictOf(medianInterval(steps(1.2, 1.4, 40))!), 'faster');
  assert.equal(verdictOf(medianInterval(steps(0.7, 0.95, 40))!), 'slower');
  // A median below 1 with an interval that reaches above it is no slowdown.
  assert.equal(verdictOf({ median: 0.97, low: 0.93, high: 1.02 }), 'inconclusive');
  assert.equal(verdictOf({ median: 1.01, low: 1.001, high: 1.02 }), 'faster');
});

test('tight: the interval’s half-width within the precision, relative to the median', () => {
  assert.equal(isTight({ median: 2, low: 1.97, high: 2.05 }, 0.02), true); // ±0.04 ≤ 0.04
  assert.equal(isTight({ median: 2, low: 1.9, high: 2.05 }, 0.02), false);
  assert.equal(isTight({ median: 100, low: 99, high: 101 }, 0.005), false);
});
