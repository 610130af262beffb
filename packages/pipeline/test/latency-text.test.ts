import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LatencyComparison, PhaseComparison } from '@evop/runtime';
import { type EarlierLatency, latencyLines, speedupCells } from '../src/control.ts';

const protocol = {
  seqLen: 128,
  decodeTokens: 32,
  warmup: 2,
  maxSeconds: 20,
  precision: 0.02,
  confidence: 0.95,
  batch: 1 as const,
};

function phase(ratio: [number, number, number], verdict: PhaseComparison['verdict'], converged = true) {
  const [low, median, high] = ratio;
  return {
    dense: { median: 5835.4, low: 5790, high: 5880 },
    pruned: { median: 7685, low: 7600, high: 7720.6 },
    ratio: { median, low, high },
    verdict,
    rounds: 48,
    seconds: 3.2,
    converged,
  };
}

test('a speedup is printed with its interval; an interval that spans 1 is inconclusive, with no ratio claimed', () => {
  const latency: LatencyComparison = {
    prefill: phase([1.3, 1.32, 1.34], 'faster'),
    decode: phase([0.93, 0.97, 1.02], 'inconclusive', false),
    protocol,
  };
  const [heading, prefill, decode] = latencyLines(latency);
  assert.match(heading!, /median \[95 % interval\]/);
  assert.equal(
    prefill,
    '  prefill (128 tokens): dense 5835 [5790, 5880], pruned 7685 [7600, 7721]; ×1.32 [1.30, 1.34], faster (48 rounds)',
  );
  assert.match(
    decode!,
    /^ {2}decode \(32 tokens\): .*; inconclusive: ratio \[0\.93, 1\.02\] spans 1 \(48 rounds, /,
  );
  assert.match(decode!, /stopped at the 20 s cap before the interval was within ±2 %\)$/);
  assert.doesNotMatch(decode!, /0\.97|×/, 'no slowdown printed as a result');
  assert.deepEqual(speedupCells(latency), {
    prefill: '×1.32 [1.30, 1.34], faster',
    decode: 'inconclusive: ratio [0.93, 1.02] spans 1',
  });
});

test('a bound near 1 keeps the digit that shows which side of 1 it is on; no decode without a KV cache', () => {
  const latency: LatencyComparison = {
    prefill: phase([0.962, 0.981, 0.998], 'slower'),
    decode: null,
    protocol,
  };
  const [, prefill, decode] = latencyLines(latency);
  assert.match(prefill!, /×0\.98 \[0\.96, 0\.998\], slower/);
  assert.equal(decode, '  decode (32 tokens): n/a (no KV cache)');
  assert.deepEqual(speedupCells(latency), { prefill: '×0.98 [0.96, 0.998], slower', decode: 'n/a' });
});

test('a report.json of an earlier evop (medians, no interval) still renders, claiming no speedup', () => {
  const earlier: EarlierLatency = {
    dense: { prefill: { median: 5835.2 }, decode: { median: 162.4 } },
    pruned: { prefill: { median: 7685 }, decode: null },
  };
  const [line] = latencyLines(earlier);
  assert.match(line!, /dense 5835 \/ 162, pruned 7685 \/ n\/a/);
  assert.match(line!, /no speedup claimed/);
  assert.doesNotMatch(line!, /×/);
  assert.deepEqual(speedupCells(earlier), { prefill: 'no interval', decode: 'no interval' });
  assert.deepEqual(latencyLines(null), [
    'latency: not measured (the stage failed; evop prune --resume measures it)',
  ]);
});
